"""What :func:`~mitools.classical.ksg` and :func:`~mitools.classical.mixed_ksg` share: the
checks of options and inputs, standardisation, discrete variables as class codes, KSG's tie
warning, the choice of backend, and the value with its jackknife interval
(:func:`knn_estimate`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

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
from mitools.classical.knn.counts import ESTIMATORS
from mitools.classical.knn.saturation import warn_if_exact, warn_if_saturated
from mitools.classical.neighbours import resolve_threads
from mitools.classical.pairwise import subset_counts
from mitools.estimate.progress import check_progress
from mitools.estimate.result import MIEstimate
from mitools.inputs import warn_repeated_rows
from mitools.option_checks import check_int

__all__ = ["KDTREE_MAX_DIM", "as_categories", "knn_estimate", "uses_kdtree", "warn_ties"]

#: ``algorithm="auto"`` uses the k-d tree up to this many joint dimensions (``dx + dy``),
#: blocks of pairwise distances above (measured at n = 5,000: the tree's counting slows down
#: quickly with the dimension; the blocks serve all jackknife subsamples in one pass)
KDTREE_MAX_DIM = 8


def uses_kdtree(algorithm: str, dim: int) -> bool:
    """Whether ``algorithm`` runs on the k-d tree for ``dx + dy = dim`` joint dimensions (else
    on blocks of distances); an unknown name is a ``ValueError``."""
    if algorithm == "auto":
        return dim <= KDTREE_MAX_DIM
    if algorithm in ("kdtree", "brute"):
        return algorithm == "kdtree"
    raise ValueError(f"algorithm must be 'auto', 'kdtree' or 'brute', got {algorithm!r}")


def as_categories(a: np.ndarray, gap: float, k: int, name: str,
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


def knn_estimate(
    method: str, x: Any, y: Any, k: int, *, noise: float, groups: int, level: float,
    seed: int, threads: int | None, algorithm: str, progress: bool | None,
    discrete: tuple[bool, bool] = (False, False),
) -> MIEstimate:
    """Check the options and inputs, then the value and jackknife interval of one estimator.

    Columns are standardised; with ``noise > 0``, Gaussian noise of that standard deviation
    is added (seeded by ``seed``) and columns with ties are warned about (KSG only). A
    variable marked in ``discrete`` (x, y) is replaced by class codes farther apart than
    any neighbour radius (:func:`as_categories`)."""
    check_int("k", k, 1)
    progress = check_progress(progress)
    groups, level, seed = check_options(groups, level, seed)
    uses_kdtree(algorithm, 0)  # validates the name
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
        x, y = (as_categories(r, gap, k, name, one_hot=all(discrete)) if flag else a
                for a, r, flag, name in zip((x, y), raw, discrete, "xy", strict=True))
    # per column, for x and y; a constant column (beside others) is no tie: it changes nothing
    tied = [tied_fraction(a, constant=False) for a in (x, y)]
    ties = any_tied(tied)
    if method != "mixed_ksg":
        warn_ties(tied, noise)
    if noise > 0:
        rng = np.random.default_rng([seed, 1])
        x = x + noise * rng.standard_normal(x.shape)
        y = y + noise * rng.standard_normal(y.shape)
    tree_counts, rule, finish = ESTIMATORS[method]
    n = x.shape[0]
    use_tree = uses_kdtree(algorithm, x.shape[1] + y.shape[1])
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
            warn_if_exact(method, value, rho, n, k)
        else:
            warn_if_saturated(method, value, full, k)
    elif method == "mixed_ksg" and not any(discrete):
        warn_if_saturated(method, value, full, k, ties=True)
    return summarize(value, leave_out, level, method, how)


def warn_ties(tied: list[np.ndarray], noise: float) -> None:
    """Warn about each column of x and y whose :func:`~mitools.classical.inputs.tied_fraction`
    (``tied``, one array for x and one for y) exceeds
    :data:`~mitools.classical.inputs.TIED_WARNING`."""
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
