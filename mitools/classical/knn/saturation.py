"""When a k-NN estimate is a lower figure set by n and k, not an estimate, and the warnings
that say so: near :func:`~mitools.classical.knn.counts.ceiling`, most samples saturated
(:func:`warn_if_saturated`), or y a monotone function of x to rounding (:func:`warn_if_exact`).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from mitools.classical.knn.counts import ceiling
from mitools.classical.pairwise import Counts

__all__ = ["CEILING_FRACTION", "CEILING_MIN_SAMPLES", "SATURATED_MIN_FRACTION",
           "SATURATED_SHARE", "warn_if_exact", "warn_if_saturated"]

#: :func:`~mitools.classical.ksg` and :func:`~mitools.classical.mixed_ksg` warn that the estimate is
#: a lower figure when it reaches this fraction of :func:`~mitools.classical.knn.counts.ceiling`.
#: Measured at k = 3, n = 1,000 to 5,000 (3 seeds, both KSG estimators): the Gaussians of
#: correlation 0.9 and 0.99 reach at most 0.16 and 0.36 of the ceiling, 0.999 at most 0.56, and
#: 0.9999 (4.26 nats) at most 0.67 from n = 2,000, where KSG is within 1 % of the truth (0.74 at n =
#: 1,000, 2-4 % low). Exact functions: y = x + 1e-9 noise 0.94 to 1.00, exp(x) 0.79 to 1.00, and
#: estimator 2 at least 0.996 on every one; estimator 1 gives ``y = x**3`` only 0.68 to 0.76 (less
#: at smaller n or larger k: its square neighbourhoods on a curve count about slope times k samples
#: in one variable), which :data:`SATURATED_SHARE` catches.
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
#: The rule of :data:`SATURATED_SHARE` needs the estimate to reach this fraction of
#: :func:`~mitools.classical.knn.counts.ceiling` too. On a few dozen samples, independent data leave
#: most samples saturated too (up to 0.83 at n = 12, 0.70 at n = 20), at estimates of at most 0.45
#: of the ceiling (0.30 from n = 20, 0.10 from n = 50); ``y = x**3`` under estimator 1 gives at
#: least 0.45 from n = 200 (k = 1 to 10)
SATURATED_MIN_FRACTION = 0.4
#: Neither rule is applied below this many samples, as on a dozen or two independent data can
#: reach either (30 seeds; ``ksg`` estimator 2 at n = 12 with k = 1 or 10, and at n = 15 with
#: two dimensions a side and k = 1).
CEILING_MIN_SAMPLES = 20


def _saturated_share(counts: Counts, k: int) -> float:
    """The share of samples one of whose marginal counts holds at most the k joint neighbours
    (see :data:`SATURATED_SHARE`)."""
    _, n_x, n_y = counts
    return float(np.mean(np.minimum(n_x, n_y) <= k)) if n_x.size else 0.0


_FORMULAS = {"ksg1": "psi(n) - psi(k)", "ksg2": "psi(n) - psi(k) - 1/k",
             "mixed_ksg": "log(n) - psi(k)"}


def warn_if_exact(method: str, value: float, rho: float, n: int, k: int) -> None:
    """Warn that y is, to rounding, a monotone function of x (``rho``, the largest canonical
    correlation of the normal scores of the ranks, is 1 to rounding:
    :func:`~mitools.classical.gaussian.monotone_relation`): the MI of continuous variables is
    then infinite, and the estimate is a figure set by n and k. Said in place of
    :func:`warn_if_saturated`'s warning, whose ceiling it names too."""
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


def warn_if_saturated(method: str, value: float, counts: Counts, k: int,
                       ties: bool = False) -> None:
    """Warn when the estimate sits near :func:`~mitools.classical.knn.counts.ceiling` or most
    samples are saturated: it is then a lower figure set by ``n`` and ``k``, not an estimate. Both
    rules apply to data without ties (no column repeats values in more than
    :data:`~mitools.classical.inputs.TIED_WARNING` of the samples). With ``ties`` (the mixed
    estimator on repeated values it reads as data; KSG's ties have a warning of their own) only the
    first: the saturated share reads tied samples, at distance 0, as saturated, and the ceiling
    still bounds the estimate (the MI may be far above it: ``mixed_ksg(x, floor(1000 x))`` read 4.9
    nats at n = 500, of a ceiling of 5.3, for an MI of 8.3, with no word)."""
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
