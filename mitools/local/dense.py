"""The dense path: score blocks of position pairs, then the bound.

Each block of ``chunk_size`` pairs is scored in full, ``(k, N, M)``, by the critic (one batched
matmul of factors for a separable critic). For a row-wise estimator the block is reduced to its
per-row statistics (:func:`mitools.bounds.row_statistics`) and the estimator's finisher runs
once over all pairs; any other estimator is applied to each block's scores. A row-wise
estimator that needs no statistic beyond the positives (BA, DoE, the log-likelihood) has only
the positive pairs scored, ``(k, N)``, whatever the critic. With ``chunk_size`` the blocks are
recomputed in the backward pass (activation checkpointing), so training memory is bounded by
one block too; not for an estimator that draws random numbers (``stochastic``: vCLUB), whose
blocks keep their graph. This is the only path for non-separable critics, for bounds without a
row-wise form, and for derangement negatives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from mitools import bounds
from mitools.bounds.rowwise import RowStatistics, row_bookkeeping
from mitools.estimators import Estimator, ProblemIndex
from mitools.estimators.base import checked_finish
from mitools.local.grid import take
from mitools.local.problems import Problems
from mitools.local.scoring import Scorer
from mitools.negatives import random_derangement

__all__ = ["dense_values", "derangement_values", "side_inputs"]

#: ``block(u, v, start, stop) -> (scores (k, N, M), row_mask, col_mask)``
ScoreBlock = Callable[[Tensor, Tensor, int, int], tuple[Tensor, Tensor | None, Tensor | None]]
#: ``positives(u, v, start, stop) -> the positive scores (k, N)``
PositiveBlock = Callable[[Tensor, Tensor, int, int], Tensor]
#: ``inputs(start, stop, finish) -> {"anchors": ..., "targets": ...}`` (see :func:`side_inputs`)
SideInputs = Callable[[int, int, bool], dict[str, Any]]


def side_inputs(estimator: Estimator, xp: Tensor, yq: Tensor, problems: Problems) -> SideInputs:
    """The inputs beside the scores that an estimator declares it needs, for pairs
    ``start:stop``: ``anchors (k, N, Cx)`` (``needs_anchors``) and ``targets``
    (``needs_targets``), all the columns ``(k, M, Cy)`` for ``forward`` or each row's positive
    ``(k, N, Cy)`` for ``finish``. A single position gives a broadcastable ``(1, ., .)``."""
    offset, n = problems.offset, problems.batch

    def inputs(start: int, stop: int, finish: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"anchors": None}
        if estimator.needs_anchors:
            out["anchors"] = take(xp, problems.pairs.x_index[start:stop])
        if estimator.needs_targets:
            targets = take(yq, problems.pairs.y_index[start:stop])
            out["targets"] = targets[:, offset : offset + n] if finish else targets
        return out

    return inputs


def _evaluate(
    estimator: Estimator,
    score_block: ScoreBlock,
    positive_block: PositiveBlock,
    u: Tensor,
    v: Tensor,
    problems: Problems,
    chunk_size: int | None,
    offset: int,
    inputs: SideInputs,
    bookkeeping: tuple[Tensor | None, Tensor | None, int, int],
    index: ProblemIndex | None,
) -> Tensor:
    """Per-problem values ``(K,)`` of the blocks of ``chunk_size`` pairs of one call."""
    rowwise = estimator.rowwise
    # len(), not truthiness: torch.compile cannot trace "not" of this tuple (a graph break)
    positives_only = rowwise is not None and len(rowwise.statistics) == 0

    def block(u: Tensor, v: Tensor, start: int, stop: int) -> tuple[Tensor, ...]:
        if positives_only:
            return (positive_block(u, v, start, stop),)
        scores, rows, cols = score_block(u, v, start, stop)
        if rowwise is not None:
            st = bounds.row_statistics(
                scores, rowwise.statistics, offset=offset, row_mask=rows, col_mask=cols,
                name=estimator.name,
            )  # fmt: skip
            return (st.positive, *(st.of(s) for s in rowwise.statistics))
        value = estimator(
            scores, offset=offset, row_mask=rows, col_mask=cols, **inputs(start, stop, False)
        )
        return (value,)

    recompute = chunk_size is not None and torch.is_grad_enabled() and not estimator.stochastic
    parts = []
    for start, stop in problems.chunks(chunk_size):  # a loop over blocks of pairs, not over pairs
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
    if positives_only:  # the scores were never checked: check the positives
        active = None if index is None else index.active
        problems.check_finite(positive, [], stats.row_valid, active)
    return checked_finish(
        estimator,
        stats,
        **inputs(0, positive.shape[0], True),
        problems=index if estimator.per_problem_state else None,
    )


def dense_values(
    problems: Problems,
    scorer: Scorer,
    estimator: Estimator,
    xp: Tensor,
    yq: Tensor,
    u: Tensor,
    v: Tensor,
    chunk_size: int | None,
) -> Tensor:
    """Per-pair values ``(K,)`` with every other sample as a negative.

    Args:
        problems: the call's position pairs and masks.
        scorer: the critic.
        estimator: the bound.
        xp: ``(P, N, Cx)`` anchor features (for estimators that need anchors).
        yq: ``(Q, M, Cy)`` column features (for estimators that need targets).
        u: ``(P, N, .)`` the factors of ``x`` (a separable critic) or its features.
        v: ``(Q, M, .)`` likewise for the columns.
        chunk_size: pairs per block (``None``: one block, nothing recomputed).
    """
    offset, n = problems.offset, problems.batch

    def score_block(u: Tensor, v: Tensor, start: int, stop: int):
        p, q, rows, cols = problems.block(start, stop)
        return scorer.score(take(u, p), take(v, q)), rows, cols

    def positive_block(u: Tensor, v: Tensor, start: int, stop: int) -> Tensor:
        p, q = problems.pairs.x_index[start:stop], problems.pairs.y_index[start:stop]
        vv = take(v, q)[:, offset : offset + n]
        return scorer.score_pairs(take(u, p), vv).expand(stop - start, n)

    rows, cols = problems.masks.block(
        problems.pairs.x_index, problems.pairs.y_index, offset, n, problems.active,
    )  # fmt: skip
    return _evaluate(
        estimator, score_block, positive_block, u, v, problems, chunk_size, offset,
        side_inputs(estimator, xp, yq, problems), (rows, cols, n, problems.columns),
        problems.index(),
    )  # fmt: skip


def derangement_values(
    problems: Problems,
    scorer: Scorer,
    estimator: Estimator,
    xp: Tensor,
    yq: Tensor,
    u: Tensor,
    v: Tensor,
    chunk_size: int | None,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor]:
    """Per-pair values ``(K,)`` with one deranged partner per anchor, and the active pairs.

    The partners are a derangement of the valid *columns* (every valid anchor is a valid
    column: its positive is), so an anchor's negative is another sample's valid ``y`` even
    where that sample's ``x`` is padding; a pair is active with one valid anchor and two valid
    columns, as with ``negatives="all"``. Row ``i`` holds its positive on the diagonal and its
    one negative in every other valid column: pooled bounds (means over the negatives) then
    weight every anchor's negative equally, exactly the mean over the shuffled pairs. (CLUB is
    then vCLUB on the deranged partners.)
    """
    batch = problems.batch
    rows, cols = problems.masks.block(
        problems.pairs.x_index, problems.pairs.y_index, 0, batch, None
    )
    every = torch.ones(len(problems), batch, dtype=torch.bool, device=xp.device)
    rows = every if rows is None else rows
    cols = every if cols is None else cols[:, :batch]
    partner = random_derangement(cols, generator)  # (K, N)
    active = (rows.sum(-1) >= estimator.min_rows) & (cols.sum(-1) >= 2)
    rows, cols = rows | ~active[:, None], cols | ~active[:, None]
    eye = torch.eye(batch, dtype=torch.bool, device=xp.device)

    def pair_factors(u: Tensor, v: Tensor, start: int, stop: int) -> tuple[Tensor, Tensor]:
        p = problems.pairs.x_index[start:stop]
        q = problems.pairs.y_index[start:stop]
        return take(u, p).expand(stop - start, -1, -1), take(v, q).expand(stop - start, -1, -1)

    def positive_block(u: Tensor, v: Tensor, start: int, stop: int) -> Tensor:
        return scorer.score_pairs(*pair_factors(u, v, start, stop))

    def score_block(u: Tensor, v: Tensor, start: int, stop: int):
        uu, vv = pair_factors(u, v, start, stop)
        idx = partner[start:stop, :, None].expand(-1, -1, vv.shape[-1])
        pos = scorer.score_pairs(uu, vv)
        neg = scorer.score_pairs(uu, vv.gather(1, idx))
        return torch.where(eye, pos[..., None], neg[..., None]), rows[start:stop], cols[start:stop]

    # no gather, no queue: the columns are the batch itself (offset 0, M = N)
    index = ProblemIndex(problems.pairs.where, tuple(problems.pairs.shape), active)
    values = _evaluate(
        estimator, score_block, positive_block, u, v, problems, chunk_size, 0,
        side_inputs(estimator, xp, yq, problems), (rows, cols, batch, batch), index,
    )  # fmt: skip
    return values, active
