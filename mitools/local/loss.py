"""The two losses, as orchestration: pack, sample, assemble negatives, score, bound, reduce.

Every step is a module of its own (:mod:`mitools.local.grid`, :mod:`mitools.samplers`,
:mod:`mitools.negatives`, :mod:`mitools.local.backends`, :mod:`mitools.reductions`); the
losses only put them in order (what they share is :mod:`mitools.local.engine`) and know no
bound or critic by its class: what they do with an estimator follows what it declares
(``direction``, ``needs_log_density``, ``model_objective``, ``min_rows``, ...; see
:class:`~mitools.estimators.Estimator`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from mitools import distributed
from mitools.estimators import Estimator
from mitools.local.engine import LocalMIResult, _Engine
from mitools.local.grid import pool
from mitools.negatives import NegativeQueue, negative_columns
from mitools.option_checks import check_flag, check_int
from mitools.reductions import Reduction, check_reduction, reduce, reduction_name
from mitools.samplers import LocalToGlobal, PairSampler, PositionPairs, check_pairs
from mitools.tasks.seeding import _generator, _PicklesGenerators

__all__ = ["GlobalMILoss", "LocalMILoss", "LocalMIResult"]


class LocalMILoss(_PicklesGenerators, _Engine):
    r"""Mutual information between the positions of two feature grids of any shape.

    **Generative estimators and upper bounds** (``"ba"``, ``"doe"``, ``"club"``, ``"vclub"``,
    ``"l1out"``, ``"flo"``) work too, with what they declare: those that need log-densities
    take a :class:`~mitools.conditionals.ConditionalDensity` :math:`q(y \mid x)` as the critic
    (the Gaussians are separable and take the fast paths; BA, DoE, CLUB and FLO are row-wise,
    vCLUB and L1Out run on the dense path); FLO's ``u_network`` and DoE's ``marginal`` get the
    anchors and the column features. For an upper bound ``loss`` is ``+objective`` with the
    critic's parameters detached and ``model_loss`` fits the critic (see
    :class:`LocalMIResult`). A reduction of per-pair upper bounds bounds the same reduction
    of the *local* MIs (``"mean"``, ``"sum"``, ``"max"`` and ``"logsumexp"`` are
    non-decreasing and convex, so by Jensen each stays above in expectation), never the MI
    between the whole grids: by the chain rule the grids can share information that no
    single pair holds. Custom reductions of upper bounds are refused.

    Args:
        bound: a bound name (``"infonce"``, ``"dv"``, ``"mine"``, ``"nwj"``, ``"jsd"``,
            ``"club"``, ...) or an :class:`~mitools.estimators.Estimator`.
        critic: an ``nn.Module`` ``f(x (..., N, Cx), y (..., M, Cy)) -> (..., N, M)``, e.g. a
            :class:`~mitools.critics.SeparableCritic` or, for the bounds on log-densities, a
            :class:`~mitools.conditionals.ConditionalDensity`; ``None`` for the dot product
            :math:`x^\top y` (Deep InfoMax's critic on already-encoded features).
        sampler: a :class:`~mitools.samplers.PairSampler` (default
            :class:`~mitools.samplers.LocalToGlobal`).
        reduction: ``"mean"`` (Deep InfoMax), ``"sum"``, ``"max"`` (Liao et al.),
            ``"logsumexp"`` or a callable ``f(values, active)`` over the position pairs
            (see :mod:`mitools.reductions`).
        x_pattern: einops pattern of ``x``, naming the batch axis ``b``, the channel axis ``c``
            and any grid axes, e.g. ``"b c h w"``, ``"b l c"``, ``"b c t h w"``, ``"b c"``.
        y_pattern: einops pattern of ``y``.
        negatives: ``"all"`` (every other sample of the batch, all off-diagonal entries) or
            ``"derangement"`` (one random partner per anchor among the valid columns, never
            itself; not with bounds
            that need every pair, ``needs_row_partition``: InfoNCE's per-row log-partition,
            L1Out's per-column mixture; nor with gather or a queue).
        queue: a :class:`~mitools.negatives.NegativeQueue` or its size: past ``y`` features
            appended as extra negative columns (extended after each training forward); saved
            in ``state_dict()``, so a resumed run goes on with it. Under a
            ``torch.distributed`` process group it is extended with every rank's batch, with
            or without ``gather`` (as MoCo's), so it is the same on every rank (what
            ``DistributedDataParallel``'s buffer broadcast needs); every rank must then run
            each training forward, and the grids must be the same on every rank.
        chunk_size: position pairs scored at once (``None``: all). Blocks are recomputed in
            the backward pass, so memory stays bounded in training too (not for vCLUB, whose
            random draws must stay those of the forward pass).
        column_chunk_size: columns scored at once with a running log-sum-exp (``None``: all);
            the blocked path: a separable critic and a bound with per-row statistics.
        gather: take the columns (negatives) from every ``torch.distributed`` rank, with
            gradients (see :mod:`mitools.distributed`); a no-op without a process group.
            Every rank scores rank 0's position pairs (the sampler's draws on other ranks are
            replaced), and the grids must be the same on every rank (``ValueError``).
        generator: a :class:`torch.Generator` or an int seed for the derangement draws
            (unused with ``negatives="all"``). A seed makes one generator at construction,
            which advances with each call. ``None``: torch's global RNG, which each
            derangement draw advances (a :class:`~mitools.samplers.RandomPairs` has its own
            ``generator``).
        backend: ``"auto"``, ``"dense"``, ``"blocked"`` or ``"attention"``: the execution path
            (:mod:`mitools.local.backends`); every path gives the same values and gradients.

    Shapes of :meth:`forward`:
        ``x`` as ``x_pattern`` (``B`` samples, grid ``grid_x``, ``Cx`` channels), ``y`` as
        ``y_pattern`` with the same ``B``, dtype and device; masks ``(B, *grid)`` or
        ``(B, P)`` bool, ``True`` for valid positions. Half-precision features are scored in
        float32, and so are a critic's factors under ``torch.autocast`` (its networks run in
        autocast's dtype; call ``loss.backward()`` outside the autocast region).

    Raises:
        ValueError: at construction, an unknown bound, reduction, pattern, ``negatives`` or
            ``backend``; a ``backend`` (or ``column_chunk_size``) the critic or bound cannot
            take; a bound on log-densities with a critic that does not declare
            ``log_density = True``; a custom reduction of an upper bound; derangement
            negatives with a bound that needs every pair (InfoNCE, α-InfoNCE, L1Out), with
            ``gather`` or with a queue; an int seed out of torch's range. At the call: see
            :meth:`forward`.
        TypeError: at construction, a ``sampler`` that is not a
            :class:`~mitools.samplers.PairSampler`, a reduction that is neither a name nor a
            callable, a ``queue`` that is not a :class:`~mitools.negatives.NegativeQueue`,
            an int or ``None``, a ``generator`` that is not a ``torch.Generator``, an int or
            ``None``.

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
        reduction: Reduction = "mean",
        *,
        x_pattern: str = "b c h w",
        y_pattern: str = "b c",
        negatives: str = "all",
        queue: NegativeQueue | int | None = None,
        chunk_size: int | None = None,
        column_chunk_size: int | None = None,
        gather: bool = False,
        generator: torch.Generator | int | None = None,
        backend: str = "auto",
    ):
        super().__init__(bound, critic, x_pattern, y_pattern, backend, chunk_size,
                         column_chunk_size, negatives)  # fmt: skip
        self.sampler = LocalToGlobal() if sampler is None else sampler
        if not isinstance(self.sampler, PairSampler):
            raise TypeError(
                f"sampler must be a mitools.samplers.PairSampler, got {type(sampler).__name__}"
            )
        self.reduction = check_reduction(reduction)
        if callable(self.reduction) and self.estimator.direction == "upper":
            raise ValueError(
                f"a custom reduction of upper bounds ({self.estimator.name}) is an upper bound "
                "on the same reduction of the local MIs only if it is non-decreasing and convex "
                "in every value, which cannot be checked; use 'mean', 'sum', 'max' or "
                "'logsumexp' (each bounds that reduction of the local MIs, never the MI between "
                "the whole grids)"
            )
        if isinstance(queue, (numbers.Integral, np.bool_)):  # a bool is refused by name
            queue = NegativeQueue(check_int("queue", queue))
        if queue is not None and not isinstance(queue, NegativeQueue):
            raise TypeError(
                f"queue must be a NegativeQueue, a positive int or None, got {type(queue).__name__}"
            )
        self.queue = queue
        self.gather = check_flag("gather", gather)
        # an int seed seeds one generator here, which advances with each call (seeding anew
        # at each call drew the same derangement every step)
        self.generator = _generator(generator, name="LocalMILoss: generator")
        if negatives == "derangement":
            if self.estimator.needs_row_partition:
                raise ValueError(
                    "negatives='derangement' gives each anchor one negative, but "
                    f"{self.estimator.name} needs every anchor scored against every column (a "
                    "per-row log-partition, as InfoNCE's, would weight the one negative as B - 1 "
                    "copies; L1Out's mixture needs the other anchors on each positive); use "
                    "negatives='all' with it, or a pooled bound (dv, mine, nwj, jsd, js, smile, "
                    "tuba, flo, club, vclub, ba, doe)"
                )
            if self.gather or queue is not None:
                raise ValueError("negatives='derangement' cannot be combined with gather or queue")

    def extra_repr(self) -> str:
        return (
            f"sampler={self.sampler!r}, reduction={reduction_name(self.reduction)!r}, "
            f"x_pattern={self.x_pattern!r}, y_pattern={self.y_pattern!r}, "
            f"negatives={self.negatives!r}, backend={self.backend!r}, "
            f"chunk_size={self.chunk_size}, column_chunk_size={self.column_chunk_size}, "
            f"gather={self.gather}"
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
            ValueError: tensors that do not match their patterns or the critic's channels,
                different batch sizes, masks of the wrong shape, a sample with every position
                masked, fewer than two samples (no negatives), grids the sampler cannot pair,
                non-finite scores, ``x`` and ``y`` on different devices.
            TypeError: inputs or masks of the wrong type or dtype, or ``x`` and ``y`` of
                different dtypes (float32 image features with float64 text features): the
                message gives each argument's shape and dtype; cast one to the other's dtype
                (features are never promoted silently), and pass bool masks. A critic of
                your own (not a mitools critic) that fails on features of a dtype none of its
                parameters has (bfloat16 features, float32 ``nn.Linear``): the message names
                both dtypes.
        """
        xs, ys, grid_x, grid_y, xm, ym = self._pack(x, y, x_mask, y_mask)
        # Padding never reaches a critic: zero it, so even NaN padding leaves no trace.
        if xm is not None:
            xs = xs.masked_fill(~xm[..., None], 0.0)
        if ym is not None:
            ys = ys.masked_fill(~ym[..., None], 0.0)
        pairs = check_pairs(self.sampler(grid_x, grid_y, xs.device), grid_x, grid_y,
                            type(self.sampler).__name__,
                            values=type(self.sampler).__module__ != "mitools.samplers")
        if self.gather and distributed.is_distributed():
            pairs = _pairs_of_rank_zero(pairs, grid_x, grid_y)
        cols = negative_columns(ys, ym, gather=self.gather, queue=self.queue)
        if cols.features.shape[0] < 2:
            raise ValueError(
                f"a batch of {_samples(xs.shape[0])} has no negatives: x has shape "
                f"{tuple(x.shape)} and y {tuple(y.shape)}; use at least 2 samples (or "
                "gather across ranks / a queue)"
            )
        values, active = self._values(xs, xm, cols, pairs, self.generator)
        if active is not None and not bool(active.any()):
            rows = "a valid anchor" if self.estimator.min_rows == 1 else (
                f"{self.estimator.min_rows} valid anchors ({self.estimator.name})")
            raise ValueError(
                f"no position pair has {rows} and two valid columns: every pair is padding; "
                "check x_mask and y_mask"
            )
        all_active = torch.ones_like(values, dtype=torch.bool) if active is None else active
        objective = reduce(values, all_active, self.reduction)
        loss, model_loss = self._finish(objective, xs, xm, cols, pairs, all_active)

        if self.queue is not None and self.training and torch.is_grad_enabled():
            batch, batch_mask = cols.batch_features, cols.batch_mask
            if batch_mask is None:
                batch_mask = torch.ones(batch.shape[:2], dtype=torch.bool, device=ys.device)
            if not self.gather and distributed.is_distributed():
                # every rank's batch, as MoCo's queue takes it, so the queues are alike on
                # every rank: DDP's buffer broadcast replaced each rank's own queue with rank
                # 0's, and aborted the job in gloo when the ranks' batches differed in size
                batch, _ = distributed.all_gather_with_offset(batch.detach())
                batch_mask, _ = distributed.all_gather_with_offset(batch_mask)
            self.queue.extend(batch, batch_mask)

        pair_est = values.detach()
        if active is not None:
            pair_est = pair_est.masked_fill(~active, math.nan)
        local = torch.full(
            (math.prod(pairs.shape),), math.nan, dtype=pair_est.dtype, device=pair_est.device
        )
        local = local.scatter(0, pairs.where, pair_est).reshape(pairs.shape)
        return LocalMIResult(loss, objective.detach(), local, pair_est, pairs, model_loss)


class GlobalMILoss(_Engine):
    r"""The global baseline: pool each grid to one vector per sample, then apply the bound.

    .. math::

        \hat I = \text{bound}\big(f(\text{pool}(x_i), \text{pool}(y_j))_{ij}\big)

    with masked mean or max pooling over the valid positions. The result has the fields of
    :class:`LocalMIResult` (``local`` is the 0-dim estimate, ``pairs`` is ``None``), with its
    sign convention: for an upper bound (CLUB, vCLUB, L1Out, on a
    :class:`~mitools.conditionals.ConditionalDensity`) ``loss`` is the bound, to minimise, and
    ``model_loss`` fits :math:`q`. An upper bound here bounds the MI between the *pooled*
    vectors, which is at most the MI between the grids (pooling is a function of each grid),
    so it says nothing about the grids' MI. The pooled problem runs on the same execution paths
    as :class:`LocalMILoss` (one position pair).

    Args:
        bound: a bound name or :class:`~mitools.estimators.Estimator`.
        critic: an ``nn.Module`` critic on pooled features, or ``None`` for the dot product.
        x_pattern: einops pattern of ``x`` (see :class:`LocalMILoss`).
        y_pattern: einops pattern of ``y``.
        pool: ``"mean"`` or ``"max"``.
        gather: take the columns from every ``torch.distributed`` rank (no-op without one).
        backend: the execution path (see :class:`LocalMILoss`).
        column_chunk_size: columns scored at once on the blocked path (``None``: all).

    Raises:
        ValueError: at construction, a ``pool`` other than ``"mean"`` or ``"max"``, and as
            :class:`LocalMILoss` for the bound, critic, patterns and ``backend``; at the call,
            as :meth:`LocalMILoss.forward`.

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
        backend: str = "auto",
        column_chunk_size: int | None = None,
    ):
        super().__init__(bound, critic, x_pattern, y_pattern, backend, None, column_chunk_size,
                         "all")  # fmt: skip
        if pool not in ("mean", "max"):
            raise ValueError(f"pool must be 'mean' or 'max', got {pool!r}")
        self.pool = pool
        self.gather = check_flag("gather", gather)

    def extra_repr(self) -> str:
        return (
            f"pool={self.pool!r}, x_pattern={self.x_pattern!r}, y_pattern={self.y_pattern!r}, "
            f"backend={self.backend!r}, gather={self.gather}"
        )

    def forward(
        self,
        x: Tensor,
        y: Tensor,
        x_mask: Tensor | None = None,
        y_mask: Tensor | None = None,
    ) -> LocalMIResult:
        """Pool, score and bound; shapes as in :class:`LocalMILoss`.

        Raises:
            ValueError, TypeError: as :meth:`LocalMILoss.forward`.
        """
        xs, ys, _, _, xm, ym = self._pack(x, y, x_mask, y_mask)
        xg, yg = pool(xs, xm, self.pool)[:, None], pool(ys, ym, self.pool)[:, None]
        cols = negative_columns(yg, None, gather=self.gather, queue=None)
        if cols.features.shape[0] < 2:
            raise ValueError(
                f"a batch of {_samples(xs.shape[0])} has no negatives: x has shape "
                f"{tuple(x.shape)} and y {tuple(y.shape)}; use at least 2 samples"
            )
        pairs = LocalToGlobal()((), (), xg.device)
        values, _ = self._values(xg, None, cols, pairs, None)
        value = values[0]
        loss, model_loss = self._finish(value, xg, None, cols, pairs, torch.ones_like(values,
                                                                               dtype=torch.bool))
        est = value.detach()
        return LocalMIResult(loss, est, est, est.reshape(1), None, model_loss)


def _pairs_of_rank_zero(pairs: PositionPairs, grid_x: tuple, grid_y: tuple) -> PositionPairs:
    """Rank 0's position pairs on every rank: the ranks' per-pair estimates are combined pair
    by pair, so each rank must score the same positions (a :class:`RandomPairs` without a
    shared seed draws other pairs on each rank; their estimates were averaged silently)."""
    distributed.check_same_on_every_rank(
        (tuple(grid_x), tuple(grid_y), tuple(pairs.shape), len(pairs)),
        "LocalMILoss(gather=True): the grids (grid_x, grid_y), the map shape and the number "
        "of position pairs",
    )
    return pairs._replace(x_index=distributed.broadcast_from_first(pairs.x_index),
                          y_index=distributed.broadcast_from_first(pairs.y_index),
                          where=distributed.broadcast_from_first(pairs.where))


def _samples(n: int) -> str:
    return "one sample" if n == 1 else f"{n} samples"
