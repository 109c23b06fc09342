"""The row-wise lower bounds of a log-partition: InfoNCE, TUBA, NWJ and DV.

Pure functions of a score tensor; see :mod:`mitools.bounds` for the conventions they share.
The bounds trained through the Jensen-Shannon objective (JSD, JS, SMILE) are in
:mod:`mitools.bounds.jensen_shannon`.
Each bound is written once, as a finisher of per-row statistics
(:mod:`mitools.bounds.rowwise`): the public function accumulates the statistics from the whole
score tensor and finishes them; the local losses' blocked and attention paths accumulate the
same statistics block by block and call the same finisher.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mitools.bounds._scores import _check_baseline, exp_of_log_term
from mitools.bounds.rowwise import (
    RowStatistic,
    RowStatistics,
    RowwiseBound,
    _registers,
    rows_logsumexp,
    rows_mean,
)

__all__ = ["dv", "dv_terms", "infonce", "nwj", "tuba"]

#: Every valid column of a row, the positive included: InfoNCE's log-partition.
COLUMNS_LSE = RowStatistic("logsumexp", "columns")
#: The valid negatives of a row: the log-partition of DV, NWJ, TUBA and MINE.
NEGATIVES_LSE = RowStatistic("logsumexp", "negatives")


# ---------------------------------------------------------------------------------------------
# The finishers: every formula of this module, as a function of the per-row statistics.
# ---------------------------------------------------------------------------------------------


def _infonce(st: RowStatistics) -> Tensor:
    return rows_mean(st.positive - st.of(COLUMNS_LSE) + torch.log(st.n_cols), st)


def _log_mean_exp_negatives(st: RowStatistics, stat: RowStatistic = NEGATIVES_LSE) -> Tensor:
    r""":math:`\operatorname{lme}_{\mathcal O}` of the (transformed) scores, ``(...)``."""
    return rows_logsumexp(st.of(stat), st) - torch.log(st.n_neg)


def dv_terms(st: RowStatistics, stat: RowStatistic = NEGATIVES_LSE) -> tuple[Tensor, Tensor]:
    r"""DV's two terms: the mean positive score and :math:`\operatorname{lme}_{\mathcal O}(S)`.

    Args:
        st: the row statistics of a batch of problems (with ``stat`` accumulated).
        stat: the log-sum-exp over the negatives to use (SMILE passes its clipped one).

    Returns:
        ``(joint, log_partition)``, each of shape ``(...)``, in nats: DV is their difference,
        and :class:`~mitools.estimators.MINE` keeps a moving average of the second.

    Example:
        >>> import torch
        >>> from mitools.bounds import row_statistics
        >>> st = row_statistics(torch.zeros(3, 3), (NEGATIVES_LSE,))
        >>> dv_terms(st)
        (tensor(0.), tensor(0.))
    """
    return rows_mean(st.positive, st), _log_mean_exp_negatives(st, stat)


def _dv(st: RowStatistics, stat: RowStatistic = NEGATIVES_LSE) -> Tensor:
    joint, log_partition = dv_terms(st, stat)
    return joint - log_partition


def _tuba(st: RowStatistics, log_baseline: Tensor | float, name: str = "tuba",
          term: str = "exp(lme(S - a))") -> Tensor:
    a = _check_baseline(log_baseline, st, name)
    joint = rows_mean(st.positive - a, st)
    # lme over the negatives of S_ij - a_i: a_i is constant along row i.
    marginal = exp_of_log_term(rows_logsumexp(st.of(NEGATIVES_LSE) - a, st)
                               - torch.log(st.n_neg), name, term)
    return 1.0 + joint - marginal


def _nwj(st: RowStatistics) -> Tensor:
    return _tuba(st, 1.0, "nwj", "exp(lme(S) - 1)")


INFONCE = RowwiseBound("infonce", (COLUMNS_LSE,), _infonce)
TUBA = RowwiseBound("tuba", (NEGATIVES_LSE,), _tuba)
NWJ = RowwiseBound("nwj", (NEGATIVES_LSE,), _nwj)
DV = RowwiseBound("dv", (NEGATIVES_LSE,), _dv)


@_registers(INFONCE)
def infonce(
    scores: Tensor,
    *,
    offset: int = 0,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
) -> Tensor:
    r"""InfoNCE / CPC lower bound (van den Oord et al. 2018; Poole et al. 2019).

    .. math::

        I_{\text{NCE}} = \frac{1}{K} \sum_i \Big[ S_{i,i+o}
            - \log \sum_j e^{S_{ij}} \Big] + \log M

    with :math:`M` the number of (valid) columns of the row. Low variance, but never above
    :math:`\log M` on any batch: 4.16 nats with 64 columns.

    Args:
        scores: critic scores ``(..., N, M)``, positive of row ``i`` at column ``i + offset``.
        offset: column of the positive of row 0 (``rank * N`` with gathered columns).
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.

    Returns:
        Tensor of shape ``scores.shape[:-2]``: the estimate in nats.

    Raises:
        TypeError, ValueError: as every bound (see :mod:`mitools.bounds`): scores that are
            not a floating-point tensor, of fewer than 2 dims or 2 columns, or non-finite
            where unmasked; masks or an offset that do not fit the scores.

    Example:
        >>> import torch
        >>> from mitools.bounds import infonce
        >>> infonce(torch.zeros(8, 8))  # an uninformative critic gives exactly 0
        tensor(0.)
        >>> float(infonce(100.0 * torch.eye(8))) <= float(torch.log(torch.tensor(8.0)))
        True
    """
    return INFONCE(scores, offset=offset, row_mask=row_mask, col_mask=col_mask)


@_registers(TUBA)
def tuba(
    scores: Tensor,
    log_baseline: Tensor | float,
    *,
    offset: int = 0,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
) -> Tensor:
    r"""Tractable unnormalised Barber-Agakov bound, TUBA (Poole et al. 2019).

    With a log-baseline :math:`a_i` per row,

    .. math::

        I_{\text{TUBA}} = 1 + \frac{1}{K}\sum_i (S_{i,i+o} - a_i)
            - \exp\big(\operatorname{lme}_{\mathcal{O}}(S_{ij} - a_i)\big).

    A lower bound for every critic and baseline; tight when :math:`S - a` equals the
    pointwise mutual information plus one. Its variance grows like :math:`e^{I}`.

    Args:
        scores: critic scores ``(..., N, M)``.
        log_baseline: log-baseline per row, a float or a tensor broadcastable to ``(..., N)``,
            finite on every valid row (a ``ValueError`` otherwise, under
            :class:`~mitools.bounds.check_finite`).
        offset: column of the positive of row 0.
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.

    Returns:
        Tensor of shape ``scores.shape[:-2]``: the estimate in nats.

    Raises:
        TypeError, ValueError: as every bound (see :mod:`mitools.bounds`): scores that are
            not a floating-point tensor, of fewer than 2 dims or 2 columns, or non-finite
            where unmasked; masks or an offset that do not fit the scores; a
            ``log_baseline`` that is not finite or does not broadcast to the rows.

    Example:
        >>> import torch
        >>> from mitools.bounds import tuba
        >>> tuba(torch.zeros(4, 4), log_baseline=0.0)  # 1 + 0 - exp(0)
        tensor(0.)
    """
    return TUBA(
        scores, offset=offset, row_mask=row_mask, col_mask=col_mask, log_baseline=log_baseline
    )


@_registers(NWJ)
def nwj(
    scores: Tensor,
    *,
    offset: int = 0,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
) -> Tensor:
    r"""NWJ / f-MINE lower bound (Nguyen, Wainwright & Jordan 2010): TUBA with :math:`a = 1`.

    .. math::

        I_{\text{NWJ}} = \frac{1}{K}\sum_i S_{i,i+o}
            - \exp\big(\operatorname{lme}_{\mathcal{O}}(S) - 1\big).

    Unbiased when the critic is the pointwise mutual information plus one,
    :math:`f^* = 1 + \log p(y \mid x) / p(y)`; its variance grows like :math:`e^{I}`.

    Args:
        scores: critic scores ``(..., N, M)``.
        offset: column of the positive of row 0.
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.

    Returns:
        Tensor of shape ``scores.shape[:-2]``: the estimate in nats.

    Raises:
        TypeError, ValueError: as every bound (see :mod:`mitools.bounds`): scores that are
            not a floating-point tensor, of fewer than 2 dims or 2 columns, or non-finite
            where unmasked; masks or an offset that do not fit the scores.

    Example:
        >>> import torch
        >>> from mitools.bounds import nwj
        >>> nwj(torch.ones(4, 4))  # the critic f = 1 of independent variables gives 0
        tensor(0.)
    """
    return NWJ(scores, offset=offset, row_mask=row_mask, col_mask=col_mask)


@_registers(DV)
def dv(
    scores: Tensor,
    *,
    offset: int = 0,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
) -> Tensor:
    r"""Donsker-Varadhan lower bound, the objective of MINE (Belghazi et al. 2018).

    .. math::

        I_{\text{DV}} = \frac{1}{K}\sum_i S_{i,i+o} - \operatorname{lme}_{\mathcal{O}}(S).

    Invariant to adding a constant to the critic; optimal at the pointwise mutual information
    (plus any constant). On a finite batch the log of the averaged partition function makes it
    biased, and its gradient too; :class:`mitools.estimators.MINE` corrects the gradient.

    Args:
        scores: critic scores ``(..., N, M)``.
        offset: column of the positive of row 0.
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.

    Returns:
        Tensor of shape ``scores.shape[:-2]``: the estimate in nats.

    Raises:
        TypeError, ValueError: as every bound (see :mod:`mitools.bounds`): scores that are
            not a floating-point tensor, of fewer than 2 dims or 2 columns, or non-finite
            where unmasked; masks or an offset that do not fit the scores.

    Example:
        >>> import torch
        >>> from mitools.bounds import dv
        >>> dv(torch.full((4, 4), 3.0))  # constant critics carry no information
        tensor(0.)
    """
    return DV(scores, offset=offset, row_mask=row_mask, col_mask=col_mask)



# The Jensen-Shannon family lived here until it got its own module; its names still resolve
# from this path (lazily: mitools.bounds.jensen_shannon imports this module).
_MOVED = {"js", "jsd", "smile", "smile_rowwise", "_check_clip", "JS", "JSD",
          "NEGATIVES_SOFTPLUS"}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        from mitools.bounds import jensen_shannon

        return getattr(jensen_shannon, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
