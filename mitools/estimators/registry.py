"""Estimators by name: :func:`get_estimator` and :func:`available_estimators`."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from torch import Tensor

from mitools import bounds
from mitools.estimators.base import (
    Estimator,
    FunctionalEstimator,
    check_declarations,
    extra_required_arguments,
)
from mitools.estimators.baselines import TUBA, AlphaInfoNCE
from mitools.estimators.generative import BA, FLO, DoE
from mitools.estimators.lower import DV, JS, JSD, NWJ, SMILE, InfoNCE
from mitools.estimators.mine import MINE
from mitools.estimators.upper import CLUB, VCLUB, L1Out

__all__ = ["available_estimators", "estimator_for_function", "get_estimator"]


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


#: the public bound functions of :mod:`mitools.bounds` that an estimator above implements; a
#: function given as ``bound`` resolves to that estimator, which declares its direction (an
#: upper bound is minimised, not maximised), its need for log densities and its model's
#: objective. Functions with arguments of their own (a baseline, H(Y), a marginal) are named
#: with the estimator that supplies them.
_FUNCTIONS: dict[Callable[..., Tensor], str] = {
    bounds.infonce: "infonce",
    bounds.nwj: "nwj",
    bounds.dv: "dv",
    bounds.tuba: "tuba",
    bounds.js: "js",
    bounds.jsd: "jsd",
    bounds.smile: "smile",
    bounds.alpha_infonce: "alpha_infonce",
    bounds.ba: "ba",
    bounds.doe: "doe",
    bounds.club: "club",
    bounds.vclub: "vclub",
    bounds.l1out: "l1out",
    bounds.flo: "flo",
}


def estimator_for_function(fn: Callable[..., Tensor]) -> Estimator | None:
    """The estimator that implements the public bound function ``fn``; ``None`` for others.

    Raises:
        TypeError: ``fn`` needs arguments of its own that only its estimator supplies
            (``bounds.tuba``'s ``log_baseline``, ``bounds.ba``'s ``entropy_y``, ...), or is
            :func:`mitools.bounds.log_likelihood`, the model's objective and not an MI bound.

    Example:
        >>> from mitools import bounds
        >>> estimator_for_function(bounds.club).direction
        'upper'
    """
    if fn is bounds.log_likelihood:
        raise TypeError(
            "bounds.log_likelihood is the objective that fits the model q of a generative "
            "bound, not an MI bound: give the bound ('ba', 'club', 'l1out', ...), whose "
            "model_loss fits q by it"
        )
    name = _FUNCTIONS.get(fn)
    if name is None:
        return None
    needs = extra_required_arguments(fn)
    if needs:
        cls = _REGISTRY[name].__name__
        raise TypeError(
            f"bounds.{name} needs {', '.join(needs)}, which a function given as the bound "
            f"cannot receive; give the bound by name ({name!r}) or as "
            f"mitools.estimators.{cls}(...), which supplies it"
        )
    return _REGISTRY[name]()


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
            :func:`mitools.bounds.infonce`. A public bound of :mod:`mitools.bounds` gives its
            estimator (``bounds.club`` the same :class:`CLUB` as ``"club"``, an upper bound
            that is minimised); any other function is wrapped in :class:`FunctionalEstimator`,
            as a lower bound of critic scores.
        **kwargs: constructor arguments for a named estimator, e.g. ``clip=1.0`` for SMILE.

    Returns:
        An :class:`Estimator`.

    Raises:
        ValueError: unknown name (the message lists the known ones), keyword arguments
            given with an object, or an :class:`Estimator` declaring an unknown
            ``direction``.
        TypeError: a ``bound`` that is neither a name, an :class:`Estimator` nor a function;
            a function that needs arguments of its own (``bounds.tuba``: give ``"tuba"``), or
            that does not take ``offset``, ``row_mask`` and ``col_mask``; keyword arguments
            the named estimator does not take; an :class:`Estimator` whose ``rowwise`` is
            not a :class:`~mitools.bounds.RowwiseBound`, or that has neither ``rowwise`` nor
            a ``forward`` of its own (``mitools.estimators.base.check_declarations``).

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
        return check_declarations(bound)
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
        return estimator_for_function(bound) or FunctionalEstimator(bound)
    raise TypeError(
        f"bound must be a name, an Estimator or a function, got {type(bound).__name__}"
    )
