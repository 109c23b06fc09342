"""The linear-quadratic critic: the pointwise MI of Gaussian pairs, with its closed-form fit."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mitools.critics.base import Critic, _no_autocast, dot_scores
from mitools.critics.separable import SeparableCritic
from mitools.option_checks import check_int, check_number

__all__ = ["QuadraticCritic"]


class QuadraticCritic(Critic):
    r"""Linear-quadratic critic, the exact form of the pointwise MI of Gaussian pairs:

    .. math::

        f(x, y) = x^\top W y - \lVert P_x x \rVert^2 - \lVert P_y y \rVert^2
                  + u^\top x + v^\top y + c.

    The negative quadratic terms make scores fall off in the tails, where held-out negatives
    the training set never showed must still score low. :meth:`init_gaussian_` sets every
    parameter to the pointwise MI of the Gaussian with the samples' mean and covariance, the
    moment (and maximum-likelihood) fit; training a bound from there refines it where the data
    are not Gaussian. With ``hidden``, a separable residual :math:`g(x)^\top h(y)` (MLPs,
    ``g``'s last layer started at zero, so the critic starts as the quadratic form) learns
    dependence the quadratic form cannot express. It stays separable
    (:meth:`factorise`): :math:`f = [x W, a(x) + c, 1, g(x)]^\top [y, 1, b(y), h(y)]`.

    Args:
        dim_x: features of ``x``.
        dim_y: features of ``y``.
        hidden: hidden widths of the residual's encoders (``None``: no residual).
        embed_dim: embedding size of the residual.

    Raises:
        ValueError: at construction, a dimension, width or ``embed_dim`` that is not an int >= 1;
            at the call, as every :class:`~mitools.critics.Critic` (inputs of the wrong shape
            or device).
        TypeError: at the call, non-tensor or non-floating-point inputs.

    Example:
        >>> import torch
        >>> from mitools.tasks import CorrelatedGaussian
        >>> task = CorrelatedGaussian(dim=2, mi=1.0)
        >>> x, y = task.sample(100_000, generator=0)
        >>> critic = QuadraticCritic(2, 2).init_gaussian_(x, y)
        >>> xt, yt = task.sample(5, generator=1)
        >>> bool((critic(xt, yt) - task.optimal_critic(xt, yt)).abs().max() < 0.15)
        True
    """

    def __init__(self, dim_x: int, dim_y: int, hidden: Sequence[int] | None = None,
                 embed_dim: int = 32):
        super().__init__()
        dim_x, dim_y = check_int("dim_x", dim_x), check_int("dim_y", dim_y)
        embed_dim = check_int("embed_dim", embed_dim)  # also without a residual to use it
        self.dim_x, self.dim_y = dim_x, dim_y
        self.weight = nn.Parameter(torch.empty(dim_x, dim_y))
        nn.init.normal_(self.weight, std=1.0 / math.sqrt(dim_x * dim_y))
        self.residual: SeparableCritic | None = None
        if hidden is not None:
            self.residual = SeparableCritic(dim_x, dim_y, hidden=hidden, embed_dim=embed_dim)
            self._zero_residual()
        # Small, not zero: the gradient of ||P x||^2 vanishes at P = 0.
        self.quad_x = nn.Parameter(0.05 * torch.randn(dim_x, dim_x))
        self.quad_y = nn.Parameter(0.05 * torch.randn(dim_y, dim_y))
        self.lin_x = nn.Parameter(torch.zeros(dim_x))
        self.lin_y = nn.Parameter(torch.zeros(dim_y))
        self.bias = nn.Parameter(torch.zeros(()))

    def potentials(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """The marginal terms :math:`a(x)` ``(..., N)`` and :math:`b(y)` ``(..., M)``."""
        a = x @ self.lin_x.to(x.dtype) - (x @ self.quad_x.T.to(x.dtype)).square().sum(-1)
        b = y @ self.lin_y.to(y.dtype) - (y @ self.quad_y.T.to(y.dtype)).square().sum(-1)
        return a, b

    separable = True

    def factorise(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """``u = [x W, a(x) + c, 1, g(x) / T]`` and ``v = [y, 1, b(y), h(y)]`` (the last block
        with the residual only): the score is their dot product. Computed in float32 or higher
        (half-precision inputs are upcast: the quadratic terms are scores already)."""
        self._check_inputs(x, y, broadcast=False)
        residual = self.residual.factorise(x, y) if self.residual is not None else None
        with _no_autocast(x.device):  # the critic's own products: not rounded by autocast
            dtype = torch.promote_types(x.dtype, torch.float32)
            x, y = x.to(dtype), y.to(dtype)
            a, b = self.potentials(x, y)
            u = [torch.matmul(x, self.weight.to(x.dtype)), (a + self.bias.to(a.dtype))[..., None],
                 a.new_ones((*a.shape, 1))]  # fmt: skip
            v = [y, b.new_ones((*b.shape, 1)), b[..., None]]
            if residual is not None:
                u.append(residual[0].to(dtype))
                v.append(residual[1].to(dtype))
            return torch.cat(u, dim=-1), torch.cat(v, dim=-1)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        self._check_inputs(x, y)
        return dot_scores(*self.factorise(x, y))

    @torch.no_grad()
    def init_gaussian_(self, x: Tensor, y: Tensor, ridge: float = 1e-6,
                       offset: float = 0.0) -> QuadraticCritic:
        r"""Set the parameters to the pointwise MI of the Gaussian fitted to ``(x, y)``, plus
        ``offset`` (the residual, if any, is set to output zero).

        With :math:`z = (x, y)` of mean :math:`m` and covariance :math:`\Sigma`,
        :math:`\Lambda = \Sigma^{-1}`, the Gaussian pointwise MI is
        :math:`-\tfrac12 \tilde x^\top Q_x \tilde x - \tilde x^\top \Lambda_{xy}
        \tilde y - \tfrac12 \tilde y^\top Q_y \tilde y + \tfrac12 \log
        \frac{|\Sigma_{xx}||\Sigma_{yy}|}{|\Sigma|}` with centred
        :math:`\tilde x, \tilde y` and :math:`Q_x = \Lambda_{xx} - \Sigma_{xx}^{-1}
        \succeq 0` (likewise :math:`Q_y`). Computed in float64.

        Args:
            x: ``(n, dim_x)`` samples, ``n > dim_x + dim_y``.
            y: ``(n, dim_y)`` paired samples.
            ridge: added to the covariance's diagonal, relative to its mean variance, so
                that collinear features do not make it singular: a finite number >= 0.
            offset: a constant added to every score, where the bound to be trained is tight
                at the pointwise MI plus a constant (1 for NWJ: the estimator's
                :attr:`~mitools.estimators.Estimator.optimal_offset`); a finite number.

        Returns:
            ``self``, initialised in place.

        Raises:
            TypeError: ``x`` or ``y`` not a floating-point tensor (as a call of the critic).
            ValueError: a bad ``ridge`` or ``offset``, shapes that do not pair, a non-finite
                sample, or too few samples for the covariance.
        """
        ridge = check_number("init_gaussian_: ridge", ridge, 0, strict=False)
        offset = check_number("init_gaussian_: offset", offset, None)
        self._check_inputs(x, y)  # tensors first: numpy arrays failed on .dim()
        if x.dim() != 2 or y.dim() != 2 or x.shape[0] != y.shape[0]:
            raise ValueError(
                f"init_gaussian_ needs paired samples x (n, {self.dim_x}) and y (n, "
                f"{self.dim_y}), got shapes {tuple(x.shape)} and {tuple(y.shape)}"
            )
        for arg, t in (("x", x), ("y", y)):  # a NaN made the eigensolver fail to converge
            bad = ~torch.isfinite(t).all(dim=1)
            if bool(bad.any()):
                row = int(bad.nonzero()[0, 0])
                raise ValueError(
                    f"init_gaussian_: {arg} holds a non-finite value (row {row} of "
                    f"{tuple(t.shape)}); the covariance of the fit needs finite samples"
                )
        dx, dy = self.dim_x, self.dim_y
        n = x.shape[0]
        if n <= dx + dy:
            raise ValueError(
                f"init_gaussian_ needs more samples than features to fit a covariance: got "
                f"n={n} samples of {dx} + {dy} features"
            )
        z = torch.cat([x, y], dim=1).to(torch.float64)
        m = z.mean(0)
        cov = torch.cov(z.T).reshape(dx + dy, dx + dy)
        cov = cov + ridge * cov.diagonal().mean() * torch.eye(dx + dy, dtype=cov.dtype,
                                                              device=cov.device)
        prec = torch.linalg.inv(cov)
        lxy = prec[:dx, dx:]
        mx, my = m[:dx], m[dx:]

        def half_root(block: Tensor, marginal: Tensor) -> tuple[Tensor, Tensor]:
            q = block - torch.linalg.inv(marginal)
            q = (q + q.T) / 2
            evals, evecs = torch.linalg.eigh(q)
            q_psd = (evecs * evals.clamp_min(0)) @ evecs.T
            return (evecs * (evals.clamp_min(0) / 2).sqrt()) @ evecs.T, q_psd

        px, qx = half_root(prec[:dx, :dx], cov[:dx, :dx])
        py, qy = half_root(prec[dx:, dx:], cov[dx:, dx:])
        logdets = (torch.linalg.slogdet(cov[:dx, :dx])[1] + torch.linalg.slogdet(cov[dx:, dx:])[1]
                   - torch.linalg.slogdet(cov)[1])
        const = (0.5 * logdets - 0.5 * mx @ qx @ mx - mx @ lxy @ my - 0.5 * my @ qy @ my)
        for param, value in (
            (self.weight, -lxy),
            (self.quad_x, px),
            (self.quad_y, py),
            (self.lin_x, qx @ mx + lxy @ my),
            (self.lin_y, qy @ my + lxy.T @ mx),
            (self.bias, const + offset),
        ):
            param.copy_(value.to(param.dtype))
        if self.residual is not None:
            self._zero_residual()
        return self

    @torch.no_grad()
    def _zero_residual(self) -> None:
        """Zero the last layer of the residual's ``g``: the residual then scores 0 everywhere,
        and that layer still gets gradients (through ``h(y)``), so the residual can grow."""
        assert self.residual is not None
        last = [m for m in self.residual.g.modules() if isinstance(m, nn.Linear)][-1]
        last.weight.zero_()
        last.bias.zero_()
