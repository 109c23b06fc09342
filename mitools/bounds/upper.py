r"""The upper bounds on log conditional densities: CLUB, vCLUB and L1Out.

Each takes a score tensor of *log conditional densities*, ``scores[..., i, j] =``
:math:`\log q(y_j \mid x_i)` (e.g. from
:meth:`mitools.conditionals.ConditionalDensity.log_prob`), with the positive of row ``i`` at
column ``i + offset``; offsets, masks, upcasting and the output shape ``scores.shape[:-2]``
follow :mod:`mitools.bounds`. An upper bound is used by two players (Cheng et al. 2020): the
model :math:`q` is fitted by maximum likelihood (:func:`~mitools.bounds.log_likelihood`), and
the representation that produces ``x`` (or ``y``) minimises the bound, whose gradient is the
signal for that; minimising it with respect to :math:`q` would make :math:`q` a worse model,
not the bound tighter. CLUB is row-wise (the mean positive minus the mean over each row's
negatives: a finisher of one per-row sum, so every execution path of the local losses takes
it); vCLUB draws at random and L1Out reads columns, so they take the whole score tensor.

References:
    Cheng, Hao, Dai, Liu, Gan, Carin. *CLUB: A contrastive log-ratio upper bound of mutual
    information*. ICML 2020. Poole, Ozair, van den Oord, Alemi, Tucker. *On variational
    bounds of mutual information*. ICML 2019.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mitools.bounds._scores import _prepare, _row_mean
from mitools.bounds.generative import _check_device, _log_likelihood
from mitools.bounds.rowwise import (
    RowStatistic,
    RowStatistics,
    RowwiseBound,
    _registers,
    rows_sum,
)
from mitools.tasks.seeding import _generator

__all__ = ["club", "l1out", "vclub"]

#: Sum of the scores over a row's valid negatives: CLUB's marginal term.
NEGATIVES_SUM = RowStatistic("sum", "negatives")


def _club(st: RowStatistics) -> Tensor:
    return _log_likelihood(st) - rows_sum(st.of(NEGATIVES_SUM), st) / st.n_neg


CLUB = RowwiseBound("club", (NEGATIVES_SUM,), _club)


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
    :func:`~mitools.bounds.log_likelihood` (see the module docstring).

    Args:
        scores: ``(..., N, M)`` log conditional densities :math:`\log q(y_j \mid x_i)`.
        offset: column of the positive of row 0.
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.

    Returns:
        Tensor of shape ``scores.shape[:-2]``: the estimate in nats.

    Raises:
        TypeError, ValueError: as every bound (see :mod:`mitools.bounds`): scores that are
            not floating point, of fewer than 2 dims or 2 columns, or non-finite where
            unmasked; masks or an offset that do not fit the scores.

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
    generator: torch.Generator | int | None = None,
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
        generator: optional ``torch.Generator`` for that draw (on any device: the draw is
            made there and moved to the scores'), or an int seed (a new CPU generator, so the
            same seed draws the same negatives); ``None``: torch's global RNG on the scores'
            device.
        offset: column of the positive of row 0.
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.

    Returns:
        Tensor of shape ``scores.shape[:-2]``: the estimate in nats.

    Raises:
        TypeError, ValueError: as every bound, and for ``negatives`` that are not integers of
            shape ``(..., N)``, or that point at a positive or a masked column; a
            ``generator`` that is neither a generator, an int nor ``None``.

    Example:
        >>> import torch
        >>> s = torch.tensor([[-1.0, -3.0, -7.0], [-5.0, -1.0, -9.0]])
        >>> vclub(s, negatives=torch.tensor([2, 0]))  # mean(-1 + 7, -1 + 5)
        tensor(5.)
    """
    p = _prepare(scores, offset, row_mask, col_mask, "vclub")
    # an int seed failed in torch.multinomial ("argument 'generator' must be torch.Generator")
    generator = _generator(generator, name="vclub: generator")
    rows_shape = p.scores.shape[:-1]
    m = p.scores.shape[-1]
    if negatives is None:
        weights = p.neg_valid.to(p.scores.dtype).reshape(-1, m)
        # rows without a valid negative (masked rows) get a dummy draw, dropped by the mean
        weights = weights + (weights.sum(-1, keepdim=True) == 0).to(weights.dtype)
        draw_on = weights.device if generator is None else generator.device
        negatives = torch.multinomial(weights.to(draw_on), 1, generator=generator)
        negatives = negatives.to(weights.device).reshape(rows_shape)
    else:
        if not isinstance(negatives, Tensor) or negatives.is_floating_point() or (
            negatives.dtype == torch.bool
        ):
            raise TypeError(f"vclub: negatives must be an integer tensor, got {negatives!r}")
        _check_device(negatives, p.scores, "vclub", "negatives")
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
    minimise; fit :math:`q` with :func:`~mitools.bounds.log_likelihood`.

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
