r"""Critics: learnable score functions :math:`f(x, y)` evaluated on every pair of a batch.

A critic maps ``x (..., N, Dx)`` and ``y (..., M, Dy)`` to ``scores (..., N, M)`` with
``scores[..., i, j] = f(x_i, y_j)``; leading dimensions broadcast. Three families
(Poole et al. 2019):

* :class:`SeparableCritic`: :math:`f(x, y) = g(x)^\top h(y) / T`, two encoders and a dot
  product (optionally cosine, with a fixed or learnable temperature). One matmul for all pairs.
* :class:`BilinearCritic`: :math:`f(x, y) = x^\top W y`.
* :class:`ConcatCritic`: :math:`f(x, y) = \mathrm{MLP}([x, y])`, the most expressive and the
  most expensive: ``N * M`` network passes, computed in row chunks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

__all__ = [
    "BilinearCritic",
    "ConcatCritic",
    "Critic",
    "SeparableCritic",
    "available_critics",
    "get_critic",
    "mlp",
]


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


class SeparableCritic(Critic):
    r"""Separable critic :math:`f(x, y) = g(x)^\top h(y) / T`.

    Args:
        dim_x: features of ``x``.
        dim_y: features of ``y``.
        hidden: hidden widths of both encoders :math:`g` and :math:`h`.
        embed_dim: dimension of the embeddings that are compared.
        cosine: L2-normalise the embeddings (a cosine similarity), as in CLIP / SimCLR.
        temperature: :math:`T > 0`; with ``cosine=True`` a small value (0.1) is usual.
        learn_temperature: learn :math:`\log T` as a parameter.
        activation: the non-linearity class of the encoders.

    Example:
        >>> import torch
        >>> critic = SeparableCritic(20, 20, hidden=(64,), embed_dim=16)
        >>> critic(torch.randn(8, 20), torch.randn(8, 20)).shape
        torch.Size([8, 8])
        >>> critic(torch.randn(3, 8, 20), torch.randn(3, 5, 20)).shape  # leading batch dims
        torch.Size([3, 8, 5])
    """

    def __init__(
        self,
        dim_x: int,
        dim_y: int,
        hidden: Sequence[int] = (256, 256),
        embed_dim: int = 32,
        cosine: bool = False,
        temperature: float = 1.0,
        learn_temperature: bool = False,
        activation: type[nn.Module] = nn.ReLU,
    ):
        super().__init__()
        if not (isinstance(temperature, (int, float)) and temperature > 0):
            raise ValueError(f"temperature must be a positive number, got {temperature!r}")
        self.dim_x, self.dim_y = dim_x, dim_y
        self.g = mlp(dim_x, hidden, embed_dim, activation)
        self.h = mlp(dim_y, hidden, embed_dim, activation)
        self.cosine = cosine
        log_t = torch.tensor(math.log(temperature))
        if learn_temperature:
            self.log_temperature = nn.Parameter(log_t)
        else:
            self.register_buffer("log_temperature", log_t)

    def embed(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """The embeddings :math:`g(x)` ``(..., N, E)`` and :math:`h(y)` ``(..., M, E)``."""
        gx, hy = self.g(x), self.h(y)
        if self.cosine:
            gx, hy = F.normalize(gx, dim=-1), F.normalize(hy, dim=-1)
        return gx, hy

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        self._check_inputs(x, y)
        gx, hy = self.embed(x, y)
        return torch.matmul(gx, hy.transpose(-1, -2)) * torch.exp(-self.log_temperature)


class BilinearCritic(Critic):
    r"""Bilinear critic :math:`f(x, y) = x^\top W y` (Oord et al.'s CPC critic).

    Args:
        dim_x: features of ``x``.
        dim_y: features of ``y``.
        bias: add a learnable scalar (it cancels in InfoNCE and DV, not in NWJ/TUBA/JS).

    Example:
        >>> import torch
        >>> BilinearCritic(4, 3)(torch.randn(5, 4), torch.randn(6, 3)).shape
        torch.Size([5, 6])
    """

    def __init__(self, dim_x: int, dim_y: int, bias: bool = True):
        super().__init__()
        _check_positive_int(dim_x, "dim_x")
        _check_positive_int(dim_y, "dim_y")
        self.dim_x, self.dim_y = dim_x, dim_y
        self.weight = nn.Parameter(torch.empty(dim_x, dim_y))
        nn.init.normal_(self.weight, std=1.0 / math.sqrt(dim_x * dim_y))  # unit-variance scores
        self.bias = nn.Parameter(torch.zeros(())) if bias else None

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        self._check_inputs(x, y)
        scores = torch.matmul(torch.matmul(x, self.weight), y.transpose(-1, -2))
        return scores + self.bias if self.bias is not None else scores


class ConcatCritic(Critic):
    r"""Joint critic :math:`f(x, y) = \mathrm{MLP}([x, y])` over every pair.

    The first layer is split, :math:`W[x; y] = W_x x + W_y y`, so it costs ``N + M`` products
    instead of ``N * M``; the remaining layers run on all ``N * M`` pairs, ``chunk_size`` rows
    at a time. With ``checkpoint=True`` each chunk's activations are recomputed in the backward
    pass, so training memory is bounded by one chunk too.

    Args:
        dim_x: features of ``x``.
        dim_y: features of ``y``.
        hidden: hidden widths (at least one layer).
        chunk_size: rows of the score matrix per chunk (``None``: all at once).
        checkpoint: recompute chunk activations in backward instead of storing them.
        activation: the non-linearity class.

    Example:
        >>> import torch
        >>> critic = ConcatCritic(2, 3, hidden=(16,), chunk_size=4)
        >>> critic(torch.randn(10, 2), torch.randn(7, 3)).shape
        torch.Size([10, 7])
    """

    def __init__(
        self,
        dim_x: int,
        dim_y: int,
        hidden: Sequence[int] = (256, 256),
        chunk_size: int | None = None,
        checkpoint: bool = False,
        activation: type[nn.Module] = nn.ReLU,
    ):
        super().__init__()
        hidden = tuple(hidden)
        if len(hidden) < 1:
            raise ValueError("ConcatCritic needs at least one hidden layer, got hidden=()")
        if chunk_size is not None:
            _check_positive_int(chunk_size, "chunk_size")
        _check_positive_int(dim_x, "dim_x")
        _check_positive_int(dim_y, "dim_y")
        self.dim_x, self.dim_y = dim_x, dim_y
        self.first_x = nn.Linear(dim_x, hidden[0])
        self.first_y = nn.Linear(dim_y, hidden[0], bias=False)
        self.rest = nn.Sequential(activation(), mlp(hidden[0], hidden[1:], 1, activation))
        self.chunk_size = chunk_size
        self.checkpoint = checkpoint

    def _block(self, hx: Tensor, hy: Tensor) -> Tensor:
        # hx (..., n, H), hy (..., M, H) -> (..., n, M)
        return self.rest(hx[..., :, None, :] + hy[..., None, :, :]).squeeze(-1)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        self._check_inputs(x, y)
        hx, hy = self.first_x(x), self.first_y(y)
        lead = torch.broadcast_shapes(hx.shape[:-2], hy.shape[:-2])
        hx = hx.expand(*lead, *hx.shape[-2:])
        hy = hy.expand(*lead, *hy.shape[-2:])
        n = hx.shape[-2]
        step = self.chunk_size or n
        blocks = []
        for start in range(0, n, step):  # loop over row chunks, not samples
            part = hx[..., start : start + step, :]
            if self.checkpoint and torch.is_grad_enabled():
                blocks.append(checkpoint(self._block, part, hy, use_reentrant=False))
            else:
                blocks.append(self._block(part, hy))
        return torch.cat(blocks, dim=-2) if len(blocks) > 1 else blocks[0]


_CRITICS: dict[str, type[Critic]] = {
    "separable": SeparableCritic,
    "bilinear": BilinearCritic,
    "concat": ConcatCritic,
}


def available_critics() -> list[str]:
    """Names accepted by :func:`get_critic`.

    Example:
        >>> available_critics()
        ['separable', 'bilinear', 'concat']
    """
    return list(_CRITICS)


def get_critic(name: str | nn.Module, dim_x: int, dim_y: int, **kwargs: Any) -> nn.Module:
    """Build a critic by name (or return a given module unchanged).

    Args:
        name: ``"separable"``, ``"bilinear"`` or ``"concat"``, or an ``nn.Module``.
        dim_x: features of ``x``.
        dim_y: features of ``y``.
        **kwargs: constructor arguments of the critic class.

    Example:
        >>> get_critic("bilinear", 3, 4)
        BilinearCritic()
    """
    if isinstance(name, nn.Module):
        return name
    if not isinstance(name, str) or name.lower() not in _CRITICS:
        raise ValueError(f"unknown critic {name!r}; choose one of {sorted(_CRITICS)}")
    return _CRITICS[name.lower()](dim_x, dim_y, **kwargs)
