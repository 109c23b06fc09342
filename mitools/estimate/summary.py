r"""From the folds' fits to :func:`~mitools.estimate.estimate_mi`'s result: the cross-fitted
value, its delete-a-group jackknife interval, the diagnostics and the warnings they call for."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import Tensor, stack

from mitools.estimate.data import MarginTransform
from mitools.estimate.diagnostics import diagnose, warn_about_estimate
from mitools.estimate.result import FoldResult, MIEstimate
from mitools.estimate.stats import confidence_bounds, jackknife_stderr, t_quantile

__all__ = ["summarise_folds"]

#: what the result says of its interval where x and y are related exactly
_EXACT = ("none: x and y are related exactly, so the MI is infinite, and the value is a lower "
          "figure set by the critics and n, which no interval describes")


def summarise_folds(results: Sequence[FoldResult], leave_out: Sequence[Tensor], groups: int, *,
                    sided: str, level: float, max_steps: int, init: str, exact: bool,
                    knn: tuple[float, float], repeated: bool, margins: str, critic: Any,
                    discrete: bool, transforms: tuple[MarginTransform, MarginTransform],
                    **result: Any) -> MIEstimate:
    """The :class:`~mitools.estimate.MIEstimate` of fitted folds; warns as
    :func:`~mitools.estimate.diagnostics.warn_about_estimate` does, at the caller of
    :func:`~mitools.estimate.estimate_mi`.

    Args:
        results: one :class:`~mitools.estimate.FoldResult` per fold.
        leave_out: per fold, ``(groups,)`` its test value with each jackknife group left out.
        groups: the number of jackknife groups (``groups - 1`` degrees of freedom).
        sided, level: the interval's kind and confidence, as ``estimate_mi`` takes them.
        max_steps, init, exact, knn, repeated: as
            :func:`~mitools.estimate.diagnostics.diagnose` takes them.
        margins, critic, discrete: ``estimate_mi``'s options, for the tips of the warning
            about a negative estimate.
        transforms: the fitted margin transforms of x and y (the result's ``margins``).
        **result: the result's other fields (``report``, ``bound``, ``settings``), passed on
            unchanged.
    """
    folds = len(results)
    value = sum(r.value for r in results) / folds
    # delete-a-group jackknife over samples, critics held fixed: the estimate without group g
    stderr = jackknife_stderr(stack(list(leave_out)).mean(0))
    low, high, kind = confidence_bounds(value, stderr, sided, level, groups - 1)
    held_out = sum(r.held_out for r in results) / folds
    in_sample = sum(r.in_sample for r in results) / folds
    diagnostics = diagnose(results, value, stderr, max_steps, init, exact=exact, knn=knn,
                           repeated=repeated)
    # stacklevel 4: warn_about_estimate, this function, estimate_mi, then its caller
    warn_about_estimate(value, t_quantile(0.975, groups - 1) * stderr, diagnostics.flags,
                        margins, critic, discrete, [r.value for r in results], stacklevel=4)
    if exact:
        # the MI is infinite and the value a lower figure set by the critics' regularisation
        # and n: an interval around it says nothing (y = 2x + 1, n = 500, read 9.20 ±
        # 26.05, lower bound -35.8 nats), as the classical estimators give none
        stderr, low, high, kind = math.nan, math.nan, math.nan, _EXACT
    else:
        kind = (f"delete-a-group jackknife over the samples ({groups} groups, fold critics "
                f"held fixed); {kind}")
    return MIEstimate(value=value, stderr=stderr, interval=(low, high), level=level,
                      method="neural", uncertainty=kind, held_out=held_out,
                      in_sample=in_sample, optimism=(in_sample - held_out) / 2,
                      folds=tuple(results), sided=sided, diagnostics=diagnostics,
                      margins=transforms, **result)
