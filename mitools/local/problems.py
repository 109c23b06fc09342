"""The estimation problems of one call: position pairs scored over the batch, and their masks.

After packing and sampling, a call holds ``K`` position pairs ``(p_k, q_k)``. Pair ``k`` is one
estimation problem: rows are the anchors ``x_i[p_k]`` (``N`` local samples), columns the
``y_j[q_k]`` of the (gathered, queued) batch (``M`` columns), the positive of row ``i`` at column
``i + offset``. ``Problems`` holds what every execution path needs to score them: the
pairs, the masks of each block of pairs, which pairs are real (*active*), and how to combine
the ranks' estimates.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from mitools import distributed
from mitools.bounds import RowStatistic, check_finite
from mitools.estimators import ProblemIndex
from mitools.samplers import PositionPairs

__all__ = ["PairMasks", "Problems"]


class PairMasks(NamedTuple):
    """Position masks, position-major: anchors ``x (P, N)`` and columns ``y (Q, M)``."""

    x: Tensor | None
    y: Tensor | None

    def block(
        self, p: Tensor, q: Tensor, offset: int, batch: int, active: Tensor | None
    ) -> tuple[Tensor | None, Tensor | None]:
        """Row mask ``(k, N)`` and column mask ``(k, M)`` of pairs ``(p, q)``.

        A row (anchor ``x_i[p]``) is valid when ``x_i[p]`` and its positive ``y_i[q]`` are; a
        column when ``y_j[q]`` is. Inactive pairs (no valid anchor or fewer than two valid
        columns) get all-valid dummy masks: their values are computed but never used.
        """
        if self.x is None and self.y is None:
            return None, None
        rows = self.x.index_select(0, p) if self.x is not None else None
        cols = self.y.index_select(0, q) if self.y is not None else None
        if cols is not None:
            pos = cols[:, offset : offset + batch]
            rows = pos if rows is None else rows & pos
        if active is not None:
            if rows is not None:
                rows = rows | ~active[:, None]
            if cols is not None:
                cols = cols | ~active[:, None]
        return rows, cols


@dataclass
class Problems:
    """The ``K`` estimation problems of one call.

    Attributes:
        pairs: the sampler's position pairs.
        masks: anchor and column masks, position-major.
        offset: column of the positive of local row 0.
        batch: ``N``, the local rows (anchors) per problem.
        columns: ``M``, the columns per problem.
        active: ``(K,)`` bool, pairs with ``min_rows`` valid anchors and two valid columns
            (``None``: all).
        n_rows: ``(K,)`` the valid anchors of each pair (``None`` without masks).
        min_rows: the valid anchors a pair needs to be active (the estimator's ``min_rows``).
    """

    pairs: PositionPairs
    masks: PairMasks
    offset: int
    batch: int
    columns: int
    active: Tensor | None = None
    n_rows: Tensor | None = None
    min_rows: int = 1
    #: every rank holds these problems, its own anchors against the gathered columns
    gathered: bool = False

    def __post_init__(self) -> None:
        if self.masks.x is None and self.masks.y is None:
            return
        rows, cols = self.masks.block(
            self.pairs.x_index, self.pairs.y_index, self.offset, self.batch, None
        )
        active = torch.ones(len(self.pairs), dtype=torch.bool, device=self.pairs.x_index.device)
        if rows is not None:
            self.n_rows = rows.sum(-1)
            active &= self.n_rows >= self.min_rows
        if cols is not None:
            active &= cols.sum(-1) >= 2
        self.active = active

    def __len__(self) -> int:
        return len(self.pairs)

    def chunks(self, size: int | None) -> Iterator[tuple[int, int]]:
        """``(start, stop)`` of consecutive blocks of at most ``size`` pairs (``None``: one)."""
        step = size or len(self)
        for start in range(0, len(self), step):
            yield start, min(start + step, len(self))

    def block(self, start: int, stop: int) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """``p``, ``q`` ``(k,)`` and the row ``(k, N)`` / column ``(k, M)`` masks of a block."""
        p, q = self.pairs.x_index[start:stop], self.pairs.y_index[start:stop]
        act = self.active[start:stop] if self.active is not None else None
        rows, cols = self.masks.block(p, q, self.offset, self.batch, act)
        return p, q, rows, cols

    def index(self) -> ProblemIndex:
        """Which problems these are, for estimators with per-problem state."""
        return ProblemIndex(self.pairs.where, tuple(self.pairs.shape), self.active,
                            self.gathered)

    def valid(
        self, statistic: RowStatistic, cols: Tensor | None, c0: int, c1: int, device: torch.device
    ) -> Tensor | None:
        """Bool ``(k or 1, N or 1, c)``: which entries of columns ``c0:c1`` a statistic counts.

        ``cols`` is the block's column mask ``(k, M)``; ``"negatives"`` also leaves out each
        row's positive. ``None`` when every entry counts.
        """
        valid = cols[:, None, c0:c1] if cols is not None else None
        if statistic.over == "negatives":
            col = torch.arange(c0, c1, device=device)
            row = torch.arange(self.batch, device=device)
            neg = (col[None, :] != row[:, None] + self.offset)[None]  # (1, N, c)
            valid = neg if valid is None else valid & neg
        return valid

    def check_finite(
        self,
        positive: Tensor,
        values: list[Tensor],
        row_valid: Tensor | None,
        active: Tensor | None = None,
    ) -> None:
        """The bounds' finiteness contract on accumulated statistics ``(K, N)`` (the fused paths
        and the positives-only dense path, which never hold the scores): a non-finite entry of a
        valid row of an active pair (``active``, default :attr:`active`) raises a
        ``ValueError`` naming the pair and the row."""
        if not check_finite.is_enabled():
            return
        active = self.active if active is None else active
        counts = torch.ones_like(positive, dtype=torch.bool)
        if row_valid is not None:
            counts = counts & row_valid
        if active is not None:
            counts = counts & active[:, None]
        for what, t in (("positive scores", positive), *(("scores", v) for v in values)):
            bad = ~torch.isfinite(t) & counts
            if bool(bad.any()):
                pair, row = (int(i) for i in bad.nonzero()[0])
                raise ValueError(
                    f"LocalMILoss: the {what} of position pair {pair} (x position "
                    f"{int(self.pairs.x_index[pair])}, y position "
                    f"{int(self.pairs.y_index[pair])}), row {row}, are not finite "
                    f"({float(t[pair, row].detach())}); every unmasked score must be finite "
                    "(check the features and the critic, or switch the check off with "
                    "mitools.bounds.check_finite(False))"
                )

    def combine_ranks(self, values: Tensor) -> tuple[Tensor, Tensor]:
        """Global per-pair estimates: the ranks' estimates weighted by their valid anchors.

        Every rank scores its own anchors against the same global columns, so for bounds that
        average over anchors and negatives (InfoNCE, NWJ, TUBA, JS, JSD) this weighted mean is
        the estimate of the concatenated batch, padding included; reducing over pairs
        afterwards makes ``max`` and ``logsumexp`` exact too.
        """
        active = self.active
        if active is None:
            active = torch.ones(len(self), dtype=torch.bool, device=values.device)
        n_rows = self.n_rows if self.n_rows is not None else torch.full_like(values, self.batch)
        weight = torch.where(active, n_rows.to(values.dtype), torch.zeros_like(values))
        # a pair without anchors on this rank (an empty batch) may have a NaN value: weight 0
        # must leave no trace (0 * NaN is NaN on every rank)
        values = torch.where(weight > 0, values, torch.zeros_like(values))
        total = distributed.all_reduce_sum_with_grad(weight)
        weighted = distributed.all_reduce_sum_with_grad(values * weight)
        return weighted / total.clamp(min=1.0), total > 0
