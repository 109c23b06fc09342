"""A k-nearest-neighbour cross-check of :func:`~mitools.estimate.estimate_mi`.

The critics' bound is a lower bound: a critic family that cannot follow the dependence, or
training that did not learn (too high a learning rate, say), gives a value below the MI,
and the jackknife interval cannot show it (it holds the critics fixed). KSG (Kraskov et
al. 2004) makes no assumption about the form of the dependence, and in a few dimensions it
is close to the MI or below it (its bias grows negative with the dimension and the MI). The
check runs its form for data with repeated values, the mixed estimator of Gao et al. 2017
(:func:`mitools.classical.mixed_ksg`: on continuous data, KSG estimator 1 up to
:math:`1/2N`), so that a point mass (a share of exact zeros, say) does not turn it off.
Where it reads clearly more than the critics, on the same samples after the same margins'
transform, the critics have missed dependence that is there, and
:class:`~mitools.estimate.Diagnostics` flags it.

On the 99 task x seed cases of the Beyond Normal benchmark with at most
:data:`KNN_CHECK_MAX_DIMS` joint dimensions, the check on 1,000 of the 5,000 samples read at
most 0.031 nats more than ``estimate_mi``'s default, well inside :data:`KNN_CHECK_NATS`, and
took a median 0.09 s on one thread, at most 0.35 s (``benchmarks/knn_check.py``,
``benchmarks/results/knn_check.md``). With ``lr=0.03`` on ``y = x + U(-0.1, 0.1)`` (n =
2,000), training never beat the Gaussian start, the estimate read 1.30 and KSG 1.63.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from torch import Tensor

__all__: list[str] = []

#: the most samples KSG is run on, a random subset where there are more; so its cost is
#: that of 1,000 samples whatever n, and a smaller sample only lowers KSG further, away from
#: a false flag
KNN_CHECK_SAMPLES = 1000
#: neighbours
KNN_CHECK_K = 5
#: jackknife groups of the KSG value (its standard error enters the flag's margin)
KNN_CHECK_GROUPS = 10
#: the check is skipped above this many joint dimensions, where KSG falls far below the MI
#: and so would never flag
KNN_CHECK_MAX_DIMS = 10
#: fewest samples for the check (below, KSG's noise is as large as what it would detect)
KNN_CHECK_MIN_SAMPLES = 100
#: the check is skipped where a column repeats values in more than this share of the
#: samples: rounded data and labels, where the mixed estimator reads the plug-in entropy of
#: many small cells, which lies far above the MI at small n
KNN_CHECK_MAX_TIES = 0.05
#: KSG must exceed the estimate by more than this many nats, and by more than
#: :data:`KNN_CHECK_SHARE` of its own value, ...
KNN_CHECK_NATS = 0.1
#: ... (a share of KSG's value) ...
KNN_CHECK_SHARE = 0.1
#: ... and by more than this many standard errors of the difference (KSG's jackknife and
#: the estimate's, taken as independent)
KNN_CHECK_SE = 3.0


def knn_cross_check(xt: Tensor, yt: Tensor, seed: int) -> tuple[float, float]:
    """The mixed KSG estimator (``k =`` :data:`KNN_CHECK_K`; KSG estimator 1 where no
    value repeats) on the samples ``xt (n, dx)``, ``yt (n, dy)`` as the critics saw them
    (after the margins' transform), on a seeded random subset of :data:`KNN_CHECK_SAMPLES`
    where ``n`` is larger: ``(value, stderr)`` in nats, the standard error from its
    delete-a-group jackknife.

    ``(nan, nan)`` where the check does not apply: more than :data:`KNN_CHECK_MAX_DIMS`
    joint dimensions, fewer than :data:`KNN_CHECK_MIN_SAMPLES` samples, or a column that
    repeats values in more than :data:`KNN_CHECK_MAX_TIES` of them (labels, rounded data;
    a constant column beside others does not count, it changes no distance).
    Warnings of the estimator itself are not passed on: the check speaks through its flag
    alone."""
    from mitools.classical import mixed_ksg
    from mitools.classical.inputs import tied_fraction

    n, dims = xt.shape[0], xt.shape[1] + yt.shape[1]
    if dims > KNN_CHECK_MAX_DIMS or n < KNN_CHECK_MIN_SAMPLES:
        return math.nan, math.nan
    x, y = xt.double().cpu().numpy(), yt.double().cpu().numpy()
    if n > KNN_CHECK_SAMPLES:
        keep = np.random.default_rng([seed, 2]).permutation(n)[:KNN_CHECK_SAMPLES]
        x, y = x[keep], y[keep]
    # a constant column moves no distance: it is no sign of labels or rounding
    joint = np.concatenate([x, y], axis=1)
    if tied_fraction(joint, constant=False).max() > KNN_CHECK_MAX_TIES:
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = mixed_ksg(x, y, k=KNN_CHECK_K, groups=KNN_CHECK_GROUPS, seed=seed,
                           threads=1, progress=False)
    return result.value, result.stderr


def knn_shortfall(knn_value: float, knn_stderr: float, value: float, stderr: float) -> bool:
    """Whether KSG's value exceeds the estimate by more than every margin:
    :data:`KNN_CHECK_NATS`, :data:`KNN_CHECK_SHARE` of KSG's value, and
    :data:`KNN_CHECK_SE` standard errors of the difference. ``False`` for a NaN."""
    gap = knn_value - value
    noise = math.hypot(knn_stderr, stderr) if math.isfinite(stderr) else knn_stderr
    margin = max(KNN_CHECK_NATS, KNN_CHECK_SHARE * knn_value, KNN_CHECK_SE * noise)
    return bool(gap > margin)  # NaN compares False
