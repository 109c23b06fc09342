"""MINE: the DV value with the bias-corrected gradient of a moving-average partition function."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from mitools import bounds
from mitools.estimators.base import Estimator

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

    Args:
        momentum: :math:`\beta \in [0, 1)`, the weight of the past in the moving average
            (``0`` recovers DV's gradient).

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
    log_partition_ema: Tensor
    initialized: Tensor

    def __init__(self, momentum: float = 0.99):
        super().__init__()
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)):
            raise TypeError(f"MINE: momentum must be a float, got {type(momentum).__name__}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"MINE: momentum must lie in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)
        self.register_buffer("log_partition_ema", torch.zeros(()))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    def reset(self) -> None:
        """Forget the moving average (e.g. before training on a new task)."""
        self.log_partition_ema = torch.zeros((), device=self.log_partition_ema.device)
        self.initialized.fill_(False)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        key = prefix + "log_partition_ema"
        if key in state_dict:  # the average's shape follows the problems it was fitted on
            self.log_partition_ema = torch.empty_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args)

    def forward(
        self,
        scores: Tensor,
        *,
        offset: int = 0,
        row_mask: Tensor | None = None,
        col_mask: Tensor | None = None,
        anchors: Tensor | None = None,
    ) -> Tensor:
        p = bounds._prepare(scores, offset, row_mask, col_mask, "MINE")
        joint = bounds._row_mean(p.positive, p)
        log_z = bounds._lme_negatives(p.scores, p)  # (...)
        value = joint - log_z
        if not (self.training and torch.is_grad_enabled()):
            return value
        batch = log_z.detach()
        if not bool(self.initialized):
            ema = batch.clone()
        else:
            if self.log_partition_ema.shape != batch.shape:
                raise ValueError(
                    f"MINE: the moving average was built for problems of shape "
                    f"{tuple(self.log_partition_ema.shape)} but the scores give shape "
                    f"{tuple(batch.shape)}; call reset() to start a new average"
                )
            past = self.log_partition_ema.to(batch.dtype)
            ema = torch.logaddexp(
                past + math.log(self.momentum) if self.momentum > 0 else past.new_full(
                    past.shape, -math.inf
                ),
                batch + math.log1p(-self.momentum),
            )
        self.log_partition_ema = ema
        self.initialized.fill_(True)
        # d/dθ exp(log_z - log_ema) = (E_q[e^S ∇S] / E_q[e^S]) * exp(log_z - log_ema)
        #                           = E_q[e^S ∇S] / ema          (Belghazi et al. eq. 12)
        surrogate = joint - torch.exp(log_z - ema)
        return value.detach() + (surrogate - surrogate.detach())

    def extra_repr(self) -> str:
        return f"momentum={self.momentum}"
