"""The critic interface and the MLP the critics are built from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["Critic", "mlp"]


def mlp(
    dim_in: int,
    hidden: Sequence[int],
    dim_out: int,
    activation: type[nn.Module] = nn.ReLU,
) -> nn.Sequential:
    """A multilayer perceptron ``Linear -> activation -> ... -> Linear``.

    Args:
        dim_in: input features.
        hidden: widths of the hidden layers (may be empty: a single linear map).
        dim_out: output features.
        activation: the non-linearity class.

    Example:
        >>> mlp(20, (256, 256), 32)[0]
        Linear(in_features=20, out_features=256, bias=True)
    """
    _check_positive_int(dim_in, "dim_in")
    _check_positive_int(dim_out, "dim_out")
    layers: list[nn.Module] = []
    width = dim_in
    for h in hidden:
        _check_positive_int(h, "hidden")
        layers += [nn.Linear(width, h), activation()]
        width = h
    layers.append(nn.Linear(width, dim_out))
    return nn.Sequential(*layers)


def _check_positive_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


class Critic(nn.Module):
    """Base class of critics: ``forward(x (..., N, Dx), y (..., M, Dy)) -> (..., N, M)``.

    Subclasses call ``_check_inputs`` first, so every critic reports bad shapes alike.
    """

    dim_x: int
    dim_y: int

    def _check_inputs(self, x: Tensor, y: Tensor) -> None:
        name = type(self).__name__
        for arg, t, dim in (("x", x, self.dim_x), ("y", y, self.dim_y)):
            if not isinstance(t, Tensor):
                raise TypeError(f"{name}: {arg} must be a torch.Tensor, got {type(t).__name__}")
            if not t.is_floating_point():
                raise TypeError(f"{name}: {arg} must be floating point, got dtype {t.dtype}")
            if t.dim() < 2:
                raise ValueError(
                    f"{name}: {arg} must have shape (..., n, {dim}) with at least 2 dims, "
                    f"got {tuple(t.shape)}"
                )
            if t.shape[-1] != dim:
                raise ValueError(
                    f"{name}: {arg} has {t.shape[-1]} features (shape {tuple(t.shape)}) but "
                    f"the critic was built with dim_{arg}={dim}"
                )
        try:
            torch.broadcast_shapes(x.shape[:-2], y.shape[:-2])
        except RuntimeError:
            raise ValueError(
                f"{name}: the leading dimensions of x {tuple(x.shape)} and y {tuple(y.shape)} "
                "do not broadcast"
            ) from None
