"""The interpolated bound alpha-InfoNCE, between InfoNCE and TUBA (Poole et al. 2019, eq. 11).

It needs the leave-one-out log-mean-exp of every entry, not a per-row statistic, so it is
computed on the whole score tensor only (the local losses' dense path).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mitools.bounds._scores import (
    _check_baseline,
    _lme_negatives,
    _mean_negatives,
    _prepare,
    _Prepared,
)
from mitools.bounds.rowwise import _masked_logsumexp
from mitools.option_checks import check_number

__all__ = ["alpha_infonce"]


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
            ``(..., N)``, finite on every valid row (a ``ValueError`` otherwise, under
            :class:`~mitools.bounds.check_finite`).
        alpha: interpolation weight in the open interval (0, 1).
        offset: column of the positive of row 0.
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.

    Returns:
        Tensor of shape ``scores.shape[:-2]``: the estimate in nats.

    Raises:
        TypeError, ValueError: as every bound (see :mod:`mitools.bounds`): scores that are
            not a floating-point tensor, of fewer than 2 dims or 2 columns, or non-finite
            where unmasked; masks or an offset that do not fit the scores; an
            ``alpha`` outside (0, 1); a ``log_baseline`` as :func:`tuba` refuses it.

    Example:
        >>> import torch
        >>> from mitools.bounds import alpha_infonce
        >>> alpha_infonce(torch.zeros(4, 4), log_baseline=0.0, alpha=0.5)
        tensor(0.)
    """
    alpha = check_number("alpha_infonce: alpha", alpha, 0, high=1)
    p = _prepare(scores, offset, row_mask, col_mask, "alpha_infonce")
    a = _check_baseline(log_baseline, p, "alpha_infonce")
    log_alpha, log_rest = math.log(alpha), math.log1p(-alpha)
    # Each difference S - m is formed from differences of the inputs, never from m itself: m
    # is at the scale of the scores (or of a), and in float32 scores of 10^4 put its rounding,
    # 1e-3, into exp(S - m) (-94.424 for -94.395 on rows of equal scores 10^4).
    # The joint term S_ii - m_ij = -logaddexp(loo_ij - S_ii + log a, a_i - S_ii + log(1 - a)),
    # with loo_ij - S_ii the leave-one-out log-mean-exp of the row less its positive.
    pos = p.positive
    loo_less_pos = _leave_one_out_lme(p._replace(scores=p.scores - pos[..., None]))
    joint = -torch.logaddexp(loo_less_pos + log_alpha, (a - pos)[..., None] + log_rest)
    # The marginal term S_ij - m_i,pos, with loo_i,pos the log-mean-exp of the row's
    # negatives, taken less the largest of them (a constant: it cancels) so that it is of the
    # size of their spread.
    top = p.scores.detach().masked_fill(~p.neg_valid, -math.inf).amax(-1)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))  # rows without any
    rel = p.scores - top[..., None]
    loo_pos = _masked_logsumexp(rel, p.neg_valid) - torch.log(p.n_cols - 1.0)  # less top
    marginal = -torch.logaddexp(loo_pos[..., None] - rel + log_alpha,
                                (a[..., None] - p.scores) + log_rest)  # fmt: skip
    return 1.0 + _mean_negatives(joint, p) - torch.exp(_lme_negatives(marginal, p))
