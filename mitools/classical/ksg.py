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
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy.special import digamma

from mitools.classical.inputs import paired_columns, standardize_columns, tied_fraction
from mitools.classical.jackknife import check_options, jackknife_estimate
from mitools.classical.neighbours import count_within, kth_neighbours, resolve_threads
from mitools.estimate.result import MIEstimate

__all__ = ["TIED_WARNING", "ksg", "mixed_ksg"]

#: :func:`ksg` warns when a column repeats values in more than this fraction of samples
TIED_WARNING = 0.01


def _check_k(k: Any, n_needed_name: str = "k") -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"{n_needed_name} must be an int >= 1, got {k!r}")


def _ksg_value(
    x: np.ndarray, y: np.ndarray, k: int, estimator: int, algorithm: str, threads: int
) -> float:
    n = x.shape[0]
    radius, nearest = kth_neighbours(np.hstack([x, y]), k, algorithm=algorithm, threads=threads)
    if estimator == 1:
        n_x = count_within(x, radius, strict=True, algorithm=algorithm, threads=threads)
        n_y = count_within(y, radius, strict=True, algorithm=algorithm, threads=threads)
        return float(digamma(k) + digamma(n) - np.mean(digamma(n_x + 1) + digamma(n_y + 1)))
    eps_x = np.abs(x[nearest] - x[:, None, :]).max(axis=(1, 2))
    eps_y = np.abs(y[nearest] - y[:, None, :]).max(axis=(1, 2))
    n_x = count_within(x, eps_x, strict=False, algorithm=algorithm, threads=threads)
    n_y = count_within(y, eps_y, strict=False, algorithm=algorithm, threads=threads)
    return float(digamma(k) - 1.0 / k + digamma(n) - np.mean(digamma(n_x) + digamma(n_y)))


def _mixed_value(x: np.ndarray, y: np.ndarray, k: int, algorithm: str, threads: int) -> float:
    n = x.shape[0]
    z = np.hstack([x, y])
    rho, _ = kth_neighbours(z, k, algorithm=algorithm, threads=threads)
    k_tilde = np.full(n, k, dtype=np.intp)
    if not rho.all():  # some samples have k or more exact copies
        copies = count_within(z, np.zeros(n), strict=False, algorithm=algorithm,
                              threads=threads)
        k_tilde = np.where(rho > 0, k, copies + 1)
    # strictly inside rho where rho > 0; the exact copies (distance 0) where rho == 0
    inside = np.where(rho > 0, np.nextafter(rho, -np.inf), 0.0)
    n_x = count_within(x, inside, strict=False, algorithm=algorithm, threads=threads)
    n_y = count_within(y, inside, strict=False, algorithm=algorithm, threads=threads)
    return float(np.mean(digamma(k_tilde) + math.log(n) - digamma(n_x + 1) - digamma(n_y + 1)))


def _warn_ties(xs: np.ndarray, ys: np.ndarray) -> None:
    for name, a in (("x", xs), ("y", ys)):
        tied = tied_fraction(a)
        for col in np.flatnonzero(tied > TIED_WARNING):
            warnings.warn(
                f"ksg: {name} column {col} repeats values in {tied[col]:.0%} of the samples. "
                "KSG assumes continuous data: ties are broken by tiny noise ('noise'), which "
                "biases the estimate. For a discrete or partly discrete column use "
                "mitools.classical.mixed_ksg.",
                UserWarning,
                stacklevel=3,
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
    progress: bool = False,
) -> MIEstimate:
    r"""The KSG estimate of :math:`I(X; Y)` in nats, with a jackknife interval.

    The k-nearest-neighbour estimator of Kraskov, Stögbauer & Grassberger (Phys. Rev. E 69,
    066138, 2004), estimator 1 (eq. 8) or 2 (eq. 9), under the max-norm (formulas in
    :mod:`mitools.classical.ksg`). Each column is standardised, then Gaussian noise of standard
    deviation ``noise`` is added (as scikit-learn does), so that tied values, which KSG
    cannot handle, become distinct. A column with more than 1 % tied values triggers a
    warning: use :func:`mixed_ksg` for discrete data.

    KSG is accurate in low dimension and at moderate MI. It is biased low at high MI and in
    high dimension, and misses sparse interactions among many variables (Czyż et al., *Beyond
    Normal*, NeurIPS 2023). The interval (a delete-a-group jackknife,
    :mod:`mitools.classical.jackknife`) covers sampling noise, not that bias.

    Args:
        x: ``(n, dx)`` array-like of real numbers (numpy, tensor, list, pandas); ``(n,)`` is
            ``(n, 1)``.
        y: ``(n, dy)``, same ``n``.
        k: number of neighbours (``k >= 1``); larger ``k``: less variance, more bias.
        estimator: 1 or 2 (Kraskov et al.'s two estimators).
        noise: standard deviation of the tie-breaking noise, in units of each column's
            standard deviation (0: none).
        groups: groups of the jackknife (at most ``n``); 0 skips the interval, and the
            ``groups`` recomputations it costs.
        level: confidence level of the interval.
        seed: seeds the noise and the jackknife groups.
        threads: worker threads (``None``: every CPU this process may use).
        algorithm: ``"kdtree"`` (:class:`scipy.spatial.cKDTree`), ``"brute"`` (blocks of
            pairwise distances) or ``"auto"`` (the tree in low dimension; see
            :mod:`mitools.classical.neighbours`). The answers are identical.
        progress: show a progress bar over the jackknife groups on stderr.

    Returns:
        :class:`~mitools.estimate.MIEstimate` with ``method`` ``"ksg1"`` or ``"ksg2"``.

    Raises:
        TypeError: inputs that are not arrays of real numbers.
        ValueError: different numbers of samples, NaN/inf values, bad options, or fewer than
            ``k + 1`` samples (in every jackknife subsample).

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
    _check_k(k)
    if estimator not in (1, 2) or isinstance(estimator, bool):
        raise ValueError(f"estimator must be 1 or 2, got {estimator!r}")
    if not (isinstance(noise, (int, float)) and noise >= 0 and math.isfinite(noise)):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    check_options(groups, level)
    workers = resolve_threads(threads)
    xs, ys = (standardize_columns(a) for a in paired_columns(x, y))
    _warn_ties(xs, ys)
    if noise > 0:
        rng = np.random.default_rng([seed, 1])
        xs = xs + noise * rng.standard_normal(xs.shape)
        ys = ys + noise * rng.standard_normal(ys.shape)

    def statistic(a: np.ndarray, b: np.ndarray) -> float:
        return _ksg_value(a, b, k, estimator, algorithm, workers)

    return jackknife_estimate(
        statistic, xs, ys, method=f"ksg{estimator}", needed=k + 1,
        why=f"every sample needs k={k} neighbours", groups=groups, level=level, seed=seed,
        progress=progress,
    )


def mixed_ksg(
    x: Any,
    y: Any,
    k: int = 3,
    *,
    groups: int = 10,
    level: float = 0.95,
    seed: int = 0,
    threads: int | None = None,
    algorithm: str = "auto",
    progress: bool = False,
) -> MIEstimate:
    r"""MI of discrete, continuous or mixed variables (Gao et al. 2017), in nats.

    The estimator of Gao, Kannan, Oh & Viswanath (*Estimating Mutual Information for
    Discrete-Continuous Mixtures*, NeurIPS 2017, Algorithm 1; formulas in
    :mod:`mitools.classical.ksg`). It takes ties as data: use it for a class label against
    features, for counts, or for columns mixing a point mass with a continuous part. Columns
    are standardised (equal values stay equal); pass a label as integer codes (or a one-hot
    matrix). Categories are then at least :math:`1/\sigma` apart after standardisation; when
    the features are high-dimensional and the neighbour radius reaches across categories, the
    counts mix them and the estimate is biased low.

    Args:
        x: ``(n, dx)`` array-like of real numbers (``(n,)`` is ``(n, 1)``); booleans count as
            0 and 1.
        y: ``(n, dy)``, same ``n``.
        k: number of neighbours (``k >= 1``).
        groups: groups of the delete-a-group jackknife (0: no interval).
        level: confidence level of the interval.
        seed: seeds the jackknife groups.
        threads: worker threads (``None``: every CPU this process may use).
        algorithm: ``"auto"``, ``"kdtree"`` or ``"brute"`` (identical answers).
        progress: show a progress bar over the jackknife groups on stderr.

    Returns:
        :class:`~mitools.estimate.MIEstimate` with ``method="mixed_ksg"``.

    Raises:
        TypeError: inputs that are not arrays of real numbers.
        ValueError: different numbers of samples, NaN/inf values, bad options, or fewer than
            ``k + 1`` samples (in every jackknife subsample).

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
    _check_k(k)
    check_options(groups, level)
    workers = resolve_threads(threads)
    xs, ys = (standardize_columns(a) for a in paired_columns(x, y))

    def statistic(a: np.ndarray, b: np.ndarray) -> float:
        return _mixed_value(a, b, k, algorithm, workers)

    return jackknife_estimate(
        statistic, xs, ys, method="mixed_ksg", needed=k + 1,
        why=f"every sample needs k={k} neighbours", groups=groups, level=level, seed=seed,
        progress=progress,
    )
