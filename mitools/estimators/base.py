"""The estimator interface: a bound applied to a score tensor, as an ``nn.Module``."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

__all__ = ["Estimator", "FunctionalEstimator"]


class Estimator(nn.Module):
    """Base class: a mutual-information bound applied to a score tensor.

    Subclasses implement :meth:`forward`. The attribute ``nats`` says whether the value is
    an MI estimate in nats (``False`` only for :class:`JSD`).

    Args of :meth:`forward`:
        scores: ``(..., N, M)``, ``scores[..., i, j] = f(x_i, y_j)``, positive at ``i + offset``.
        offset: column of the positive of row 0.
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.
        anchors: optional row-side inputs ``(..., N, D)``, used only by learned baselines.

    Returns of :meth:`forward`:
        Tensor of shape ``scores.shape[:-2]``: the value (to maximise).
    """

    name: str = "estimator"
    nats: bool = True

    def forward(
        self,
        scores: Tensor,
        *,
        offset: int = 0,
        row_mask: Tensor | None = None,
        col_mask: Tensor | None = None,
        anchors: Tensor | None = None,
    ) -> Tensor:
        raise NotImplementedError


class FunctionalEstimator(Estimator):
    """Wraps a function ``fn(scores, *, offset, row_mask, col_mask) -> Tensor`` as an estimator.

    Args:
        fn: a bound with the signature of :func:`mitools.bounds.infonce`.
        name: a label for ``repr`` and logs.
        nats: whether the value is an MI estimate in nats.

    Example:
        >>> import torch
        >>> from mitools import bounds
        >>> FunctionalEstimator(bounds.dv)(torch.zeros(3, 3))
        tensor(0.)
    """

    def __init__(self, fn: Callable[..., Tensor], name: str | None = None, nats: bool = True):
        super().__init__()
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or str(getattr(fn, "__name__", "custom"))
        self.nats = nats

    def forward(
        self,
        scores: Tensor,
        *,
        offset: int = 0,
        row_mask: Tensor | None = None,
        col_mask: Tensor | None = None,
        anchors: Tensor | None = None,
    ) -> Tensor:
        return self.fn(scores, offset=offset, row_mask=row_mask, col_mask=col_mask)

    def extra_repr(self) -> str:
        return f"fn={self.name}"
