r"""Bounds built on a conditional density, the upper bounds, and FLO.

Every function but :func:`flo` takes a score tensor of *log conditional densities*,
``scores[..., i, j] =`` :math:`\log q(y_j \mid x_i)` (e.g. from
:meth:`mitools.conditionals.ConditionalDensity.log_prob`), with the positive of row ``i`` at
column ``i + offset``; :func:`flo` takes an unnormalised critic like the lower bounds. Offsets,
masks, upcasting and the output shape ``scores.shape[:-2]`` follow :mod:`mitools.bounds`.

**What the gradient is for.** For the lower bounds (:func:`ba`, :func:`flo`) the gradient is
the training signal to *maximise*, for the model and for a representation alike. An upper
bound is used the other way round, by two players (Cheng et al. 2020):

* the conditional model :math:`q` is fitted to :math:`p(y \mid x)` by maximum likelihood,
  maximising :func:`log_likelihood` (the positives only);
* the representation that produces ``x`` (or ``y``) *minimises* the upper bound,
  :func:`club`, :func:`vclub` or :func:`l1out`, whose gradient is the signal for that.

Only the representation's optimiser should step on the upper bound's gradient: minimising it
with respect to :math:`q` would make :math:`q` a worse model, not the bound tighter.
:func:`doe` is not a bound; its value is the estimate and its gradient is that of the two
log-likelihoods it is made of.

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

import math

import torch
from torch import Tensor

from mitools.bounds._scores import _prepare, _row_mean
from mitools.bounds.lower import NEGATIVES_LSE
from mitools.bounds.rowwise import (
    RowStatistic,
    RowStatistics,
    RowwiseBound,
    _registers,
    row_statistics,
    rows_mean,
    rows_sum,
)

__all__ = ["ba", "club", "doe", "flo", "l1out", "log_likelihood", "vclub"]

#: Sum of the scores over a row's valid negatives: CLUB's marginal term.
NEGATIVES_SUM = RowStatistic("sum", "negatives")


def _per_problem(value: Tensor | float, like: Tensor, name: str, arg: str) -> Tensor:
    """Broadcast a float or tensor to the problems' shape ``like.shape[:-1]`` (``like``: a
    per-row tensor ``(..., N)``, whose dtype the result takes)."""
    lead = like.shape[:-1]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return like.new_full(lead, float(value))
    if not isinstance(value, Tensor) or not value.is_floating_point():
        raise TypeError(
            f"{name}: {arg} must be a float or a floating-point tensor broadcastable to "
            f"{tuple(lead)}, got {type(value).__name__}"
        )
    try:
        return torch.broadcast_to(value, lead).to(like.dtype)
    except RuntimeError:
        raise ValueError(
            f"{name}: {arg} has shape {tuple(value.shape)}, which does not broadcast to the "
            f"problems' shape {tuple(lead)}"
        ) from None


def _per_index(value: Tensor, expected: torch.Size, like: Tensor, name: str, arg: str) -> Tensor:
    """Broadcast a tensor to ``expected`` (a per-row or per-column quantity), in ``like``'s
    dtype."""
    if not isinstance(value, Tensor) or not value.is_floating_point():
        raise TypeError(
            f"{name}: {arg} must be a floating-point tensor broadcastable to {tuple(expected)}, "
            f"got {type(value).__name__ if not isinstance(value, Tensor) else value.dtype}"
        )
    try:
        out = torch.broadcast_to(value, expected).to(like.dtype)
    except RuntimeError:
        raise ValueError(
            f"{name}: {arg} has shape {tuple(value.shape)} but must broadcast to "
            f"{tuple(expected)}"
        ) from None
    return out


def _per_row(value: Tensor, st: RowStatistics, name: str, arg: str) -> Tensor:
    """A per-row input ``(..., N)``, zero on the invalid rows (so nothing there overflows)."""
    out = _per_index(value, st.positive.shape, st.positive, name, arg)
    return out if st.row_valid is None else out.masked_fill(~st.row_valid, 0.0)


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
    objective = rows_mean(st.positive + lm, st)
    return objective + (value - objective).detach()


def _club(st: RowStatistics) -> Tensor:
    return _log_likelihood(st) - rows_sum(st.of(NEGATIVES_SUM), st) / st.n_neg


def _flo(st: RowStatistics, u: Tensor | None = None) -> Tensor:
    # u: (..., N) per-pair term of each row's positive; None ties it to the critic, u = -S_ii
    positive = _valid_rows(st.positive, st)
    u = -positive if u is None else _per_row(u, st, "flo", "u")
    # log-mean-exp over the row's valid negatives: every valid column but the positive
    lme_row = _valid_rows(st.of(NEGATIVES_LSE) - torch.log(st.n_cols - 1.0), st)
    return 1.0 + rows_mean(-u - torch.exp(-u + lme_row - positive), st)


LOG_LIKELIHOOD = RowwiseBound("log_likelihood", (), _log_likelihood)
BA = RowwiseBound("ba", (), _ba)
DOE = RowwiseBound("doe", (), _doe)
CLUB = RowwiseBound("club", (NEGATIVES_SUM,), _club)
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
            ``entropy_y`` that is not a float or does not broadcast.

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
    ``objective + (value - objective).detach()``), so one optimiser fits both models.

    Args:
        scores: ``(..., N, M)`` log conditional densities :math:`\log q(y_j \mid x_i)`.
        log_marginal: ``(..., M)`` log marginal densities :math:`\log q(y_j)` of the columns
            (e.g. :meth:`mitools.conditionals.GaussianMarginal.log_prob`).
        offset: column of the positive of row 0.
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.

    Returns:
        Tensor of shape ``scores.shape[:-2]``: the estimate in nats.

    Raises:
        TypeError, ValueError: as every bound, and for a ``log_marginal`` that does not
            broadcast to ``(..., M)``.

    Example:
        >>> import torch
        >>> doe(torch.full((3, 3), -1.0), log_marginal=torch.full((3,), -2.5))
        tensor(1.5000)
    """
    st = row_statistics(scores, (), offset=offset, row_mask=row_mask, col_mask=col_mask,
                        name="doe")
    lead, n = st.positive.shape[:-1], st.positive.shape[-1]
    lm = _per_index(log_marginal, lead + scores.shape[-1:], st.positive, "doe", "log_marginal")
    return DOE.finish(st, log_marginal=lm[..., offset : offset + n])


@_registers(CLUB)
def club(
    scores: Tensor,
    *,
    offset: int = 0,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
) -> Tensor:
    r"""Contrastive log-ratio upper bound, CLUB (Cheng et al. 2020, eq. 4).

    .. math::

        I_{\text{CLUB}} = \frac{1}{K}\sum_i \log q(y_{i+o} \mid x_i)
            - \frac{1}{|\mathcal{O}|}\sum_{(i, j) \in \mathcal{O}} \log q(y_j \mid x_i)

    over the off-positive pairs :math:`\mathcal O` (the paper averages over all :math:`N^2`
    pairs, diagonal included, which shrinks the value by a factor :math:`(N-1)/N`; the
    off-diagonal mean is the unbiased estimate of the expectation under :math:`p(x)p(y)`).

    **When it bounds.** With :math:`q = p(y \mid x)` its expectation is
    :math:`I(X;Y) + L(X;Y)`, the MI plus the lautum information
    :math:`\mathbb E_{p(x)p(y)}\log\frac{p(x)p(y)}{p(x,y)} \ge 0`: an upper bound. For a
    fitted :math:`q` it remains one when :math:`\mathrm{KL}(p(x,y)\,\|\,q(x,y)) \le
    \mathrm{KL}(p(x)p(y)\,\|\,q(x,y))` with :math:`q(x,y) = q(y\mid x)p(x)` (Cheng et al.,
    Theorem 3.2), i.e. when :math:`q` fits the joint better than the product of marginals;
    otherwise it is only an estimate. **It is loose at high MI**: for unit Gaussians with
    correlation :math:`\rho` per dimension, :math:`I + L = \rho^2 / (1 - \rho^2)` per
    dimension against :math:`I = -\tfrac12\log(1-\rho^2)`; at 10 nats over 20 dimensions
    that is 34.4 nats.

    The gradient is the signal for a representation to *minimise*; fit :math:`q` with
    :func:`log_likelihood` (see the module docstring).

    Args:
        scores: ``(..., N, M)`` log conditional densities :math:`\log q(y_j \mid x_i)`.
        offset: column of the positive of row 0.
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.

    Returns:
        Tensor of shape ``scores.shape[:-2]``: the estimate in nats.

    Example:
        >>> import torch
        >>> club(torch.tensor([[-1.0, -3.0], [-5.0, -1.0]]))  # -1 - mean(-3, -5)
        tensor(3.)
    """
    return CLUB(scores, offset=offset, row_mask=row_mask, col_mask=col_mask)


def vclub(
    scores: Tensor,
    *,
    negatives: Tensor | None = None,
    generator: torch.Generator | None = None,
    offset: int = 0,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
) -> Tensor:
    r"""Sampled CLUB, vCLUB (Cheng et al. 2020, eq. 5): one negative per positive.

    .. math::

        I_{\text{vCLUB}} = \frac{1}{K}\sum_i \big[\log q(y_{i+o} \mid x_i)
            - \log q(y_{k_i} \mid x_i)\big]

    with :math:`k_i` drawn uniformly from row :math:`i`'s valid negatives. Unbiased for
    :func:`club`'s expectation, so an upper bound under the same condition, with more
    variance; its use is the cost: with a model, ``q.log_prob_pairs(y[perm], x)`` gives the
    negatives' log-densities in :math:`O(N)` without the ``N x M`` tensor, and this function
    then only averages. Gradient: for a representation to minimise.

    Args:
        scores: ``(..., N, M)`` log conditional densities :math:`\log q(y_j \mid x_i)`.
        negatives: optional ``(..., N)`` integer column of each row's negative; drawn
            uniformly from the valid negatives when ``None``.
        generator: optional ``torch.Generator`` for that draw, on the scores' device.
        offset: column of the positive of row 0.
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.

    Returns:
        Tensor of shape ``scores.shape[:-2]``: the estimate in nats.

    Raises:
        TypeError, ValueError: as every bound, and for ``negatives`` that are not integers of
            shape ``(..., N)``, or that point at a positive or a masked column.

    Example:
        >>> import torch
        >>> s = torch.tensor([[-1.0, -3.0, -7.0], [-5.0, -1.0, -9.0]])
        >>> vclub(s, negatives=torch.tensor([2, 0]))  # mean(-1 + 7, -1 + 5)
        tensor(5.)
    """
    p = _prepare(scores, offset, row_mask, col_mask, "vclub")
    rows_shape = p.scores.shape[:-1]
    m = p.scores.shape[-1]
    if negatives is None:
        weights = p.neg_valid.to(p.scores.dtype).reshape(-1, m)
        # rows without a valid negative (masked rows) get a dummy draw, dropped by the mean
        weights = weights + (weights.sum(-1, keepdim=True) == 0).to(weights.dtype)
        negatives = torch.multinomial(weights, 1, generator=generator).reshape(rows_shape)
    else:
        if not isinstance(negatives, Tensor) or negatives.is_floating_point() or (
            negatives.dtype == torch.bool
        ):
            raise TypeError(f"vclub: negatives must be an integer tensor, got {negatives!r}")
        try:
            negatives = torch.broadcast_to(negatives, rows_shape).to(torch.long)
        except RuntimeError:
            raise ValueError(
                f"vclub: negatives has shape {tuple(negatives.shape)}, expected "
                f"{tuple(rows_shape)} (one column per row of scores {tuple(p.scores.shape)})"
            ) from None
        if bool(((negatives < 0) | (negatives >= m)).any()):
            raise ValueError(f"vclub: negatives must lie in [0, {m}), got {negatives}")
        ok = torch.gather(p.neg_valid, -1, negatives[..., None]).squeeze(-1)
        if p.row_valid is not None:
            ok = ok | ~p.row_valid
        if not bool(ok.all()):
            raise ValueError(
                "vclub: a negative points at its row's positive column or at a masked column"
            )
    negative = torch.gather(p.scores, -1, negatives[..., None]).squeeze(-1)
    return _row_mean(p.positive - negative, p)


def l1out(
    scores: Tensor,
    *,
    offset: int = 0,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
) -> Tensor:
    r"""Leave-one-out upper bound, L1Out (Poole et al. 2019, eq. 13; Cheng et al. 2020).

    .. math::

        I_{\text{L1Out}} = \frac{1}{K}\sum_i \Big[\log q(y_{i+o} \mid x_i)
            - \log \frac{1}{K - 1}\sum_{j \ne i} q(y_{i+o} \mid x_j)\Big]

    The mixture :math:`\frac{1}{K-1}\sum_{j\ne i} q(y \mid x_j)` over the *other anchors* is a
    model of the marginal :math:`p(y)` that excludes the positive's own :math:`x`; it reads
    column :math:`i + o` of the scores over the valid rows :math:`j \ne i` (only the
    ``N x N`` block of the rows' own positives is used). With :math:`q = p(y \mid x)` the
    expectation is an upper bound on :math:`I(X;Y)` for every batch size
    (Poole et al.); with a fitted :math:`q` it is an estimate. It is not capped, and its
    variance grows with the MI (the mixture of :math:`K - 1` components rarely covers
    :math:`y_i` when :math:`p(y\mid x)` is narrow). Gradient: for a representation to
    minimise; fit :math:`q` with :func:`log_likelihood`.

    Args:
        scores: ``(..., N, M)`` log conditional densities :math:`\log q(y_j \mid x_i)`.
        offset: column of the positive of row 0.
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.

    Returns:
        Tensor of shape ``scores.shape[:-2]``: the estimate in nats.

    Raises:
        TypeError, ValueError: as every bound, and when fewer than 2 rows are valid.

    Example:
        >>> import torch
        >>> l1out(torch.tensor([[-1.0, -3.0], [-3.0, -1.0]]))  # -1 - (-3) for each row
        tensor(2.)
    """
    p = _prepare(scores, offset, row_mask, col_mask, "l1out")
    n = p.scores.shape[-2]
    if n < 2:
        raise ValueError(
            f"l1out: needs at least 2 rows (the mixture leaves the positive's own row out), "
            f"got scores of shape {tuple(p.scores.shape)}"
        )
    block = p.scores[..., offset : offset + n]  # block[j, i] = log q(y_{i+o} | x_j)
    exclude = torch.eye(n, dtype=torch.bool, device=block.device)
    if p.row_valid is not None:
        if bool((p.n_rows < 2).any()):
            raise ValueError("l1out: row_mask leaves an estimation problem with fewer than 2 rows")
        exclude = exclude | ~p.row_valid[..., :, None]
    mixed = torch.logsumexp(block.masked_fill(exclude, -math.inf), dim=-2)  # (..., N)
    per_row = p.positive - mixed + torch.log(p.n_rows - 1.0)[..., None]
    return _row_mean(per_row, p)


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
