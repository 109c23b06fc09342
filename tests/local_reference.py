"""Naive reference for LocalMILoss: Python loops over position pairs and samples.

Independent of :mod:`mitools.local`'s vectorisation: the grids are flattened with
``movedim``/``reshape`` (not einops), each anchor's row of scores comes from its own critic
call, each position pair's score matrix goes through the estimator on its own, and the
reduction is taken over a Python list. The bound formulas themselves are those of
:mod:`mitools.bounds` (their single source of truth, tested against closed forms in
``tests/test_bounds.py``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mitools.samplers import PairSampler, random_derangement


def flatten_grid(t: Tensor, pattern: str) -> tuple[Tensor, tuple[int, ...]]:
    """``t`` named by ``pattern`` -> ``(B, P, C)`` (row-major over the grid axes in order)."""
    axes = pattern.split()
    grid_axes = [a for a in axes if a not in ("b", "c")]
    order = [axes.index("b")] + [axes.index(a) for a in grid_axes] + [axes.index("c")]
    moved = t.permute(*order)
    grid = tuple(moved.shape[1:-1])
    return moved.reshape(moved.shape[0], math.prod(grid), moved.shape[-1]), grid


def naive_local_mi(
    estimator,
    critic,
    sampler: PairSampler,
    reduction: str,
    x: Tensor,
    y: Tensor,
    x_pattern: str,
    y_pattern: str,
    x_mask: Tensor | None = None,
    y_mask: Tensor | None = None,
    negatives: str = "all",
    generator: torch.Generator | None = None,
    estimator_of_pair=None,
) -> tuple[Tensor | None, list[float]]:
    """Objective (``None`` if no pair is active), per-pair estimates (NaN: inactive).

    ``estimator_of_pair(p, q)``, when given, returns the estimator of position pair ``(p, q)``
    (e.g. one MINE per pair, with its own moving average); otherwise ``estimator`` scores every
    pair. An estimator that declares ``needs_anchors`` / ``needs_targets`` gets the pair's
    anchors ``(B, Cx)`` / columns ``(B, Cy)``; a pair with fewer valid anchors than its
    ``min_rows`` is inactive.
    """
    xs, grid_x = flatten_grid(x, x_pattern)
    ys, grid_y = flatten_grid(y, y_pattern)
    b = xs.shape[0]
    xm = (
        x_mask.reshape(b, -1)
        if x_mask is not None
        else torch.ones(b, xs.shape[1], dtype=torch.bool)
    )
    ym = (
        y_mask.reshape(b, -1)
        if y_mask is not None
        else torch.ones(b, ys.shape[1], dtype=torch.bool)
    )
    pairs = sampler(grid_x, grid_y)

    def f(xi: Tensor, yj: Tensor) -> Tensor:  # one anchor (Cx,) against columns (M, Cy)
        if critic is None:
            return (xi[None] @ yj.T)[0]
        return critic(xi[None], yj)[0]

    rows_valid, cols_valid = [], []
    for k in range(len(pairs)):
        p, q = int(pairs.x_index[k]), int(pairs.y_index[k])
        rows_valid.append([bool(xm[i, p]) and bool(ym[i, q]) for i in range(b)])
        cols_valid.append([bool(ym[j, q]) for j in range(b)])
    partner = None
    if negatives == "derangement":  # every anchor's partner: another valid column
        partner = random_derangement(torch.tensor(cols_valid, dtype=torch.bool), generator)

    values: list[Tensor] = []
    estimates: list[float] = []
    for k in range(len(pairs)):
        p, q = int(pairs.x_index[k]), int(pairs.y_index[k])
        row_mask = torch.tensor(rows_valid[k], dtype=torch.bool)
        col_mask = torch.tensor(cols_valid[k], dtype=torch.bool)
        if row_mask.sum() < getattr(estimator, "min_rows", 1) or col_mask.sum() < 2:
            estimates.append(math.nan)
            continue
        if negatives == "all":
            scores = torch.stack([f(xs[i, p], ys[:, q]) for i in range(b)])
        else:
            assert partner is not None
            entries = []
            for i in range(b):
                pos = f(xs[i, p], ys[i, q][None])[0]
                neg = f(xs[i, p], ys[int(partner[k, i]), q][None])[0]
                entries.append(torch.stack([pos if j == i else neg for j in range(b)]))
            scores = torch.stack(entries)
        est = estimator if estimator_of_pair is None else estimator_of_pair(p, q)
        side = {}
        if getattr(est, "needs_anchors", False):
            side["anchors"] = xs[:, p]
        if getattr(est, "needs_targets", False):
            side["targets"] = ys[:, q]
        value = est(scores, row_mask=row_mask, col_mask=col_mask, **side)
        values.append(value)
        estimates.append(float(value.detach()))
    if not values:
        return None, estimates
    stacked = torch.stack(values)
    if reduction == "mean":
        objective = sum(values) / len(values)
    elif reduction == "sum":
        objective = sum(values)
    elif reduction == "max":
        objective = stacked.max()
    else:
        objective = torch.logsumexp(stacked, dim=0)
    return objective, estimates
