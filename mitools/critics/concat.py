"""The concat (joint) critic: one MLP on every pair :math:`[x_i, y_j]`, in row chunks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from mitools.critics.base import (
    Critic,
    _check_activation,
    _check_widths,
    _new_activation,
    mlp,
    promoted_linear,
)
from mitools.option_checks import check_flag, check_int

__all__ = ["ConcatCritic"]


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
        activation: the non-linearity class (see :func:`~mitools.critics.mlp`).

    Raises:
        ValueError: at construction, no hidden layer, a dimension, width or ``chunk_size`` that is
            not an int >= 1, or a ``checkpoint`` that is not ``True`` or ``False``;
            at the call, as every :class:`~mitools.critics.Critic` (inputs of the wrong shape
            or device).
        TypeError: at the call, non-tensor or non-floating-point inputs.

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
        hidden = _check_widths(hidden)
        if len(hidden) < 1:
            raise ValueError("ConcatCritic needs at least one hidden layer, got hidden=()")
        if chunk_size is not None:
            chunk_size = check_int("chunk_size", chunk_size)
        checkpoint = check_flag("checkpoint", checkpoint)
        dim_x, dim_y = check_int("dim_x", dim_x), check_int("dim_y", dim_y)
        self.dim_x, self.dim_y = dim_x, dim_y
        self.first_x = nn.Linear(dim_x, hidden[0])
        self.first_y = nn.Linear(dim_y, hidden[0], bias=False)
        _check_activation(activation)
        # the first activation before the tail's layers, the order of the RNG's draws
        first = _new_activation(activation)
        self.rest = nn.Sequential(first, mlp(hidden[0], hidden[1:], 1, activation))
        self.chunk_size = chunk_size
        self.checkpoint = checkpoint

    def _block(self, hx: Tensor, hy: Tensor) -> Tensor:
        # hx (..., n, H), hy (..., M, H) -> (..., n, M)
        return self.rest(hx[..., :, None, :] + hy[..., None, :, :]).squeeze(-1)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        self._check_inputs(x, y)
        hx, hy = promoted_linear(self.first_x, x), promoted_linear(self.first_y, y)
        lead = torch.broadcast_shapes(hx.shape[:-2], hy.shape[:-2])
        hx = hx.expand(*lead, *hx.shape[-2:])
        hy = hy.expand(*lead, *hy.shape[-2:])
        n = hx.shape[-2]
        step = self.chunk_size or max(n, 1)  # no rows: one empty block, (..., 0, M)
        blocks = []
        for start in range(0, max(n, 1), step):  # loop over row chunks, not samples
            part = hx[..., start : start + step, :]
            if self.checkpoint and torch.is_grad_enabled():
                blocks.append(checkpoint(self._block, part, hy, use_reentrant=False))
            else:
                blocks.append(self._block(part, hy))
        scores = torch.cat(blocks, dim=-2) if len(blocks) > 1 else blocks[0]
        # float32 or higher, as every critic's: under torch.autocast the network's output is
        # in autocast's dtype (the value keeps its rounding; the bounds then compute in float32)
        return scores.to(torch.promote_types(scores.dtype, torch.float32))
