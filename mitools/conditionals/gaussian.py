r"""Gaussian conditionals :math:`q(y \mid x) = \mathcal N(\mu(x), \Sigma(x))`, and a marginal.

An MLP maps ``x`` to the parameters: a mean and a diagonal scale (:class:`DiagonalGaussian`),
a mean and the Cholesky factor of the precision (:class:`FullGaussian`). Scales pass through
``softplus`` plus ``min_scale``, so no density is degenerate.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mitools.conditionals.base import (
    LOG_2PI,
    _check_min_scale,
    _diagonal_gaussian_factors,
    _diagonal_gaussian_pairs,
    _MLPConditional,
    _quadratic_features,
)
from mitools.critics import dot_scores
from mitools.critics.base import _no_autocast
from mitools.option_checks import check_int

__all__ = ["DiagonalGaussian", "FullGaussian", "GaussianMarginal"]


class DiagonalGaussian(_MLPConditional):
    r"""Diagonal Gaussian :math:`q(y \mid x) = \mathcal N(\mu(x), \operatorname{diag}\sigma(x)^2)`.

    The model of CLUB's reference implementation (Cheng et al. 2020): one MLP gives
    :math:`\mu(x)` and :math:`\sigma(x) = \operatorname{softplus}(\cdot) + \sigma_{\min}`.

    .. math::

        \log q(y \mid x) = -\tfrac{D}{2}\log 2\pi - \sum_k \log\sigma_k(x)
            - \sum_k \frac{(y_k - \mu_k(x))^2}{2\sigma_k(x)^2}

    The log-density is quadratic in :math:`y`, so the model is *separable*
    (:meth:`factorise`): ``log_prob(y, x)`` is the dot product of
    :math:`u(x) = [-\tfrac12\sigma^{-2}, \mu\sigma^{-2}, c(x)]` and
    :math:`v(y) = [y^2, y, 1]`, one matmul for all pairs, and the local losses' blocked and
    attention paths take it. The expanded quadratic cancels when :math:`\sigma` is small
    against :math:`|y|`: in float32 ``log_prob`` is off by about
    :math:`\epsilon \sum_k y_k^2/\sigma_k^2` (0.01 nats at :math:`\sigma = 0.0067`,
    :math:`|y| \approx 1`, four features; 0.7 at :math:`\sigma = 10^{-3}`, 40 with
    :math:`|y| \approx 10`), while
    :meth:`~mitools.conditionals.ConditionalDensity.log_prob_pairs` centres (0.002 there). For
    such narrow models, standardise ``y`` or use float64.

    Args:
        dim_x: features of ``x``.
        dim_y: features of ``y``.
        hidden: hidden widths of the parameter MLP.
        min_scale: :math:`\sigma_{\min} > 0`.

    Raises:
        ValueError: a dimension or hidden width that is not an int >= 1, or a
            ``min_scale`` that is not a finite number > 0; the methods raise as
            :meth:`~mitools.conditionals.ConditionalDensity.log_prob` (inputs that do not
            fit the model).

    Example:
        >>> import torch
        >>> q = DiagonalGaussian(3, 2, hidden=(16,))
        >>> x, y = torch.randn(5, 3), torch.randn(7, 2)
        >>> q.log_prob(y, x).shape  # every pair: log q(y_j | x_i)
        torch.Size([5, 7])
        >>> q.log_prob_pairs(y[:5], x).shape, q.sample(x).shape
        (torch.Size([5]), torch.Size([5, 2]))
    """

    def __init__(
        self, dim_x: int, dim_y: int, hidden: Sequence[int] = (256, 256), min_scale: float = 1e-3
    ):
        dim_y = check_int("dim_y", dim_y)
        super().__init__(dim_x, dim_y, hidden, min_scale, 2 * dim_y)

    def parameters_of(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and scale, each ``(..., N, dim_y)``, of :math:`q(\\cdot \\mid x_i)`."""
        self._check(x, None, same_n=False)
        mean, raw = self.net(x).chunk(2, dim=-1)
        return mean, F.softplus(raw) + self.min_scale

    separable = True

    def factorise(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """``u = [-1/(2 sigma^2), mu / sigma^2, c]`` ``(..., N, 2 dim_y + 1)`` and
        ``v = [y^2, y, 1]`` ``(..., M, 2 dim_y + 1)``: ``log_prob(y, x) == u @ v.T``."""
        self._check_inputs(x, y, broadcast=False)
        mean, scale = self.parameters_of(x)
        dtype = torch.promote_types(mean.dtype, y.dtype)  # never round y to the model's dtype
        return (_diagonal_gaussian_factors(mean.to(dtype), scale.to(dtype)),
                _quadratic_features(y.to(dtype)))

    def _log_prob(self, y: Tensor, x: Tensor) -> Tensor:
        return dot_scores(*self.factorise(x, y))

    def _log_prob_pairs(self, y: Tensor, x: Tensor) -> Tensor:
        mean, scale = self.parameters_of(x)
        return _diagonal_gaussian_pairs(y, mean, scale)

    def _sample(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        mean, scale = self.parameters_of(x)
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        return mean + scale * eps


class FullGaussian(_MLPConditional):
    r"""Full-covariance Gaussian :math:`q(y \mid x) = \mathcal N\big(\mu(x), \Lambda(x)^{-1}\big)`.

    The precision is parameterised by its Cholesky factor, :math:`\Lambda = U U^\top` with
    :math:`U` lower triangular (positive diagonal via ``softplus`` plus ``min_scale``), so
    scoring all pairs needs only products, no triangular solve:

    .. math::

        \log q(y \mid x) = -\tfrac{D}{2}\log 2\pi + \sum_k \log U_{kk}(x)
            - \tfrac12 \big\lVert U(x)^\top (y - \mu(x)) \big\rVert^2 .

    Scoring all pairs forms an ``(..., N, M, dim_y)`` tensor and costs
    :math:`O(N M D^2)`; :meth:`~mitools.conditionals.ConditionalDensity.sample` solves one
    triangular system per row. The log-density is quadratic in :math:`y`, so the model is
    also *separable* (:meth:`factorise`: :math:`\operatorname{vec}\Lambda(x)` against the
    products :math:`y_k y_l`, :math:`D(D+3)/2 + 1` factors a side): the local losses score
    all pairs by one matmul, or never form them on their blocked and attention paths.

    Args:
        dim_x: features of ``x``.
        dim_y: features of ``y``.
        hidden: hidden widths of the parameter MLP (it outputs
            :math:`D + D(D+1)/2` numbers).
        min_scale: lower limit of the diagonal of :math:`U`.

    Raises:
        ValueError: a dimension or hidden width that is not an int >= 1, or a
            ``min_scale`` that is not a finite number > 0; the methods raise as
            :meth:`~mitools.conditionals.ConditionalDensity.log_prob` (inputs that do not
            fit the model).

    Example:
        >>> import torch
        >>> q = FullGaussian(3, 2, hidden=(16,))
        >>> q.log_prob(torch.randn(7, 2), torch.randn(5, 3)).shape
        torch.Size([5, 7])
    """

    rows: Tensor
    cols: Tensor

    def __init__(
        self, dim_x: int, dim_y: int, hidden: Sequence[int] = (256, 256), min_scale: float = 1e-3
    ):
        dim_y = check_int("dim_y", dim_y)
        super().__init__(dim_x, dim_y, hidden, min_scale, dim_y + dim_y * (dim_y + 1) // 2)
        rows, cols = torch.tril_indices(dim_y, dim_y)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)

    def parameters_of(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean ``(..., N, D)`` and precision Cholesky factor ``U`` ``(..., N, D, D)``."""
        self._check(x, None, same_n=False)
        out = self.net(x)
        d = self.dim_y
        mean, entries = out[..., :d], out[..., d:]
        diag = self.rows == self.cols
        entries = torch.where(diag, F.softplus(entries) + self.min_scale, entries)
        factor = entries.new_zeros(*entries.shape[:-1], d, d)
        factor[..., self.rows, self.cols] = entries
        return mean, factor

    separable = True

    def factorise(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        r"""Factors with ``log_prob(y, x) == u @ v.T`` (to rounding), :math:`E = D(D+3)/2 + 1`.

        With :math:`\Lambda = U U^\top`, :math:`\log q(y\mid x) = -\tfrac12 y^\top\Lambda y
        + y^\top\Lambda\mu + c(x)`, :math:`c = -\tfrac D2\log 2\pi + \sum_k\log U_{kk}
        - \tfrac12\mu^\top\Lambda\mu`: ``u = [-diag(Λ)/2, -Λ_kl (k < l), Λμ, c]``
        ``(..., N, E)`` against ``v = [y_k^2, y_k y_l (k < l), y, 1]`` ``(..., M, E)``. The
        expanded quadratic loses the precision ``log_prob`` keeps by centring when
        :math:`|y|` is large against the spread of :math:`q` (in float32).
        """
        self._check_inputs(x, y, broadcast=False)
        mean, factor, y = self._promoted(x, y)
        with _no_autocast(mean.device):  # the density's own arithmetic, not autocast's
            d = self.dim_y
            upper = torch.triu_indices(d, d, offset=1, device=mean.device)
            precision = factor @ factor.transpose(-1, -2)  # (..., N, D, D)
            lam_mean = (precision @ mean[..., None]).squeeze(-1)
            log_det = torch.log(torch.diagonal(factor, dim1=-2, dim2=-1)).sum(-1)
            const = -0.5 * d * LOG_2PI + log_det - 0.5 * (mean * lam_mean).sum(-1)
            u = torch.cat([-0.5 * torch.diagonal(precision, dim1=-2, dim2=-1),
                           -precision[..., upper[0], upper[1]], lam_mean, const[..., None]], dim=-1)
            v = torch.cat([y * y, y[..., upper[0]] * y[..., upper[1]], y,
                           y.new_ones((*y.shape[:-1], 1))], dim=-1)  # fmt: skip
            return u, v

    def _promoted(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Mean, factor and ``y`` in their promoted dtype: ``y`` is never rounded."""
        mean, factor = self.parameters_of(x)
        dtype = torch.promote_types(mean.dtype, y.dtype)
        return mean.to(dtype), factor.to(dtype), y.to(dtype)

    def _log_prob(self, y: Tensor, x: Tensor) -> Tensor:
        mean, factor, y = self._promoted(x, y)
        with _no_autocast(mean.device):
            # z[..., i, j, l] = sum_k U_ikl (y_jk - mu_ik)
            z = torch.einsum("...nkl,...mk->...nml", factor, y) - torch.einsum(
                "...nkl,...nk->...nl", factor, mean
            ).unsqueeze(-2)
            log_det = torch.log(torch.diagonal(factor, dim1=-2, dim2=-1)).sum(-1, keepdim=True)
            return -0.5 * self.dim_y * LOG_2PI + log_det - 0.5 * (z * z).sum(-1)

    def _log_prob_pairs(self, y: Tensor, x: Tensor) -> Tensor:
        mean, factor, y = self._promoted(x, y)
        with _no_autocast(mean.device):
            z = torch.einsum("...nkl,...nk->...nl", factor, y - mean)
            log_det = torch.log(torch.diagonal(factor, dim1=-2, dim2=-1)).sum(-1)
            return -0.5 * self.dim_y * LOG_2PI + log_det - 0.5 * (z * z).sum(-1)

    def _sample(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        mean, factor = self.parameters_of(x)
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        # y - mu = U^{-T} eps has covariance (U U^T)^{-1}
        step = torch.linalg.solve_triangular(
            factor.transpose(-1, -2), eps.unsqueeze(-1), upper=True
        ).squeeze(-1)
        return mean + step


class GaussianMarginal(nn.Module):
    r"""A diagonal Gaussian model of the marginal, :math:`q(y) = \mathcal N(\mu, \sigma^2)`.

    The marginal model of the difference-of-entropies estimate (:func:`mitools.bounds.doe`):
    its cross-entropy :math:`-\frac1M\sum_j \log q(y_j)` is an estimate of :math:`H(Y)` from
    above (in expectation). Fit it by minimising :meth:`learning_loss`, or set it in closed form
    with :meth:`fit_`.

    Args:
        dim_y: features of ``y``.
        min_scale: lower limit of :math:`\sigma`.

    Raises:
        ValueError: a ``dim_y`` that is not an int >= 1, or a ``min_scale`` that is not a
            finite number > 0; the methods raise as :meth:`log_prob`.

    Example:
        >>> import torch
        >>> q = GaussianMarginal(2).fit_(torch.randn(100, 2))
        >>> q.log_prob(torch.zeros(3, 2)).shape
        torch.Size([3])
    """

    def __init__(self, dim_y: int, min_scale: float = 1e-3):
        super().__init__()
        self.dim_y = dim_y = check_int("dim_y", dim_y)
        self.min_scale = _check_min_scale(min_scale)
        self.mean = nn.Parameter(torch.zeros(dim_y))
        self.raw_scale = nn.Parameter(torch.full((dim_y,), 0.5413))  # softplus -> about 1

    @property
    def scale(self) -> Tensor:
        """The standard deviations :math:`\\sigma`, ``(dim_y,)``."""
        return F.softplus(self.raw_scale) + self.min_scale

    def _check_y(self, y: Tensor) -> None:
        """``y`` must be a floating-point ``(..., M, dim_y)`` tensor, as a conditional's."""
        if not isinstance(y, Tensor):
            raise TypeError(f"GaussianMarginal: y must be a torch.Tensor, got {type(y).__name__}")
        if not y.is_floating_point():
            raise TypeError(f"GaussianMarginal: y must be floating point, got dtype {y.dtype}")
        if y.dim() < 2:
            hint = " (n samples of one feature: y[:, None])" if self.dim_y == 1 else ""
            raise ValueError(
                f"GaussianMarginal: y must have shape (..., M, {self.dim_y}) with at least 2 "
                f"dims, got {tuple(y.shape)}{hint}"
            )
        if y.shape[-1] != self.dim_y:
            raise ValueError(
                f"GaussianMarginal: y has {y.shape[-1]} features (shape {tuple(y.shape)}) but "
                f"the marginal model was built with dim_y={self.dim_y}; expected "
                f"(..., M, {self.dim_y})"
            )

    def log_prob(self, y: Tensor) -> Tensor:
        """Log-density of every row of ``y (..., M, dim_y)``, shape ``(..., M)``, in nats.

        Raises:
            TypeError: ``y`` is not a floating-point tensor.
            ValueError: fewer than 2 dimensions (a 1-D ``y`` was read as one sample and gave
                a 0-d result, which :func:`~mitools.bounds.doe` spread over every column), or
                not ``dim_y`` features.
        """
        self._check_y(y)
        dtype = torch.promote_types(torch.promote_types(y.dtype, self.mean.dtype), torch.float32)
        return _diagonal_gaussian_pairs(y.to(dtype), self.mean.to(dtype), self.scale.to(dtype))

    def learning_loss(self, y: Tensor) -> Tensor:
        """Negative mean log-likelihood of ``y``: minimise it to fit the model."""
        return -self.log_prob(y).mean()

    @torch.no_grad()
    def fit_(self, y: Tensor) -> GaussianMarginal:
        """Set the mean and scale to the sample moments of ``y (..., n, dim_y)`` (maximum
        likelihood). Raises as :meth:`log_prob` (a 1-D ``y`` of ``2n`` numbers was read as
        ``n`` samples of 2 features), and a ``ValueError`` for no samples or a non-finite one
        (either set the parameters to NaN, silently)."""
        self._check_y(y)
        flat = y.reshape(-1, self.dim_y).to(torch.float64)  # moments before any narrowing
        if flat.shape[0] == 0:
            raise ValueError(f"GaussianMarginal.fit_: y holds no samples (shape {tuple(y.shape)})")
        bad = ~torch.isfinite(flat).all(-1)
        if bool(bad.any()):
            raise ValueError(
                f"GaussianMarginal.fit_: y holds a non-finite value in sample "
                f"{int(bad.nonzero()[0])} (of {flat.shape[0]}, y of shape {tuple(y.shape)}); "
                "the moments of every sample must be finite"
            )
        self.mean.copy_(flat.mean(0))
        target = (flat.std(0, unbiased=False) - self.min_scale).clamp_min(1e-6)
        self.raw_scale.copy_(target + torch.log(-torch.expm1(-target)))  # softplus inverse
        return self

    def extra_repr(self) -> str:
        return f"dim_y={self.dim_y}, min_scale={self.min_scale}"
