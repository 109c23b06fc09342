"""MINE: the DV value with the bias-corrected gradient of a moving-average partition function."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from mitools import bounds, distributed
from mitools.bounds import RowStatistics
from mitools.bounds._scores import with_gradient_of
from mitools.estimators.base import Estimator, ProblemIndex
from mitools.option_checks import check_number

__all__ = ["MINE"]


class MINE(Estimator):
    r"""MINE: the DV value with the bias-corrected gradient of Belghazi et al. (2018, eq. 12).

    The gradient of the log-partition term :math:`\log \mathbb{E}_q[e^{S}]` is estimated by
    :math:`\mathbb{E}_q[e^{S}\nabla S] / \bar Z`, where :math:`\bar Z` is an exponential moving
    average of the batch partition estimates. The average is kept in log space,

    .. math::

        \log \bar Z \leftarrow \operatorname{logaddexp}\big(\log\beta + \log \bar Z,\;
            \log(1-\beta) + \operatorname{lme}_{\mathcal{O}}(S)\big),

    so scores of any magnitude are safe. The returned value is always the DV estimate of the
    batch; only the gradient differs. The average is updated in training mode when gradients
    are enabled; in evaluation mode MINE returns plain DV.

    **One average per estimation problem.** Called on scores ``(..., N, M)``, MINE keeps one
    average per leading index. Inside :class:`~mitools.local.LocalMILoss` it receives a
    :class:`~mitools.estimators.ProblemIndex` and keeps one average per *position pair* (the
    map of the sampler's pairs, e.g. one per cell), whichever pairs a call draws and in
    whichever order, and only the real pairs of a call (a valid anchor and two valid columns)
    update theirs; a pair's first update starts its average.

    **Distributed.** With gathered negatives (``gather=True`` of the losses, under
    ``torch.distributed``) the averages follow the log-partition of the *global* batch (every
    rank's negatives) and are the same on every rank, so ``DistributedDataParallel``'s buffer
    broadcast changes nothing, and its averaged gradient is that of one process on the
    concatenated batch (the value stays the weighted mean of the ranks' DV estimates, see
    :mod:`mitools.distributed`). Called on scores directly, MINE knows no ranks: each process
    keeps the average of its own batches. So does a loss with ``gather=False``, and inside
    ``DistributedDataParallel`` (whose ``broadcast_buffers=True`` copies rank 0's buffers to
    every rank at each forward) the averages then follow rank 0's batches only.

    Args:
        momentum: :math:`\beta \in [0, 1)`, the weight of the past in the moving average
            (``0`` recovers DV's gradient).

    Raises:
        ValueError: a ``momentum`` that is not a finite number in ``[0, 1)``; when called, as
            :func:`mitools.bounds.dv`.

    Example:
        >>> import torch
        >>> mine = MINE(momentum=0.9)
        >>> scores = torch.randn(8, 8, requires_grad=True)
        >>> value = mine(scores)
        >>> value.backward()
        >>> bool(torch.isfinite(mine.log_partition_ema).all())
        True
    """

    name = "mine"
    rowwise = bounds.rowwise_bound(bounds.dv)
    per_problem_state = True
    log_partition_ema: Tensor
    seen: Tensor
    initialized: Tensor

    def __init__(self, momentum: float = 0.99):
        super().__init__()
        self.momentum = check_number("MINE: momentum", momentum, 0, strict=False, high=1)
        self.register_buffer("log_partition_ema", torch.zeros(()))
        #: which problems have an average yet (same shape as ``log_partition_ema``)
        self.register_buffer("seen", torch.zeros((), dtype=torch.bool))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    def reset(self) -> None:
        """Forget the moving averages (e.g. before training on a new task)."""
        device = self.log_partition_ema.device
        self.log_partition_ema = torch.zeros((), device=device)
        self.seen = torch.zeros((), dtype=torch.bool, device=device)
        self.initialized.fill_(False)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        key = prefix + "log_partition_ema"
        if key in state_dict:  # the averages' shape follows the problems they were fitted on
            # the shape and dtype (the averages' dtype follows the scores they were fitted
            # on) but the module's device, as load_state_dict keeps it for every buffer: a
            # CPU checkpoint loaded into a MINE on a GPU left the averages on the CPU, and the
            # next training step indexed them across devices
            device = self.log_partition_ema.device
            self.log_partition_ema = torch.empty_like(state_dict[key], device=device)
            seen = state_dict.get(prefix + "seen")
            if seen is None:  # a state saved before per-problem averages: all were seen
                init = state_dict.get(prefix + "initialized", torch.ones((), dtype=torch.bool))
                state_dict[prefix + "seen"] = init.expand(state_dict[key].shape).clone()
            self.seen = torch.empty_like(state_dict[prefix + "seen"], device=device)
        super()._load_from_state_dict(state_dict, prefix, *args)

    def finish(
        self,
        stats: RowStatistics,
        *,
        anchors: Tensor | None = None,
        problems: ProblemIndex | None = None,
    ) -> Tensor:
        """DV's value from the statistics; in training, the gradient of eq. 12 with the moving
        average of each problem in ``problems`` (default: one per leading index)."""
        assert self.rowwise is not None
        value = self.rowwise.finish(stats)  # DV
        if not (self.training and torch.is_grad_enabled()):
            return value
        joint, log_z = bounds.dv_terms(stats)  # (...)
        batch = log_z.detach()
        if problems is not None and problems.gathered and distributed.is_distributed():
            # each rank's log_z is over its own anchors' negatives: the averages follow the
            # partition of the global batch, alike on every rank (each rank's own, kept
            # before, differed between the ranks and DDP's buffer broadcast then kept rank
            # 0's alone)
            batch, real = _global_log_partition(batch, stats.n_neg, problems.active)
            problems = problems._replace(active=real)
        ema = self._update(batch, problems)
        # d/dθ exp(log_z - log_ema) = (E_q[e^S ∇S] / E_q[e^S]) * exp(log_z - log_ema)
        #                           = E_q[e^S ∇S] / ema          (Belghazi et al. eq. 12)
        surrogate = joint - torch.exp(log_z - ema)
        return with_gradient_of(value, surrogate)

    def _update(self, batch: Tensor, problems: ProblemIndex | None) -> Tensor:
        """Update the averages of the batch's real problems; the averages to use, ``batch``'s
        shape (a problem's first estimate for one without an average)."""
        if problems is None:
            shape = tuple(batch.shape)
            index = torch.arange(batch.numel(), device=batch.device)
            active = None
        else:
            shape, index, active = tuple(problems.shape), problems.index, problems.active
        if not bool(self.initialized):
            self.log_partition_ema = batch.new_zeros(shape)
            self.seen = torch.zeros(shape, dtype=torch.bool, device=batch.device)
        elif tuple(self.log_partition_ema.shape) != shape:
            raise ValueError(
                f"MINE: the moving average was built for problems of shape "
                f"{tuple(self.log_partition_ema.shape)} but the scores give shape {shape}; "
                "call reset() to start a new average"
            )
        flat = batch.reshape(-1)
        ema = self.log_partition_ema.to(flat.dtype).reshape(-1)
        seen = self.seen.reshape(-1)
        past, was_seen = ema[index], seen[index]
        if self.momentum > 0:
            blended = torch.logaddexp(
                past + math.log(self.momentum), flat + math.log1p(-self.momentum)
            )
        else:
            blended = flat
        new = torch.where(was_seen, blended, flat)
        real = torch.ones_like(was_seen) if active is None else active
        self.log_partition_ema = ema.index_put((index,), torch.where(real, new, past)).reshape(
            shape
        )
        self.seen = seen.index_put((index,), was_seen | real).reshape(shape)
        self.initialized.fill_(True)
        return new.reshape(batch.shape)

    def extra_repr(self) -> str:
        return f"momentum={self.momentum}"


def _global_log_partition(log_z: Tensor, n_neg: Tensor, active: Tensor | None
                          ) -> tuple[Tensor, Tensor]:
    """The log-mean-exp of the scores over every rank's negatives, from each rank's ``log_z``
    (over its ``n_neg`` negatives), ``(...)`` as ``log_z``, and which problems have a negative
    on some rank (the same on every rank; three small all-reduces, no gradient)."""
    weight = n_neg.to(log_z.dtype).expand_as(log_z)
    if active is not None:
        weight = torch.where(active.reshape(log_z.shape), weight, torch.zeros_like(weight))
    has = weight > 0  # a rank without anchors (log_z NaN) weighs nothing
    total = weight.contiguous().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    shift = torch.where(has, log_z, torch.full_like(log_z, -math.inf))
    dist.all_reduce(shift, op=dist.ReduceOp.MAX)
    shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    mass = torch.where(has, weight * torch.exp(log_z - shift), torch.zeros_like(log_z))
    dist.all_reduce(mass, op=dist.ReduceOp.SUM)
    real = total > 0
    out = torch.log(mass) + shift - torch.log(total)
    return torch.where(real, out, torch.zeros_like(out)), real
