"""The dense path: score blocks of position pairs, then the bound.

Each block of ``chunk_size`` pairs is scored in full, ``(k, N, M)``, by the critic (one batched
matmul of factors for a separable critic). For a row-wise estimator the block is reduced to its
per-row statistics (:func:`mitools.bounds.row_statistics`) and the estimator's finisher runs
once over all pairs; any other estimator is applied to each block's scores. With
``chunk_size`` the blocks are recomputed in the backward pass (activation checkpointing), so
training memory is bounded by one block too. This is the only path for non-separable critics,
for bounds without a row-wise form, and for derangement negatives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from mitools import bounds
from mitools.bounds.rowwise import RowStatistics, row_bookkeeping
from mitools.estimators import Estimator, ProblemIndex
from mitools.local.grid import take
from mitools.local.problems import Problems
from mitools.local.scoring import Scorer
from mitools.negatives import random_derangement

__all__ = ["dense_values", "derangement_values"]

#: ``block(u, v, start, stop) -> (scores (k, N, M), row_mask, col_mask)``
ScoreBlock = Callable[[Tensor, Tensor, int, int], tuple[Tensor, Tensor | None, Tensor | None]]


def _evaluate(
    estimator: Estimator,
    score_block: ScoreBlock,
    u: Tensor,
    v: Tensor,
    chunks: Iterable[tuple[int, int]],
    recompute: bool,
    offset: int,
    anchors: Callable[[int, int], Tensor | None],
    bookkeeping: tuple[Tensor | None, Tensor | None, int, int],
    index: ProblemIndex | None,
) -> Tensor:
    """Per-problem values ``(K,)`` of the blocks ``chunks`` of one call."""
    rowwise = estimator.rowwise

    def block(u: Tensor, v: Tensor, start: int, stop: int) -> tuple[Tensor, ...]:
        scores, rows, cols = score_block(u, v, start, stop)
        if rowwise is not None:
            st = bounds.row_statistics(
                scores, rowwise.statistics, offset=offset, row_mask=rows, col_mask=cols,
                name=estimator.name,
            )  # fmt: skip
            return (st.positive, *(st.of(s) for s in rowwise.statistics))
        value = estimator(
            scores, offset=offset, row_mask=rows, col_mask=cols, anchors=anchors(start, stop)
        )
        return (value,)

    parts = []
    for start, stop in chunks:  # a loop over blocks of pairs, not over pairs
        if recompute:
            parts.append(checkpoint(block, u, v, start, stop, use_reentrant=False))
        else:
            parts.append(block(u, v, start, stop))
    columns = [torch.cat(c) if len(c) > 1 else c[0] for c in zip(*parts, strict=True)]
    if rowwise is None:
        return columns[0]
    positive, values = columns[0], columns[1:]
    rows, cols, n, m = bookkeeping
    n_rows_etc = row_bookkeeping(rows, cols, n, m, positive)
    stats = RowStatistics(positive, dict(zip(rowwise.statistics, values, strict=True)), *n_rows_etc)
    return estimator.finish(
        stats,
        anchors=anchors(0, positive.shape[0]),
        problems=index if estimator.per_problem_state else None,
    )


def _anchors(
    estimator: Estimator, xp: Tensor, problems: Problems
) -> Callable[[int, int], Tensor | None]:
    """The anchors' features of pairs ``start:stop``, for estimators that need them."""

    def anchors(start: int, stop: int) -> Tensor | None:
        if not estimator.needs_anchors:
            return None
        return take(xp, problems.pairs.x_index[start:stop])

    return anchors


def dense_values(
    problems: Problems,
    scorer: Scorer,
    estimator: Estimator,
    xp: Tensor,
    u: Tensor,
    v: Tensor,
    chunk_size: int | None,
) -> Tensor:
    """Per-pair values ``(K,)`` with every other sample as a negative.

    Args:
        problems: the call's position pairs and masks.
        scorer: the critic.
        estimator: the bound.
        xp: ``(P, N, Cx)`` anchor features (for learned baselines).
        u: ``(P, N, .)`` the factors of ``x`` (a separable critic) or its features.
        v: ``(Q, M, .)`` likewise for the columns.
        chunk_size: pairs per block (``None``: one block, nothing recomputed).
    """

    def score_block(u: Tensor, v: Tensor, start: int, stop: int):
        p, q, rows, cols = problems.block(start, stop)
        return scorer.score(take(u, p), take(v, q)), rows, cols

    rows, cols = problems.masks.block(
        problems.pairs.x_index, problems.pairs.y_index, problems.offset, problems.batch,
        problems.active,
    )  # fmt: skip
    return _evaluate(
        estimator, score_block, u, v, problems.chunks(chunk_size),
        chunk_size is not None and torch.is_grad_enabled(), problems.offset,
        _anchors(estimator, xp, problems), (rows, cols, problems.batch, problems.columns),
        problems.index(),
    )  # fmt: skip


def derangement_values(
    problems: Problems,
    scorer: Scorer,
    estimator: Estimator,
    xp: Tensor,
    u: Tensor,
    v: Tensor,
    chunk_size: int | None,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor]:
    """Per-pair values ``(K,)`` with one deranged partner per anchor, and the active pairs.

    Row ``i`` holds its positive on the diagonal and its one negative everywhere else: pooled
    bounds (means over the negatives) then weight every anchor's negative equally, exactly the
    mean over the ``N`` shuffled pairs.
    """
    batch = problems.batch
    rows, _ = problems.masks.block(
        problems.pairs.x_index, problems.pairs.y_index, 0, batch, None
    )
    if rows is None:
        rows = torch.ones(len(problems), batch, dtype=torch.bool, device=xp.device)
    partner = random_derangement(rows, generator)  # (K, N)
    active = rows.sum(-1) >= 2
    rows = rows | ~active[:, None]
    eye = torch.eye(batch, dtype=torch.bool, device=xp.device)

    def score_block(u: Tensor, v: Tensor, start: int, stop: int):
        p = problems.pairs.x_index[start:stop]
        q = problems.pairs.y_index[start:stop]
        uu = take(u, p).expand(stop - start, -1, -1)
        vv = take(v, q).expand(stop - start, -1, -1)
        idx = partner[start:stop, :, None].expand(-1, -1, vv.shape[-1])
        pos = scorer.score_pairs(uu, vv)
        neg = scorer.score_pairs(uu, vv.gather(1, idx))
        r = rows[start:stop]
        return torch.where(eye, pos[..., None], neg[..., None]), r, r

    index = ProblemIndex(problems.pairs.where, tuple(problems.pairs.shape), active)
    values = _evaluate(
        estimator, score_block, u, v, problems.chunks(chunk_size),
        chunk_size is not None and torch.is_grad_enabled(), 0,
        _anchors(estimator, xp, problems), (rows, rows, batch, batch), index,
    )  # fmt: skip
    return values, active
