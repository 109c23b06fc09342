r"""The three k-NN estimators as per-sample counts and one formula that turns counts into nats.

Each estimator (formulas in :mod:`mitools.classical.knn`) is a triple in :data:`ESTIMATORS`:
its counts by k-d tree (``scipy.spatial.cKDTree``, :mod:`mitools.classical.neighbours`), the
same counts as a rule on blocks of pairwise distances (:mod:`mitools.classical.pairwise`), and
the formula that reads the counts. :func:`ceiling` is that formula with every count at its
minimum.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.special import digamma

from mitools.classical.neighbours import count_within, kth_neighbours
from mitools.classical.pairwise import Counts, Rule

__all__ = ["ESTIMATORS", "Finish", "TreeCounts", "ceiling"]


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
#: per method: its counts by tree, its rule on distance blocks, its formula
ESTIMATORS: dict[str, tuple[TreeCounts, Rule, Finish]] = {
    "ksg1": (_tree_ksg1, _rule_ksg1, _finish_ksg1),
    "ksg2": (_tree_ksg2, _rule_ksg2, _finish_ksg2),
    "mixed_ksg": (_tree_mixed, _rule_mixed, _finish_mixed),
}
