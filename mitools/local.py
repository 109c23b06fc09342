r"""Local mutual information between feature grids of any shape, and its global baseline.

:class:`LocalMILoss` estimates MI between *positions* of two feature grids: every cell of an
image feature map against a sentence vector (Liao et al. 2021), every cell against a global
image vector (Deep InfoMax, Hjelm et al. 2019), cells against tokens, matched positions of two
views... The grids are named by einops patterns (``"b c h w"``, ``"b l c"``,
``"b c t h w"``, ``"b c"`` for one vector per sample) and flattened to ``x (B, P, Cx)`` and
``y (B, Q, Cy)``. A sampler from :mod:`mitools.samplers` chooses the position pairs
:math:`(p, q)`; for each pair the critic scores every anchor :math:`x_i[p]` against every
column :math:`y_j[q]` of the batch, and a bound from :mod:`mitools.bounds` turns that
``(B, B)`` score matrix into an estimate :math:`\hat I_{pq}` in nats. A reduction over the
pairs gives the objective:

.. math::

    \text{mean: } \frac{1}{K}\sum_{(p,q)} \hat I_{pq}, \quad
    \text{sum: } \sum_{(p,q)} \hat I_{pq}, \quad
    \text{max: } \max_{(p,q)} \hat I_{pq}, \quad
    \text{logsumexp: } \log \sum_{(p,q)} e^{\hat I_{pq}},

and ``loss = -objective``. ``"mean"`` is Deep InfoMax's local objective; ``"max"`` is the
objective of Liao et al.: only the cell with the highest estimated MI about the sentence is
trained. The per-pair estimates come back unpacked to the grid, so one can draw which cells
carry information about the sentence.

Memory: the full ``(K, B, B)`` tensor of scores is never required. ``chunk_size`` bounds the
position pairs scored at once; blocks are recomputed in the backward pass. For separable
critics (:class:`~mitools.critics.SeparableCritic`, :class:`~mitools.critics.BilinearCritic`,
the plain dot product ``critic=None``) with InfoNCE, DV, NWJ, JSD, JS or SMILE a custom
autograd function keeps only the log-sum-exp statistics of the forward pass and recomputes each
score block in backward (``column_chunk_size`` also blocks the columns with a running
log-sum-exp, so a batch of thousands of negatives fits); other critics and bounds use
activation checkpointing per block. Results with and without chunking agree to rounding.

References:
    Liao, Moyer, Cha, Quigley, Berkowitz, Horng, Golland, Wells. *Multimodal Representation
    Learning via Maximization of Local Mutual Information*. MICCAI 2021.
    Hjelm, Fedorov, Lavoie-Marchildon, Grewal, Bachman, Trischler, Bengio. *Learning deep
    representations by mutual information estimation and maximization*. ICLR 2019.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import einops
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.utils.checkpoint import checkpoint

from mitools import bounds, distributed
from mitools.critics import BilinearCritic, SeparableCritic
from mitools.estimators import (
    DV,
    JS,
    JSD,
    MINE,
    NWJ,
    SMILE,
    AlphaInfoNCE,
    Estimator,
    FunctionalEstimator,
    InfoNCE,
    get_estimator,
)
from mitools.samplers import (
    LocalToGlobal,
    NegativeQueue,
    PairSampler,
    PositionPairs,
    random_derangement,
)

__all__ = ["REDUCTIONS", "GlobalMILoss", "LocalMILoss", "LocalMIResult"]

REDUCTIONS = ("mean", "sum", "max", "logsumexp")
"""Reductions over position pairs accepted by :class:`LocalMILoss`."""


class LocalMIResult(NamedTuple):
    """What :class:`LocalMILoss` and :class:`GlobalMILoss` return."""

    #: scalar to minimise, ``-objective`` (carries the gradient).
    loss: Tensor
    #: the reduced objective (detached), in nats of MI for every bound but
    #: :class:`~mitools.estimators.JSD` (for ``"logsumexp"`` a soft maximum of them).
    estimate: Tensor
    #: detached per-position estimates unpacked to the sampler's map shape (e.g. ``(H, W)``
    #: for cells against one sentence); NaN for pairs not sampled or without any valid
    #: sample. A 0-dim tensor for :class:`GlobalMILoss`.
    local: Tensor
    #: ``(K,)`` detached estimate of each position pair (NaN where no valid sample);
    #: ``(1,)`` for :class:`GlobalMILoss`.
    pair_estimates: Tensor
    #: the :class:`~mitools.samplers.PositionPairs` used (``None`` for :class:`GlobalMILoss`).
    pairs: PositionPairs | None


# ---------------------------------------------------------------------------------------------
# Grids: einops patterns, packing, masks.
# ---------------------------------------------------------------------------------------------


def _parse_pattern(pattern: Any, name: str) -> tuple[str, ...]:
    if not isinstance(pattern, str):
        raise TypeError(f"{name} must be an einops pattern string, got {type(pattern).__name__}")
    axes = tuple(pattern.split())
    bad = [a for a in axes if not a.isidentifier()]
    if bad:
        raise ValueError(
            f"{name}={pattern!r}: axes must be plain names separated by spaces (got {bad}); "
            "e.g. 'b c h w', 'b l c', 'b c t h w' or 'b c'"
        )
    if axes.count("b") != 1 or axes.count("c") != 1 or len(set(axes)) != len(axes):
        raise ValueError(
            f"{name}={pattern!r} must name the batch axis 'b' and the channel axis 'c' once each "
            "and every other (grid) axis once, e.g. 'b c h w'"
        )
    return axes


def _pack(t: Any, axes: tuple[str, ...], name: str, pattern: str) -> tuple[Tensor, tuple[int, ...]]:
    """``t`` with axes ``axes`` -> ``(B, P, C)`` and the grid shape."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be floating point, got dtype {t.dtype}")
    if t.dim() != len(axes):
        raise ValueError(
            f"{name} has shape {tuple(t.shape)} ({t.dim()} dims) but {name}_pattern {pattern!r} "
            f"names {len(axes)} axes"
        )
    grid_axes = [a for a in axes if a not in ("b", "c")]
    grid = tuple(int(t.shape[axes.index(a)]) for a in grid_axes)
    target = f"b ({' '.join(grid_axes)}) c" if grid_axes else "b 1 c"
    return einops.rearrange(t, f"{pattern} -> {target}"), grid


def _pack_mask(
    mask: Any, name: str, batch: int, grid: tuple[int, ...], device: torch.device
) -> Tensor | None:
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of booleans, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(f"{name} must have dtype torch.bool, got {mask.dtype}")
    n = math.prod(grid)
    if tuple(mask.shape) not in ((batch, *grid), (batch, n)):
        raise ValueError(
            f"{name} has shape {tuple(mask.shape)}; expected (B, *grid) = {(batch, *grid)} or "
            f"(B, P) = {(batch, n)}"
        )
    mask = mask.reshape(batch, n).to(device)
    empty = ~mask.any(-1)
    if bool(empty.any()):
        idx = int(empty.nonzero()[0, 0])
        raise ValueError(
            f"{name} (shape {tuple(mask.shape)}) masks out every position of sample {idx}; "
            "drop such samples from the batch"
        )
    return mask


def _check_pair(x: Tensor, y: Tensor) -> None:
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must hold the same samples: x has batch size {x.shape[0]} (packed shape "
            f"(B, P, Cx) = {tuple(x.shape)}) but y has {y.shape[0]} ({tuple(y.shape)})"
        )
    if x.dtype != y.dtype:
        raise TypeError(f"x and y must share a dtype, got {x.dtype} and {y.dtype}")
    if x.device != y.device:
        raise ValueError(f"x and y must be on one device, got {x.device} and {y.device}")


def _check_chunk(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int or None, got {value!r}")
    return value


def _take(t: Tensor, index: Tensor) -> Tensor:
    """``t[index]`` along dim 0; a broadcastable view when ``t`` has a single position."""
    return t[:1] if t.shape[0] == 1 else t.index_select(0, index)


def _reduce(values: Tensor, active: Tensor, reduction: str) -> Tensor:
    """Reduce per-pair values ``(K,)`` over the active pairs."""
    if reduction == "mean":
        return torch.where(active, values, torch.zeros_like(values)).sum() / active.sum()
    if reduction == "sum":
        return torch.where(active, values, torch.zeros_like(values)).sum()
    masked = torch.where(active, values, torch.full_like(values, -math.inf))
    if reduction == "max":
        return masked.amax()
    return torch.logsumexp(masked, dim=0)


# ---------------------------------------------------------------------------------------------
# Scorers: how a critic is evaluated on position blocks.
# ---------------------------------------------------------------------------------------------


class _Scorer:
    """Evaluates a critic on blocks of position pairs.

    ``prepare`` maps position-major features ``x (P, B, Cx)``, ``y (Q, M, Cy)`` to what the
    blocks need; for separable critics those are the embeddings (computed once per position,
    not once per pair), and a block's scores are one batched matmul.
    """

    separable = False

    def __init__(self, critic: nn.Module | None):
        self.critic = critic
        self.bias: Tensor | None = None

    def prepare(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return x, y

    def score(self, u: Tensor, v: Tensor) -> Tensor:
        """``u (k, B, .)``, ``v (k, M, .)`` -> ``(k, B, M)``."""
        assert self.critic is not None
        return self.critic(u, v)

    def score_pairs(self, u: Tensor, v: Tensor) -> Tensor:
        """Elementwise pairs ``u (k, B, .)``, ``v (k, B, .)`` -> ``(k, B)``."""
        return self.score(u[..., None, :], v[..., None, :])[..., 0, 0]


class _SeparableScorer(_Scorer):
    separable = True

    def prepare(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        critic = self.critic
        if critic is None:
            if x.shape[-1] != y.shape[-1]:
                raise ValueError(
                    f"critic=None scores the dot product x·y, which needs as many channels on "
                    f"both sides; got Cx={x.shape[-1]} and Cy={y.shape[-1]}; pass a critic"
                )
            return x, y
        if isinstance(critic, SeparableCritic):
            critic._check_inputs(x[:1], y[:1])
            gx, hy = critic.embed(x, y)
            return gx * torch.exp(-critic.log_temperature).to(gx.dtype), hy
        assert isinstance(critic, BilinearCritic)
        critic._check_inputs(x[:1], y[:1])
        self.bias = critic.bias
        return torch.matmul(x, critic.weight), y

    def score(self, u: Tensor, v: Tensor) -> Tensor:
        s = torch.matmul(u, v.transpose(-1, -2))
        return s + self.bias if self.bias is not None else s

    def score_pairs(self, u: Tensor, v: Tensor) -> Tensor:
        s = (u * v).sum(-1)
        return s + self.bias if self.bias is not None else s


def _make_scorer(critic: nn.Module | None) -> _Scorer:
    # Exact types only: a subclass may override forward, so it is called as a black box.
    if critic is None or type(critic) in (SeparableCritic, BilinearCritic):
        return _SeparableScorer(critic)
    return _Scorer(critic)


_JS_GRADIENT = ("jsd", "js", "smile")  # bounds whose gradient is that of the JS objective


def _blocked_kind(estimator: Estimator) -> tuple[str, float | None] | None:
    """The bound the blocked autograd function implements (and SMILE's clip), if any."""
    kinds: dict[Any, str] = {InfoNCE: "infonce", DV: "dv", NWJ: "nwj", JSD: "jsd", JS: "js"}
    if type(estimator) in kinds:
        return kinds[type(estimator)], None
    if type(estimator) is SMILE:
        return "smile", estimator.clip
    if isinstance(estimator, FunctionalEstimator):
        fns = {
            bounds.infonce: "infonce",
            bounds.dv: "dv",
            bounds.nwj: "nwj",
            bounds.jsd: "jsd",
            bounds.js: "js",
        }
        kind = fns.get(estimator.fn)
        return (kind, None) if kind is not None else None
    return None


# ---------------------------------------------------------------------------------------------
# Masks of one block of position pairs.
# ---------------------------------------------------------------------------------------------


class _Masks(NamedTuple):
    """Position masks, position-major: ``x (P, B)`` and the columns ``y (Q, M)``."""

    x: Tensor | None
    y: Tensor | None

    def block(
        self, p: Tensor, q: Tensor, offset: int, batch: int, active: Tensor | None
    ) -> tuple[Tensor | None, Tensor | None]:
        """Row mask ``(k, B)`` and column mask ``(k, M)`` of pairs ``(p, q)``.

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


def _active_pairs(
    masks: _Masks, pairs: PositionPairs, offset: int, batch: int
) -> tuple[Tensor | None, Tensor | None]:
    """``(K,)`` bool: pairs with at least one valid anchor and two valid columns; and
    ``(K,)`` the number of valid anchors of each pair (``None`` without masks)."""
    if masks.x is None and masks.y is None:
        return None, None
    rows, cols = masks.block(pairs.x_index, pairs.y_index, offset, batch, None)
    active = torch.ones(len(pairs), dtype=torch.bool, device=pairs.x_index.device)
    n_rows = rows.sum(-1) if rows is not None else None
    if rows is not None:
        active &= rows.any(-1)
    if cols is not None:
        active &= cols.sum(-1) >= 2
    return active, n_rows


# ---------------------------------------------------------------------------------------------
# The blocked bound: a custom autograd function that never stores a score block.
# ---------------------------------------------------------------------------------------------


class _BlockedBound(torch.autograd.Function):
    r"""InfoNCE, DV, NWJ, JSD, JS or SMILE of every position pair, block by block.

    ``u (P, B, E)``, ``v (Q, M, E)``, scores of pair ``k`` are ``u[p_k] v[q_k]^T + bias``.
    Forward keeps, per pair, the row-wise log-sum-exp (InfoNCE), the log-sum-exp over the
    negatives (DV, NWJ, JS; of the clipped scores for SMILE), accumulated over column blocks
    with ``logaddexp``, or the sum of ``softplus`` over the negatives (JSD); backward recomputes
    each score block and forms its gradient from those statistics:

    * InfoNCE: :math:`\partial/\partial S_{ij} = w_i(\delta_{j,i+o} - e^{S_{ij} - \text{lse}_i})`,
    * DV: :math:`w_i\delta_{j,i+o} - g\, e^{S_{ij} - \text{lse}_{\mathcal O}}` on negatives,
    * NWJ: :math:`w_i\delta_{j,i+o} - g\, e^{S_{ij} - \log|\mathcal O| - 1}` on negatives,
    * JSD, and JS and SMILE (JS gradients): :math:`w_i \sigma(-S_{i,i+o})\delta_{j,i+o}
      - g\,\sigma(S_{ij}) / |\mathcal O|` on negatives,

    with :math:`w_i = g / K` on valid rows. Peak memory is one ``(pair_chunk, B, col_chunk)``
    block instead of ``(K, B, M)``. The formulas are those of :mod:`mitools.bounds`, against
    which the tests check this function.
    """

    @staticmethod
    def forward(
        ctx: Any,
        u: Tensor,
        v: Tensor,
        bias: Tensor,
        kind: str,
        clip: float | None,
        pairs: PositionPairs,
        masks: _Masks,
        active: Tensor | None,
        offset: int,
        pair_chunk: int,
        col_chunk: int,
    ) -> Tensor:
        batch, m = u.shape[1], v.shape[1]
        values = []
        stats = []
        for start in range(0, len(pairs), pair_chunk):
            blk = _BlockedBound._block(u, v, pairs, masks, active, offset, start, pair_chunk)
            p, q, rows, cols, n_rows, n_cols, n_neg = blk
            uu, vv = _take(u, p), _take(v, q)
            pos = (uu * vv[:, offset : offset + batch]).sum(-1) + bias  # (k, B)
            acc = torch.full(
                (p.shape[0], batch) if kind == "infonce" else (p.shape[0],),
                0.0 if kind == "jsd" else -math.inf,
                dtype=u.dtype,
                device=u.device,
            )
            for c0 in range(0, m, col_chunk):
                c1 = min(c0 + col_chunk, m)
                s = _block_scores(uu, vv, c0, c1).add_(bias)  # (k, B, c), in place
                if kind == "infonce":
                    if cols is not None:
                        s.masked_fill_(~cols[:, None, c0:c1], -math.inf)
                    acc = torch.logaddexp(acc, torch.logsumexp(s, dim=-1))
                elif kind == "jsd":
                    neg = _negatives(rows, cols, offset, batch, c0, c1, s.device)
                    sp = F.softplus(s).masked_fill_(~neg, 0.0)
                    acc = acc + sp.sum((-2, -1))
                else:
                    neg = _negatives(rows, cols, offset, batch, c0, c1, s.device)
                    if kind == "smile" and clip is not None:
                        s.clamp_(-clip, clip)
                    s.masked_fill_(~neg, -math.inf)
                    acc = torch.logaddexp(acc, torch.logsumexp(s.flatten(-2), dim=-1))
            if rows is not None:
                pos = pos.masked_fill(~rows, 0.0)
            joint = pos.sum(-1) / n_rows
            if kind == "jsd":
                joint_js = -F.softplus(-pos)
                if rows is not None:
                    joint_js = joint_js.masked_fill(~rows, 0.0)
                values.append(joint_js.sum(-1) / n_rows - acc / n_neg)
            elif kind == "js":
                values.append(joint + 1.0 - torch.exp(acc - torch.log(n_neg)))
            elif kind in ("dv", "smile"):
                values.append(joint - (acc - torch.log(n_neg)))
            elif kind == "infonce":
                per_row = pos - acc + torch.log(n_cols)[:, None]
                if rows is not None:
                    per_row = per_row.masked_fill(~rows, 0.0)
                values.append(per_row.sum(-1) / n_rows)
            else:
                values.append(joint - torch.exp(acc - torch.log(n_neg) - 1.0))
            stats.append(acc)
        ctx.kind, ctx.pairs, ctx.masks, ctx.active = kind, pairs, masks, active
        ctx.offset, ctx.pair_chunk, ctx.col_chunk = offset, pair_chunk, col_chunk
        ctx.stats = stats
        ctx.save_for_backward(u, v, bias)
        return torch.cat(values)

    @staticmethod
    def _block(
        u: Tensor,
        v: Tensor,
        pairs: PositionPairs,
        masks: _Masks,
        active: Tensor | None,
        offset: int,
        start: int,
        pair_chunk: int,
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None, Tensor, Tensor, Tensor]:
        batch, m = u.shape[1], v.shape[1]
        p = pairs.x_index[start : start + pair_chunk]
        q = pairs.y_index[start : start + pair_chunk]
        act = active[start : start + pair_chunk] if active is not None else None
        rows, cols = masks.block(p, q, offset, batch, act)
        k = p.shape[0]
        n_rows = rows.sum(-1).to(u.dtype) if rows is not None else u.new_full((k,), batch)
        n_cols = cols.sum(-1).to(u.dtype) if cols is not None else u.new_full((k,), m)
        n_neg = n_rows * (n_cols - 1.0)
        return p, q, rows, cols, n_rows, n_cols, n_neg

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        u, v, bias = ctx.saved_tensors
        kind, pairs, masks, active = ctx.kind, ctx.pairs, ctx.masks, ctx.active
        offset, pair_chunk, col_chunk = ctx.offset, ctx.pair_chunk, ctx.col_chunk
        batch, m = u.shape[1], v.shape[1]
        du = torch.zeros_like(u)
        dv = torch.zeros_like(v)
        dbias = torch.zeros((), dtype=u.dtype, device=u.device)
        for b, start in enumerate(range(0, len(pairs), pair_chunk)):
            g = grad[start : start + pair_chunk]
            if not bool((g != 0).any()):  # e.g. the pairs that "max" did not pick
                continue
            blk = _BlockedBound._block(u, v, pairs, masks, active, offset, start, pair_chunk)
            p, q, rows, cols, n_rows, _, n_neg = blk
            acc = ctx.stats[b]
            uu, vv = _take(u, p), _take(v, q)
            w = (g / n_rows)[:, None].expand(-1, batch)  # weight of each positive, (k, B)
            if rows is not None:
                w = w.masked_fill(~rows, 0.0)
            vpos = vv[:, offset : offset + batch]
            if kind in _JS_GRADIENT:  # d/dpos of -softplus(-pos) is sigmoid(-pos)
                pos = (uu * vpos).sum(-1) + bias
                w = w * torch.sigmoid(-pos)
            duu = w[..., None] * vpos  # (k, B, E)
            dvpos = w[..., None] * uu
            dbias_blk = w.sum()
            shared = vv.shape[0] == 1  # one y position for every pair (e.g. LocalToGlobal)
            dvv = torch.zeros(
                (vv.shape[0], m, v.shape[-1]), dtype=v.dtype, device=v.device
            )  # (k or 1, M, E)
            dvv[:, offset : offset + batch] += dvpos.sum(0, keepdim=True) if shared else dvpos
            for c0 in range(0, m, col_chunk):
                c1 = min(c0 + col_chunk, m)
                # One (k, B, c) buffer: scores, then their gradient, all in place.
                ds = _block_scores(uu, vv, c0, c1).add_(bias)
                if kind == "infonce":
                    ds.sub_(acc[..., None]).exp_().mul_(-w[..., None])
                    if cols is not None:
                        ds.masked_fill_(~cols[:, None, c0:c1], 0.0)
                elif kind in _JS_GRADIENT:
                    neg = _negatives(rows, cols, offset, batch, c0, c1, ds.device)
                    ds.sigmoid_().mul_(-(g / n_neg)[:, None, None])
                    ds.masked_fill_(~neg, 0.0)
                else:
                    neg = _negatives(rows, cols, offset, batch, c0, c1, ds.device)
                    if kind == "dv":
                        log_scale = acc
                    else:
                        log_scale = torch.log(n_neg) + 1.0
                    ds.sub_(log_scale[:, None, None]).exp_().mul_(-g[:, None, None])
                    ds.masked_fill_(~neg, 0.0)
                duu = duu + torch.matmul(ds, vv[:, c0:c1])
                if shared:  # one GEMM over all pairs' rows
                    flat = ds.shape[0] * batch
                    dvv[0, c0:c1] += ds.reshape(flat, -1).T @ uu.reshape(flat, -1)
                else:
                    dvv[:, c0:c1] += torch.matmul(ds.transpose(-1, -2), uu)
                dbias_blk = dbias_blk + ds.sum()
            if u.shape[0] == 1:
                du[0] += duu.sum(0)
            else:
                du.index_add_(0, p, duu)
            if v.shape[0] == 1:
                dv[0] += dvv[0]
            else:
                dv.index_add_(0, q, dvv)
            dbias = dbias + dbias_blk
        return du, dv, dbias, None, None, None, None, None, None, None, None


def _block_scores(uu: Tensor, vv: Tensor, c0: int, c1: int) -> Tensor:
    """Scores ``(k, B, c)`` of ``uu (k, B, E)`` against columns ``c0:c1`` of ``vv (k|1, M, E)``."""
    if vv.shape[0] == 1:  # shared columns: one (k B, E) x (E, c) GEMM
        k, b, e = uu.shape
        return (uu.reshape(k * b, e) @ vv[0, c0:c1].T).view(k, b, c1 - c0)
    return torch.matmul(uu, vv[:, c0:c1].transpose(-1, -2))


def _negatives(
    rows: Tensor | None,
    cols: Tensor | None,
    offset: int,
    batch: int,
    c0: int,
    c1: int,
    device: torch.device,
) -> Tensor:
    """Bool ``(k or 1, B, c)``: valid off-positive entries of columns ``c0:c1``."""
    col = torch.arange(c0, c1, device=device)
    row = torch.arange(batch, device=device)
    neg = (col[None, :] != row[:, None] + offset)[None]  # (1, B, c)
    if rows is not None:
        neg = neg & rows[:, :, None]
    if cols is not None:
        neg = neg & cols[:, None, c0:c1]
    return neg


# ---------------------------------------------------------------------------------------------
# The losses.
# ---------------------------------------------------------------------------------------------


def _check_bound_and_critic(bound: Any, critic: Any) -> tuple[Estimator, nn.Module | None]:
    estimator = get_estimator(bound)
    if critic is not None and not isinstance(critic, nn.Module):
        if not callable(critic):
            raise TypeError(
                f"critic must be an nn.Module, a callable or None, got {type(critic).__name__}"
            )
    return estimator, critic


class LocalMILoss(nn.Module):
    r"""Mutual information between the positions of two feature grids of any shape.

    Args:
        bound: a bound name (``"infonce"``, ``"dv"``, ``"mine"``, ``"nwj"``, ``"jsd"``, ...) or
            an :class:`~mitools.estimators.Estimator`.
        critic: an ``nn.Module`` ``f(x (..., N, Cx), y (..., M, Cy)) -> (..., N, M)``, e.g. a
            :class:`~mitools.critics.SeparableCritic`; ``None`` for the dot product
            :math:`x^\top y` (Deep InfoMax's critic on already-encoded features).
        sampler: a :class:`~mitools.samplers.PairSampler` (default
            :class:`~mitools.samplers.LocalToGlobal`).
        reduction: ``"mean"`` (Deep InfoMax), ``"sum"``, ``"max"`` (Liao et al.) or
            ``"logsumexp"`` over the position pairs with at least one valid sample.
        x_pattern: einops pattern of ``x``, naming the batch axis ``b``, the channel axis ``c``
            and any grid axes, e.g. ``"b c h w"``, ``"b l c"``, ``"b c t h w"``, ``"b c"``.
        y_pattern: einops pattern of ``y``.
        negatives: ``"all"`` (every other sample of the batch, all off-diagonal entries) or
            ``"derangement"`` (one random partner per anchor, never itself; not with InfoNCE,
            gather or a queue).
        queue: a :class:`~mitools.samplers.NegativeQueue` or its size: past ``y`` features
            appended as extra negative columns (extended after each training forward).
        chunk_size: position pairs scored at once (``None``: all). Blocks are recomputed in
            the backward pass, so memory stays bounded in training too.
        column_chunk_size: columns scored at once with a running log-sum-exp (``None``: all);
            needs a separable critic and InfoNCE, DV, NWJ, JSD, JS or SMILE.
        gather: take the columns (negatives) from every ``torch.distributed`` rank, with
            gradients (see :mod:`mitools.distributed`); a no-op without a process group.
        generator: a :class:`torch.Generator` for the derangement draws.

    Shapes of :meth:`forward`:
        ``x`` as ``x_pattern`` (``B`` samples, grid ``grid_x``, ``Cx`` channels), ``y`` as
        ``y_pattern`` with the same ``B``; masks ``(B, *grid)`` or ``(B, P)`` bool, ``True``
        for valid positions.

    Example:
        The objective of Liao et al. (2021): a sentence vector against every cell of an 8x8
        map, only the best cell trained.

        >>> import torch
        >>> from mitools.critics import SeparableCritic
        >>> from mitools.local import LocalMILoss
        >>> loss_fn = LocalMILoss("dv", SeparableCritic(64, 32, hidden=(), embed_dim=16),
        ...                       reduction="max", x_pattern="b c h w", y_pattern="b c")
        >>> out = loss_fn(torch.randn(16, 64, 8, 8), torch.randn(16, 32))
        >>> out.local.shape, out.loss.shape
        (torch.Size([8, 8]), torch.Size([]))
        >>> out.loss.backward()
    """

    def __init__(
        self,
        bound: str | Estimator | Callable[..., Tensor] = "infonce",
        critic: nn.Module | None = None,
        sampler: PairSampler | None = None,
        reduction: str = "mean",
        *,
        x_pattern: str = "b c h w",
        y_pattern: str = "b c",
        negatives: str = "all",
        queue: NegativeQueue | int | None = None,
        chunk_size: int | None = None,
        column_chunk_size: int | None = None,
        gather: bool = False,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.estimator, critic = _check_bound_and_critic(bound, critic)
        self.critic = critic
        self.sampler = LocalToGlobal() if sampler is None else sampler
        if not isinstance(self.sampler, PairSampler):
            raise TypeError(
                f"sampler must be a mitools.samplers.PairSampler, got {type(sampler).__name__}"
            )
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction
        self.x_pattern, self.y_pattern = x_pattern, y_pattern
        self._x_axes = _parse_pattern(x_pattern, "x_pattern")
        self._y_axes = _parse_pattern(y_pattern, "y_pattern")
        if negatives not in ("all", "derangement"):
            raise ValueError(f"negatives must be 'all' or 'derangement', got {negatives!r}")
        self.negatives = negatives
        if isinstance(queue, int) and not isinstance(queue, bool):
            queue = NegativeQueue(queue)
        if queue is not None and not isinstance(queue, NegativeQueue):
            raise TypeError(
                f"queue must be a NegativeQueue, a positive int or None, got {type(queue).__name__}"
            )
        self.queue = queue
        self.chunk_size = _check_chunk(chunk_size, "chunk_size")
        self.column_chunk_size = _check_chunk(column_chunk_size, "column_chunk_size")
        self.gather = bool(gather)
        self.generator = generator
        self._scorer = _make_scorer(critic)
        self._kind = _blocked_kind(self.estimator)
        if negatives == "derangement":
            if isinstance(self.estimator, (InfoNCE, AlphaInfoNCE)) or (
                self._kind is not None and self._kind[0] == "infonce"
            ):
                raise ValueError(
                    "negatives='derangement' gives each anchor one negative, which InfoNCE-type "
                    "bounds would weight as B - 1 copies; use negatives='all' with InfoNCE, or "
                    "a pooled bound (dv, mine, nwj, jsd, js, smile, tuba)"
                )
            if self.gather or queue is not None:
                raise ValueError("negatives='derangement' cannot be combined with gather or queue")
        if self.column_chunk_size is not None and not self._fast_path_possible():
            raise ValueError(
                "column_chunk_size needs a separable critic (SeparableCritic, BilinearCritic or "
                "None) and the bound infonce, dv, nwj, jsd, js or smile with negatives='all'; got "
                f"critic {type(critic).__name__} and bound {self.estimator!r}"
            )
        if self.chunk_size is not None and isinstance(self.estimator, MINE):
            raise ValueError(
                "chunk_size is not supported with MINE: its moving average spans all position "
                "pairs of one call; use bound='dv' with chunking, or chunk_size=None"
            )

    def _fast_path_possible(self) -> bool:
        return self._scorer.separable and self._kind is not None and self.negatives == "all"

    def extra_repr(self) -> str:
        return (
            f"sampler={self.sampler!r}, reduction={self.reduction!r}, "
            f"x_pattern={self.x_pattern!r}, y_pattern={self.y_pattern!r}, "
            f"negatives={self.negatives!r}, chunk_size={self.chunk_size}, gather={self.gather}"
        )

    def forward(
        self,
        x: Tensor,
        y: Tensor,
        x_mask: Tensor | None = None,
        y_mask: Tensor | None = None,
    ) -> LocalMIResult:
        """Estimate local MI; see the class docstring for shapes.

        Returns:
            :class:`LocalMIResult`.

        Raises:
            ValueError: tensors that do not match their patterns, different batch sizes, masks
                of the wrong shape, a sample with every position masked, fewer than two
                samples (no negatives), grids the sampler cannot pair.
            TypeError: inputs or masks of the wrong type or dtype.
        """
        xs, grid_x = _pack(x, self._x_axes, "x", self.x_pattern)
        ys, grid_y = _pack(y, self._y_axes, "y", self.y_pattern)
        _check_pair(xs, ys)
        batch = xs.shape[0]
        xm = _pack_mask(x_mask, "x_mask", batch, grid_x, xs.device)
        ym = _pack_mask(y_mask, "y_mask", batch, grid_y, ys.device)
        # Padding never reaches a critic: zero it, so even NaN padding leaves no trace.
        if xm is not None:
            xs = xs.masked_fill(~xm[..., None], 0.0)
        if ym is not None:
            ys = ys.masked_fill(~ym[..., None], 0.0)
        pairs = self.sampler(grid_x, grid_y, xs.device)

        cols, col_mask, offset = ys, ym, 0
        if self.gather and distributed.is_distributed():
            if col_mask is None:
                col_mask = torch.ones(ys.shape[:2], dtype=torch.bool, device=ys.device)
            cols = distributed.all_gather_with_grad(ys)
            col_mask = distributed.all_gather_with_grad(col_mask)
            offset = distributed.rank() * batch
        columns_now = cols
        if self.queue is not None and len(self.queue):
            qf, qm = self.queue.features(), self.queue.mask()
            if qf.shape[1:] != cols.shape[1:]:
                raise ValueError(
                    f"the queue holds y features of shape (S, Q, Cy) = {tuple(qf.shape)} but y "
                    f"packs to {tuple(cols.shape)}; reset the queue when the grid changes"
                )
            if col_mask is None:
                col_mask = torch.ones(cols.shape[:2], dtype=torch.bool, device=cols.device)
            cols = torch.cat([cols, qf.to(cols)])
            col_mask = torch.cat([col_mask, qm.to(col_mask.device)])
        if cols.shape[0] < 2:
            raise ValueError(
                f"a batch of one sample has no negatives: x has shape {tuple(x.shape)} and y "
                f"{tuple(y.shape)} (batch size {batch}); use at least 2 samples (or gather "
                "across ranks / a queue)"
            )

        xp = xs.transpose(0, 1)  # (P, B, Cx)
        yq = cols.transpose(0, 1)  # (Q, M, Cy)
        masks = _Masks(
            xm.transpose(0, 1) if xm is not None else None,
            col_mask.transpose(0, 1) if col_mask is not None else None,
        )
        if self.negatives == "derangement":
            values, active = self._derangement_values(xp, yq, masks, pairs)
        else:
            values, active = self._all_negative_values(xp, yq, masks, pairs, offset, batch)
            if self.gather and distributed.is_distributed():
                values, active = _combine_ranks(values, masks, pairs, offset, batch)
        if active is not None and not bool(active.any()):
            raise ValueError(
                "no position pair has a valid anchor and two valid columns: every pair is "
                "padding; check x_mask and y_mask"
            )
        all_active = torch.ones_like(values, dtype=torch.bool) if active is None else active
        objective = _reduce(values, all_active, self.reduction)

        if self.queue is not None and self.training and torch.is_grad_enabled():
            qmask = col_mask[: columns_now.shape[0]] if col_mask is not None else None
            if qmask is None:
                qmask = torch.ones(columns_now.shape[:2], dtype=torch.bool, device=ys.device)
            self.queue.extend(columns_now, qmask)

        pair_est = values.detach()
        if active is not None:
            pair_est = pair_est.masked_fill(~active, math.nan)
        local = torch.full(
            (math.prod(pairs.shape),), math.nan, dtype=pair_est.dtype, device=pair_est.device
        )
        local = local.scatter(0, pairs.where, pair_est).reshape(pairs.shape)
        return LocalMIResult(-objective, objective.detach(), local, pair_est, pairs)

    # -- all in-batch negatives -----------------------------------------------------------------

    def _all_negative_values(
        self,
        xp: Tensor,
        yq: Tensor,
        masks: _Masks,
        pairs: PositionPairs,
        offset: int,
        batch: int,
    ) -> tuple[Tensor, Tensor | None]:
        active, _ = _active_pairs(masks, pairs, offset, batch)
        u, v = self._scorer.prepare(xp, yq)
        chunked = self.chunk_size is not None or self.column_chunk_size is not None
        if chunked and self._fast_path_possible():
            dtype = torch.promote_types(u.dtype, torch.float32)
            bias = self._scorer.bias
            bias_t = bias.to(dtype) if bias is not None else u.new_zeros((), dtype=dtype)
            assert self._kind is not None
            kind, clip = self._kind
            values = _BlockedBound.apply(
                u.to(dtype),
                v.to(dtype),
                bias_t,
                kind,
                clip,
                pairs,
                masks,
                active,
                offset,
                self.chunk_size or len(pairs),
                self.column_chunk_size or v.shape[1],
            )
            return values, active

        def block(u: Tensor, v: Tensor, start: int, stop: int) -> Tensor:
            p, q = pairs.x_index[start:stop], pairs.y_index[start:stop]
            act = active[start:stop] if active is not None else None
            rows, cols = masks.block(p, q, offset, batch, act)
            scores = self._scorer.score(_take(u, p), _take(v, q))
            anchors = _take(xp, p) if _needs_anchors(self.estimator) else None
            return self.estimator(
                scores, offset=offset, row_mask=rows, col_mask=cols, anchors=anchors
            )

        step = self.chunk_size or len(pairs)
        recompute = self.chunk_size is not None and torch.is_grad_enabled()
        parts = []
        for start in range(0, len(pairs), step):  # loop over blocks of pairs, not pairs
            stop = min(start + step, len(pairs))
            if recompute:
                parts.append(checkpoint(block, u, v, start, stop, use_reentrant=False))
            else:
                parts.append(block(u, v, start, stop))
        return (torch.cat(parts) if len(parts) > 1 else parts[0]), active

    # -- derangement: one partner per anchor ----------------------------------------------------

    def _derangement_values(
        self, xp: Tensor, yq: Tensor, masks: _Masks, pairs: PositionPairs
    ) -> tuple[Tensor, Tensor | None]:
        batch = xp.shape[1]
        rows, _ = masks.block(pairs.x_index, pairs.y_index, 0, batch, None)
        if rows is None:
            rows = torch.ones(len(pairs), batch, dtype=torch.bool, device=xp.device)
        partner = random_derangement(rows, self.generator)  # (K, B)
        active = rows.sum(-1) >= 2
        rows = rows | ~active[:, None]
        u, v = self._scorer.prepare(xp, yq)
        eye = torch.eye(batch, dtype=torch.bool, device=xp.device)

        def block(u: Tensor, v: Tensor, start: int, stop: int) -> Tensor:
            p, q = pairs.x_index[start:stop], pairs.y_index[start:stop]
            uu = _take(u, p).expand(stop - start, -1, -1)
            vv = _take(v, q).expand(stop - start, -1, -1)
            idx = partner[start:stop, :, None].expand(-1, -1, vv.shape[-1])
            pos = self._scorer.score_pairs(uu, vv)
            neg = self._scorer.score_pairs(uu, vv.gather(1, idx))
            # Row i holds its positive on the diagonal and its one negative everywhere else:
            # pooled bounds (means over the negatives) then weight every anchor's negative
            # equally, exactly the mean over the B shuffled pairs.
            scores = torch.where(eye, pos[..., None], neg[..., None])
            r = rows[start:stop]
            anchors = _take(xp, p) if _needs_anchors(self.estimator) else None
            return self.estimator(scores, offset=0, row_mask=r, col_mask=r, anchors=anchors)

        step = self.chunk_size or len(pairs)
        recompute = self.chunk_size is not None and torch.is_grad_enabled()
        parts = []
        for start in range(0, len(pairs), step):
            stop = min(start + step, len(pairs))
            if recompute:
                parts.append(checkpoint(block, u, v, start, stop, use_reentrant=False))
            else:
                parts.append(block(u, v, start, stop))
        return torch.cat(parts), active


def _combine_ranks(
    values: Tensor, masks: _Masks, pairs: PositionPairs, offset: int, batch: int
) -> tuple[Tensor, Tensor]:
    """Global per-pair estimates: the ranks' estimates weighted by their valid anchors.

    Every rank scores its own anchors against the same global columns, so for bounds that
    average over anchors and negatives (InfoNCE, NWJ, TUBA, JS, JSD) this weighted mean is the
    estimate of the concatenated batch, padding included; reducing over pairs afterwards makes
    ``max`` and ``logsumexp`` exact too.
    """
    active, n_rows = _active_pairs(masks, pairs, offset, batch)
    if n_rows is None:
        n_rows = torch.full_like(values, batch)
    assert active is not None
    weight = torch.where(active, n_rows.to(values.dtype), torch.zeros_like(values))
    total = distributed.all_reduce_sum_with_grad(weight)
    weighted = distributed.all_reduce_sum_with_grad(values * weight)
    global_active = total > 0
    return weighted / total.clamp(min=1.0), global_active


def _needs_anchors(estimator: Estimator) -> bool:
    baseline = getattr(estimator, "log_baseline", None)
    return baseline is not None and getattr(baseline, "network", None) is not None


def _pool(t: Tensor, mask: Tensor | None, pool: str) -> Tensor:
    """``(B, P, C)`` -> ``(B, C)`` over the valid positions."""
    if pool == "mean":
        if mask is None:
            return t.mean(1)
        return t.masked_fill(~mask[..., None], 0.0).sum(1) / mask.sum(1, keepdim=True).to(t.dtype)
    if mask is None:
        return t.amax(1)
    return t.masked_fill(~mask[..., None], -math.inf).amax(1)


class GlobalMILoss(nn.Module):
    r"""The global baseline: pool each grid to one vector per sample, then apply the bound.

    .. math::

        \hat I = \text{bound}\big(f(\text{pool}(x_i), \text{pool}(y_j))_{ij}\big)

    with masked mean or max pooling over the valid positions. The result has the fields of
    :class:`LocalMIResult` (``local`` is the 0-dim estimate, ``pairs`` is ``None``).

    Args:
        bound: a bound name or :class:`~mitools.estimators.Estimator`.
        critic: an ``nn.Module`` critic on pooled features, or ``None`` for the dot product.
        x_pattern: einops pattern of ``x`` (see :class:`LocalMILoss`).
        y_pattern: einops pattern of ``y``.
        pool: ``"mean"`` or ``"max"``.
        gather: take the columns from every ``torch.distributed`` rank (no-op without one).

    Example:
        >>> import torch
        >>> from mitools.local import GlobalMILoss
        >>> out = GlobalMILoss("infonce", x_pattern="b c h w", y_pattern="b l c")(
        ...     torch.randn(8, 16, 4, 4), torch.randn(8, 5, 16))
        >>> out.estimate.shape
        torch.Size([])
    """

    def __init__(
        self,
        bound: str | Estimator | Callable[..., Tensor] = "infonce",
        critic: nn.Module | None = None,
        *,
        x_pattern: str = "b c h w",
        y_pattern: str = "b c",
        pool: str = "mean",
        gather: bool = False,
    ):
        super().__init__()
        self.estimator, critic = _check_bound_and_critic(bound, critic)
        self.critic = critic
        if pool not in ("mean", "max"):
            raise ValueError(f"pool must be 'mean' or 'max', got {pool!r}")
        self.pool = pool
        self.x_pattern, self.y_pattern = x_pattern, y_pattern
        self._x_axes = _parse_pattern(x_pattern, "x_pattern")
        self._y_axes = _parse_pattern(y_pattern, "y_pattern")
        self.gather = bool(gather)

    def extra_repr(self) -> str:
        return (
            f"pool={self.pool!r}, x_pattern={self.x_pattern!r}, y_pattern={self.y_pattern!r}, "
            f"gather={self.gather}"
        )

    def forward(
        self,
        x: Tensor,
        y: Tensor,
        x_mask: Tensor | None = None,
        y_mask: Tensor | None = None,
    ) -> LocalMIResult:
        """Pool, score and bound; shapes as in :class:`LocalMILoss`."""
        xs, grid_x = _pack(x, self._x_axes, "x", self.x_pattern)
        ys, grid_y = _pack(y, self._y_axes, "y", self.y_pattern)
        _check_pair(xs, ys)
        batch = xs.shape[0]
        xm = _pack_mask(x_mask, "x_mask", batch, grid_x, xs.device)
        ym = _pack_mask(y_mask, "y_mask", batch, grid_y, ys.device)
        xg, yg = _pool(xs, xm, self.pool), _pool(ys, ym, self.pool)
        offset = 0
        gathered = self.gather and distributed.is_distributed()
        if gathered:
            yg = distributed.all_gather_with_grad(yg)
            offset = distributed.rank() * batch
        if yg.shape[0] < 2:
            raise ValueError(
                f"a batch of one sample has no negatives: x has shape {tuple(x.shape)} and y "
                f"{tuple(y.shape)}; use at least 2 samples"
            )
        if self.critic is None:
            if xg.shape[-1] != yg.shape[-1]:
                raise ValueError(
                    f"critic=None scores the dot product x·y, which needs as many channels on "
                    f"both sides; got Cx={xg.shape[-1]} and Cy={yg.shape[-1]}; pass a critic"
                )
            scores = xg @ yg.transpose(-1, -2)
        else:
            scores = self.critic(xg, yg)
        anchors = xg if _needs_anchors(self.estimator) else None
        value = self.estimator(scores, offset=offset, anchors=anchors)
        if gathered:  # the global-batch estimate on every rank (see mitools.distributed)
            value = distributed.all_reduce_sum_with_grad(value) / distributed.world_size()
        est = value.detach()
        return LocalMIResult(-value, est, est, est.reshape(1), None)
