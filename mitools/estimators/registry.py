"""Estimators by name: :func:`get_estimator` and :func:`available_estimators`."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from torch import Tensor

from mitools.estimators.base import Estimator, FunctionalEstimator
from mitools.estimators.baselines import TUBA, AlphaInfoNCE
from mitools.estimators.generative import BA, CLUB, FLO, VCLUB, DoE, L1Out
from mitools.estimators.lower import DV, JS, JSD, NWJ, SMILE, InfoNCE
from mitools.estimators.mine import MINE

__all__ = ["available_estimators", "get_estimator"]


_REGISTRY: dict[str, Callable[..., Estimator]] = {
    "infonce": InfoNCE,
    "nwj": NWJ,
    "dv": DV,
    "mine": MINE,
    "tuba": TUBA,
    "js": JS,
    "jsd": JSD,
    "smile": SMILE,
    "alpha_infonce": AlphaInfoNCE,
    "ba": BA,
    "doe": DoE,
    "club": CLUB,
    "vclub": VCLUB,
    "l1out": L1Out,
    "flo": FLO,
}


def available_estimators() -> list[str]:
    """Names accepted by :func:`get_estimator`.

    Example:
        >>> "infonce" in available_estimators()
        True
    """
    return list(_REGISTRY)


def get_estimator(bound: str | Estimator | Callable[..., Tensor], **kwargs: Any) -> Estimator:
    """Resolve a bound given by name, as an :class:`Estimator`, or as a function.

    Args:
        bound: a name from :func:`available_estimators` (case-insensitive, ``-`` and ``_``
            alike), an :class:`Estimator` (returned as is), or a function with the signature of
            :func:`mitools.bounds.infonce` (wrapped in :class:`FunctionalEstimator`).
        **kwargs: constructor arguments for a named estimator, e.g. ``clip=1.0`` for SMILE.

    Returns:
        An :class:`Estimator`.

    Raises:
        ValueError: unknown name (the message lists the known ones), or keyword arguments
            given with an object.

    Example:
        >>> get_estimator("alpha-infonce", alpha=0.5)
        AlphaInfoNCE(
          alpha=0.5
          (log_baseline): LogBaseline()
        )
    """
    if isinstance(bound, Estimator):
        if kwargs:
            raise ValueError(
                f"keyword arguments {sorted(kwargs)} only apply to a bound given by name; "
                f"got the object {bound!r}"
            )
        return bound
    if isinstance(bound, str):
        key = bound.strip().lower().replace("-", "_")
        if key not in _REGISTRY:
            close = difflib.get_close_matches(key, list(_REGISTRY), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"unknown bound {bound!r}; choose one of {sorted(_REGISTRY)}.{hint}"
            )
        return _REGISTRY[key](**kwargs)
    if callable(bound):
        if kwargs:
            raise ValueError(f"keyword arguments {sorted(kwargs)} do not apply to a function")
        return FunctionalEstimator(bound)
    raise TypeError(
        f"bound must be a name, an Estimator or a function, got {type(bound).__name__}"
    )
