"""The two losses, as orchestration: pack, sample, assemble negatives, score, bound, reduce.

Every step is a module of its own (:mod:`mitools.local.grid`, :mod:`mitools.samplers`,
:mod:`mitools.negatives`, :mod:`mitools.local.backends`, :mod:`mitools.reductions`); the
losses only put them in order and know no bound or critic by its class: what they do with an
estimator follows what it declares (``direction``, ``needs_log_density``, ``model_objective``,
``min_rows``, ...; see :class:`~mitools.estimators.Estimator`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from mitools import distributed
from mitools.bounds import RowwiseBound
from mitools.estimators import Estimator, get_estimator
from mitools.local.backends import check_backend, choose_backend, problem_values
from mitools.local.dense import derangement_values
from mitools.local.grid import check_pair, pack, pack_mask, parse_pattern, pool
from mitools.local.problems import PairMasks, Problems
from mitools.local.scoring import Scorer
from mitools.negatives import NEGATIVES, NegativeColumns, NegativeQueue, negative_columns
from mitools.reductions import Reduction, check_reduction, reduce, reduction_name
from mitools.samplers import LocalToGlobal, PairSampler, PositionPairs

__all__ = ["GlobalMILoss", "LocalMILoss", "LocalMIResult"]


DIRECTIONS = ("lower", "upper", "neither")


class LocalMIResult(NamedTuple):
    """What :class:`LocalMILoss` and :class:`GlobalMILoss` return.

    **Sign convention.** ``loss`` is what to minimise to do what the estimator is for:
    ``-objective`` for a lower bound (and for DoE, whose gradient fits its models), so that
    minimising it maximises the bound over the critic and the features; ``+objective`` for an
    upper bound (``direction == "upper"``: CLUB, vCLUB, L1Out), so that minimising it
    minimises the MI of the features, with the critic's parameters *detached* (an upper
    bound is not minimised over its model :math:`q`). The model is trained by ``model_loss``:
    minus the reduced model objective (the log-likelihood of the positives, averaged over the
    pairs), with the *features* detached. So one optimiser over everything does both players'
    steps::

        out = loss_fn(z, s)
        (task_loss + beta * out.loss + out.model_loss).backward()
        optimiser.step()

    For every other estimator ``model_loss`` is a zero (``loss`` already trains the critic).
    """

    #: The scalar to minimise, ``-objective`` (lower bounds, DoE) or ``+objective`` (upper
    #: bounds, whose critic parameters it does not reach); carries the gradient.
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
    #: The scalar to minimise to fit the critic of an upper bound (minus its mean
    #: log-likelihood over the active pairs, features detached); a zero for the others.
    model_loss: Tensor


class _Objective(Estimator):
    """A row-wise objective as an estimator: the model objective of an upper bound."""

    def __init__(self, rowwise: RowwiseBound):
        super().__init__()
        self.rowwise = rowwise
        self.name = rowwise.name


def _check_bound_and_critic(bound: Any, critic: Any) -> tuple[Estimator, Any]:
    estimator = get_estimator(bound)
    if critic is not None and not isinstance(critic, nn.Module) and not callable(critic):
        raise TypeError(
            f"critic must be an nn.Module, a callable or None, got {type(critic).__name__}"
        )
    if estimator.direction not in DIRECTIONS:
        raise ValueError(
            f"the estimator {estimator.name!r} declares direction={estimator.direction!r}; "
            f"expected one of {DIRECTIONS}"
        )
    if estimator.needs_log_density and not getattr(critic, "log_density", False):
        name = "critic=None" if critic is None else type(critic).__name__
        raise ValueError(
            f"the bound {estimator.name!r} needs log conditional densities log q(y_j | x_i) as "
            f"scores (needs_log_density), and {name} does not declare log_density = True: on an "
            "unnormalised critic's scores it bounds nothing. Pass a "
            "mitools.conditionals.ConditionalDensity (DiagonalGaussian, FullGaussian, "
            "MixtureOfGaussians) as the critic, or set log_density = True on a critic that "
            "returns normalised log-densities; with a critic use a discriminative bound "
            "(infonce, dv, nwj, flo, ...)"
        )
    return estimator, critic


def _check_chunk(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int or None, got {value!r}")
    return value


class _Engine(nn.Module):
    """What both losses share: patterns, the critic's capabilities, the bound, the backend."""

    gather: bool = False

    def __init__(
        self,
        bound: Any,
        critic: Any,
        x_pattern: str,
        y_pattern: str,
        backend: str,
        chunk_size: Any,
        column_chunk_size: Any,
        negatives: str,
    ) -> None:
        super().__init__()
        self.estimator, critic = _check_bound_and_critic(bound, critic)
        self.critic = critic
        upper = self.estimator.direction == "upper"
        # An upper bound reaches the features only; its model is fitted by model_loss.
        self._scorer = Scorer(critic, detach_parameters=upper)
        self._model_scorer = Scorer(critic)
        objective = self.estimator.model_objective if upper else None
        self._model_estimator = _Objective(objective) if objective is not None else None
        self.x_pattern, self.y_pattern = x_pattern, y_pattern
        self._x_axes = parse_pattern(x_pattern, "x_pattern")
        self._y_axes = parse_pattern(y_pattern, "y_pattern")
        if negatives not in NEGATIVES:
            raise ValueError(f"negatives must be one of {NEGATIVES}, got {negatives!r}")
        self.negatives = negatives
        self.chunk_size = _check_chunk(chunk_size, "chunk_size")
        self.column_chunk_size = _check_chunk(column_chunk_size, "column_chunk_size")
        self.backend = check_backend(
            backend, self.estimator, self._scorer, negatives, self.column_chunk_size
        )
        #: the path the last forward ran on (``"dense"``, ``"blocked"`` or ``"attention"``)
        self.last_backend: str | None = None

    def _pack(self, x: Any, y: Any, x_mask: Any, y_mask: Any):
        dim_x, dim_y = self._scorer.channels()
        name = self._scorer.name
        xs, grid_x = pack(x, self._x_axes, "x", self.x_pattern, dim_x, name)
        ys, grid_y = pack(y, self._y_axes, "y", self.y_pattern, dim_y, name)
        check_pair(xs, ys)
        self._scorer.check_dot_product(
            xs.shape[-1], ys.shape[-1], (self.x_pattern, self.y_pattern), (x.shape, y.shape)
        )
        batch = xs.shape[0]
        xm = pack_mask(x_mask, "x_mask", batch, grid_x, xs.device)
        ym = pack_mask(y_mask, "y_mask", batch, grid_y, ys.device)
        return xs, ys, grid_x, grid_y, xm, ym

    def _values(
        self,
        xs: Tensor,
        xm: Tensor | None,
        cols: NegativeColumns,
        pairs: PositionPairs,
        generator: torch.Generator | None,
        model: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Per-pair values ``(K,)`` and the active pairs (``None``: all).

        ``model``: the model objective of an upper bound instead of the bound (the positives
        only, on the dense path, the critic's parameters attached).
        """
        estimator = self._model_estimator if model else self.estimator
        scorer = self._model_scorer if model else self._scorer
        assert estimator is not None
        xp = xs.transpose(0, 1)  # (P, N, Cx)
        yq = cols.features.transpose(0, 1)  # (Q, M, Cy)
        masks = PairMasks(
            xm.transpose(0, 1) if xm is not None else None,
            cols.mask.transpose(0, 1) if cols.mask is not None else None,
        )
        problems = Problems(pairs, masks, cols.offset, xs.shape[0], cols.features.shape[0],
                            min_rows=self.estimator.min_rows)  # fmt: skip
        if self.negatives == "derangement" and not model:
            self.last_backend = "dense"
            u, v = scorer.factors(xp, yq) if scorer.separable else (xp, yq)
            return derangement_values(
                problems, scorer, estimator, xp, yq, u, v, self.chunk_size, generator
            )
        if model:
            backend, kernel, chunk = "dense", None, None
        else:
            backend, kernel = choose_backend(
                self.backend, estimator, scorer, self.negatives, problems, xs.dtype,
                xs.device, self.chunk_size is not None or self.column_chunk_size is not None,
            )  # fmt: skip
            self.last_backend, chunk = backend, self.chunk_size
        values = problem_values(
            backend, kernel, problems, scorer, estimator, xp, yq, chunk,
            self.column_chunk_size,
        )  # fmt: skip
        if self.gather and distributed.is_distributed():
            return problems.combine_ranks(values)
        return values, problems.active

    def _finish(
        self,
        objective: Tensor,
        xs: Tensor,
        xm: Tensor | None,
        cols: NegativeColumns,
        pairs: PositionPairs,
        active: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """``(loss, model_loss)`` from the reduced objective (see :class:`LocalMIResult`)."""
        if self.estimator.direction != "upper":
            return -objective, objective.new_zeros(())
        if self._model_estimator is None:
            return objective, objective.new_zeros(())
        detached = cols._replace(features=cols.features.detach())
        model, _ = self._values(xs.detach(), xm, detached, pairs, None, model=True)
        return objective, -reduce(model, active, "mean")

class LocalMILoss(_Engine):
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
            ``"derangement"`` (one random partner per anchor, never itself; not with bounds
            that need every pair, ``needs_row_partition``: InfoNCE's per-row log-partition,
            L1Out's per-column mixture; nor with gather or a queue).
        queue: a :class:`~mitools.negatives.NegativeQueue` or its size: past ``y`` features
            appended as extra negative columns (extended after each training forward).
        chunk_size: position pairs scored at once (``None``: all). Blocks are recomputed in
            the backward pass, so memory stays bounded in training too (not for vCLUB, whose
            random draws must stay those of the forward pass).
        column_chunk_size: columns scored at once with a running log-sum-exp (``None``: all);
            the blocked path: a separable critic and a bound with per-row statistics.
        gather: take the columns (negatives) from every ``torch.distributed`` rank, with
            gradients (see :mod:`mitools.distributed`); a no-op without a process group.
        generator: a :class:`torch.Generator` for the derangement draws.
        backend: ``"auto"``, ``"dense"``, ``"blocked"`` or ``"attention"``: the execution path
            (:mod:`mitools.local.backends`); every path gives the same values and gradients.

    Shapes of :meth:`forward`:
        ``x`` as ``x_pattern`` (``B`` samples, grid ``grid_x``, ``Cx`` channels), ``y`` as
        ``y_pattern`` with the same ``B``; masks ``(B, *grid)`` or ``(B, P)`` bool, ``True``
        for valid positions. Half-precision features are scored in float32.

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
        generator: torch.Generator | None = None,
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
        if isinstance(queue, int) and not isinstance(queue, bool):
            queue = NegativeQueue(queue)
        if queue is not None and not isinstance(queue, NegativeQueue):
            raise TypeError(
                f"queue must be a NegativeQueue, a positive int or None, got {type(queue).__name__}"
            )
        self.queue = queue
        self.gather = bool(gather)
        self.generator = generator
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
                non-finite scores.
            TypeError: inputs or masks of the wrong type or dtype.
        """
        xs, ys, grid_x, grid_y, xm, ym = self._pack(x, y, x_mask, y_mask)
        # Padding never reaches a critic: zero it, so even NaN padding leaves no trace.
        if xm is not None:
            xs = xs.masked_fill(~xm[..., None], 0.0)
        if ym is not None:
            ys = ys.masked_fill(~ym[..., None], 0.0)
        pairs = self.sampler(grid_x, grid_y, xs.device)
        cols = negative_columns(ys, ym, gather=self.gather, queue=self.queue)
        if cols.features.shape[0] < 2:
            raise ValueError(
                f"a batch of one sample has no negatives: x has shape {tuple(x.shape)} and y "
                f"{tuple(y.shape)} (batch size {xs.shape[0]}); use at least 2 samples (or "
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
            batch_mask = cols.batch_mask
            if batch_mask is None:
                batch_mask = torch.ones(
                    cols.batch_features.shape[:2], dtype=torch.bool, device=ys.device
                )
            self.queue.extend(cols.batch_features, batch_mask)

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
        self.gather = bool(gather)

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
        """Pool, score and bound; shapes as in :class:`LocalMILoss`."""
        xs, ys, _, _, xm, ym = self._pack(x, y, x_mask, y_mask)
        xg, yg = pool(xs, xm, self.pool)[:, None], pool(ys, ym, self.pool)[:, None]
        cols = negative_columns(yg, None, gather=self.gather, queue=None)
        if cols.features.shape[0] < 2:
            raise ValueError(
                f"a batch of one sample has no negatives: x has shape {tuple(x.shape)} and y "
                f"{tuple(y.shape)}; use at least 2 samples"
            )
        pairs = LocalToGlobal()((), (), xg.device)
        values, _ = self._values(xg, None, cols, pairs, None)
        value = values[0]
        loss, model_loss = self._finish(value, xg, None, cols, pairs, torch.ones_like(values,
                                                                               dtype=torch.bool))
        est = value.detach()
        return LocalMIResult(loss, est, est, est.reshape(1), None, model_loss)
