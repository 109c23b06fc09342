r"""k-nearest-neighbour estimators: KSG (both estimators) and the mixed estimator of Gao et al.

For every sample :math:`i`, let :math:`\varepsilon_i` be the max-norm distance from
:math:`(x_i, y_i)` to its :math:`k`-th nearest other sample in the joint space, where the
distance of two pairs is :math:`\max(\|x_i - x_j\|_\infty, \|y_i - y_j\|_\infty)`.

* KSG estimator 1 (Kraskov, Stögbauer & Grassberger, Phys. Rev. E 69, 066138, 2004, eq. 8):
  :math:`\psi(k) + \psi(N) - \langle \psi(n_x + 1) + \psi(n_y + 1) \rangle`, where
  :math:`n_x(i)` counts the other samples with :math:`\|x_j - x_i\| < \varepsilon_i`
  (strictly), and :math:`n_y(i)` likewise.
* KSG estimator 2 (eq. 9): :math:`\psi(k) - 1/k + \psi(N) - \langle \psi(n_x) + \psi(n_y)
  \rangle`, where :math:`n_x(i)` counts the other samples with
  :math:`\|x_j - x_i\| \le \varepsilon_x(i)`, :math:`\varepsilon_x(i)` being the largest
  x-distance from :math:`i` to its :math:`k` nearest neighbours (in the joint space).
* Mixed (Gao, Kannan, Oh & Viswanath, NeurIPS 2017, Algorithm 1, as in the authors'
  released code): where :math:`\varepsilon_i > 0`, :math:`\tilde k_i = k` and
  :math:`n_x(i)` counts the other samples strictly inside :math:`\varepsilon_i`, as in
  estimator 1; where :math:`\varepsilon_i = 0` (at least :math:`k` exact copies of sample
  :math:`i`), :math:`\tilde k_i` is the number of samples equal to sample :math:`i` (itself
  included) and :math:`n_x(i)` counts the other samples whose x equals :math:`x_i`. The
  estimate is :math:`\langle \psi(\tilde k_i) + \log N - \psi(n_x + 1) - \psi(n_y + 1)
  \rangle`. On continuous data it is estimator 1 (up to :math:`\log N - \psi(N) \approx
  1/2N`); ties are data, not noise: against a discrete label the x-count is the size of the
  label's class, and on purely discrete data the estimate tends to the plug-in estimate.
  (Algorithm 1 in the paper writes :math:`\log(n + 1)` and non-strict counts; on a label
  against a feature that separates the classes, that reading is biased by
  :math:`\psi(k) - \log(k + 1)`, -0.46 nats at k = 3, while the authors' code is not.)

Every column is first centred and divided by its standard deviation, so the estimates do not
depend on units; equal values stay equal.

Each estimator has a ceiling, its formula with every count at its minimum
(:func:`ceiling`): :math:`\psi(N) - \psi(k)` for estimator 1, :math:`\psi(N) - \psi(k) -
1/k` for estimator 2, :math:`\log N - \psi(k)` for the mixed one. Where y is (close to) a
function of x, the estimate sits at or near it whatever the true MI (infinite for an exact
function of a continuous x): a warning then says that the estimate is a lower figure
(:data:`CEILING_FRACTION`, :data:`SATURATED_SHARE`).

Those rules read the estimate, and on a few dozen or hundred samples an exact function can
stay below them (``ksg(x, x**3, k=10)`` gave 0.61 nats on 50 samples, silently). So the data
are read too: where y (or part of it) is, to rounding, an increasing or decreasing function of
x in the sense ranks can tell (after each column is mapped to the normal scores of its ranks,
the largest canonical correlation of x and y is 1 to rounding:
:func:`~mitools.classical.gaussian.monotone_relation`, the rule of
:func:`~mitools.estimate.estimate_mi`'s exact-relation warning), the MI of continuous variables
is infinite, and a warning says that the estimate is a lower figure set by n and k, at any n
and k, in place of the ceiling's. It finds ``y = x**3``, ``exp(x)``, ``-x``, a repeated or
rescaled column, ``y = (x1**3, x2)``; a relation whose noise never reorders the samples (x +
1e-7 noise at n = 5,000) reads the same, as those samples cannot tell it from an exact one.
Like the ceiling rules it is checked on continuous data only (no column with ties, no variable
declared discrete): against a label, or between two equal labels, a function of x has a finite
MI, an entropy, which the mixed estimator resolves (and KSG's ties have their own warning).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import digamma

from mitools.classical.gaussian import monotone_relation
from mitools.classical.inputs import (
    TIED_WARNING,
    any_tied,
    paired_columns,
    standardize_columns,
    tied_fraction,
)
from mitools.classical.jackknife import (
    assign_groups,
    check_options,
    check_samples,
    constant_estimate,
    fit_and_recompute,
    progress_bar,
    summarize,
)
from mitools.classical.neighbours import count_within, kth_neighbours, resolve_threads
from mitools.classical.pairwise import Counts, Rule, subset_counts
from mitools.estimate.progress import check_progress
from mitools.estimate.result import MIEstimate
from mitools.inputs import warn_if_unaligned, warn_repeated_rows
from mitools.option_checks import check_flag, check_int, check_number

__all__ = ["CEILING_FRACTION", "CEILING_MIN_SAMPLES", "KDTREE_MAX_DIM",
           "SATURATED_MIN_FRACTION", "SATURATED_SHARE", "TIED_WARNING", "ceiling", "ksg",
           "mixed_ksg"]

#: :func:`~mitools.classical.ksg` and :func:`~mitools.classical.mixed_ksg` warn that the estimate is
#: a lower figure when it reaches this fraction of :func:`ceiling`. Measured at k = 3, n = 1,000 to
#: 5,000 (3 seeds, both KSG estimators): the Gaussians of correlation 0.9 and 0.99 reach at most
#: 0.16 and 0.36 of the ceiling, 0.999 at most 0.56, and 0.9999 (4.26 nats) at most 0.67 from n =
#: 2,000, where KSG is within 1 % of the truth (0.74 at n = 1,000, 2-4 % low). Exact functions: y =
#: x + 1e-9 noise 0.94 to 1.00, exp(x) 0.79 to 1.00, and estimator 2 at least 0.996 on every one;
#: estimator 1 gives ``y = x**3`` only 0.68 to 0.76 (less at smaller n or larger k: its square
#: neighbourhoods on a curve count about slope times k samples in one variable), which
#: :data:`SATURATED_SHARE` catches.
CEILING_FRACTION = 0.75
#: The warning also fires when more than this share of the samples are saturated (one of their two
#: marginal counts holds at most the k joint neighbours, nothing else lying within the radius in x,
#: or in y alone), so the points lie on a curve at the scale of the k-th neighbour. Measured at n =
#: 200 to 5,000 and k = 1 to 10: 0.98 to 1.00 for ``y = x**3``, exp(x) and x + 1e-9 noise; from n =
#: 1,000, at most 0.07 for the Gaussian of correlation 0.99 and 0.29 for 0.999 (0.42 and 0.60 at n =
#: 200, k = 1). The rules together, measured on 4 other seeds at n = 12 to 5,000 and k = 1 to 10
#: (both KSG estimators and the mixed one): no warning for correlation 0.5 at any n, nor, on 30
#: seeds, for independent data from n = 20 (:data:`CEILING_MIN_SAMPLES`); none for correlation 0.9
#: from n = 50, 0.99 from n = 200, 2 + 2 and 4 + 4 dimensional Gaussians of 1 and 2 nats from
#: n = 50; a warning for ``y = x**3``, exp(x) and x + 1e-9 noise from n = 200 at every k (from
#: n = 20 at k = 3).
SATURATED_SHARE = 0.5
#: The rule of :data:`SATURATED_SHARE` needs the estimate to reach this fraction of :func:`ceiling`
#: too. On a few dozen samples, independent data leave most samples saturated too (up to 0.83 at n =
#: 12, 0.70 at n = 20), at estimates of at most 0.45 of the ceiling (0.30 from n = 20, 0.10 from n =
#: 50); ``y = x**3`` under estimator 1 gives at least 0.45 from n = 200 (k = 1 to 10)
SATURATED_MIN_FRACTION = 0.4
#: Neither rule is applied below this many samples, as on a dozen or two independent data can
#: reach either (30 seeds; ``ksg`` estimator 2 at n = 12 with k = 1 or 10, and at n = 15 with
#: two dimensions a side and k = 1).
CEILING_MIN_SAMPLES = 20
#: ``algorithm="auto"`` uses the k-d tree up to this many joint dimensions (``dx + dy``),
#: blocks of pairwise distances above (measured at n = 5,000: the tree's counting slows down
#: quickly with the dimension; the blocks serve all jackknife subsamples in one pass)
KDTREE_MAX_DIM = 8


# --- the three estimators: per-sample counts (k-d tree, or a rule on distance blocks) and
# --- the one formula that turns counts into nats


def ceiling(method: str, n: int, k: int) -> float:
    r"""The largest value ``method`` (``"ksg1"``, ``"ksg2"`` or ``"mixed_ksg"``, as in
    :attr:`MIEstimate.method <mitools.estimate.MIEstimate.method>`) can give on ``n`` samples
    with ``k`` neighbours, in nats: its formula with every count at its minimum.

    * Estimator 1 counts strictly inside the k-th neighbour's distance, which holds the
      ``k - 1`` nearer neighbours: :math:`n_x, n_y \ge k - 1`, and
      :math:`\psi(k) + \psi(n) - 2\psi(k) = \psi(n) - \psi(k)`.
    * Estimator 2 counts within the x- and y-extent of the ``k`` neighbours, which holds all
      of them: :math:`n_x, n_y \ge k`, and :math:`\psi(n) - \psi(k) - 1/k`.
    * The mixed estimator is estimator 1 with :math:`\log n` for :math:`\psi(n)`:
      :math:`\log n - \psi(k)` (where exact copies set the counts, :math:`\tilde k \ge k + 1`
      copies give at most :math:`\log n - \psi(k + 1)`).

    Estimator 1 and the mixed one reach it only where the k-th neighbour is as far in x as in
    y (``y = x`` without noise); with the tie-breaking noise, one of the two counts is at
    least ``k``, and the most they give is :math:`1/k` lower, as estimator 2's. The bound
    assumes the ``k - 1`` nearest neighbours of a sample are nearer than its k-th (no ties in
    distance): tied data with ``noise=0`` can exceed it, and draw the ties warning. It grows
    like :math:`\log n`: whatever the dependence, a k-NN estimate says only that the MI is of
    the order of what ``n`` samples resolve (Gao, Ver Steeg & Galstyan, AISTATS 2015: these
    estimators need a number of samples exponential in the MI).

    Example:
        >>> round(ceiling("ksg1", 5000, 3), 3), round(ceiling("ksg2", 5000, 3), 3)
        (7.594, 7.261)
    """
    if method == "ksg1":
        return float(digamma(n) - digamma(k))
    if method == "ksg2":
        return float(digamma(n) - digamma(k) - 1.0 / k)
    if method == "mixed_ksg":
        return float(math.log(n) - digamma(k))
    raise ValueError(f"method must be 'ksg1', 'ksg2' or 'mixed_ksg', got {method!r}")


def _saturated_share(counts: Counts, k: int) -> float:
    """The share of samples one of whose marginal counts holds at most the k joint neighbours
    (see :data:`SATURATED_SHARE`)."""
    _, n_x, n_y = counts
    return float(np.mean(np.minimum(n_x, n_y) <= k)) if n_x.size else 0.0


_FORMULAS = {"ksg1": "psi(n) - psi(k)", "ksg2": "psi(n) - psi(k) - 1/k",
             "mixed_ksg": "log(n) - psi(k)"}


def _warn_if_exact(method: str, value: float, rho: float, n: int, k: int) -> None:
    """Warn that y is, to rounding, a monotone function of x (``rho``, the largest canonical
    correlation of the normal scores of the ranks, is 1 to rounding:
    :func:`~mitools.classical.gaussian.monotone_relation`): the MI of continuous variables is
    then infinite, and the estimate is a figure set by n and k. Said in place of
    :func:`_warn_if_saturated`'s warning, whose ceiling it names too."""
    top = ceiling(method, n, k)
    warnings.warn(
        f"{method}: the estimate, {value:.2f} nats, is a lower figure set by the sample size "
        "and k, not an estimate: y (or part of it) is, to rounding, an increasing or decreasing "
        "function of x (after each column is mapped to the normal scores of its ranks, the "
        "largest canonical correlation of x and y is 1 to rounding: "
        f"{rho:.15f}), and the mutual information of "
        f"continuous variables so related is infinite. With n = {n} and k = {k}, {method} "
        f"cannot give more than {_FORMULAS[method]} = {top:.2f} nats, whatever the data; more "
        "samples raise that figure (by log 2 = 0.69 nats per doubling) without end. Report the "
        "MI as infinite, or, if x or y is in truth discrete, estimate it as such "
        f"({'' if method == 'mixed_ksg' else 'mitools.classical.mixed_ksg '}with "
        "discrete_x=True or discrete_y=True)",
        RuntimeWarning, stacklevel=4)


def _warn_if_saturated(method: str, value: float, counts: Counts, k: int,
                       ties: bool = False) -> None:
    """Warn when the estimate sits near :func:`ceiling` or most samples are saturated: it is
    then a lower figure set by ``n`` and ``k``, not an estimate. Both rules apply to data
    without ties (no column repeats values in more than
    :data:`~mitools.classical.inputs.TIED_WARNING` of the samples). With ``ties`` (the mixed
    estimator on repeated values it reads as data; KSG's ties have a warning of their own)
    only the first: the saturated share reads tied
    samples, at distance 0, as saturated, and the ceiling still bounds the estimate (the
    MI may be far above it: ``mixed_ksg(x, floor(1000 x))`` read 4.9 nats at n = 500, of a
    ceiling of 5.3, for an MI of 8.3, with no word)."""
    n = counts[1].shape[0]
    top = ceiling(method, n, k)
    if top <= 0 or n < CEILING_MIN_SAMPLES:
        return
    share = math.nan if ties else _saturated_share(counts, k)
    near = value >= CEILING_FRACTION * top
    saturated = (not ties and value >= SATURATED_MIN_FRACTION * top
                 and share > SATURATED_SHARE)
    if not (near or saturated):
        return
    formula = _FORMULAS[method]
    why = []
    if near:
        why.append(f"it reaches {value / top:.0%} of the most {method} can give")
    if saturated:
        why.append(f"in {share:.0%} of the samples nothing but their {k} nearest neighbours "
                   "lies within their distance in x or in y alone, so y is (close to) a "
                   f"function of x at the scale {n} samples resolve")
    warnings.warn(
        f"{method}: the estimate, {value:.2f} nats, is a lower figure set by the sample size, "
        f"not an estimate: {'; and '.join(why)}. With n = {n} and k = {k}, {method} cannot give "
        f"more than {formula} = {top:.2f} nats, and the true MI may be much larger (infinite "
        "when y is an exact function of a continuous x). More samples raise that ceiling (by "
        "log 2 = 0.69 nats per doubling), as does a smaller k; otherwise report the MI as at "
        f"least {value:.2f} nats, and check whether one variable is a function of the other",
        RuntimeWarning, stacklevel=4)


def _finish_ksg1(counts: Counts, k: int) -> float:
    _, n_x, n_y = counts
    n = n_x.shape[0]
    return float(digamma(k) + digamma(n) - np.mean(digamma(n_x + 1) + digamma(n_y + 1)))


def _finish_ksg2(counts: Counts, k: int) -> float:
    _, n_x, n_y = counts
    n = n_x.shape[0]
    return float(digamma(k) - 1.0 / k + digamma(n) - np.mean(digamma(n_x) + digamma(n_y)))


def _finish_mixed(counts: Counts, k: int) -> float:
    k_tilde, n_x, n_y = counts
    n = n_x.shape[0]
    return float(np.mean(digamma(k_tilde) + math.log(n) - digamma(n_x + 1) - digamma(n_y + 1)))


def _tree_ksg1(x: np.ndarray, y: np.ndarray, k: int, threads: int) -> Counts:
    eps, _ = kth_neighbours(np.hstack([x, y]), k, threads=threads)
    n_x = count_within(x, eps, strict=True, threads=threads)
    return np.full_like(n_x, k), n_x, count_within(y, eps, strict=True, threads=threads)


def _tree_ksg2(x: np.ndarray, y: np.ndarray, k: int, threads: int) -> Counts:
    _, nearest = kth_neighbours(np.hstack([x, y]), k, threads=threads)
    eps_x = np.abs(x[nearest] - x[:, None, :]).max(axis=(1, 2))
    eps_y = np.abs(y[nearest] - y[:, None, :]).max(axis=(1, 2))
    n_x = count_within(x, eps_x, strict=False, threads=threads)
    return np.full_like(n_x, k), n_x, count_within(y, eps_y, strict=False, threads=threads)


def _inside(rho: np.ndarray) -> np.ndarray:
    """Mixed estimator's count radius: strictly inside rho > 0; the exact copies at rho = 0."""
    return np.where(rho > 0, np.nextafter(rho, -np.inf), 0.0)


def _tree_mixed(x: np.ndarray, y: np.ndarray, k: int, threads: int) -> Counts:
    z = np.hstack([x, y])
    rho, _ = kth_neighbours(z, k, threads=threads)
    k_tilde = np.full(rho.shape, k, dtype=np.intp)
    if not rho.all():  # some samples have k or more exact copies
        copies = count_within(z, np.zeros_like(rho), strict=False, threads=threads)
        k_tilde = np.where(rho > 0, k, copies + 1)
    radius = _inside(rho)
    return (k_tilde, count_within(x, radius, strict=False, threads=threads),
            count_within(y, radius, strict=False, threads=threads))


def _kth(dz: np.ndarray, k: int) -> np.ndarray:
    return np.partition(dz, k - 1, axis=1)[:, k - 1]


def _rule_ksg1(dx: np.ndarray, dy: np.ndarray, k: int) -> Counts:
    eps = _kth(np.maximum(dx, dy), k)[:, None]
    n_x = (dx < eps).sum(axis=1)
    return np.full_like(n_x, k), n_x, (dy < eps).sum(axis=1)


def _rule_ksg2(dx: np.ndarray, dy: np.ndarray, k: int) -> Counts:
    nearest = np.argpartition(np.maximum(dx, dy), k - 1, axis=1)[:, :k]
    eps_x = np.take_along_axis(dx, nearest, axis=1).max(axis=1, keepdims=True)
    eps_y = np.take_along_axis(dy, nearest, axis=1).max(axis=1, keepdims=True)
    n_x = (dx <= eps_x).sum(axis=1)
    return np.full_like(n_x, k), n_x, (dy <= eps_y).sum(axis=1)


def _rule_mixed(dx: np.ndarray, dy: np.ndarray, k: int) -> Counts:
    dz = np.maximum(dx, dy)
    rho = _kth(dz, k)
    k_tilde = np.full(rho.shape, k, dtype=np.intp)
    if not rho.all():
        k_tilde = np.where(rho > 0, k, (dz <= 0).sum(axis=1) + 1)
    radius = _inside(rho)[:, None]
    return k_tilde, (dx <= radius).sum(axis=1), (dy <= radius).sum(axis=1)


TreeCounts = Callable[[np.ndarray, np.ndarray, int, int], Counts]
Finish = Callable[[Counts, int], float]
_KINDS: dict[str, tuple[TreeCounts, Rule, Finish]] = {
    "ksg1": (_tree_ksg1, _rule_ksg1, _finish_ksg1),
    "ksg2": (_tree_ksg2, _rule_ksg2, _finish_ksg2),
    "mixed_ksg": (_tree_mixed, _rule_mixed, _finish_mixed),
}


def _use_tree(algorithm: str, dim: int) -> bool:
    if algorithm == "auto":
        return dim <= KDTREE_MAX_DIM
    if algorithm in ("kdtree", "brute"):
        return algorithm == "kdtree"
    raise ValueError(f"algorithm must be 'auto', 'kdtree' or 'brute', got {algorithm!r}")


def _as_categories(a: np.ndarray, gap: float, k: int, name: str,
                   one_hot: bool = False) -> np.ndarray:
    """Codes of the distinct rows of ``a`` (as given): ``(n, 1)`` codes ``gap`` apart, or with
    ``one_hot`` ``(n, classes)`` one-hot rows times ``gap``, every two classes ``gap`` apart
    in the max-norm. With every class holding more than ``k`` samples, no neighbour radius
    of a sample reaches another class of its own variable, so only equality matters (not
    the values that code the classes). With both variables discrete, a cell (a pair of
    classes) of ``k`` samples or fewer reaches into others: there, one-hot codes keep every
    other class equally far, so that the estimate still does not depend on the coding.

    Raises:
        ValueError: a class with ``k`` samples or fewer (its samples' neighbours would lie in
            other classes, at distances set by the coding).
    """
    _, first, codes, counts = np.unique(a, axis=0, return_index=True, return_inverse=True,
                                        return_counts=True)
    if counts.min() <= k:
        small = int(np.argmin(counts))
        raise ValueError(
            f"discrete_{name}=True: the class of {name}'s row {first[small]} holds only "
            f"{counts[small]} of the samples; every class needs at least k + 1 = {k + 1} "
            "(its samples' k neighbours are taken within the class): merge rare classes or "
            "drop them" + (f", or lower k to {counts[small] - 1}" if counts[small] >= 2 else
                           " (a class of 1 sample has no neighbour within it, whatever k)")
            + (f"; {name} has {len(counts)} distinct values among {len(codes)} samples: if it "
               f"is a continuous variable, pass discrete_{name}=False"
               if len(counts) > len(codes) // 2 else ""))
    codes = codes.reshape(-1)
    if one_hot:
        return np.eye(len(counts))[codes] * gap
    return (codes * gap)[:, None]


def _knn_estimate(
    method: str, x: Any, y: Any, k: int, *, noise: float, groups: int, level: float,
    seed: int, threads: int | None, algorithm: str, progress: bool | None,
    discrete: tuple[bool, bool] = (False, False),
) -> MIEstimate:
    """Check the options and inputs, then the value and jackknife interval of one estimator.

    Columns are standardised; with ``noise > 0``, Gaussian noise of that standard deviation
    is added (seeded by ``seed``) and columns with ties are warned about (KSG only). A
    variable marked in ``discrete`` (x, y) is replaced by class codes farther apart than
    any neighbour radius (:func:`_as_categories`)."""
    check_int("k", k, 1)
    progress = check_progress(progress)
    check_options(groups, level, seed)
    _use_tree(algorithm, 0)  # validates the name
    threads = resolve_threads(threads)
    x, y = paired_columns(x, y, discrete)
    check_samples(x.shape[0], k + 2, f"every sample needs k={k} neighbours and a sample "
                  "beyond them", groups, method)
    constant = constant_estimate(x, y, method, level, stacklevel=4)
    if constant is not None:  # exactly 0, whatever k
        return constant
    if not any(discrete):
        warn_repeated_rows(x, y, method, "for a discrete variable use mixed_ksg with "
                           "discrete_x=True or discrete_y=True", stacklevel=4)
    raw = (x, y)
    x, y = standardize_columns(x), standardize_columns(y)
    if any(discrete):
        # wider than the range of every standardised column: within a class of more than k
        # samples, the k-th neighbour is nearer than any sample of another class
        gap = 2.0 * max(float(np.ptp(a, axis=0).max(initial=0.0)) for a in (x, y)) + 1.0
        x, y = (_as_categories(r, gap, k, name, one_hot=all(discrete)) if flag else a
                for a, r, flag, name in zip((x, y), raw, discrete, "xy", strict=True))
    tied = [tied_fraction(a) for a in (x, y)]  # per column, for x and y
    ties = any_tied(tied)
    if method != "mixed_ksg":
        _warn_ties(tied, noise)
    if noise > 0:
        rng = np.random.default_rng([seed, 1])
        x = x + noise * rng.standard_normal(x.shape)
        y = y + noise * rng.standard_normal(y.shape)
    tree_counts, rule, finish = _KINDS[method]
    n = x.shape[0]
    use_tree = _use_tree(algorithm, x.shape[1] + y.shape[1])
    group_of, g = assign_groups(n, groups, seed)
    if use_tree:  # cheap trees: recompute without each group
        def statistic(a: np.ndarray, b: np.ndarray) -> float:
            return finish(tree_counts(a, b, k, threads), k)

        full, leave_out = fit_and_recompute(lambda: tree_counts(x, y, k, threads), statistic,
                                            x, y, group_of, g, method, progress)
        value = finish(full, k)
        how = "the estimator recomputed without each"
    else:  # distance blocks: every subsample in one pass
        bar = progress_bar(n, method, progress)
        try:
            counts = subset_counts(x, y, rule, k, group_of, g, threads=threads,
                                   progress=None if bar is None else bar.update)
        finally:
            if bar is not None:
                bar.close()
        full = counts[-1]
        value = finish(full, k)
        leave_out = [finish(c, k) for c in counts[:-1]]
        how = "the estimator evaluated without each"
    # only where the data are continuous: ties (a label, repeated rows) bound the MI by an
    # entropy the mixed estimator resolves, or draw KSG's tie warning, whose bias is upwards.
    # An exact monotone relation (infinite MI) says more than the ceiling rules: one warning
    if not ties and not any(discrete):
        rho = monotone_relation(*raw)
        if rho is not None:
            _warn_if_exact(method, value, rho, n, k)
        else:
            _warn_if_saturated(method, value, full, k)
    elif method == "mixed_ksg" and not any(discrete):
        _warn_if_saturated(method, value, full, k, ties=True)
    return summarize(value, leave_out, level, method, how)


def _warn_ties(tied: list[np.ndarray], noise: float) -> None:
    """Warn about each column of x and y whose :func:`tied_fraction` (``tied``, one array
    for x and one for y) exceeds :data:`~mitools.classical.inputs.TIED_WARNING`."""
    broken = ("ties are broken by tiny noise ('noise'), which biases the estimate" if noise > 0
              else "with noise=0 ties are not broken: tied samples lie at distance 0, which "
              "biases the estimate far up (raise 'noise' to its default 1e-10)")
    for name, fractions in zip("xy", tied, strict=True):
        for col in np.flatnonzero(fractions > TIED_WARNING):
            warnings.warn(
                f"ksg: {name} column {col} repeats values in {fractions[col]:.0%} of the samples. "
                f"KSG assumes continuous data: {broken}. For a label or a column of a few "
                "values, or one mixing a point mass with a continuous part, use "
                "mitools.classical.mixed_ksg (discrete_x=True / discrete_y=True for a label); "
                "for a continuous quantity rounded to many values, keep ksg (mixed_ksg takes "
                "the rounding for structure and overestimates).",
                UserWarning,
                stacklevel=4,
            )


def ksg(
    x: Any,
    y: Any,
    k: int = 3,
    estimator: int = 1,
    *,
    noise: float = 1e-10,
    groups: int = 10,
    level: float = 0.95,
    seed: int = 0,
    threads: int | None = None,
    algorithm: str = "auto",
    progress: bool | None = None,
) -> MIEstimate:
    r"""The KSG estimate of :math:`I(X; Y)` in nats, with a jackknife interval.

    The k-nearest-neighbour estimator of Kraskov, Stögbauer & Grassberger (Phys. Rev. E 69,
    066138, 2004), estimator 1 (eq. 8) or 2 (eq. 9), under the max-norm (formulas in
    :mod:`mitools.classical.knn`). Each column is standardised, then Gaussian noise of standard
    deviation ``noise`` is added (as scikit-learn does), so that tied values, which KSG
    cannot handle, become distinct. A column with more than 1 % tied values triggers a
    warning: use :func:`~mitools.classical.mixed_ksg` for discrete data.

    KSG is accurate in low dimension and at moderate MI. It is biased low at high MI and in
    high dimension, and misses sparse interactions among many variables (Czyż et al., *Beyond
    Normal*, NeurIPS 2023). The interval (a delete-a-group jackknife,
    :mod:`mitools.classical.jackknife`) covers sampling noise, not that bias. Whatever the
    data, the estimate cannot exceed :func:`~mitools.classical.knn.ceiling`,
    :math:`\psi(n) - \psi(k)` (estimator 2: :math:`- 1/k` more), 7.6 nats at n = 5,000 and
    k = 3: where y is (close to) a function of x, or the MI exceeds what n samples resolve,
    the estimate is a lower figure set by n and k (``ksg(x, x**3)`` gives 5.7 nats for an
    infinite MI), and a warning says so.

    Args:
        x: ``(n, dx)`` array-like of real numbers (numpy, tensor, list, pandas); ``(n,)`` is
            ``(n, 1)``.
        y: ``(n, dy)``, same ``n``.
        k: number of neighbours (``k >= 1``); larger ``k``: less variance, more bias.
        estimator: 1 or 2 (Kraskov et al.'s two estimators).
        noise: standard deviation of the tie-breaking noise, in units of each column's
            standard deviation (0: none).
        groups: groups of the jackknife, of at least 2 samples each (``n >= 2 * groups``);
            0 skips the interval, and the ``groups`` recomputations it costs.
        level: confidence level of the interval.
        seed: an int in [0, 2**32 - 1]; seeds the noise and the jackknife groups.
        threads: worker threads (``None``: every CPU this process may use).
        algorithm: ``"kdtree"`` (``scipy.spatial.cKDTree``,
            :mod:`mitools.classical.neighbours`), ``"brute"`` (blocks of pairwise distances,
            :mod:`mitools.classical.pairwise`) or ``"auto"`` (the tree up to
            :data:`~mitools.classical.knn.KDTREE_MAX_DIM` joint dimensions). The answers are
            identical, except for estimator 2 with ``noise=0`` on tied data: there the k
            nearest neighbours are not unique, each backend breaks the tie its own way, and
            estimator 2 reads their coordinates.
        progress: show a progress bar over the jackknife groups on stderr; ``None``
            (default): when stderr is a terminal and tqdm is installed. ``True`` needs tqdm
            (without it, a warning says to ``pip install tqdm``).

    Returns:
        :class:`~mitools.estimate.MIEstimate` with ``method`` ``"ksg1"`` or ``"ksg2"``.

    Raises:
        TypeError: inputs that are not arrays of real numbers.
        ValueError: different numbers of samples, NaN/inf values, bad options (a
            ``progress`` other than ``True``, ``False`` or ``None`` included), or too few samples:
            ``k + 2`` in every jackknife subsample (with ``k + 1``, each sample's k-th
            neighbour is the farthest sample, and the estimate is 0 whatever the data) and 2
            in each group (the message says how many, and why).

    Warns:
        RuntimeWarning: the jackknife's left-out values are all equal (a few samples, or
            heavily tied data): ``stderr`` and the interval are NaN, not a zero-width interval.
        RuntimeWarning: the estimate is a lower figure, not an estimate: it reaches
            :data:`~mitools.classical.knn.CEILING_FRACTION` (75 %) of
            :func:`~mitools.classical.knn.ceiling`, or in more than
            :data:`~mitools.classical.knn.SATURATED_SHARE` (half) of the samples nothing but
            the k neighbours lies within their distance in x or in y alone, with the
            estimate at least :data:`~mitools.classical.knn.SATURATED_MIN_FRACTION` (40 %) of
            the ceiling: y is (close to) a function of x at the scale n samples resolve.
            Checked where no column has ties (more than
            :data:`~mitools.classical.inputs.TIED_WARNING` of its values repeated), which
            have their own warning.
        RuntimeWarning: y (or part of it) is, to rounding, an increasing or decreasing
            function of x: after each column is mapped to the normal scores of its ranks,
            the largest canonical correlation of x and y is 1 to rounding
            (:func:`~mitools.classical.gaussian.monotone_relation`, the rule of
            :func:`~mitools.estimate.estimate_mi`'s exact-relation warning). The MI of
            continuous variables so related is infinite, and the estimate is a lower figure
            set by n and k. Said at any n and k, in place of the ceiling warning above, where
            no column has ties.

    Example:
        >>> import numpy as np
        >>> from mitools.classical import ksg
        >>> rng = np.random.default_rng(0)
        >>> x = rng.standard_normal(2000)
        >>> y = 0.8 * x + 0.6 * rng.standard_normal(2000)  # correlation 0.8: MI 0.511 nats
        >>> result = ksg(x, y)
        >>> round(result.value, 2), result.method
        (0.5, 'ksg1')
        >>> result.interval[0] < 0.511 < result.interval[1]
        True
    """
    try:
        check_int("estimator", estimator, 1)
        if estimator > 2:
            raise ValueError
    except ValueError:
        raise ValueError(f"estimator must be 1 or 2, got {estimator!r}") from None
    check_number("noise", noise, 0, strict=False)
    warn_if_unaligned(x, y, "ksg")
    return _knn_estimate(
        f"ksg{int(estimator)}", x, y, k, noise=noise, groups=groups, level=level, seed=seed,
        threads=threads, algorithm=algorithm, progress=progress,
    )


def mixed_ksg(
    x: Any,
    y: Any,
    k: int = 3,
    *,
    discrete_x: bool = False,
    discrete_y: bool = False,
    groups: int = 10,
    level: float = 0.95,
    seed: int = 0,
    threads: int | None = None,
    algorithm: str = "auto",
    progress: bool | None = None,
) -> MIEstimate:
    r"""MI of discrete, continuous or mixed variables (Gao et al. 2017), in nats.

    The estimator of Gao, Kannan, Oh & Viswanath (*Estimating Mutual Information for
    Discrete-Continuous Mixtures*, NeurIPS 2017, Algorithm 1; formulas in
    :mod:`mitools.classical.knn`). It takes ties as data: use it for a class label against
    features, for counts, or for columns mixing a point mass with a continuous part. Columns
    are standardised (equal values stay equal), and distances are taken between the values:
    a label passed as numbers is compared by the numbers that code it, so codes
    ``[0, 1, 1000]`` squeeze classes 0 and 1 together and the estimate changes with the
    coding (0.236, 0.205, 0.164 nats for three codings of one label). Pass
    ``discrete_x=True`` (or ``discrete_y=True``) for a label: its rows are then compared by
    equality only, every class needs more than ``k`` samples, and against a continuous
    variable the estimate is that of Ross (PLoS ONE 2014) and scikit-learn's
    ``mutual_info_classif``, whatever the codes. For a continuous quantity rounded to many
    values, prefer :func:`ksg`: this estimator takes the rounding for structure and
    overestimates (1.24 nats for a true 1.00 on a Gaussian rounded to steps of a third).

    Args:
        x: ``(n, dx)`` array-like of real numbers (``(n,)`` is ``(n, 1)``); booleans count as
            0 and 1. With ``discrete_x``, text labels too (``str``: a list, numpy array or
            pandas column), numbered in sorted order (:func:`mitools.inputs.label_codes`):
            the estimate is that of any integer coding, value for value. A missing label
            (``None``, NaN) is refused like NaN, and so is a column mixing text with numbers
            (``1`` and ``'1'``).
        y: ``(n, dy)``, same ``n``.
        k: number of neighbours (``k >= 1``).
        discrete_x: compare the rows of ``x`` by equality only (a label: the estimate does
            not depend on the numbers or text that code the classes); each class needs at
            least ``k + 1`` samples.
        discrete_y: the same for ``y``. With both, each is one-hot encoded, so that a pair
            of classes seen ``k`` times or fewer finds its neighbours in other cells at
            distances that do not depend on the coding either.
        groups: groups of the delete-a-group jackknife (0: no interval).
        level: confidence level of the interval.
        seed: an int in [0, 2**32 - 1]; seeds the jackknife groups.
        threads: worker threads (``None``: every CPU this process may use).
        algorithm: ``"auto"``, ``"kdtree"`` or ``"brute"`` (identical answers).
        progress: show a progress bar over the jackknife groups on stderr; ``None``
            (default): when stderr is a terminal and tqdm is installed. ``True`` needs tqdm
            (without it, a warning says to ``pip install tqdm``).

    Returns:
        :class:`~mitools.estimate.MIEstimate` with ``method="mixed_ksg"``.

    Raises:
        TypeError: inputs that are not arrays of real numbers (or, for a discrete variable,
            of labels of one type: numbers or text).
        ValueError: as :func:`ksg` (bad inputs or options, too few samples), or, with
            ``discrete_x`` or ``discrete_y``, a class of ``k`` samples or fewer, or a missing
            label.

    Warns:
        RuntimeWarning: as :func:`ksg`, when the jackknife's left-out values are all equal,
            and when the estimate is a lower figure set by n and k (near
            :func:`~mitools.classical.knn.ceiling`, :math:`\log n - \psi(k)`, or most
            samples saturated), checked where neither variable is declared discrete. Where
            a column has ties, only the first rule: an undeclared column of repeated values
            (``floor(1000 x)``, 4.9 nats at n = 500 for an MI of 8.3) can carry more MI than
            n samples resolve, while a label of few classes, whose entropy bounds the MI,
            lies far below the ceiling.
        RuntimeWarning: as :func:`ksg`, when y (or part of it) is, to rounding, an
            increasing or decreasing function of x, whose MI is infinite for continuous
            variables; checked under the same conditions (continuous data, neither variable
            declared discrete): a label that is a function of x has a finite MI, its
            entropy, and draws no warning.

    Example:
        >>> import numpy as np
        >>> from mitools.classical import mixed_ksg
        >>> rng = np.random.default_rng(0)
        >>> label = rng.integers(0, 2, 2000)  # two classes: I(label; feature) <= log 2
        >>> feature = 4.0 * label + rng.standard_normal(2000)  # nearly separable
        >>> result = mixed_ksg(label, feature)
        >>> round(result.value, 2), result.method  # the truth: 0.633 nats (classes of 1/2)
        (0.65, 'mixed_ksg')
    """
    check_flag("discrete_x", discrete_x)
    check_flag("discrete_y", discrete_y)
    warn_if_unaligned(x, y, "mixed_ksg")
    return _knn_estimate(
        "mixed_ksg", x, y, k, noise=0.0, groups=groups, level=level, seed=seed,
        threads=threads, algorithm=algorithm, progress=progress,
        discrete=(bool(discrete_x), bool(discrete_y)),
    )
