"""Bounds with a log-baseline: TUBA and the interpolated alpha-InfoNCE, and the baseline itself."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mitools import bounds
from mitools.estimators.base import Estimator

__all__ = ["TUBA", "AlphaInfoNCE", "LogBaseline"]


class LogBaseline(nn.Module):
    r"""A log-baseline :math:`a_i` for :class:`TUBA` and :class:`AlphaInfoNCE`.

    Args:
        baseline: ``"constant"`` for one learnable scalar (initialised at ``init``), a float
            for a fixed value, or an ``nn.Module`` mapping row-side inputs ``(..., N, D)`` to
            ``(..., N)`` or ``(..., N, 1)`` (a learned :math:`a(x)`).
        init: initial value of the learnable constant.

    Example:
        >>> import torch
        >>> LogBaseline("constant")(torch.zeros(2, 5, 5)).shape
        torch.Size([2, 5])
    """

    def __init__(self, baseline: str | float | nn.Module = "constant", init: float = 0.0):
        super().__init__()
        self.constant: nn.Parameter | None = None
        self.fixed: float | None = None
        self.network: nn.Module | None = None
        if isinstance(baseline, nn.Module):
            self.network = baseline
        elif isinstance(baseline, str):
            if baseline != "constant":
                raise ValueError(
                    f"baseline must be 'constant', a float or an nn.Module, got {baseline!r}"
                )
            self.constant = nn.Parameter(torch.tensor(float(init)))
        elif isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
            self.fixed = float(baseline)
        else:
            raise TypeError(
                "baseline must be 'constant', a float or an nn.Module, got "
                f"{type(baseline).__name__}"
            )

    def forward(self, scores: Tensor, anchors: Tensor | None = None) -> Tensor:
        """Return the log-baseline of every row, shape ``scores.shape[:-1]``."""
        rows = scores.shape[:-1]
        if self.network is not None:
            if anchors is None:
                raise ValueError(
                    "a learned baseline network needs the row-side inputs: pass anchors=x "
                    f"with shape (..., N, D) matching the rows of scores {tuple(scores.shape)}"
                )
            out = self.network(anchors)
            if out.dim() == len(rows) + 1 and out.shape[-1] == 1:
                out = out.squeeze(-1)
            if out.shape[-1] != rows[-1]:
                raise ValueError(
                    f"the baseline network returned shape {tuple(out.shape)}; expected "
                    f"(..., N) or (..., N, 1) with N = {rows[-1]}"
                )
            return out
        if self.constant is not None:
            return self.constant.to(scores.dtype).expand(rows)
        assert self.fixed is not None
        return scores.new_full(rows, self.fixed)


class TUBA(Estimator):
    """TUBA with a fixed, learnable or network log-baseline, see :func:`mitools.bounds.tuba`.

    Args:
        baseline: see :class:`LogBaseline`. ``"constant"`` learns one scalar jointly with the
            critic (maximise the value with respect to both).

    Example:
        >>> import torch
        >>> TUBA(baseline=0.0)(torch.zeros(4, 4))
        tensor(0.)
    """

    name = "tuba"

    def __init__(self, baseline: str | float | nn.Module = "constant"):
        super().__init__()
        self.log_baseline = LogBaseline(baseline)

    def forward(
        self,
        scores: Tensor,
        *,
        offset: int = 0,
        row_mask: Tensor | None = None,
        col_mask: Tensor | None = None,
        anchors: Tensor | None = None,
    ) -> Tensor:
        a = self.log_baseline(scores, anchors)
        return bounds.tuba(scores, a, offset=offset, row_mask=row_mask, col_mask=col_mask)


class AlphaInfoNCE(Estimator):
    """Interpolated InfoNCE/TUBA bound, see :func:`mitools.bounds.alpha_infonce`.

    Args:
        alpha: interpolation weight in (0, 1); small values (0.01) raise the ceiling.
        baseline: see :class:`LogBaseline`.

    Example:
        >>> import torch
        >>> AlphaInfoNCE(alpha=0.5, baseline=0.0)(torch.zeros(4, 4))
        tensor(0.)
    """

    name = "alpha_infonce"

    def __init__(self, alpha: float = 0.01, baseline: str | float | nn.Module = "constant"):
        super().__init__()
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
            raise ValueError(
                f"AlphaInfoNCE: alpha must lie in the open interval (0, 1), got {alpha!r}"
            )
        self.alpha = float(alpha)
        self.log_baseline = LogBaseline(baseline)

    def forward(
        self,
        scores: Tensor,
        *,
        offset: int = 0,
        row_mask: Tensor | None = None,
        col_mask: Tensor | None = None,
        anchors: Tensor | None = None,
    ) -> Tensor:
        a = self.log_baseline(scores, anchors)
        return bounds.alpha_infonce(
            scores, a, self.alpha, offset=offset, row_mask=row_mask, col_mask=col_mask
        )

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"
