"""Max-norm nearest neighbours with a k-d tree: the low-dimensional backend of the k-NN
estimators.

Two primitives serve KSG and the mixed estimator alike:

* :func:`kth_neighbours`: for every sample, the distance to its ``k``-th nearest *other*
  sample and the indices of its ``k`` nearest others;
* :func:`count_within`: for every sample ``i``, how many *other* samples lie within
  ``radius[i]`` of it (``<=``), or strictly inside it.

Distances are under the max-norm :math:`\\|a\\|_\\infty = \\max_c |a_c|`; the joint distance
of two pairs is the larger of the two marginal distances, so the joint space is the
concatenation ``[x, y]``. Both use ``scipy.spatial.cKDTree`` (``query``, and
``query_ball_point(..., return_length=True)``), whose cost grows like :math:`n \\log n` in low
dimension; in high dimension a tree prunes nothing, and :mod:`mitools.classical.pairwise`
takes over. A strict inequality is a ``<=`` test at the next float below the radius
(:func:`numpy.nextafter`), which is exact: max-norm distances are differences of the same
floats, computed the same way everywhere.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from mitools.option_checks import check_threads, usable_cpus

__all__ = ["count_within", "kth_neighbours", "resolve_threads"]


def resolve_threads(threads: int | None) -> int:
    """``None`` -> every CPU this process may use; otherwise ``threads``, checked to lie
    between 1 and that count (:func:`~mitools.option_checks.check_threads`)."""
    if threads is None:
        return usable_cpus()
    return check_threads("threads", threads)


def kth_neighbours(z: np.ndarray, k: int, *, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Distance to the ``k``-th nearest other sample, and the ``k`` nearest others.

    Args:
        z: ``(n, d)`` samples (for a joint space, ``[x, y]`` side by side), ``n > k``.
        k: number of neighbours, ``1 <= k < n``.
        threads: worker threads.

    Returns:
        ``(radius, neighbours)``: ``(n,)`` max-norm distance to the ``k``-th nearest other
        sample, and ``(n, k)`` indices of the ``k`` nearest others, nearest first (ties in
        an arbitrary order).

    Example:
        >>> import numpy as np
        >>> radius, nearest = kth_neighbours(np.array([[0.0], [1.0], [3.0]]), 1)
        >>> radius, nearest.ravel()
        (array([1., 1., 2.]), array([1, 0, 1]))
    """
    n = z.shape[0]
    dist, idx = cKDTree(z).query(z, k=k + 1, p=np.inf, workers=threads)
    # drop each row's own index; where k + 1 others tie at distance 0 and the row itself is
    # not listed, drop the last entry instead
    is_self = idx == np.arange(n)[:, None]
    is_self[~is_self.any(axis=1), k] = True
    keep = ~is_self
    return dist[keep].reshape(n, k)[:, k - 1], idx[keep].reshape(n, k)


def count_within(
    a: np.ndarray, radius: np.ndarray, *, strict: bool, threads: int = 1
) -> np.ndarray:
    """For every sample, the number of other samples within its radius (max-norm).

    Args:
        a: ``(n, d)`` samples.
        radius: ``(n,)`` non-negative radii, one per sample.
        strict: count distances ``< radius`` (``True``) or ``<= radius`` (``False``).
        threads: worker threads.

    Returns:
        ``(n,)`` integer counts, the sample itself excluded.

    Example:
        >>> import numpy as np
        >>> a, r = np.array([[0.0], [1.0], [3.0]]), np.array([1.0, 1.0, 1.0])
        >>> count_within(a, r, strict=False), count_within(a, r, strict=True)
        (array([1, 1, 0]), array([0, 0, 0]))
    """
    r = np.nextafter(radius, -np.inf) if strict else radius
    found = cKDTree(a).query_ball_point(
        a, np.maximum(r, 0.0), p=np.inf, return_length=True, workers=threads
    )
    # a negative radius (strictly inside 0) finds nothing, not even the sample itself
    return np.where(r < 0, 0, np.asarray(found) - 1).astype(np.intp)
