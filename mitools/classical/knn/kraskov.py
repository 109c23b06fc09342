"""The KSG estimators of Kraskov, Stögbauer & Grassberger (2004): :func:`ksg`."""

from __future__ import annotations

from typing import Any

from mitools.classical.knn.estimate import knn_estimate
from mitools.estimate.result import MIEstimate
from mitools.inputs import warn_if_unaligned
from mitools.option_checks import check_int, check_number

__all__ = ["ksg"]


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
    data, the estimate cannot exceed :func:`~mitools.classical.knn.counts.ceiling`,
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
        algorithm: ``"kdtree"`` (``scipy.spatial.cKDTree``, :mod:`mitools.classical.neighbours`),
            ``"brute"`` (blocks of pairwise distances, :mod:`mitools.classical.pairwise`) or
            ``"auto"`` (the tree up to :data:`~mitools.classical.knn.estimate.KDTREE_MAX_DIM` joint
            dimensions). The answers are identical, except for estimator 2 with ``noise=0`` on tied
            data: there the k nearest neighbours are not unique, each backend breaks the tie its own
            way, and estimator 2 reads their coordinates.
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
            :data:`~mitools.classical.knn.saturation.CEILING_FRACTION` (75 %) of
            :func:`~mitools.classical.knn.counts.ceiling`, or in more than
            :data:`~mitools.classical.knn.saturation.SATURATED_SHARE` (half) of the samples nothing
            but the k neighbours lies within their distance in x or in y alone, with the estimate at
            least :data:`~mitools.classical.knn.saturation.SATURATED_MIN_FRACTION` (40 %) of the
            ceiling: y is (close to) a function of x at the scale n samples resolve. Checked where
            no column has ties (more than :data:`~mitools.classical.inputs.TIED_WARNING` of its
            values repeated), which have their own warning.
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
    return knn_estimate(
        f"ksg{int(estimator)}", x, y, k, noise=noise, groups=groups, level=level, seed=seed,
        threads=threads, algorithm=algorithm, progress=progress,
    )
