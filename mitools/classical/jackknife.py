"""The interval of every classical estimator: a delete-a-group jackknife.

The samples are split at random into ``G`` groups; the estimator is recomputed ``G`` times,
each time without one group, and the spread of those values gives the standard error
(``mitools.estimate.stats.jackknife_stderr``, the formula that
:func:`~mitools.estimate.estimate_mi` uses too).

Why not the bootstrap: a bootstrap resample repeats samples, and a repeated sample is at
distance 0 from its copy. A k-nearest-neighbour estimator then finds neighbours at distance 0,
its radii shrink and the marginal counts no longer match, so the resampled values are biased
upwards (far above the estimate, even for independent variables) and their spread says little
about the estimator's. Every jackknife subsample is a genuine sample without repeats, drawn
from the same distribution, on which the estimator behaves as on the full data. The
delete-``d`` jackknife with ``d`` a fixed fraction of ``n`` estimates the variance of
asymptotically linear statistics consistently, without smoothness (Shao & Wu, *A general
theory for jackknife variance estimation*, Ann. Statist. 1989); KSG-type estimators are
averages of local terms, asymptotically normal at rate :math:`\\sqrt n` in low dimension
(Berrett, Samworth & Yuan, Ann. Statist. 2019). The interval describes the sampling noise of
the estimator; it does not contain its bias (large for KSG in high dimension or at high MI,
see :mod:`mitools.classical`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import torch

from mitools.estimate.progress import tqdm_class
from mitools.estimate.result import MIEstimate, constant_uncertainty
from mitools.estimate.stats import jackknife_stderr, t_quantile
from mitools.inputs import warn_if_constant
from mitools.option_checks import MAX_SEED, check_int, check_number

__all__ = [
    "assign_groups",
    "check_options",
    "check_samples",
    "constant_estimate",
    "fit_and_recompute",
    "jackknife_estimate",
    "minimum_samples",
    "progress_bar",
    "recompute",
    "summarize",
]

Statistic = Callable[[np.ndarray, np.ndarray], float]
Fit = TypeVar("Fit")

#: fewest samples in each jackknife group. With one sample per group (the leave-one-out
#: jackknife) on a handful of samples, the left-out values of a k-NN estimator are few and
#: often identical (5 samples gave a zero-width interval), and the leave-one-out jackknife is
#: inconsistent for non-smooth statistics such as neighbour counts (Shao & Wu 1989: the
#: number left out must grow with n), so an interval needs groups of at least 2 samples
MIN_GROUP_SIZE = 2
#: why :data:`MIN_GROUP_SIZE`, in the words of the error message
_GROUP_SIZE_WHY = (
    "and the interval needs groups of at least 2 samples, for every classical estimator: "
    "leaving out one sample at a time, the jackknife cannot measure the noise of a non-smooth "
    "estimate such as KSG's neighbour counts, and on a few samples its left-out values can "
    "all be equal, a zero-width interval"
)


def minimum_samples(needed: int, groups: int) -> int:
    """Fewest samples such that the jackknife's ``groups`` groups hold at least
    :data:`MIN_GROUP_SIZE` samples each and every subsample still holds ``needed``.

    Example:
        >>> minimum_samples(4, 10)  # 10 groups of 2
        20
        >>> minimum_samples(20, 10)  # 23 samples in 10 groups: subsamples hold 20
        23
        >>> minimum_samples(4, 0)  # no interval: the estimator's own minimum
        4
    """
    if groups == 0:
        return needed
    return max(MIN_GROUP_SIZE * groups, math.ceil(needed * groups / (groups - 1)))


def check_options(groups: int, level: float, seed: int) -> tuple[int, float, int]:
    """Validate ``groups`` (0, or an int of at least 2), ``level`` (in (0, 1)) and ``seed``
    (an int in [0, 2**32 - 1]); numpy integers and 0-d tensors count as ints, booleans do not
    (:mod:`mitools.option_checks`). Returns them as plain Python numbers, which the callers
    use from here on (``seed=torch.tensor(3)`` passed the check and failed in numpy's
    ``default_rng`` with "len() of a 0-d tensor")."""
    try:
        groups = check_int("groups", groups, 0)
        if groups == 1:
            raise ValueError
    except ValueError:
        raise ValueError(f"groups must be 0 (no interval) or an int >= 2, got {groups!r}"
                         ) from None
    return groups, check_number("level", level, 0, high=1), check_int("seed", seed, 0, MAX_SEED)


def check_samples(n: int, needed: int, why: str, groups: int, method: str) -> None:
    """Raise a ``ValueError`` saying how many samples ``method`` needs, and why."""
    required = minimum_samples(needed, groups)
    if n < required:
        extra, advice = "", ""
        if groups:
            extra = f", also without each of the jackknife's {groups} groups, {_GROUP_SIZE_WHY}"
            fewer = [g for g in range(groups - 1, 1, -1) if minimum_samples(needed, g) <= n]
            advice = (f". Use groups={fewer[0]} (a rougher interval) or groups=0 (the value "
                      "alone), or collect more samples" if fewer else
                      ". Use groups=0 for the value alone (no interval), or collect more "
                      "samples" if n >= needed else ". Collect more samples")
        raise ValueError(f"{method} needs at least {required} samples ({why}{extra}); "
                         f"got {n}{advice}")


def assign_groups(n: int, groups: int, seed: int) -> tuple[np.ndarray, int]:
    """Random groups of (nearly) equal size: ``(group_of (n,), number of groups)``, with
    ``min(groups, n)`` groups (0: none)."""
    g = min(groups, n)
    group_of = np.zeros(n, dtype=np.intp)
    if g:
        group_of[np.random.default_rng([seed, 0]).permutation(n)] = np.arange(n) % g
    return group_of, g


def progress_bar(total: int, desc: str, show: bool | None, stacklevel: int = 4) -> Any:
    """A ``tqdm`` bar on stderr, or ``None``: as :func:`~mitools.estimate.progress.tqdm_class`
    decides for ``show`` (``None``: automatic), no bar where ``total`` is 0, and a warning
    when a bar asked for needs tqdm (``stacklevel`` points it at the estimator's caller)."""
    if not total:
        return None
    tqdm = tqdm_class(show, stacklevel=stacklevel)
    return None if tqdm is None else tqdm(total=total, desc=desc, leave=False)


def recompute(
    statistic: Statistic, x: np.ndarray, y: np.ndarray, group_of: np.ndarray, groups: int,
    bar: Any = None,
) -> list[float]:
    """The statistic recomputed without each group in turn."""
    leave_out = []
    for g in range(groups):
        keep = group_of != g
        leave_out.append(float(statistic(x[keep], y[keep])))
        if bar is not None:
            bar.update(1)
    return leave_out


def fit_and_recompute(
    fit: Callable[[], Fit], statistic: Statistic, x: np.ndarray, y: np.ndarray,
    group_of: np.ndarray, groups: int, method: str, progress: bool | None,
) -> tuple[Fit, list[float]]:
    """``fit()`` on all samples, then ``statistic`` without each group in turn
    (:func:`recompute`), under one progress bar over both (it had sat at 0 during the first
    fit, often the longest); no bar without groups. The bar's warning, where one asked for
    needs tqdm, points at the estimator's caller (two frames above this function)."""
    bar = progress_bar(groups + 1 if groups else 0, f"{method}: fit and jackknife", progress,
                       stacklevel=5)
    try:
        full = fit()
        if bar is not None:
            bar.update(1)
        return full, recompute(statistic, x, y, group_of, groups, bar)
    finally:
        if bar is not None:
            bar.close()


def constant_estimate(x: np.ndarray, y: np.ndarray, method: str, level: float,
                      caller: str | None = None, stacklevel: int = 4) -> MIEstimate | None:
    """The one rule of every classical estimator for a constant variable: where every column
    of ``x`` (or of ``y``) holds one value (:func:`mitools.inputs.warn_if_constant` warns), the
    MI is 0 whatever the other variable, so the estimate is exactly ``0.0``, with no interval
    (``stderr`` and ``interval`` NaN: there is no sampling noise to measure); ``None``
    otherwise. ``caller`` names the function in the warning (default: ``method``); ``x`` and
    ``y`` are the float columns of :func:`~mitools.classical.inputs.paired_columns`. Without it
    each estimator read noise of its own: ``ksg(..., estimator=2)``
    gave -3.6e-5 ± 0.024 with an interval, ``mixed_ksg`` 0.0005.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     constant_estimate(np.ones((5, 2)), np.arange(5.0)[:, None], "ksg1", 0.95).value
        0.0
    """
    constant = []
    for a, name in ((x, "x"), (y, "y")):  # (not a comprehension: its frame counts until 3.12)
        if warn_if_constant(a, name, caller or method, stacklevel=stacklevel + 1):
            constant.append(name)
    if not constant:
        return None
    return MIEstimate(value=0.0, stderr=math.nan, interval=(math.nan, math.nan), level=level,
                      method=method, uncertainty=constant_uncertainty(constant))


def summarize(
    value: float, leave_out: Sequence[float], level: float, method: str, how: str
) -> MIEstimate:
    """The estimate with its jackknife standard error and Student-t interval.

    Args:
        value: the statistic on all samples, in nats.
        leave_out: ``(G,)`` the statistic without each group (empty: no interval).
        level: confidence level.
        method: name stored in the result.
        how: how the leave-out values were obtained, for ``uncertainty``.
    """
    def without_interval(uncertainty: str) -> MIEstimate:
        return MIEstimate(value=value, stderr=math.nan, interval=(math.nan, math.nan),
                          level=level, method=method, uncertainty=uncertainty)

    g = len(leave_out)
    if not all(math.isfinite(v) for v in (value, *leave_out)):
        warnings.warn(
            f"{method}: the estimate ({value} nats) or a value of it without one of the "
            "jackknife's groups is not finite: a combination of y is an exact function of x "
            "(for continuous variables, infinite MI); stderr and the interval are NaN",
            RuntimeWarning, stacklevel=4)
        return without_interval("none: the estimate (or a left-out value) is not finite")
    if g == 0:
        return without_interval("none (groups=0)")
    stderr = jackknife_stderr(torch.tensor(list(leave_out), dtype=torch.float64))
    if stderr == 0.0:  # every left-out value equal: no spread to measure, not no noise
        warnings.warn(
            f"{method}: the jackknife's {g} leave-group-out values are all equal "
            f"({leave_out[0]:.4f} nats), so they say nothing about the noise of the estimate "
            f"{value:.4f}; stderr and the interval are NaN rather than a zero-width interval. "
            "This happens on a few samples, on heavily tied data, for a constant variable, or "
            "when y is an exact function of x (for continuous variables, infinite MI)",
            RuntimeWarning, stacklevel=4)
        return without_interval(f"none: the jackknife's {g} leave-group-out values were all "
                                "equal")
    half = t_quantile(0.5 + level / 2, g - 1) * stderr
    return MIEstimate(
        value=value,
        stderr=stderr,
        interval=(value - half, value + half),
        level=level,
        method=method,
        uncertainty=(
            f"delete-a-group jackknife over the samples ({g} groups, {how}); Student's t "
            f"interval with {g - 1} degrees of freedom; sampling noise only, not the "
            "estimator's bias"
        ),
    )


def jackknife_estimate(
    statistic: Statistic,
    x: np.ndarray,
    y: np.ndarray,
    *,
    method: str,
    needed: int,
    why: str,
    groups: int,
    level: float,
    seed: int,
    progress: bool | None = False,
) -> MIEstimate:
    """Evaluate ``statistic(x, y)`` and its delete-a-group jackknife interval by recomputation.

    Args:
        statistic: the estimator on ``(m, dx)``, ``(m, dy)`` float64 arrays, in nats.
        x: ``(n, dx)`` prepared samples.
        y: ``(n, dy)``.
        method: name stored in the result.
        needed: fewest samples ``statistic`` accepts.
        why: why it needs them, for the error message.
        groups: jackknife groups, of at least :data:`MIN_GROUP_SIZE` samples each; 0: no
            interval.
        level: confidence level of the interval.
        seed: seeds the assignment of samples to groups.
        progress: show a ``tqdm`` bar over the groups on stderr (``None``: when stderr is a
            terminal; ``True`` without tqdm: a warning).

    Returns:
        :class:`~mitools.estimate.MIEstimate`; with ``groups=0``, or when the left-out values
        are all equal (a warning says so), ``stderr`` and the interval are NaN.

    Raises:
        ValueError: fewer samples than needed, saying how many and why.
    """
    check_samples(x.shape[0], needed, why, groups, method)
    group_of, g = assign_groups(x.shape[0], groups, seed)
    value, leave_out = fit_and_recompute(lambda: float(statistic(x, y)), statistic, x, y,
                                         group_of, g, method, progress)
    return summarize(value, leave_out, level, method, "the estimator recomputed without each")
