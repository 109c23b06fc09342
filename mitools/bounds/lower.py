"""The discriminative lower bounds: InfoNCE, TUBA, NWJ, DV, JSD, JS, SMILE and alpha-InfoNCE.

Pure functions of a score tensor; see :mod:`mitools.bounds` for the conventions they share.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from mitools.bounds._scores import (
    _check_baseline,
    _lme_negatives,
    _mean_negatives,
    _prepare,
    _Prepared,
    _row_mean,
)

__all__ = [
    "alpha_infonce",
    "dv",
    "infonce",
    "js",
    "jsd",
    "nwj",
    "smile",
    "tuba",
]


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
    p = _prepare(scores, offset, row_mask, col_mask, "infonce")
    s = p.scores
    if p.col_valid is not None:
        s = s.masked_fill(~p.col_valid, -math.inf)
    per_row = p.positive - torch.logsumexp(s, dim=-1) + torch.log(p.n_cols)
    return _row_mean(per_row, p)


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
        log_baseline: log-baseline per row, a float or a tensor broadcastable to ``(..., N)``.
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
    p = _prepare(scores, offset, row_mask, col_mask, "tuba")
    a = _check_baseline(log_baseline, p, "tuba")
    return _tuba_from_prepared(p, a)


def _tuba_from_prepared(p: _Prepared, a: Tensor) -> Tensor:
    joint = _row_mean(p.positive - a, p)
    marginal = torch.exp(_lme_negatives(p.scores - a[..., None], p))
    return 1.0 + joint - marginal


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
    p = _prepare(scores, offset, row_mask, col_mask, "nwj")
    return _nwj_from_prepared(p)


def _nwj_from_prepared(p: _Prepared) -> Tensor:
    return _row_mean(p.positive, p) - torch.exp(_lme_negatives(p.scores, p) - 1.0)


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
    p = _prepare(scores, offset, row_mask, col_mask, "dv")
    return _row_mean(p.positive, p) - _lme_negatives(p.scores, p)


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
    p = _prepare(scores, offset, row_mask, col_mask, "jsd")
    return _jsd_from_prepared(p)


def _jsd_from_prepared(p: _Prepared) -> Tensor:
    joint = _row_mean(-F.softplus(-p.positive), p)
    marginal = _mean_negatives(F.softplus(p.scores), p)
    return joint - marginal


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
    p = _prepare(scores, offset, row_mask, col_mask, "js")
    objective = _jsd_from_prepared(p)
    value = _row_mean(p.positive, p) + 1.0 - torch.exp(_lme_negatives(p.scores, p))
    return objective + (value - objective).detach()


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
    if clip is not None and (
        isinstance(clip, bool) or not isinstance(clip, (int, float)) or not clip > 0
    ):
        raise ValueError(f"smile: clip must be a positive number or None, got {clip!r}")
    p = _prepare(scores, offset, row_mask, col_mask, "smile")
    objective = _jsd_from_prepared(p)
    clipped = p.scores if clip is None else p.scores.clamp(-float(clip), float(clip))
    value = _row_mean(p.positive, p) - _lme_negatives(clipped, p)
    return objective + (value - objective).detach()


def _leave_one_out_lme(p: _Prepared) -> Tensor:
    """``loo[..., i, j]`` = log of the mean of ``exp(S_ik)`` over valid ``k != j``.

    Computed exactly in O(N M): for a column that is not the row's maximum,
    ``log(sum - e^{S_ij}) = lse + log(-expm1(S_ij - lse))`` with ``S_ij - lse <= -log 2``
    (no cancellation); the row's argmax column takes a separate log-sum-exp of the other
    entries.
    """
    s = p.scores
    if p.col_valid is not None:
        s = s.masked_fill(~p.col_valid, -math.inf)
    lse = torch.logsumexp(s, dim=-1, keepdim=True)  # (..., N, 1)
    top = s.argmax(dim=-1, keepdim=True)  # (..., N, 1)
    is_top = torch.zeros_like(s, dtype=torch.bool).scatter_(-1, top, True)
    # Others: safe argument for log(-expm1(.)) at the argmax (that branch is discarded).
    delta = torch.where(is_top, torch.full_like(s, -1.0), s - lse)
    others = lse + torch.log(-torch.expm1(delta))
    # Argmax column: logsumexp over the row without it.
    without_top = torch.logsumexp(s.masked_fill(is_top, -math.inf), dim=-1, keepdim=True)
    log_sum_loo = torch.where(is_top, without_top.expand_as(s), others)
    return log_sum_loo - torch.log(p.n_cols - 1.0)[..., None]


def alpha_infonce(
    scores: Tensor,
    log_baseline: Tensor | float,
    alpha: float,
    *,
    offset: int = 0,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
) -> Tensor:
    r"""Interpolated bound :math:`I_\alpha` between InfoNCE and TUBA (Poole et al. 2019, eq. 11).

    With the leave-one-out log-mean-exp :math:`\ell_{ij} = \log \frac{1}{M-1}\sum_{k \ne j}
    e^{S_{ik}}` and the interpolated log-baseline
    :math:`m_{ij} = \log\big(\alpha e^{\ell_{ij}} + (1 - \alpha) e^{a_i}\big)`,

    .. math::

        I_\alpha = 1 + \frac{1}{|\mathcal{O}|}\sum_{(i,j)\in\mathcal{O}} (S_{i,i+o} - m_{ij})
            - \exp\big(\operatorname{lme}_{\mathcal{O}}(S_{ij} - m_{i,i+o})\big).

    :math:`\alpha \to 1` approaches InfoNCE, :math:`\alpha \to 0` approaches TUBA; the estimate
    never exceeds :math:`1 + \log(M / \alpha)` nats on average, and small :math:`\alpha`
    (e.g. 0.01) trades a little variance for a much higher ceiling.

    Args:
        scores: critic scores ``(..., N, M)``.
        log_baseline: log-baseline :math:`a_i` per row, a float or a tensor broadcastable to
            ``(..., N)``.
        alpha: interpolation weight in the open interval (0, 1).
        offset: column of the positive of row 0.
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.

    Returns:
        Tensor of shape ``scores.shape[:-2]``: the estimate in nats.

    Example:
        >>> import torch
        >>> from mitools.bounds import alpha_infonce
        >>> alpha_infonce(torch.zeros(4, 4), log_baseline=0.0, alpha=0.5)
        tensor(0.)
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < alpha < 1.0:
        raise ValueError(
            f"alpha_infonce: alpha must lie in the open interval (0, 1), got {alpha!r}"
        )
    p = _prepare(scores, offset, row_mask, col_mask, "alpha_infonce")
    a = _check_baseline(log_baseline, p, "alpha_infonce")
    loo = _leave_one_out_lme(p)  # (..., N, M)
    m = torch.logaddexp(loo + math.log(alpha), a[..., None] + math.log1p(-alpha))
    n = p.scores.shape[-2]
    offset_cols = torch.arange(n, device=m.device) + offset
    m_pos = torch.gather(m, -1, offset_cols.expand(*m.shape[:-2], n)[..., None]).squeeze(-1)
    joint = _mean_negatives(p.positive[..., None] - m, p)
    marginal = torch.exp(_lme_negatives(p.scores - m_pos[..., None], p))
    return 1.0 + joint - marginal
