"""Stand-in for ``mitools.LocalMILoss`` / ``GlobalMILoss`` until they land on main.

Implements only what the pipeline uses, with the planned constructor and result shape: image
cells ``x (B, H, W, C)`` against one text vector per pair ``y (B, C)`` (the local-to-global
sampler), reductions ``mean | sum | max``, and ``gather=True`` negatives across ranks.
:mod:`examples.image_text.objective` imports this module only when mitools lacks the losses.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch.distributed as dist
from torch import Tensor, nn

from mitools.estimators import get_estimator

__all__ = ["GlobalMILoss", "LocalMILoss", "LocalToGlobal", "MIResult"]


class MIResult(NamedTuple):
    loss: Tensor
    estimate: Tensor
    local: Tensor


class LocalToGlobal:
    """Every position of ``x`` against the single vector of ``y``."""


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _gather(y: Tensor) -> Tensor:
    from .objective import gather_with_grad

    return gather_with_grad(y)


class _CellsVsVector(nn.Module):
    def __init__(self, bound: Any, critic: nn.Module, reduction: str, gather: bool) -> None:
        super().__init__()
        if reduction not in ("mean", "sum", "max"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'max', got {reduction!r}")
        self.estimator = get_estimator(bound)
        self.critic = critic
        self.reduction = reduction
        self.gather = gather

    def _per_position(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, P, C), y (B, Cy) -> per-position estimate (P,), value averaged over ranks."""
        rank, world = _world()
        offset = 0
        if self.gather and world > 1:
            offset = rank * x.shape[0]
            y = _gather(y)
        scores = self.critic(x.transpose(0, 1), y)  # (P, B, B_all)
        per = self.estimator(scores, offset=offset)
        shared = per.detach().clone()
        if self.gather and world > 1:
            dist.all_reduce(shared)
            shared /= world
        return per, shared


class LocalMILoss(_CellsVsVector):
    """Local MI between every cell of ``x (B, H, W, C)`` and ``y (B, C)``."""

    def __init__(self, bound: Any = "infonce", critic: nn.Module | None = None,
                 sampler: LocalToGlobal | None = None, reduction: str = "mean",
                 x_pattern: str = "b h w c", y_pattern: str = "b c", chunk_size: int | None = None,
                 gather: bool = False) -> None:
        if critic is None:
            raise ValueError("critic is required")
        super().__init__(bound, critic, reduction, gather)

    def forward(self, x: Tensor, y: Tensor) -> MIResult:
        b, h, w, c = x.shape
        per, shared = self._per_position(x.reshape(b, h * w, c), y)
        if self.reduction == "max":
            # The argmax is chosen on the rank-averaged estimate so all ranks train one cell.
            k = int(shared.argmax())
            objective, estimate = per[k], shared[k]
        elif self.reduction == "mean":
            objective, estimate = per.mean(), shared.mean()
        else:
            objective, estimate = per.sum(), shared.sum()
        return MIResult(-objective, estimate, shared.reshape(h, w))


class GlobalMILoss(_CellsVsVector):
    """MI between the pooled cells of ``x (B, H, W, C)`` and ``y (B, C)``."""

    def __init__(self, bound: Any = "infonce", critic: nn.Module | None = None,
                 x_pattern: str = "b h w c", y_pattern: str = "b c", pool: str = "mean",
                 gather: bool = False) -> None:
        if critic is None:
            raise ValueError("critic is required")
        if pool not in ("mean", "max"):
            raise ValueError(f"pool must be 'mean' or 'max', got {pool!r}")
        super().__init__(bound, critic, "mean", gather)
        self.pool = pool

    def forward(self, x: Tensor, y: Tensor) -> MIResult:
        b = x.shape[0]
        flat = x.reshape(b, -1, x.shape[-1])
        pooled = flat.mean(1) if self.pool == "mean" else flat.amax(1)
        per, shared = self._per_position(pooled[:, None], y)
        return MIResult(-per[0], shared[0], shared)
