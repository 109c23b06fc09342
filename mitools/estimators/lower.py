"""The stateless lower bounds as modules: InfoNCE, NWJ, DV, JS, JSD and SMILE."""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import Tensor

from mitools import bounds
from mitools.estimators.base import Estimator

__all__ = ["DV", "JS", "JSD", "NWJ", "SMILE", "InfoNCE"]


class _Stateless(Estimator):
    """An estimator that only forwards to one function of :mod:`mitools.bounds`."""

    _fn: Callable[..., Tensor]

    def forward(
        self,
        scores: Tensor,
        *,
        offset: int = 0,
        row_mask: Tensor | None = None,
        col_mask: Tensor | None = None,
        anchors: Tensor | None = None,
    ) -> Tensor:
        return type(self)._fn(scores, offset=offset, row_mask=row_mask, col_mask=col_mask)


class InfoNCE(_Stateless):
    """InfoNCE / CPC bound, see :func:`mitools.bounds.infonce`.

    Example:
        >>> import torch
        >>> InfoNCE()(torch.zeros(2, 5, 5)).shape
        torch.Size([2])
    """

    name = "infonce"
    _fn = staticmethod(bounds.infonce)


class NWJ(_Stateless):
    """NWJ / f-MINE bound, see :func:`mitools.bounds.nwj`.

    Example:
        >>> import torch
        >>> NWJ()(torch.ones(4, 4))
        tensor(0.)
    """

    name = "nwj"
    _fn = staticmethod(bounds.nwj)


class DV(_Stateless):
    """Donsker-Varadhan bound with its plain (biased) gradient, see :func:`mitools.bounds.dv`.

    Example:
        >>> import torch
        >>> DV()(torch.zeros(4, 4))
        tensor(0.)
    """

    name = "dv"
    _fn = staticmethod(bounds.dv)


class JS(_Stateless):
    """NWJ-valued estimate with Jensen-Shannon gradients, see :func:`mitools.bounds.js`.

    Example:
        >>> import torch
        >>> JS()(torch.zeros(4, 4))
        tensor(0.)
    """

    name = "js"
    _fn = staticmethod(bounds.js)


class JSD(_Stateless):
    """Jensen-Shannon objective of Deep InfoMax (not nats), see :func:`mitools.bounds.jsd`.

    Example:
        >>> import torch
        >>> JSD().nats
        False
    """

    name = "jsd"
    nats = False
    _fn = staticmethod(bounds.jsd)


class SMILE(Estimator):
    """Clipped DV value with JS gradients, see :func:`mitools.bounds.smile`.

    Args:
        clip: :math:`\\tau > 0`, or ``None`` for no clipping (DV on a JS-trained critic).

    Example:
        >>> import torch
        >>> SMILE(clip=5.0)(torch.zeros(4, 4))
        tensor(0.)
    """

    name = "smile"

    def __init__(self, clip: float | None = 5.0):
        super().__init__()
        if clip is not None and (
            isinstance(clip, bool) or not isinstance(clip, (int, float)) or not clip > 0
        ):
            raise ValueError(f"SMILE: clip must be a positive number or None, got {clip!r}")
        self.clip = None if clip is None or math.isinf(clip) else float(clip)

    def forward(
        self,
        scores: Tensor,
        *,
        offset: int = 0,
        row_mask: Tensor | None = None,
        col_mask: Tensor | None = None,
        anchors: Tensor | None = None,
    ) -> Tensor:
        return bounds.smile(
            scores, self.clip, offset=offset, row_mask=row_mask, col_mask=col_mask
        )

    def extra_repr(self) -> str:
        return f"clip={self.clip}"
