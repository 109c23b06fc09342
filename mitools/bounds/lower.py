"""The row-wise lower bounds: InfoNCE, TUBA, NWJ, DV, JSD, JS and SMILE.

Pure functions of a score tensor; see :mod:`mitools.bounds` for the conventions they share.
Each bound is written once, as a finisher of per-row statistics
(:mod:`mitools.bounds.rowwise`): the public function accumulates the statistics from the whole
score tensor and finishes them; the local losses' blocked and attention paths accumulate the
same statistics block by block and call the same finisher.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from mitools.bounds._scores import _check_baseline, exp_of_log_term
from mitools.bounds.rowwise import (
    RowStatistic,
    RowStatistics,
    RowwiseBound,
    Transform,
    _registers,
    rows_logsumexp,
    rows_mean,
    rows_sum,
)
from mitools.option_checks import check_number

__all__ = [
    "dv",
    "dv_terms",
    "infonce",
    "js",
    "jsd",
    "nwj",
    "smile",
    "smile_rowwise",
    "tuba",
]

#: Every valid column of a row, the positive included: InfoNCE's log-partition.
COLUMNS_LSE = RowStatistic("logsumexp", "columns")
#: The valid negatives of a row: the log-partition of DV, NWJ, TUBA and MINE.
NEGATIVES_LSE = RowStatistic("logsumexp", "negatives")
#: Sum of softplus over the valid negatives: the Jensen-Shannon objective's marginal term.
NEGATIVES_SOFTPLUS = RowStatistic("sum", "negatives", Transform("softplus"))


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


def _jsd(st: RowStatistics) -> Tensor:
    joint = rows_mean(-F.softplus(-st.positive), st)
    return joint - rows_sum(st.of(NEGATIVES_SOFTPLUS), st) / st.n_neg


def _with_js_gradient(value: Tensor, st: RowStatistics) -> Tensor:
    """``value`` with the gradient of the Jensen-Shannon objective (stop-gradient)."""
    objective = _jsd(st)
    return objective + (value - objective).detach()


def _js(st: RowStatistics) -> Tensor:
    return _with_js_gradient(_tuba(st, 0.0, "js", "exp(lme(S))"), st)  # NWJ on S + 1


INFONCE = RowwiseBound("infonce", (COLUMNS_LSE,), _infonce)
TUBA = RowwiseBound("tuba", (NEGATIVES_LSE,), _tuba)
NWJ = RowwiseBound("nwj", (NEGATIVES_LSE,), _nwj)
DV = RowwiseBound("dv", (NEGATIVES_LSE,), _dv)
JSD = RowwiseBound("jsd", (NEGATIVES_SOFTPLUS,), _jsd)
JS = RowwiseBound("js", (NEGATIVES_LSE, NEGATIVES_SOFTPLUS), _js)


def _check_clip(clip: Any, name: str) -> float | None:
    """SMILE's clip as a Python float or ``None``: a finite number > 0, or ``None`` or
    ``inf`` (no clipping, returned as given). Numpy reals count, bools do not."""
    if clip is None or (isinstance(clip, numbers.Real) and clip == math.inf):
        return None if clip is None else math.inf
    try:
        return check_number(f"{name}: clip", clip, 0)
    except ValueError:
        raise ValueError(f"{name}: clip must be a number > 0, inf or None (no clipping), "
                         f"got {clip!r}") from None


def smile_rowwise(clip: float | None = 5.0) -> RowwiseBound:
    r"""SMILE's :class:`~mitools.bounds.RowwiseBound` for a clip :math:`\tau` (``None``: none).

    Example:
        >>> smile_rowwise(5.0).statistics[0].transform
        Transform(name='clip', param=5.0)
    """
    clip = _check_clip(clip, "smile")
    clipped = (
        NEGATIVES_LSE if clip is None else RowStatistic(
            "logsumexp", "negatives", Transform("clip", float(clip))
        )
    )  # fmt: skip

    def finish(st: RowStatistics, **_: Any) -> Tensor:
        return _with_js_gradient(_dv(st, clipped), st)

    return RowwiseBound("smile", (clipped, NEGATIVES_SOFTPLUS), finish)


_SMILE_DEFAULT = smile_rowwise(5.0)


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

    Example:
        >>> import torch
        >>> from mitools.bounds import dv
        >>> dv(torch.full((4, 4), 3.0))  # constant critics carry no information
        tensor(0.)
    """
    return DV(scores, offset=offset, row_mask=row_mask, col_mask=col_mask)


@_registers(JSD)
def jsd(
    scores: Tensor,
    *,
    offset: int = 0,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
) -> Tensor:
    r"""Jensen-Shannon objective of f-GAN and Deep InfoMax (Nowozin et al. 2016; Hjelm et al. 2019).

    .. math::

        \hat J = \frac{1}{K}\sum_i -\operatorname{softplus}(-S_{i,i+o})
            - \frac{1}{|\mathcal{O}|}\sum_{(i,j)\in\mathcal{O}} \operatorname{softplus}(S_{ij}).

    This is a lower bound on :math:`2\,\mathrm{JSD}(p(x,y)\,\|\,p(x)p(y)) - 2\log 2`, **not**
    nats of mutual information (Deep InfoMax's code adds the constant :math:`2\log 2`). Its
    optimal critic is the pointwise mutual information. Use it to *train*; use :func:`js` to
    train with the same gradient while reading an MI estimate.

    Args:
        scores: critic scores ``(..., N, M)``.
        offset: column of the positive of row 0.
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.

    Returns:
        Tensor of shape ``scores.shape[:-2]``: the Jensen-Shannon objective (not nats of MI).

    Example:
        >>> import torch
        >>> from mitools.bounds import jsd
        >>> round(float(jsd(torch.zeros(4, 4))), 4)  # -2 log 2 for an uninformative critic
        -1.3863
    """
    return JSD(scores, offset=offset, row_mask=row_mask, col_mask=col_mask)


@_registers(JS)
def js(
    scores: Tensor,
    *,
    offset: int = 0,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
) -> Tensor:
    r"""MI estimate from a critic trained with the Jensen-Shannon objective (Poole et al. 2019).

    Value: :func:`nwj` evaluated on :math:`S + 1`; gradient: that of :func:`jsd`. Built as
    ``jsd + (nwj(S + 1) - jsd).detach()``.

    The JS objective's optimal critic is the pointwise mutual information (PMI), and NWJ's
    optimal critic is PMI + 1, so the shift makes the value unbiased at the JS optimum. (The
    reference code of Poole et al. reads ``nwj(S)``, which is lower by :math:`e^{-1}` nats at
    that optimum; both are valid lower bounds for every critic.)

    .. math::

        \text{value} = \frac{1}{K}\sum_i S_{i,i+o} + 1
            - \exp\big(\operatorname{lme}_{\mathcal{O}}(S)\big),\qquad
        \nabla = \nabla \hat J_{\text{JS}}.

    Args:
        scores: critic scores ``(..., N, M)``.
        offset: column of the positive of row 0.
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.

    Returns:
        Tensor of shape ``scores.shape[:-2]``: the estimate in nats, with JS gradients.

    Example:
        >>> import torch
        >>> from mitools.bounds import js
        >>> js(torch.zeros(4, 4))  # PMI = 0 for independent variables: estimate 0
        tensor(0.)
    """
    return JS(scores, offset=offset, row_mask=row_mask, col_mask=col_mask)


@_registers(_SMILE_DEFAULT)
def smile(
    scores: Tensor,
    clip: float | None = 5.0,
    *,
    offset: int = 0,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
) -> Tensor:
    r"""SMILE: clipped DV estimate on a JS-trained critic (Song & Ermon 2020).

    .. math::

        \text{value} = \frac{1}{K}\sum_i S_{i,i+o}
            - \operatorname{lme}_{\mathcal{O}}\big(\operatorname{clip}(S, -\tau, \tau)\big),
        \qquad \nabla = \nabla \hat J_{\text{JS}}.

    Clipping the negatives' scores to :math:`[-\tau, \tau]` bounds the variance of the
    partition estimate at the price of a bias; :math:`\tau = \infty` (``clip=None``) is DV on
    a JS-trained critic. The positives are not clipped.

    Args:
        scores: critic scores ``(..., N, M)``.
        clip: :math:`\tau > 0`, or ``None`` for no clipping. ``5.0`` is the usual choice.
        offset: column of the positive of row 0.
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.

    Returns:
        Tensor of shape ``scores.shape[:-2]``: the estimate in nats, with JS gradients.

    Example:
        >>> import torch
        >>> from mitools.bounds import smile
        >>> smile(torch.zeros(4, 4), clip=5.0)
        tensor(0.)
    """
    bound = _SMILE_DEFAULT if clip == 5.0 and not isinstance(clip, bool) else smile_rowwise(clip)
    return bound(scores, offset=offset, row_mask=row_mask, col_mask=col_mask)
