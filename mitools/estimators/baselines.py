"""Bounds with a log-baseline: TUBA and the interpolated alpha-InfoNCE, and the baseline itself."""

from __future__ import annotations

import numbers

import numpy as np
import torch
from torch import Tensor, nn

from mitools import bounds
from mitools.bounds import RowStatistics
from mitools.estimators.base import Estimator, ProblemIndex
from mitools.option_checks import check_number

__all__ = ["TUBA", "AlphaInfoNCE", "LogBaseline"]


class LogBaseline(nn.Module):
    r"""A log-baseline :math:`a_i` for :class:`TUBA` and :class:`AlphaInfoNCE`.

    Args:
        baseline: ``"constant"`` for one learnable scalar (initialised at ``init``), a float
            for a fixed value, or an ``nn.Module`` mapping row-side inputs ``(..., N, D)`` to
            ``(..., N)`` or ``(..., N, 1)`` (a learned :math:`a(x)`).
        init: initial value of the learnable constant.
        name: the estimator's name, which starts every error message (``"tuba"``,
            ``"alpha_infonce"``, as the bounds' own errors start).

    Raises:
        ValueError, TypeError: an unknown ``baseline``; when called, a network baseline
            without ``anchors (..., N, D)``, with anchors of another number of rows, or
            returning another shape than ``(..., N)``: each message starts with ``name``.

    Example:
        >>> import torch
        >>> LogBaseline("constant")(torch.zeros(2, 5, 5)).shape
        torch.Size([2, 5])
    """

    def __init__(
        self,
        baseline: str | float | nn.Module = "constant",
        init: float = 0.0,
        *,
        name: str = "LogBaseline",
    ):
        super().__init__()
        self.name = name
        self.constant: nn.Parameter | None = None
        self.fixed: float | None = None
        self.network: nn.Module | None = None
        if isinstance(baseline, nn.Module):
            self.network = baseline
        elif isinstance(baseline, str):
            if baseline != "constant":
                raise ValueError(
                    f"{name}: baseline must be 'constant', a float or an nn.Module, got "
                    f"{baseline!r}"
                )
            self.constant = nn.Parameter(torch.tensor(check_number(f"{name}: init", init, None)))
        elif isinstance(baseline, (numbers.Real, np.bool_)):  # a bool is refused by name
            self.fixed = check_number(f"{name}: baseline", baseline, None)
        else:
            raise TypeError(
                f"{name}: baseline must be 'constant', a float or an nn.Module, got "
                f"{type(baseline).__name__}"
            )

    @property
    def optimal_offset(self) -> float:
        """The constant added to the pointwise MI at which a bound with this log-baseline
        :math:`a` is tight (TUBA, Poole et al. 2019, eq. 9: the optimum :math:`f^* + a`;
        α-InfoNCE, whose interpolated baseline is then :math:`a` for every α): the fixed
        value, the learned constant's current value, or 0 for a network :math:`a(x)`, which
        has no one value."""
        if self.fixed is not None:
            return self.fixed
        if self.constant is not None:
            return float(self.constant.detach())
        return 0.0

    def forward(self, scores: Tensor, anchors: Tensor | None = None) -> Tensor:
        """Return the log-baseline of every row, shape ``scores.shape[:-1]``.

        Raises:
            TypeError, ValueError: ``scores`` not a tensor of at least 2 dimensions (the
                bound's own words, before it is called), and as :meth:`for_rows`.
        """
        if not isinstance(scores, Tensor):
            raise TypeError(
                f"{self.name}: scores must be a torch.Tensor, got {type(scores).__name__}"
            )
        if scores.dim() < 2:
            raise ValueError(
                f"{self.name}: scores must have shape (..., N, M) with at least 2 dimensions, "
                f"got shape {tuple(scores.shape)}"
            )
        return self.for_rows(scores[..., 0], anchors)

    def for_rows(self, rows_like: Tensor, anchors: Tensor | None = None) -> Tensor:
        """The log-baseline of every row of a problem whose rows are shaped like ``rows_like``.

        Args:
            rows_like: any tensor of shape ``(..., N)`` (its dtype and device are used).
            anchors: the row-side inputs ``(..., N, D)``, for a network baseline; their
                leading dimensions broadcast with the rows' (one ``x`` for every problem).
                They reach the network in its parameters' floating dtype (a float32 network
                takes float64 anchors rounded to float32: ``.double()`` the estimator to keep
                float64), so features of any floating dtype work.

        Returns:
            ``(..., N)``, broadcast to the rows by the bound.
        """
        rows = rows_like.shape
        if self.network is not None:
            if anchors is None:
                raise ValueError(
                    f"{self.name}: a learned baseline network needs the row-side inputs: pass "
                    f"anchors=x with shape (..., N, D) matching the rows, shape {tuple(rows)}"
                )
            if not isinstance(anchors, Tensor):
                raise TypeError(
                    f"{self.name}: anchors must be a torch.Tensor (..., N, D), got "
                    f"{type(anchors).__name__}"
                )
            if anchors.dim() < 2 or anchors.shape[-2] != rows[-1]:
                raise ValueError(
                    f"{self.name}: anchors has shape {tuple(anchors.shape)} but must be "
                    f"(..., N, D) with N = {rows[-1]}, one row-side input per row of the scores "
                    f"(rows {tuple(rows)})"
                )
            weight = next((p for p in self.network.parameters() if p.is_floating_point()), None)
            if weight is not None and anchors.is_floating_point() and anchors.dtype != weight.dtype:
                # a network's layers take one dtype: float64 anchors (a float64 task) met a
                # float32 nn.Linear in "mat1 and mat2 must have the same dtype"
                anchors = anchors.to(weight.dtype)
            out = self.network(anchors)
            # (..., N, 1) -> (..., N) whatever the leading dimensions: anchors (N, D) for
            # rows (K, N) gave (N, 1), refused as not "(..., N) or (..., N, 1)"
            if out.dim() >= 2 and out.shape[-1] == 1 and out.shape[-2] == rows[-1]:
                out = out.squeeze(-1)
            if out.dim() == 0 or out.shape[-1] != rows[-1]:
                raise ValueError(
                    f"{self.name}: the baseline network returned shape {tuple(out.shape)} for "
                    f"anchors {tuple(anchors.shape)}; expected (..., N) or (..., N, 1) with "
                    f"N = {rows[-1]}"
                )
            return out
        if self.constant is not None:
            return self.constant.to(rows_like.dtype).expand(rows)
        assert self.fixed is not None
        return rows_like.new_full(rows, self.fixed)


class TUBA(Estimator):
    """TUBA with a fixed, learnable or network log-baseline, see :func:`mitools.bounds.tuba`.

    Args:
        baseline: see :class:`LogBaseline`. ``"constant"`` learns one scalar jointly with the
            critic (maximise the value with respect to both).

    Raises:
        ValueError, TypeError: as :class:`LogBaseline`, the messages starting with
            ``"tuba: "`` like the bound's (a network baseline without ``anchors``, or with
            anchors that are not ``(..., N, D)``).

    Example:
        >>> import torch
        >>> TUBA(baseline=0.0)(torch.zeros(4, 4))
        tensor(0.)
    """

    name = "tuba"
    rowwise = bounds.rowwise_bound(bounds.tuba)

    def __init__(self, baseline: str | float | nn.Module = "constant"):
        super().__init__()
        self.log_baseline = LogBaseline(baseline, name=self.name)

    @property
    def needs_anchors(self) -> bool:
        return self.log_baseline.network is not None

    @property
    def optimal_offset(self) -> float:
        """The log-baseline :math:`a` (:attr:`LogBaseline.optimal_offset`): TUBA is tight at
        the pointwise MI plus :math:`a`."""
        return self.log_baseline.optimal_offset

    def finish(
        self,
        stats: RowStatistics,
        *,
        anchors: Tensor | None = None,
        problems: ProblemIndex | None = None,
    ) -> Tensor:
        """TUBA from the statistics, with the log-baseline of every row (of ``anchors`` for a
        network baseline)."""
        assert self.rowwise is not None
        a = self.log_baseline.for_rows(stats.positive, anchors)
        return self.rowwise.finish(stats, log_baseline=a)


class AlphaInfoNCE(Estimator):
    """Interpolated InfoNCE/TUBA bound, see :func:`mitools.bounds.alpha_infonce`.

    Args:
        alpha: interpolation weight in (0, 1); small values (0.01) raise the ceiling.
        baseline: see :class:`LogBaseline`.

    Raises:
        ValueError: an ``alpha`` that is not a finite number in (0, 1).
        ValueError, TypeError: a ``baseline`` as :class:`LogBaseline` refuses it; when called,
            as :func:`mitools.bounds.alpha_infonce`.

    Example:
        >>> import torch
        >>> AlphaInfoNCE(alpha=0.5, baseline=0.0)(torch.zeros(4, 4))
        tensor(0.)
    """

    name = "alpha_infonce"

    def __init__(self, alpha: float = 0.01, baseline: str | float | nn.Module = "constant"):
        super().__init__()
        self.alpha = check_number("AlphaInfoNCE: alpha", alpha, 0, high=1)
        self.log_baseline = LogBaseline(baseline, name=self.name)

    @property
    def needs_anchors(self) -> bool:
        return self.log_baseline.network is not None

    @property
    def needs_row_partition(self) -> bool:
        return True  # the leave-one-out log-mean-exp of each row

    @property
    def optimal_offset(self) -> float:
        """The log-baseline :math:`a` (:attr:`LogBaseline.optimal_offset`): at the pointwise
        MI plus :math:`a` each row's log-mean-exp of the negatives tends to :math:`a`, so the
        interpolated baseline is :math:`a` whatever α, and the bound is tight. (It was 0: a
        Gaussian start of ``estimate_mi`` with ``baseline=-1.5``, α = 0.01, scored -0.84
        nats where the truth and the shifted start give 1.02.)"""
        return self.log_baseline.optimal_offset

    def forward(
        self,
        scores: Tensor,
        *,
        offset: int = 0,
        row_mask: Tensor | None = None,
        col_mask: Tensor | None = None,
        anchors: Tensor | None = None,
        targets: Tensor | None = None,  # in the Estimator signature; this bound needs none
        problems: ProblemIndex | None = None,
    ) -> Tensor:
        a = self.log_baseline(scores, anchors)
        return bounds.alpha_infonce(
            scores, a, self.alpha, offset=offset, row_mask=row_mask, col_mask=col_mask
        )

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"
