r"""Bounds built on a conditional density (BA, DoE, the log-likelihood), and FLO.

The upper bounds built on the same scores are in :mod:`mitools.bounds.upper`. Every function
here but :func:`~mitools.bounds.flo` takes a score tensor of *log conditional densities*,
``scores[..., i, j] =`` :math:`\log q(y_j \mid x_i)` (e.g. from
:meth:`mitools.conditionals.ConditionalDensity.log_prob`), with the positive of row ``i`` at
column ``i + offset``; :func:`~mitools.bounds.flo` takes an unnormalised critic like the lower
bounds. Offsets, masks, upcasting and the output shape ``scores.shape[:-2]`` follow
:mod:`mitools.bounds`.

**What the gradient is for.** For the lower bounds (:func:`~mitools.bounds.ba`,
:func:`~mitools.bounds.flo`) the gradient is the training signal to *maximise*, for the model
and for a representation alike. An upper bound is used the other way round, by two players
(Cheng et al. 2020):

* the conditional model :math:`q` is fitted to :math:`p(y \mid x)` by maximum likelihood,
  maximising :func:`~mitools.bounds.log_likelihood` (the positives only);
* the representation that produces ``x`` (or ``y``) *minimises* the upper bound
  (:mod:`mitools.bounds.upper`), whose gradient is the signal for that.

Only the representation's optimiser should step on the upper bound's gradient: minimising it
with respect to :math:`q` would make :math:`q` a worse model, not the bound tighter.
:func:`~mitools.bounds.doe` is not a bound; its value is the estimate and its gradient is that
of the two log-likelihoods it is made of.

Each bound here is a finisher of per-row statistics (:class:`~mitools.bounds.RowwiseBound`),
so the local losses' execution paths take them all.

References:
    Barber & Agakov. *The IM algorithm: a variational approach to information maximization*.
    NeurIPS 2003. McAllester & Stratos. *Formal limitations on the measurement of mutual
    information*. AISTATS 2020. Cheng, Hao, Dai, Liu, Gan, Carin. *CLUB: A contrastive
    log-ratio upper bound of mutual information*. ICML 2020. Poole, Ozair, van den Oord,
    Alemi, Tucker. *On variational bounds of mutual information*. ICML 2019. Guo, Chen, Zhou,
    Li, Carin, ... *Tight mutual information estimation with contrastive Fenchel-Legendre
    optimization*. NeurIPS 2022.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from torch import Tensor

from mitools.bounds._scores import _refused_non_finite, exp_of_log_term, with_gradient_of
from mitools.bounds.lower import NEGATIVES_LSE
from mitools.bounds.rowwise import (
    RowStatistics,
    RowwiseBound,
    _registers,
    row_statistics,
    rows_mean,
)
from mitools.option_checks import check_number

__all__ = ["ba", "doe", "flo", "log_likelihood"]


def _refuse_non_finite(value: Tensor, name: str, arg: str, whose: str = "valid row's") -> Tensor:
    """``value`` (already zero where a row is masked), refused when it holds ``nan`` or
    ``inf``, as a float is and as the scores are (under :class:`check_finite`): a tensor
    ``entropy_y``, ``log_marginal`` or ``u`` turned the bound into NaN with no word."""
    refused = _refused_non_finite(value)
    if refused is not None:
        index, bad = refused
        raise ValueError(
            f"{name}: {arg} holds a non-finite value ({bad}) at index {index} (shape "
            f"{tuple(value.shape)}); every {whose} {arg} must be finite: check what gave it"
            + (", or mask the row (row_mask)" if "row" in whose else ""))
    return value


def _check_device(value: Tensor, like: Tensor, name: str, arg: str) -> None:
    """A side input on another device than the scores is named (as ``log_baseline`` is);
    it failed in torch's arithmetic, or in the finiteness check, with no word of which."""
    if value.device != like.device:
        raise ValueError(f"{name}: {arg} is on {value.device} but the scores are on "
                         f"{like.device}; move it with {arg}.to({str(like.device)!r})")


def _per_problem(value: Tensor | float, like: Tensor, name: str, arg: str) -> Tensor:
    """Broadcast a float or tensor to the problems' shape ``like.shape[:-1]`` (``like``: a
    per-row tensor ``(..., N)``, whose dtype the result takes)."""
    lead = like.shape[:-1]
    if isinstance(value, (numbers.Real, np.bool_)):  # a bool is refused by name
        return like.new_full(lead, check_number(f"{name}: {arg}", value, None))
    if not isinstance(value, Tensor) or not value.is_floating_point():
        got = f"dtype {value.dtype}" if isinstance(value, Tensor) else type(value).__name__
        raise TypeError(
            f"{name}: {arg} must be a float or a floating-point tensor broadcastable to "
            f"{tuple(lead)}, got {got}"
        )
    if value.dim() == 0:  # a 0-dim tensor goes anywhere, as in torch's arithmetic
        value = value.to(like.device)
    _check_device(value, like, name, arg)
    try:
        out = torch.broadcast_to(value, lead).to(like.dtype)
    except RuntimeError:
        raise ValueError(
            f"{name}: {arg} has shape {tuple(value.shape)}, which does not broadcast to the "
            f"problems' shape {tuple(lead)}"
        ) from None
    return _refuse_non_finite(out, name, arg, "problem's")


def _per_index(value: Tensor, expected: torch.Size, like: Tensor, name: str, arg: str) -> Tensor:
    """Broadcast a tensor to ``expected`` (a per-row or per-column quantity), in ``like``'s
    dtype."""
    if not isinstance(value, Tensor) or not value.is_floating_point():
        raise TypeError(
            f"{name}: {arg} must be a floating-point tensor broadcastable to {tuple(expected)}, "
            f"got {type(value).__name__ if not isinstance(value, Tensor) else value.dtype}"
        )
    _check_device(value, like, name, arg)
    try:
        out = torch.broadcast_to(value, expected).to(like.dtype)
    except RuntimeError:
        raise ValueError(
            f"{name}: {arg} has shape {tuple(value.shape)} but must broadcast to "
            f"{tuple(expected)}"
        ) from None
    return out


def _check_per_column(value: Tensor, m: int, scores: Tensor, name: str, arg: str) -> None:
    """Refuse a per-column tensor whose last axis is not the ``m`` columns: a scalar or a
    length-1 axis would broadcast one value to every column, silently (a marginal model's
    output squeezed to ``()``, or ``(M, 1)`` for ``(M,)``)."""
    if isinstance(value, Tensor) and (value.dim() == 0 or value.shape[-1] != m):
        raise ValueError(
            f"{name}: {arg} has shape {tuple(value.shape)} but must be (..., M) with M = {m}, "
            f"one value per column of the scores {tuple(scores.shape)}"
        )


def _per_row(value: Tensor, st: RowStatistics, name: str, arg: str) -> Tensor:
    """A per-row input ``(..., N)``, zero on the invalid rows (so nothing there overflows)."""
    out = _per_index(value, st.positive.shape, st.positive, name, arg)
    out = out if st.row_valid is None else out.masked_fill(~st.row_valid, 0.0)
    return _refuse_non_finite(out, name, arg)


def _valid_rows(t: Tensor, st: RowStatistics) -> Tensor:
    """``t (..., N)`` with the invalid rows set to 0."""
    return t if st.row_valid is None else t.masked_fill(~st.row_valid, 0.0)


# ---------------------------------------------------------------------------------------------
# The finishers: the row-wise forms, shared by the functions below and the local losses' paths.
# ---------------------------------------------------------------------------------------------


def _log_likelihood(st: RowStatistics) -> Tensor:
    return rows_mean(st.positive, st)


def _ba(st: RowStatistics, entropy_y: Tensor | float) -> Tensor:
    return _per_problem(entropy_y, st.positive, "ba", "entropy_y") + _log_likelihood(st)


def _doe(st: RowStatistics, log_marginal: Tensor) -> Tensor:
    # log_marginal: (..., N), log q(y) of each row's positive
    lm = _per_row(log_marginal, st, "doe", "log_marginal")
    value = rows_mean(st.positive - lm, st)
    return with_gradient_of(value, rows_mean(st.positive + lm, st))


def _flo(st: RowStatistics, u: Tensor | None = None) -> Tensor:
    # u: (..., N) per-pair term of each row's positive; None ties it to the critic, u = -S_ii
    positive = _valid_rows(st.positive, st)
    u = -positive if u is None else _per_row(u, st, "flo", "u")
    # log-mean-exp over the row's valid negatives: every valid column but the positive
    lme_row = _valid_rows(st.of(NEGATIVES_LSE) - torch.log(st.n_cols - 1.0), st)
    # (-u - S_pos) first: it is 0, or small, when u tracks -S_pos (u=None ties them), and exact
    # then; -u + lme - S_pos rounded -u + lme at the scale of the positive (in float32, the
    # gradient of the negatives was off by 1e-3 relative with positives of 30000)
    return 1.0 + rows_mean(-u - exp_of_log_term((-u - positive) + lme_row, "flo",
                                                "exp(-u + lme(S) - S_pos)"), st)


LOG_LIKELIHOOD = RowwiseBound("log_likelihood", (), _log_likelihood)
BA = RowwiseBound("ba", (), _ba)
DOE = RowwiseBound("doe", (), _doe)
FLO = RowwiseBound("flo", (NEGATIVES_LSE,), _flo)


@_registers(LOG_LIKELIHOOD)
def log_likelihood(
    scores: Tensor,
    *,
    offset: int = 0,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
) -> Tensor:
    r"""Mean conditional log-likelihood of the positives: the training objective of :math:`q`.

    .. math::

        \hat\ell = \frac{1}{K}\sum_i \log q(y_{i+o} \mid x_i)

    Maximising it over :math:`q` fits :math:`q(y \mid x)` to :math:`p(y \mid x)` (it is
    :math:`-H(Y \mid X) - \mathbb E_x \mathrm{KL}(p(y\mid x)\,\|\,q(y\mid x))` in
    expectation): the ``learning_loss`` of Cheng et al. (2020) with the opposite sign.

    Args:
        scores: ``(..., N, M)`` log conditional densities :math:`\log q(y_j \mid x_i)`.
        offset: column of the positive of row 0.
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.

    Returns:
        Tensor of shape ``scores.shape[:-2]``, in nats (to maximise).

    Raises:
        TypeError, ValueError: as every bound (see :mod:`mitools.bounds`), except that one
            column is enough: it needs the positives alone, so a batch of one sample,
            ``(..., 1, 1)``, is scored.

    Example:
        >>> import torch
        >>> log_likelihood(torch.tensor([[-1.0, -5.0], [-4.0, -2.0]]))
        tensor(-1.5000)
    """
    return LOG_LIKELIHOOD(scores, offset=offset, row_mask=row_mask, col_mask=col_mask)


@_registers(BA)
def ba(
    scores: Tensor,
    entropy_y: Tensor | float,
    *,
    offset: int = 0,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
) -> Tensor:
    r"""Barber-Agakov lower bound (Barber & Agakov 2003).

    .. math::

        I_{\text{BA}} = H(Y) + \frac{1}{K}\sum_i \log q(y_{i+o} \mid x_i)
        \;\le\; I(X; Y) \quad\text{in expectation,}

    since :math:`I(X;Y) - I_{\text{BA}} = \mathbb E_x \mathrm{KL}(p(y\mid x)\,\|\,q(y\mid x))
    \ge 0`. Tight when :math:`q = p(y \mid x)`; the batch value is unbiased for the bound.
    It needs the true entropy :math:`H(Y)` (known for the tasks of :mod:`mitools.tasks`, or
    for a fixed data distribution of a representation ``x`` and raw ``y``). With a *model*
    of the marginal in place of :math:`H(Y)` the result is :func:`doe`, which is no longer a
    bound. The gradient is the training signal to maximise (maximum likelihood for :math:`q`).

    Args:
        scores: ``(..., N, M)`` log conditional densities :math:`\log q(y_j \mid x_i)`.
        entropy_y: :math:`H(Y)` in nats, a float or a tensor broadcastable to
            ``scores.shape[:-2]`` (differential entropy: may be negative).
        offset: column of the positive of row 0.
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.

    Returns:
        Tensor of shape ``scores.shape[:-2]``: the estimate in nats.

    Raises:
        TypeError, ValueError: as every bound (see :mod:`mitools.bounds`), and for an
            ``entropy_y`` that is not a float or does not broadcast. One column is enough
            (BA needs the positives alone): a batch of one sample, ``(..., 1, 1)``, is
            scored, :math:`H(Y) + \log q(y_1 \mid x_1)`.

    Example:
        >>> import torch
        >>> ba(torch.full((4, 4), -2.0), entropy_y=3.0)  # 3 + mean log q(y_i | x_i)
        tensor(1.)
    """
    return BA(scores, offset=offset, row_mask=row_mask, col_mask=col_mask, entropy_y=entropy_y)


@_registers(DOE)
def doe(
    scores: Tensor,
    log_marginal: Tensor,
    *,
    offset: int = 0,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
) -> Tensor:
    r"""Difference-of-entropies estimate, DoE (McAllester & Stratos 2020). **Not a bound.**

    With a marginal model :math:`q(y)` and a conditional model :math:`q(y \mid x)`, both
    fitted by maximum likelihood,

    .. math::

        \hat I_{\text{DoE}} = \hat H_q(Y) - \hat H_q(Y \mid X)
        = \frac{1}{K}\sum_i \big[\log q(y_{i+o} \mid x_i) - \log q(y_{i+o})\big].

    Each cross-entropy is an upper bound on its entropy (in expectation), so their difference
    is an estimate in neither direction: it is below :math:`I` when the marginal model fits
    better than the conditional one and above it otherwise. McAllester & Stratos propose it
    because, unlike a distribution-free lower bound, it is not capped at :math:`O(\log N)`.

    Value: the estimate. Gradient: that of the two log-likelihoods,
    :math:`\frac1K\sum_i [\log q(y_{i+o} \mid x_i) + \log q(y_{i+o})]`, to maximise (built as
    ``value.detach() + (objective - objective.detach())``), so one optimiser fits both
    models.

    Args:
        scores: ``(..., N, M)`` log conditional densities :math:`\log q(y_j \mid x_i)`.
        log_marginal: ``(..., M)`` log marginal densities :math:`\log q(y_j)` of the columns
            (e.g. :meth:`mitools.conditionals.GaussianMarginal.log_prob`): its last axis is
            the ``M`` columns (never broadcast), its leading dimensions broadcast.
        offset: column of the positive of row 0.
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.

    Returns:
        Tensor of shape ``scores.shape[:-2]``: the estimate in nats.

    Raises:
        TypeError, ValueError: as every bound, and for a ``log_marginal`` whose last axis is
            not the ``M`` columns (a scalar included) or that does not broadcast to
            ``(..., M)``. A batch of one sample, scores ``(..., 1, 1)``, is scored: DoE uses
            the positives alone.

    Example:
        >>> import torch
        >>> doe(torch.full((3, 3), -1.0), log_marginal=torch.full((3,), -2.5))
        tensor(1.5000)
    """
    st = row_statistics(scores, (), offset=offset, row_mask=row_mask, col_mask=col_mask,
                        name="doe")
    lead, n = st.positive.shape[:-1], st.positive.shape[-1]
    _check_per_column(log_marginal, scores.shape[-1], scores, "doe", "log_marginal")
    lm = _per_index(log_marginal, lead + scores.shape[-1:], st.positive, "doe", "log_marginal")
    return DOE.finish(st, log_marginal=lm[..., offset : offset + n])


@_registers(FLO)
def flo(
    scores: Tensor,
    u: Tensor | None,
    *,
    offset: int = 0,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
) -> Tensor:
    r"""FLO, the Fenchel-Legendre optimisation lower bound (Guo et al. 2022, eq. 9).

    With a critic :math:`g` (the scores :math:`S_{ij} = g(x_i, y_j)`, unnormalised) and a
    learned per-pair term :math:`u_i = u(x_i, y_{i+o})` of each positive pair,

    .. math::

        I_{\text{FLO}} = 1 + \frac{1}{K}\sum_i \Big[-u_i
            - \exp\big(-u_i + \operatorname{lme}_{j \ne i+o}(S_{ij}) - S_{i,i+o}\big)\Big]

    where :math:`\operatorname{lme}_{j \ne i+o}` is the log of the mean of :math:`e^{S_{ij}}`
    over row :math:`i`'s valid negatives. From :math:`-\log a = \max_u\{-u - a e^{-u}\} + 1`
    with :math:`a = \mathbb E_{p(y')} e^{g(x,y') - g(x,y)}`: for every :math:`g` and :math:`u`
    the expectation is below :math:`\mathbb E[-\log a] \le I(X;Y)` (the limit of InfoNCE with
    infinitely many negatives), and it equals :math:`I(X;Y)` at
    :math:`g = \log p(y\mid x)/p(y)`, :math:`u = -g(x, y)`. The batch mean over negatives is
    unbiased for :math:`a`, so the value is unbiased for the bound. Unlike InfoNCE it has no
    :math:`\log K` ceiling; like NWJ it pays with variance at high MI: the batch mean of
    :math:`e^{g}` over negatives is heavy-tailed (variance of order :math:`e^{I}`), so most
    batches underestimate it and overshoot the bound, balanced by rare large undershoots.
    :math:`u` must depend on the positive pair only (never on the rest of the batch), or the
    bound is lost. Gradient: the training signal to maximise, for both
    :math:`g` and :math:`u`.

    Args:
        scores: critic scores ``(..., N, M)``.
        u: ``(..., N)`` per-pair term of each row's positive pair (broadcastable), or
            ``None`` to tie it to the critic, :math:`u_i = -S_{i,i+o}` (FLO's optimum for a
            self-normalised critic; then the value is NWJ on :math:`S + 1`).
        offset: column of the positive of row 0.
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.

    Returns:
        Tensor of shape ``scores.shape[:-2]``: the estimate in nats.

    Raises:
        TypeError, ValueError: as every bound, and for a ``u`` that is not a floating-point
            tensor broadcastable to ``(..., N)``.

    Example:
        >>> import torch
        >>> flo(torch.zeros(4, 4), u=torch.zeros(4))  # 1 + (0 - e^0): no information
        tensor(0.)
    """
    return FLO(scores, offset=offset, row_mask=row_mask, col_mask=col_mask, u=u)
