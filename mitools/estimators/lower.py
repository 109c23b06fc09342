"""The stateless lower bounds as modules: InfoNCE, NWJ, DV, JS, JSD and SMILE.

Each declares its row-wise form from :mod:`mitools.bounds` (``rowwise``) and nothing else: the
base class accumulates the statistics and calls the bound's finisher.
"""

from __future__ import annotations

import math

from mitools import bounds
from mitools.bounds.jensen_shannon import _check_clip
from mitools.estimators.base import Estimator

__all__ = ["DV", "JS", "JSD", "NWJ", "SMILE", "InfoNCE"]


class InfoNCE(Estimator):
    """InfoNCE / CPC bound, see :func:`mitools.bounds.infonce`.

    Example:
        >>> import torch
        >>> InfoNCE()(torch.zeros(2, 5, 5)).shape
        torch.Size([2])
    """

    name = "infonce"
    rowwise = bounds.rowwise_bound(bounds.infonce)


class NWJ(Estimator):
    """NWJ / f-MINE bound, see :func:`mitools.bounds.nwj`.

    Example:
        >>> import torch
        >>> NWJ()(torch.ones(4, 4))
        tensor(0.)
    """

    name = "nwj"
    rowwise = bounds.rowwise_bound(bounds.nwj)

    @property
    def optimal_offset(self) -> float:
        """NWJ is tight at the pointwise MI plus one (Nguyen et al. 2010), so the offset is 1."""
        return 1.0


class DV(Estimator):
    """Donsker-Varadhan bound with its plain (biased) gradient, see :func:`mitools.bounds.dv`.

    Example:
        >>> import torch
        >>> DV()(torch.zeros(4, 4))
        tensor(0.)
    """

    name = "dv"
    rowwise = bounds.rowwise_bound(bounds.dv)


class JS(Estimator):
    """NWJ-valued estimate with Jensen-Shannon gradients, see :func:`mitools.bounds.js`.

    Example:
        >>> import torch
        >>> JS()(torch.zeros(4, 4))
        tensor(0.)
    """

    name = "js"
    rowwise = bounds.rowwise_bound(bounds.js)


class JSD(Estimator):
    """Jensen-Shannon objective of Deep InfoMax (not nats), see :func:`mitools.bounds.jsd`.

    Example:
        >>> import torch
        >>> JSD().nats
        False
    """

    name = "jsd"
    nats = False
    rowwise = bounds.rowwise_bound(bounds.jsd)


class SMILE(Estimator):
    """Clipped DV value with JS gradients, see :func:`mitools.bounds.smile`.

    Args:
        clip: :math:`\\tau > 0`, or ``None`` (or ``inf``) for no clipping (DV on a JS-trained
            critic).

    Raises:
        ValueError: a ``clip`` that is not a number > 0, ``inf`` or ``None``; when called, as
            :func:`mitools.bounds.smile`.

    Example:
        >>> import torch
        >>> SMILE(clip=5.0)(torch.zeros(4, 4))
        tensor(0.)
    """

    name = "smile"

    def __init__(self, clip: float | None = 5.0):
        super().__init__()
        clip = _check_clip(clip, "SMILE")
        self.clip = None if clip is None or math.isinf(clip) else clip
        self.rowwise = bounds.smile_rowwise(self.clip)

    def extra_repr(self) -> str:
        return f"clip={self.clip}"
