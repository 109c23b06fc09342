"""Blocks of pairwise max-norm distances: the high-dimensional backend of the k-NN
estimators, which serves the full sample and every jackknife subsample in one pass.

In high dimension a k-d tree prunes nothing and the :math:`n^2` distances are the real cost.
:func:`subset_counts` computes them once, block of rows by block of rows
(``scipy.spatial.distance.cdist``; about 200 MB in all, whatever ``n``), and evaluates an
estimator's counting *rule* on each block for the full sample and for the sample without
each jackknife group in turn: leaving a group out sets its columns to :math:`+\\infty`, so it
is never a neighbour and never counted. The jackknife then costs a few passes over each block
instead of ``groups`` recomputations of the distances.

A rule maps the blocks ``dx (c, n)``, ``dy (c, n)`` of marginal distances (the sample itself
and the left-out samples at :math:`+\\infty`) to per-row ``(k_tilde, n_x, n_y)``; the rules of
:mod:`mitools.classical.knn` give the same counts as its k-d tree path (tested).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.spatial.distance import cdist

__all__ = ["Counts", "Rule", "subset_counts"]

Counts = tuple[np.ndarray, np.ndarray, np.ndarray]
#: ``rule(dx, dy, k) -> (k_tilde, n_x, n_y)``, one entry per row of the blocks
Rule = Callable[[np.ndarray, np.ndarray, int], Counts]
#: the blocks of all threads together hold about this many distances per variable (8 bytes
#: each; with the rules' temporaries, about 200 MB in all, whatever the number of threads)
_BLOCK_ENTRIES = 1 << 22


def subset_counts(
    x: np.ndarray,
    y: np.ndarray,
    rule: Rule,
    k: int,
    group_of: np.ndarray | None = None,
    groups: int = 0,
    *,
    threads: int = 1,
    progress: Callable[[int], None] | None = None,
) -> list[Counts]:
    """A rule's per-sample counts on the full sample and without each jackknife group.

    Args:
        x: ``(n, dx)`` samples.
        y: ``(n, dy)`` samples.
        rule: the estimator's counting rule (see the module docstring).
        k: its number of neighbours.
        group_of: ``(n,)`` jackknife group of every sample, in ``0 .. groups - 1``.
        groups: number of groups (0: the full sample only).
        threads: worker threads (blocks of rows run in parallel).
        progress: called with the number of rows done after each block.

    Returns:
        ``groups + 1`` triples ``(k_tilde, n_x, n_y)``: entry ``g < groups`` over the samples
        outside group ``g`` (in sample order, counted among those samples), the last over all.

    Example:
        >>> import numpy as np
        >>> def nearest_within(dx, dy, k):  # k = 1: x-neighbours within the joint distance
        ...     eps = np.maximum(dx, dy).min(axis=1)
        ...     return np.ones_like(eps), (dx <= eps[:, None]).sum(1), (dy < np.inf).sum(1)
        >>> x, y = np.array([[0.0], [1.0], [3.0]]), np.array([[0.0], [0.5], [0.0]])
        >>> full = subset_counts(x, y, nearest_within, 1)[-1]
        >>> full[1], full[2]  # x-counts, and every other sample for y
        (array([1, 1, 1]), array([2, 2, 2]))
    """
    n = x.shape[0]
    if group_of is None or groups == 0:
        group_of, groups = np.zeros(n, dtype=np.intp), 0
    order = np.argsort(group_of, kind="stable")  # each group a contiguous range of columns
    xs, ys, gs = x[order], y[order], group_of[order]
    edges = np.searchsorted(gs, np.arange(groups + 1))
    out = np.zeros((groups + 1, 3, n), dtype=np.intp)

    def block(rows: slice) -> None:
        dx, dy = cdist(xs[rows], xs, "chebyshev"), cdist(ys[rows], ys, "chebyshev")
        own = np.arange(rows.stop - rows.start)
        dx[own, rows.start + own] = np.inf  # a sample is never its own neighbour
        dy[own, rows.start + own] = np.inf
        for g in range(groups + 1):
            if g == groups:
                out[g, :, rows] = rule(dx, dy, k)
                continue
            cols = slice(edges[g], edges[g + 1])
            keep_x, keep_y = dx[:, cols].copy(), dy[:, cols].copy()
            dx[:, cols], dy[:, cols] = np.inf, np.inf
            out[g, :, rows] = rule(dx, dy, k)  # rows of group g are dropped below
            dx[:, cols], dy[:, cols] = keep_x, keep_y
        if progress is not None:
            progress(rows.stop - rows.start)

    step = max(1, max(_BLOCK_ENTRIES // threads, 1 << 17) // max(n, 1))
    blocks = [slice(s, min(s + step, n)) for s in range(0, n, step)]
    if threads == 1 or len(blocks) == 1:
        for b in blocks:
            block(b)
    else:  # cdist and numpy's reductions release the GIL
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(block, blocks))
    back = np.empty(n, dtype=np.intp)
    back[order] = np.arange(n)
    result: list[Counts] = []
    for g in range(groups + 1):
        in_sample = back[group_of != g] if g < groups else back
        k_tilde, n_x, n_y = out[g][:, in_sample]
        result.append((k_tilde, n_x, n_y))
    return result
