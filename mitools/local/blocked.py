r"""The blocked path: a bound's per-row statistics over column blocks, never a score block kept.

For a separable critic, the scores of pair ``k`` are ``u[p_k] v[q_k]^T`` (its factors). The
forward pass walks blocks of ``pair_chunk`` pairs and ``col_chunk`` columns and accumulates
the statistics the estimator declares (:class:`~mitools.bounds.RowStatistic`: a running
log-sum-exp or sum per row, merged block by block), plus each row's positive score. The
backward pass recomputes each score block and forms its gradient from the statistics
(:meth:`~mitools.bounds.RowStatistic.block_gradient`). Peak memory is one
``(pair_chunk, N, col_chunk)`` block instead of ``(K, N, M)``.

Every formula comes from :mod:`mitools.bounds`: how a statistic reduces a block, how partial
results merge, its gradient, and the finisher that turns the statistics into the bound.
"""

from __future__ import annotations

from typing import Any, NamedTuple, TypeVar

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from mitools.bounds import RowStatistic
from mitools.critics.base import _no_autocast
from mitools.local.grid import take
from mitools.local.problems import Problems

__all__ = ["blocked_statistics"]


class _Run(NamedTuple):
    problems: Problems
    statistics: tuple[RowStatistic, ...]
    pair_chunk: int | None
    col_chunk: int


def positive_scores(uu: Tensor, vv: Tensor, offset: int, k: int) -> Tensor:
    """Each row's positive score ``(k, N)`` from factors ``uu (k|1, N, E)``, ``vv (k|1, M, E)``."""
    n = uu.shape[1]
    return (uu * vv[:, offset : offset + n]).sum(-1).expand(k, n)


def positive_gradient(
    grad: Tensor, uu: Tensor, vv: Tensor, offset: int, duu: Tensor, dvv: Tensor
) -> None:
    """Add the gradient of ``positive_scores`` (``grad (k, N)``) to ``duu``/``dvv`` in place."""
    n = uu.shape[1]
    duu += grad[..., None] * vv[:, offset : offset + n]
    dpos = grad[..., None] * uu
    dvv[:, offset : offset + n] += dpos.sum(0, keepdim=True) if dvv.shape[0] == 1 else dpos


def scatter_back(du: Tensor, dv: Tensor, p: Tensor, q: Tensor, duu: Tensor, dvv: Tensor) -> None:
    """Add a block's gradients ``duu (k, N, E)``, ``dvv (k|1, M, E)`` to the factors' in place."""
    if du.shape[0] == 1:
        du[0] += duu.sum(0)
    else:
        du.index_add_(0, p, duu)
    if dv.shape[0] == 1:
        dv[0] += dvv.sum(0)
    else:
        dv.index_add_(0, q, dvv)


def _block_scores(uu: Tensor, vv: Tensor, c0: int, c1: int, k: int) -> Tensor:
    """Scores ``(k, N, c)``: ``uu (k|1, N, E)`` against columns ``c0:c1`` of ``vv (k|1, M, E)``."""
    if vv.shape[0] == 1 and uu.shape[0] > 1:  # shared columns: one (k N, E) x (E, c) GEMM
        kk, n, e = uu.shape
        return (uu.reshape(kk * n, e) @ vv[0, c0:c1].T).view(kk, n, c1 - c0)
    return torch.matmul(uu, vv[:, c0:c1].transpose(-1, -2)).expand(k, -1, -1)


_Function = TypeVar("_Function", bound=type[torch.autograd.Function])


def without_autocast(cls: _Function) -> _Function:
    """Class decorator for the local paths' autograd Functions: their ``forward`` and
    ``backward`` run the class's ``_forward(ctx, u, *args)`` and ``_backward(ctx, *grads)``
    with ``torch.autocast`` off on ``u``'s device, and ``backward`` is once differentiable.

    The score arithmetic is the library's own: float32 or higher under ``torch.autocast`` too
    (on the blocked path autocast's half-precision products rounded the blocks and failed on
    "Index put requires the source and destination dtypes match"; the attention path's
    private kernels and elementwise products were not autocast, and the context keeps it so).
    """
    def forward(ctx: Any, u: Tensor, *args: Any) -> tuple[Tensor, ...]:
        ctx.device = u.device
        with _no_autocast(u.device):
            return cls._forward(ctx, u, *args)  # type: ignore[attr-defined]

    @once_differentiable
    def backward(ctx: Any, *grads: Tensor | None) -> tuple[Any, ...]:
        with _no_autocast(ctx.device):
            return cls._backward(ctx, *grads)  # type: ignore[attr-defined]

    cls.forward = staticmethod(forward)  # type: ignore[method-assign]
    cls.backward = staticmethod(backward)  # type: ignore[method-assign, assignment]
    return cls


@without_autocast
class _BlockedStatistics(torch.autograd.Function):
    @staticmethod
    def _forward(ctx: Any, u: Tensor, v: Tensor, run: _Run) -> tuple[Tensor, ...]:
        ctx.set_materialize_grads(False)
        pr = run.problems
        n, m = u.shape[1], v.shape[1]
        positive = u.new_empty(len(pr), n)
        outs = [u.new_empty(len(pr), n) for _ in run.statistics]
        for start, stop in pr.chunks(run.pair_chunk):
            p, q, _, cols = pr.block(start, stop)
            uu, vv, k = take(u, p), take(v, q), stop - start
            if not run.statistics:  # the positives only (BA, DoE): no column block needed
                positive[start:stop] = positive_scores(uu, vv, pr.offset, k)
                continue
            acc = [stat.empty((k, n), u) for stat in run.statistics]
            for c0 in range(0, m, run.col_chunk):
                c1 = min(c0 + run.col_chunk, m)
                s = _block_scores(uu, vv, c0, c1, k)
                # The positives from the same products as the statistics: in float32 the
                # difference of a positive and its row's log-sum-exp then cancels exactly.
                lo, hi = max(0, c0 - pr.offset), min(n, c1 - pr.offset)
                if lo < hi:
                    rows = torch.arange(lo, hi, device=u.device)
                    positive[start:stop, rows] = s[:, rows, rows + pr.offset - c0]
                for j, stat in enumerate(run.statistics):
                    valid = pr.valid(stat, cols, c0, c1, u.device)
                    acc[j] = stat.merge(acc[j], stat.reduce_block(s, valid))
            for out, a in zip(outs, acc, strict=True):
                out[start:stop] = a
        ctx.run = run
        ctx.save_for_backward(u, v, *outs)
        return (positive, *outs)

    @staticmethod
    def _backward(ctx: Any, g_pos: Tensor | None, *g_stats: Tensor | None) -> tuple[Any, ...]:
        u, v, *outs = ctx.saved_tensors
        run: _Run = ctx.run
        pr = run.problems
        n, m = u.shape[1], v.shape[1]
        du, dv = torch.zeros_like(u), torch.zeros_like(v)
        for start, stop in pr.chunks(run.pair_chunk):
            gp = g_pos[start:stop] if g_pos is not None else None
            gs = [g[start:stop] if g is not None else None for g in g_stats]
            live = [g for g in (gp, *gs) if g is not None]
            if not any(bool((g != 0).any()) for g in live):  # e.g. pairs "max" did not pick
                continue
            p, q, _, cols = pr.block(start, stop)
            uu, vv, k = take(u, p), take(v, q), stop - start
            duu = u.new_zeros(k, n, u.shape[-1])
            dvv = v.new_zeros(vv.shape[0], m, v.shape[-1])
            if gp is not None:
                positive_gradient(gp, uu, vv, pr.offset, duu, dvv)
            for c0 in range(0, m, run.col_chunk) if any(g is not None for g in gs) else ():
                c1 = min(c0 + run.col_chunk, m)
                s = _block_scores(uu, vv, c0, c1, k)
                ds: Tensor | None = None
                for stat, g, out in zip(run.statistics, gs, outs, strict=True):
                    if g is None:
                        continue
                    valid = pr.valid(stat, cols, c0, c1, u.device)
                    d = stat.block_gradient(s, valid, out[start:stop], g)
                    ds = d if ds is None else ds.add_(d)
                if ds is None:
                    continue
                duu += torch.matmul(ds, vv[:, c0:c1])
                if dvv.shape[0] == 1:  # shared columns: one GEMM over all pairs' rows
                    flat = uu.expand(k, -1, -1).reshape(k * n, -1)
                    dvv[0, c0:c1] += ds.reshape(k * n, -1).T @ flat
                else:
                    dvv[:, c0:c1] += torch.matmul(ds.transpose(-1, -2), uu)
            scatter_back(du, dv, p, q, duu, dvv)
        return du, dv, None


def blocked_statistics(
    u: Tensor,
    v: Tensor,
    problems: Problems,
    statistics: tuple[RowStatistic, ...],
    pair_chunk: int | None,
    col_chunk: int | None,
) -> tuple[Tensor, list[Tensor]]:
    """The positive scores ``(K, N)`` and each statistic ``(K, N)`` of every pair, blockwise.

    Args:
        u: ``(P, N, E)`` the factors of ``x`` (float32 or float64).
        v: ``(Q, M, E)`` the factors of the columns.
        problems: the pairs and masks.
        statistics: what to accumulate.
        pair_chunk: pairs per block (``None``: all).
        col_chunk: columns per block (``None``: all).
    """
    run = _Run(problems, statistics, pair_chunk, col_chunk or v.shape[1])
    positive, *values = _BlockedStatistics.apply(u, v, run)
    return positive, values
