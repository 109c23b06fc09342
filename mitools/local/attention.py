r"""The attention path: row log-sum-exps from fused attention kernels, in O(B·P·D) memory.

For a separable critic the scores of pair ``k`` are ``S = Q Kᵀ`` with ``Q = u[p_k]`` (the
anchors' factors) and ``K = v[q_k]`` (the columns'). Fused attention kernels (flash,
memory-efficient; on CPU the flash kernel) return ``lse_i = logsumexp_j S_ij`` and
``O = softmax(S) V`` without storing ``S``. With ``V = K`` and scale 1:

* ``lse`` is every row's log-sum-exp over the kernel's key columns;
* ``O_i = Σ_j softmax(S)_ij K_j = ∂ lse_i / ∂Q_i``, so the gradient with respect to the anchors
  is ``g_i O_i``;
* the kernel's backward, given ``grad_out = g ⊙ Q``, returns ``dV = softmax(S)ᵀ (g ⊙ Q)``, which
  is ``∂(Σ_i g_i lse_i) / ∂K``.

The log-sum-exp over the *negatives* (DV, NWJ, TUBA, MINE) leaves out each row's positive
exactly, with no mask: the columns outside the diagonal block (other ranks, the queue) take
one plain call; within the diagonal block, a causal call on ``Q[1:]`` against ``K[:-1]`` covers
the columns ``j < i`` and the same on the reversed rows covers ``j > i``; the parts merge by
``logaddexp``. (The closed form ``lse + log(1 - exp(pos - lse))`` would cancel catastrophically
when the positive dominates its row.) The log-sum-exp over all columns (InfoNCE) is that over
the negatives merged with the row's positive score, which therefore enters the bound as one
number: ``pos - lse`` cancels exactly even in float32 with scores of magnitude 10^5. Padding
columns are removed by zeroing their key factors and one extra factor column, ``1`` on the
anchors' side and, on the columns' side, ``0`` or a bias ``b``, which is then a padding
column's whole score: by Cauchy-Schwarz a valid score lies in ``[-R, R]`` with
``R = max_i |Q_i| max_j |K_j|`` (valid ``j``), so ``b = -(R + 80 + log M)`` puts every padding
score at least ``80 + log M`` nats below every valid one, for any valid score down to 99 % of
the dtype's largest number (a fixed ``-32768`` let padding dominate rows whose valid scores
were lower).

A plain *sum* of the scores over a row's columns (CLUB's statistic) needs no kernel: it is
linear, ``Σ_j S_ij = Q_i · Σ_j K_j`` over the valid columns (less the positive for the
negatives), and so is its gradient; it costs O(K N E) too.

The kernels are private ATen operators, looked up and verified by :mod:`mitools.local.kernels`;
a missing or failing kernel makes the loss fall back to the blocked path with a one-time
warning, never crash.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mitools.bounds import RowStatistic
from mitools.local.blocked import (
    positive_gradient,
    positive_scores,
    scatter_back,
    without_autocast,
)
from mitools.local.grid import take
from mitools.local.kernels import Kernel, compute_dtype, find_kernel
from mitools.local.problems import Problems

__all__ = ["Kernel", "attention_statistics", "compute_dtype", "find_kernel", "supports"]

#: How far (in nats) a padding column's score is put below every valid score of its row, plus
#: log M: exp(-MASK_MARGIN) = 2e-35, below every dtype's resolution.
MASK_MARGIN = 80.0


def supports(statistics: tuple[RowStatistic, ...]) -> bool:
    """Whether the attention path computes these statistics: log-sum-exps (by kernel) and sums
    (by linearity) of the scores themselves, not of a transform of them."""
    return all(s.transform is None for s in statistics)


def _column_sum(vv: Tensor, cols: Tensor | None) -> Tensor:
    """``Σ_j K_j`` over the valid columns: ``vv (k|1, M, E)``, ``cols (k, M)`` -> ``(k|1, E)``."""
    return vv.sum(1) if cols is None else (vv * cols[..., None].to(vv.dtype)).sum(1)


def _positive_counted(stat: RowStatistic, cols: Tensor | None, offset: int, n: int,
                      like: Tensor) -> Tensor | None:  # fmt: skip
    """``(k, N)`` 1 where a row's sum over the valid columns includes its positive and the
    statistic must leave it out (``"negatives"``); ``None`` when nothing is left out."""
    if stat.over != "negatives":
        return None
    if cols is None:
        return like.new_ones(())
    return cols[:, offset : offset + n].to(like.dtype)


def _linear_sum(uu: Tensor, vv: Tensor, cols: Tensor | None, stat: RowStatistic,
                positive: Tensor, offset: int) -> Tensor:  # fmt: skip
    """A ``"sum"`` statistic of the scores ``(k, N)`` by linearity, from the factors."""
    k, n = positive.shape
    total = (uu * _column_sum(vv, cols)[:, None, :]).sum(-1).expand(k, n)
    left_out = _positive_counted(stat, cols, offset, n, positive)
    return total if left_out is None else total - left_out * positive


class _Call(NamedTuple):
    """One kernel call of a block: which rows and key columns, and what backward needs."""

    rows: slice  # the block's rows the call covers (in the block's order)
    keys: Tensor  # (S,) long: the block's columns the call covers, in the call's key order
    flip: bool  # the call sees the rows reversed (the upper triangle)
    causal: bool
    out: Tensor  # like the call's queries
    aux: tuple[Any, ...]
    lse: Tensor  # (k, L) in the block's row order


def _padding_bias(uu: Tensor, vv: Tensor, cols: Tensor, k: int, dtype: torch.dtype) -> Tensor:
    """``(k, M, 1)``: 0 on valid columns; on padding, whose key factors are zeroed, the score
    itself: ``MASK_MARGIN + log M`` below every valid score of its pair (see the module
    docstring), at most 99 % of ``dtype``'s largest number (so that it stays finite)."""
    wide = torch.promote_types(dtype, torch.float32)
    valid = cols[..., None].to(wide)
    reach = uu.to(wide).norm(dim=-1).amax(-1) * (vv.to(wide) * valid).norm(dim=-1).amax(-1)
    gap = reach + MASK_MARGIN + math.log(max(cols.shape[-1], 1))  # (k|1,)
    bias = -gap.clamp(max=0.99 * torch.finfo(dtype).max).expand(k)[:, None]
    return torch.where(cols, torch.zeros((), dtype=wide, device=cols.device), bias
                       ).to(dtype)[..., None]  # fmt: skip


def _layout(
    uu: Tensor, vv: Tensor, cols: Tensor | None, k: int, kernel: Kernel, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    """Queries ``(k, N, E')`` and keys ``(k|1, M, E')``: padding folded in, padded, cast."""
    q = uu.expand(k, -1, -1).to(dtype)
    kk = vv.to(dtype)
    if cols is not None:
        bias = _padding_bias(uu, vv, cols, k, dtype)  # (k, M, 1)
        q = torch.cat([q, q.new_ones((*q.shape[:-1], 1))], -1)
        keys = kk.expand(k, -1, -1).masked_fill(~cols[..., None], 0.0)  # padding scores 0 ...
        kk = torch.cat([keys, bias], -1)  # ... plus its bias
    pad = (-q.shape[-1]) % kernel.multiple
    if pad:
        q, kk = F.pad(q, (0, pad)), F.pad(kk, (0, pad))
    return q, kk


def _calls(q: Tensor, kk: Tensor, stat: RowStatistic, offset: int, kernel: Kernel) -> list[_Call]:
    """The kernel calls of one statistic over one block (see the module docstring)."""
    k, n, m = q.shape[0], q.shape[1], kk.shape[1]
    device = q.device
    # Every statistic is taken over the negatives; "columns" adds the positive afterwards
    # (see _AttentionStatistics): the positive then enters a row's log-sum-exp once, from the
    # same number as the bound's positive term, so pos - lse cancels exactly in float32.
    plan: list[tuple[slice, Tensor, bool, bool]] = []
    outside = torch.cat([torch.arange(offset, device=device),
                         torch.arange(offset + n, m, device=device)])  # fmt: skip
    if outside.numel():
        plan.append((slice(0, n), outside, False, False))
    if n > 1:
        diag = torch.arange(offset, offset + n, device=device)
        plan.append((slice(1, n), diag[:-1], False, True))  # j < i
        plan.append((slice(0, n - 1), diag.flip(0)[:-1], True, True))  # j > i
    calls = []
    for rows, keys, flip, causal in plan:
        q4, k4 = _operands(q, kk, rows, keys, flip, causal)
        out, lse, aux = kernel.forward(q4, k4, causal)
        lse = lse.reshape(k, -1)
        calls.append(_Call(rows, keys, flip, causal, out, aux, lse.flip(-1) if flip else lse))
    return calls


def _operands(
    q: Tensor, kk: Tensor, rows: slice, keys: Tensor, flip: bool, causal: bool
) -> tuple[Tensor, Tensor]:
    """A call's queries and keys: ``(1, k, L, E')`` and ``(1, k, S, E')``, one head per pair, or
    ``(1, 1, k L, E')`` and ``(1, 1, S, E')`` folded when every pair shares the keys. Rebuilt
    in the backward pass rather than kept."""
    k = q.shape[0]
    qq = q[:, rows].flip(1) if flip else q[:, rows]
    keys_of = kk[:, keys]
    if keys_of.shape[0] == 1 and not causal:  # shared keys: all pairs' rows as one head
        q4, k4 = qq.reshape(1, 1, -1, qq.shape[-1]), keys_of[None]
    else:
        q4, k4 = qq[None], keys_of.expand(k, -1, -1)[None]
    if q.device.type != "cpu":  # the CPU kernel takes strided views; be strict elsewhere
        q4, k4 = q4.contiguous(), k4.contiguous()
    return q4, k4


@without_autocast
class _AttentionStatistics(torch.autograd.Function):
    @staticmethod
    def _forward(
        ctx: Any,
        u: Tensor,
        v: Tensor,
        problems: Problems,
        statistics: tuple[RowStatistic, ...],
        pair_chunk: int | None,
        kernel: Kernel,
    ) -> tuple[Tensor, ...]:
        ctx.set_materialize_grads(False)
        n = u.shape[1]
        dtype = compute_dtype(u.device, u.dtype)
        stat_dtype = torch.promote_types(u.dtype, torch.float32)
        positive = u.new_empty(len(problems), n, dtype=stat_dtype)
        outs = [u.new_empty(len(problems), n, dtype=stat_dtype) for _ in statistics]
        saved = []
        for start, stop in problems.chunks(pair_chunk):
            p, q_idx, _, cols = problems.block(start, stop)
            uu, vv, k = take(u, p), take(v, q_idx), stop - start
            positive[start:stop] = positive_scores(
                uu.to(stat_dtype), vv.to(stat_dtype), problems.offset, k
            )
            q, kk = _layout(uu, vv, cols, k, kernel, dtype)
            per_stat: list[list[_Call] | None] = []
            for j, stat in enumerate(statistics):
                if stat.reduce == "sum":
                    outs[j][start:stop] = _linear_sum(
                        uu.to(stat_dtype), vv.to(stat_dtype), cols, stat, positive[start:stop],
                        problems.offset,
                    )  # fmt: skip
                    per_stat.append(None)
                    continue
                calls = _calls(q, kk, stat, problems.offset, kernel)
                acc = stat.empty((k, n), positive)
                if stat.over == "columns":
                    acc = stat.merge(acc, positive[start:stop])
                for c in calls:
                    part = stat.empty((k, n), positive)
                    part[:, c.rows] = c.lse.to(stat_dtype)
                    acc = stat.merge(acc, part)
                outs[j][start:stop] = acc
                per_stat.append(calls)
            saved.append(per_stat)
        ctx.saved = saved
        ctx.args = (problems, pair_chunk, kernel, statistics)
        ctx.save_for_backward(u, v, positive, *outs)
        return (positive, *outs)

    @staticmethod
    def _backward(ctx: Any, g_pos: Tensor | None, *g_stats: Tensor | None) -> tuple[Any, ...]:
        u, v, positive, *outs = ctx.saved_tensors
        problems, pair_chunk, kernel, statistics = ctx.args
        n, m = u.shape[1], v.shape[1]
        dtype = outs[0].dtype if outs else torch.promote_types(u.dtype, torch.float32)
        du = torch.zeros(u.shape, dtype=dtype, device=u.device)
        dv = torch.zeros(v.shape, dtype=dtype, device=v.device)
        chunks = problems.chunks(pair_chunk)
        for (start, stop), per_stat in zip(chunks, ctx.saved, strict=True):
            p, q_idx, _, cols = problems.block(start, stop)
            q, kk = _layout(take(u, p), take(v, q_idx), cols, stop - start, kernel,
                            compute_dtype(u.device, u.dtype))  # fmt: skip
            k_heads = kk.shape[0]
            uu, vv, k = take(u, p).to(dtype), take(v, q_idx).to(dtype), stop - start
            duu = u.new_zeros(k, n, u.shape[-1], dtype=dtype)
            dvv = v.new_zeros(vv.shape[0], m, v.shape[-1], dtype=dtype)
            g_positive = g_pos[start:stop].to(dtype) if g_pos is not None else None
            dkk: Tensor | None = None
            for stat, g_all, total_all, calls in zip(
                statistics, g_stats, outs, per_stat, strict=True
            ):
                if g_all is None:
                    continue
                g, total = g_all[start:stop], total_all[start:stop]
                if calls is None:  # a sum, linear in both factors
                    left_out = _positive_counted(stat, cols, problems.offset, n, g)
                    if left_out is not None:  # the positive's part, taken out of the sum
                        share = -g * left_out
                        g_positive = share if g_positive is None else g_positive + share
                    duu += g[..., None] * _column_sum(vv, cols)[:, None, :]
                    g_rows = (g[..., None] * uu).sum(1)  # (k, E): Σ_i g_i Q_i
                    d_cols = g_rows[:, None, :]  # the same for every valid column
                    if cols is not None:
                        d_cols = d_cols * cols[..., None].to(dtype)
                    dvv += d_cols.sum(0, keepdim=True) if dvv.shape[0] == 1 else d_cols
                    continue
                if stat.over == "columns":  # the positive is one merged part
                    share = stat.part_gradient(positive[start:stop], total, g)
                    g_positive = share if g_positive is None else g_positive + share
                for c in calls:
                    w = stat.part_gradient(c.lse.to(dtype), total[:, c.rows], g[:, c.rows])
                    w = w.flip(1) if c.flip else w  # in the call's row order
                    dq = w[..., None] * c.out.reshape(k, -1, c.out.shape[-1]).to(dtype)
                    dq = dq.flip(1) if c.flip else dq
                    duu[:, c.rows] += dq[..., : u.shape[-1]]
                    q4, k4 = _operands(q, kk, c.rows, c.keys, c.flip, c.causal)
                    grad_out = (w.reshape(q4.shape[:3])[..., None] * q4).to(q4.dtype)
                    d_keys = kernel.backward(grad_out, q4, k4, c.out, c.aux, c.causal)[0]
                    if k_heads == 1:
                        d_keys = d_keys.sum(0, keepdim=True)
                    if dkk is None:
                        dkk = torch.zeros(k_heads, m, d_keys.shape[-1], dtype=dtype,
                                          device=v.device)  # fmt: skip
                    dkk.index_add_(1, c.keys, d_keys.to(dtype))
            if g_positive is not None:
                positive_gradient(g_positive, uu, vv, problems.offset, duu, dvv)
            if dkk is not None:
                dk = dkk[..., : v.shape[-1]]
                dvv += dk.sum(0, keepdim=True) if dvv.shape[0] == 1 else dk
            scatter_back(du, dv, p, q_idx, duu, dvv)
        return du.to(u.dtype), dv.to(v.dtype), None, None, None, None


def attention_statistics(
    u: Tensor,
    v: Tensor,
    problems: Problems,
    statistics: tuple[RowStatistic, ...],
    pair_chunk: int | None,
    kernel: Kernel,
) -> tuple[Tensor, list[Tensor]]:
    """The positive scores ``(K, N)`` and each statistic ``(K, N)`` of every pair, by kernel.

    Args:
        u: ``(P, N, E)`` the factors of ``x``.
        v: ``(Q, M, E)`` the factors of the columns.
        problems: the pairs and masks.
        statistics: what to accumulate (see :func:`supports`).
        pair_chunk: pairs per kernel call (``None``: all).
        kernel: from :func:`find_kernel`, for the dtype the factors run in
            (``compute_dtype(u.device, u.dtype)``).

    Raises:
        ValueError: ``kernel`` was verified for another dtype than the factors run in (a fused
            kernel can refuse it: CUDA's flash kernel takes half precision only), or a
            statistic of transformed scores (see :func:`supports`), named.
    """
    if not supports(statistics):
        other = ", ".join(s.name for s in statistics if s.transform is not None)
        raise ValueError(
            "attention_statistics computes log-sum-exps and sums of the scores themselves; "
            f"got statistics of transformed scores ({other}); use "
            "mitools.local.blocked.blocked_statistics"
        )
    run_dtype = compute_dtype(u.device, u.dtype)
    if kernel.dtype is not None and kernel.dtype != run_dtype:
        raise ValueError(
            f"the {kernel.name} attention kernel was verified for {kernel.dtype}, but the factors "
            f"u {tuple(u.shape)} run in {run_dtype}; look it up with find_kernel(device, "
            f"{u.dtype})"
        )
    positive, *values = _AttentionStatistics.apply(u, v, problems, statistics, pair_chunk, kernel)
    return positive, values
