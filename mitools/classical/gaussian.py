r"""Gaussian mutual information from canonical correlations.

For jointly Gaussian :math:`(X, Y)` with canonical correlations :math:`\rho_1, \dots, \rho_r`
(the correlations of the pairs of linear combinations that canonical correlation analysis
finds), :math:`I(X; Y) = -\tfrac12 \sum_k \log(1 - \rho_k^2)` (e.g. Kullback, *Information
Theory and Statistics*, 1959; Cover & Thomas, ch. 8). With sample canonical correlations this
is the maximum-likelihood estimate under a Gaussian model: exact (up to sampling noise) for
jointly Gaussian data (also after invertible linear maps of each variable). Otherwise it is
the MI of the Gaussian with the same covariance, which can miss in either direction: it is
blind to non-linear dependence (``y = x**2`` with symmetric ``x`` gives 0), and it exceeds
the truth for strongly correlated discrete variables (two binary variables that agree 95 % of
the time share 0.49 nats; their correlation of 0.9 gives 0.83).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
from scipy.special import digamma

from mitools.classical.inputs import any_tied, paired_columns, standardize_columns, tied_fraction
from mitools.classical.jackknife import (
    check_options,
    check_samples,
    constant_estimate,
    jackknife_estimate,
)
from mitools.estimate.data import gaussianize_margins
from mitools.estimate.result import MIEstimate
from mitools.inputs import warn_if_unaligned, warn_repeated_rows

__all__ = ["BIAS_SHARE", "canonical_correlations", "exact_relation", "gaussian_bias",
           "gaussian_mi", "monotone_relation"]


def _orthonormal_basis(a: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the column space of the centred ``a`` (rank-deficient columns,
    constant ones included, add nothing)."""
    u, s, _ = np.linalg.svd(a - a.mean(axis=0), full_matrices=False)
    if s.size == 0 or s[0] == 0:
        return u[:, :0]
    return u[:, s > s[0] * max(a.shape) * np.finfo(np.float64).eps]


def _correlations(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    ux, uy = _orthonormal_basis(x), _orthonormal_basis(y)
    if ux.shape[1] == 0 or uy.shape[1] == 0:
        return np.zeros(0)
    return np.clip(np.linalg.svd(ux.T @ uy, compute_uv=False), 0.0, 1.0)


#: a canonical pair whose Gaussian MI, ``-log(1 - rho^2) / 2``, would exceed this many nats is
#: taken for an exact linear relation (infinite MI): a correlation within ~4e-11 of 1, which
#: is 1 up to the rounding of standardised float64 columns (``y = 2x + 1`` gave 17.5 nats at
#: n = 100 and ``inf`` at n = 1,000), and which one pair of a Gaussian reaches only at a
#: level no sample of ordinary size resolves
EXACT_RELATION_NATS = 12.0


def exactly_related(rho: np.ndarray) -> np.ndarray:
    """Which canonical correlations ``rho`` mean an exact linear relation
    (:data:`EXACT_RELATION_NATS`): the one rule of :func:`~mitools.classical.gaussian_mi` and of
    :func:`~mitools.estimate.estimate_mi`'s exact-relation warning."""
    return 1.0 - np.asarray(rho, dtype=np.float64) ** 2 <= math.exp(-2.0 * EXACT_RELATION_NATS)


def exact_relation(x: np.ndarray, y: np.ndarray) -> float | None:
    """The largest canonical correlation of the float columns ``x`` ``(n, dx)`` and ``y``
    ``(n, dy)`` where it means an exact linear relation (:func:`exactly_related`), else
    ``None``; ``None`` too on fewer than ``dx + dy + 2`` samples, where some canonical
    correlation is 1 whatever the data. The one test of
    :func:`~mitools.estimate.estimate_mi`'s exact-relation warning (on its transformed
    margins) and of the classical estimators' (:func:`monotone_relation`)."""
    if x.shape[0] < x.shape[1] + y.shape[1] + 2:
        return None
    rho = _correlations(standardize_columns(x), standardize_columns(y))[:1]
    return float(rho[0]) if exactly_related(rho).any() else None


def monotone_relation(x: np.ndarray, y: np.ndarray) -> float | None:
    r"""Whether ``y`` is, to rounding, an increasing or decreasing function of ``x`` as ranks
    can tell: :func:`exact_relation` after every column of the float columns ``x`` and ``y``
    is mapped to the normal scores of its ranks (:func:`mitools.estimate.gaussianize_margins`,
    estimate_mi's default margins). It returns the largest canonical correlation of the
    scores, or ``None``.

    It finds ``y = x**3``, ``exp(x)``, ``-x``, a rescaled or repeated column, ``y = (x1**3,
    x2)``, not ``y = x1 + x2`` nor ``y = x**2``. Tied values share their average rank: two
    equal labels are "exactly related" too, which for discrete variables means a finite MI,
    their entropy; callers check continuous data only. Cost: a sort per column and an SVD,
    :math:`O(n \log n\, d + n d^2)`.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).standard_normal((100, 1))
        >>> monotone_relation(x, np.exp(-x)) is not None, monotone_relation(x, x**2)
        (True, None)
    """
    def scores(a: np.ndarray) -> np.ndarray:
        return gaussianize_margins(torch.from_numpy(np.ascontiguousarray(a, np.float64))).numpy()

    return exact_relation(scores(x), scores(y))


def _gaussian_value(x: np.ndarray, y: np.ndarray) -> float:
    rho = _correlations(x, y)
    if exactly_related(rho).any():
        return math.inf
    return float(-0.5 * np.sum(np.log1p(-(rho**2))))


#: Without an interval (``groups=0``), :func:`~mitools.classical.gaussian_mi` warns about
#: its bias (:func:`gaussian_bias`) when it exceeds this share of the estimate; with one,
#: when it exceeds the interval's half-width
BIAS_SHARE = 0.1


def gaussian_bias(n: int, dx: int, dy: int) -> float:
    r"""The expected upward bias, in nats, of the in-sample Gaussian MI
    (:func:`~mitools.classical.gaussian_mi`'s value) on ``n`` samples of jointly Gaussian
    ``(X, Y)`` of ``dx`` and ``dy`` (linearly independent) dimensions: exact, and the same
    whatever the correlations.

    With :math:`S` the sample covariance, :math:`\hat I = \tfrac12(\log\det S_{xx} + \log\det
    S_{yy} - \log\det S)`, and :math:`(n - 1) S` is Wishart with :math:`n - 1` degrees of
    freedom, whose log-determinant is :math:`\log\det\Sigma` plus a term whose expectation
    depends on the dimension alone (:math:`\sum_{i=1}^{d}\psi(\tfrac{n - i}{2}) + d\log 2`,
    Anderson, *An Introduction to Multivariate Statistical Analysis*, 2003, ch. 7). So

    .. math::

        \mathrm E[\hat I] - I = \tfrac12\Bigl(\sum_{i=1}^{d_x} + \sum_{i=1}^{d_y}
        - \sum_{i=1}^{d_x + d_y}\Bigr)\,\psi\bigl(\tfrac{n - i}{2}\bigr).

    Under independence it is :math:`\mathrm E[-\tfrac12\log\det(I - R^2)]` of the sample
    canonical correlations :math:`R` (Wilks' lambda). Its first-order term is
    :math:`d_x d_y / (2n)` (Bartlett 1938: :math:`2n\hat I \approx \chi^2_{d_x d_y}`), which
    falls short when :math:`d_x + d_y` is not small against ``n``: 5.46 nats, not 3.33, at
    ``n = 60`` and 20 + 20 dimensions (Monte Carlo: 5.47).

    Example:
        >>> round(gaussian_bias(60, 20, 20), 2), round(gaussian_bias(1000, 10, 10), 4)
        (5.46, 0.0506)
    """
    def total(d: int) -> float:
        return float(digamma((n - np.arange(1, d + 1)) / 2.0).sum())

    if dx <= 0 or dy <= 0:
        return 0.0
    return 0.5 * (total(dx) + total(dy) - total(dx + dy))


def canonical_correlations(x: Any, y: Any) -> np.ndarray:
    """Sample canonical correlations of ``x`` and ``y``, largest first.

    Computed stably as the singular values of :math:`Q_x^\\top Q_y`, where :math:`Q_x`,
    :math:`Q_y` are orthonormal bases of the centred columns (Björck & Golub, Math. Comp.
    1973); collinear or constant columns are dropped.

    Args:
        x: ``(n, dx)`` array-like of real numbers.
        y: ``(n, dy)``, same ``n``.

    Returns:
        ``(r,)`` correlations in ``[0, 1]``, ``r = min(rank x, rank y)`` of the centred
        columns (empty for a constant variable).

    Raises:
        TypeError: values that are not real numbers (text, complex).
        ValueError: ``x`` or ``y`` not ``(n, d)`` or ``(n,)``, a different ``n``, or a NaN or
            infinite value.

    Example:
        >>> import numpy as np
        >>> x = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 0.0], [4.0, 1.0]])
        >>> canonical_correlations(x, x[:, :1] ** 2).round(4)
        array([0.9844])
    """
    xa, ya = (standardize_columns(a) for a in paired_columns(x, y))
    return _correlations(xa, ya)


#: what repeated rows (:func:`mitools.inputs.warn_repeated_rows`) do to
#: :func:`~mitools.classical.gaussian_mi`: not the value, the interval
REPEATS_CONSEQUENCE = (
    "gaussian_mi's estimate depends on the covariance alone, which copying every row alike "
    "leaves unchanged, but its interval counts copies as independent samples: a jackknife "
    "group leaves out one copy and keeps the other, and the interval is too narrow (by about "
    "a factor of sqrt(2) with every row twice; the bias warning also takes n for the number "
    "of independent samples).")
#: the advice that ends gaussian_mi's repeated-row warning
REPEATS_ADVICE = ("on the distinct rows the estimate is the same where every row was copied "
                  "alike, and the interval has the right width")


def gaussian_mi(
    x: Any, y: Any, *, groups: int = 10, level: float = 0.95, seed: int = 0
) -> MIEstimate:
    r"""MI of the Gaussian with the samples' covariance: :math:`-\tfrac12\sum_k\log(1-\rho_k^2)`.

    The estimate from the sample canonical correlations :math:`\rho_k`
    (:func:`canonical_correlations`), in nats. Exact for jointly Gaussian data up to
    sampling noise; blind to non-linear dependence, and above the truth for strongly
    correlated discrete data (see :mod:`mitools.classical.gaussian`).
    It is biased upwards, by :func:`~mitools.classical.gaussian.gaussian_bias` nats for
    Gaussian data whatever their correlation (exactly, in expectation): :math:`d_x d_y /
    (2n)` to first order, more where :math:`d_x + d_y` is not small against :math:`n`
    (5.46 nats for independent 20 + 20 dimensions on 60 samples). The interval covers the
    sampling noise, not this bias: a warning says when the bias is larger than the
    interval's half-width.

    Args:
        x: ``(n, dx)`` array-like of real numbers (``(n,)`` is ``(n, 1)``).
        y: ``(n, dy)``, same ``n``.
        groups: groups of the delete-a-group jackknife for the interval (0: none).
        level: confidence level of the interval.
        seed: an int in [0, 2**32 - 1]; seeds the jackknife groups.

    Returns:
        :class:`~mitools.estimate.MIEstimate` with ``method="gaussian"``; ``inf`` when a
        linear combination of ``y`` is an exact linear function of ``x`` (to rounding:
        :data:`~mitools.classical.gaussian.EXACT_RELATION_NATS`).

    Raises:
        TypeError: inputs that are not arrays of real numbers.
        ValueError: different numbers of samples, NaN/inf values, bad options, or
            ``n < dx + dy + 2`` samples (in every jackknife subsample): with fewer, some
            canonical correlation is 1 whatever the data; with an interval, also fewer than
            2 samples per jackknife group.

    Warns:
        UserWarning: ``(x, y)`` rows repeat earlier rows exactly, in data whose columns
            otherwise look continuous (:func:`mitools.inputs.repeated_rows`, the rule of
            every estimator's warning; a column of few values, a label or a count, makes
            repeats part of the data and draws none). Copies leave the value unchanged
            (every row twice: the same covariance), but the jackknife counts them as
            independent samples, so the interval is too narrow: about :math:`\sqrt 2` with
            every row twice.
        RuntimeWarning: the bias, :func:`~mitools.classical.gaussian.gaussian_bias` of
            ``n`` and the ranks of ``x`` and ``y``, exceeds the interval's half-width (the
            interval does not reach the estimate less its bias; without an interval, when
            the bias exceeds :data:`~mitools.classical.gaussian.BIAS_SHARE` of the estimate):
            on independent data, ``n = 60`` and 20 + 20 dimensions read 5.4 nats, and
            ``n = 1,000`` and 10 + 10 dimensions 0.05 nats, with intervals excluding 0.
        RuntimeWarning: the estimate is not finite (an exact linear relation); stderr and the
            interval are then NaN.
        RuntimeWarning: a finite estimate where y (or part of it) is, to rounding, an
            increasing or decreasing function of x
            (:func:`~mitools.classical.gaussian.monotone_relation`: ``y = x**3`` gives 0.45
            nats): the MI of continuous variables so related is infinite, and the
            estimate reads only the linear part of the relation. Checked where no column
            repeats values in more than :data:`~mitools.classical.inputs.TIED_WARNING` of the
            samples (three values and their squares have a finite MI).

    Example:
        >>> import numpy as np
        >>> from mitools.classical import gaussian_mi
        >>> rng = np.random.default_rng(0)
        >>> x = rng.standard_normal((20000, 3))
        >>> y = 0.8 * x + 0.6 * rng.standard_normal((20000, 3))  # 3 x 0.511 nats
        >>> result = gaussian_mi(x, y)
        >>> round(result.value, 2), result.interval[0] < 1.533 < result.interval[1]
        (1.53, True)
    """
    groups, level, seed = check_options(groups, level, seed)
    warn_if_unaligned(x, y, "gaussian_mi")
    xa, ya = paired_columns(x, y)
    dims = xa.shape[1] + ya.shape[1]
    why = (f"more than dx + dy + 1 = {dims + 1}, or some canonical correlation is 1 whatever "
           "the data")
    check_samples(xa.shape[0], dims + 2, why, groups, "gaussian")
    constant = constant_estimate(xa, ya, "gaussian", level, "gaussian_mi", stacklevel=3)
    if constant is not None:
        return constant
    warn_repeated_rows(xa, ya, "gaussian_mi", REPEATS_ADVICE, consequence=REPEATS_CONSEQUENCE)
    xs, ys = standardize_columns(xa), standardize_columns(ya)
    result = jackknife_estimate(_gaussian_value, xs, ys, method="gaussian", needed=dims + 2,
                                why=why, groups=groups, level=level, seed=seed)
    if math.isfinite(result.value):  # (an infinite one has the jackknife's warning)
        _warn_if_monotone(xa, ya, result.value)
        _warn_if_biased(result, xs, ys)
    return result


def _warn_if_biased(result: MIEstimate, x: np.ndarray, y: np.ndarray) -> None:
    """Warn where :func:`gaussian_bias` (of the ranks of the standardised ``x`` and ``y``)
    exceeds the interval's half-width, or, without an interval, :data:`BIAS_SHARE` of the
    estimate."""
    n = x.shape[0]
    dx, dy = _orthonormal_basis(x).shape[1], _orthonormal_basis(y).shape[1]
    bias = gaussian_bias(n, dx, dy)
    value, (low, high) = result.value, result.interval
    if math.isfinite(low):
        if bias <= (high - low) / 2:
            return
        why = (f"more than the interval's half-width, {(high - low) / 2:.3g}: the interval "
               "covers the sampling noise alone, and does not reach the estimate less its bias")
    elif bias <= BIAS_SHARE * abs(value):
        return
    else:
        why = f"more than {BIAS_SHARE:.0%} of the estimate"
    warnings.warn(
        f"gaussian_mi: about {bias:.3g} nats of this estimate, {value:.3g} nats, is the upward "
        f"bias of the in-sample fit with dx×dy = {dx}×{dy} = {dx * dy} parameters from "
        f"n = {n} samples (its expectation for Gaussian data, whatever the correlation: "
        f"mitools.classical.gaussian.gaussian_bias; dx·dy/(2n) = {dx * dy / (2 * n):.3g} is "
        f"only its first-order term), {why}. Independent variables would read about "
        f"{bias:.3g} nats; {value - bias:.3g} nats is the estimate less its expected bias. "
        "Fewer dimensions (e.g. principal components) or more samples shrink it",
        RuntimeWarning, stacklevel=3)


def _warn_if_monotone(x: np.ndarray, y: np.ndarray, value: float) -> None:
    """Warn where :func:`monotone_relation` finds y a function of x in continuous data (no
    column repeats values in more than :data:`~mitools.classical.inputs.TIED_WARNING` of the
    samples: two equal labels are a finite MI): the MI is infinite, and gaussian_mi's finite
    figure is that of the linear part of the relation."""
    if any_tied([tied_fraction(x, constant=False), tied_fraction(y, constant=False)]):
        return
    rho = monotone_relation(x, y)
    if rho is None:
        return
    warnings.warn(
        f"gaussian_mi: the estimate, {value:.2f} nats, is a lower figure, not an estimate: y "
        "(or part of it) is, to rounding, an increasing or decreasing function of x (after "
        "each column is mapped to the normal scores of its ranks, the largest canonical "
        f"correlation of x and y is 1 to rounding: {rho:.15f}), and the mutual information "
        "of continuous variables so related is infinite. gaussian_mi reads only the "
        "correlations of the values, which a non-linear function keeps below 1: report the MI "
        "as infinite",
        RuntimeWarning, stacklevel=3)
