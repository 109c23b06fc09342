r"""Critics: learnable score functions :math:`f(x, y)` evaluated on every pair of a batch.

A critic maps ``x (..., N, Dx)`` and ``y (..., M, Dy)`` to ``scores (..., N, M)`` with
``scores[..., i, j] = f(x_i, y_j)``; leading dimensions broadcast. Three families
(Poole et al. 2019):

* :class:`SeparableCritic`: :math:`f(x, y) = g(x)^\top h(y) / T`, two encoders and a dot
  product (optionally cosine, with a fixed or learnable temperature). One matmul for all pairs.
* :class:`BilinearCritic`: :math:`f(x, y) = x^\top W y`.
* :class:`QuadraticCritic`: a bilinear interaction plus quadratic and linear marginal terms,
  the exact form of the pointwise MI of any Gaussian pair, with a closed-form initialisation
  (:meth:`QuadraticCritic.init_gaussian_`).
* :class:`ConcatCritic`: :math:`f(x, y) = \mathrm{MLP}([x, y])`, the most expressive and the
  most expensive: ``N * M`` network passes, computed in row chunks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

__all__ = [
    "BilinearCritic",
    "ConcatCritic",
    "Critic",
    "QuadraticCritic",
    "SeparableCritic",
    "available_critics",
    "get_critic",
    "mlp",
]


def mlp(
    dim_in: int,
    hidden: Sequence[int],
    dim_out: int,
    activation: type[nn.Module] = nn.ReLU,
) -> nn.Sequential:
    """A multilayer perceptron ``Linear -> activation -> ... -> Linear``.

    Args:
        dim_in: input features.
        hidden: widths of the hidden layers (may be empty: a single linear map).
        dim_out: output features.
        activation: the non-linearity class.

    Example:
        >>> mlp(20, (256, 256), 32)[0]
        Linear(in_features=20, out_features=256, bias=True)
    """
    _check_positive_int(dim_in, "dim_in")
    _check_positive_int(dim_out, "dim_out")
    layers: list[nn.Module] = []
    width = dim_in
    for h in hidden:
        _check_positive_int(h, "hidden")
        layers += [nn.Linear(width, h), activation()]
        width = h
    layers.append(nn.Linear(width, dim_out))
    return nn.Sequential(*layers)


def _check_positive_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


class Critic(nn.Module):
    """Base class of critics: ``forward(x (..., N, Dx), y (..., M, Dy)) -> (..., N, M)``.

    Subclasses call ``_check_inputs`` first, so every critic reports bad shapes alike.
    """

    dim_x: int
    dim_y: int

    def _check_inputs(self, x: Tensor, y: Tensor) -> None:
        name = type(self).__name__
        for arg, t, dim in (("x", x, self.dim_x), ("y", y, self.dim_y)):
            if not isinstance(t, Tensor):
                raise TypeError(f"{name}: {arg} must be a torch.Tensor, got {type(t).__name__}")
            if not t.is_floating_point():
                raise TypeError(f"{name}: {arg} must be floating point, got dtype {t.dtype}")
            if t.dim() < 2:
                raise ValueError(
                    f"{name}: {arg} must have shape (..., n, {dim}) with at least 2 dims, "
                    f"got {tuple(t.shape)}"
                )
            if t.shape[-1] != dim:
                raise ValueError(
                    f"{name}: {arg} has {t.shape[-1]} features (shape {tuple(t.shape)}) but "
                    f"the critic was built with dim_{arg}={dim}"
                )
        try:
            torch.broadcast_shapes(x.shape[:-2], y.shape[:-2])
        except RuntimeError:
            raise ValueError(
                f"{name}: the leading dimensions of x {tuple(x.shape)} and y {tuple(y.shape)} "
                "do not broadcast"
            ) from None


class SeparableCritic(Critic):
    r"""Separable critic :math:`f(x, y) = g(x)^\top h(y) / T`.

    Args:
        dim_x: features of ``x``.
        dim_y: features of ``y``.
        hidden: hidden widths of both encoders :math:`g` and :math:`h`.
        embed_dim: dimension of the embeddings that are compared.
        cosine: L2-normalise the embeddings (a cosine similarity), as in CLIP / SimCLR.
        temperature: :math:`T > 0`; with ``cosine=True`` a small value (0.1) is usual.
        learn_temperature: learn :math:`\log T` as a parameter.
        activation: the non-linearity class of the encoders.

    Example:
        >>> import torch
        >>> critic = SeparableCritic(20, 20, hidden=(64,), embed_dim=16)
        >>> critic(torch.randn(8, 20), torch.randn(8, 20)).shape
        torch.Size([8, 8])
        >>> critic(torch.randn(3, 8, 20), torch.randn(3, 5, 20)).shape  # leading batch dims
        torch.Size([3, 8, 5])
    """

    def __init__(
        self,
        dim_x: int,
        dim_y: int,
        hidden: Sequence[int] = (256, 256),
        embed_dim: int = 32,
        cosine: bool = False,
        temperature: float = 1.0,
        learn_temperature: bool = False,
        activation: type[nn.Module] = nn.ReLU,
    ):
        super().__init__()
        if not (isinstance(temperature, (int, float)) and temperature > 0):
            raise ValueError(f"temperature must be a positive number, got {temperature!r}")
        self.dim_x, self.dim_y = dim_x, dim_y
        self.g = mlp(dim_x, hidden, embed_dim, activation)
        self.h = mlp(dim_y, hidden, embed_dim, activation)
        self.cosine = cosine
        log_t = torch.tensor(math.log(temperature))
        if learn_temperature:
            self.log_temperature = nn.Parameter(log_t)
        else:
            self.register_buffer("log_temperature", log_t)

    def embed(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """The embeddings :math:`g(x)` ``(..., N, E)`` and :math:`h(y)` ``(..., M, E)``."""
        gx, hy = self.g(x), self.h(y)
        if self.cosine:
            gx, hy = F.normalize(gx, dim=-1), F.normalize(hy, dim=-1)
        return gx, hy

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        self._check_inputs(x, y)
        gx, hy = self.embed(x, y)
        return torch.matmul(gx, hy.transpose(-1, -2)) * torch.exp(-self.log_temperature)


class BilinearCritic(Critic):
    r"""Bilinear critic :math:`f(x, y) = x^\top W y` (Oord et al.'s CPC critic).

    Args:
        dim_x: features of ``x``.
        dim_y: features of ``y``.
        bias: add a learnable scalar (it cancels in InfoNCE and DV, not in NWJ/TUBA/JS).

    Example:
        >>> import torch
        >>> BilinearCritic(4, 3)(torch.randn(5, 4), torch.randn(6, 3)).shape
        torch.Size([5, 6])
    """

    def __init__(self, dim_x: int, dim_y: int, bias: bool = True):
        super().__init__()
        _check_positive_int(dim_x, "dim_x")
        _check_positive_int(dim_y, "dim_y")
        self.dim_x, self.dim_y = dim_x, dim_y
        self.weight = nn.Parameter(torch.empty(dim_x, dim_y))
        nn.init.normal_(self.weight, std=1.0 / math.sqrt(dim_x * dim_y))  # unit-variance scores
        self.bias = nn.Parameter(torch.zeros(())) if bias else None

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        self._check_inputs(x, y)
        scores = torch.matmul(torch.matmul(x, self.weight), y.transpose(-1, -2))
        return scores + self.bias if self.bias is not None else scores


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
    dependence the quadratic form cannot express. It stays separable:
    :math:`f = [x, g(x), a(x), 1]^\top [W y, h(y), 1, b(y)]`.

    Args:
        dim_x: features of ``x``.
        dim_y: features of ``y``.
        hidden: hidden widths of the residual's encoders (``None``: no residual).
        embed_dim: embedding size of the residual.

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
        _check_positive_int(dim_x, "dim_x")
        _check_positive_int(dim_y, "dim_y")
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
        a = x @ self.lin_x - (x @ self.quad_x.T).square().sum(-1)
        b = y @ self.lin_y - (y @ self.quad_y.T).square().sum(-1)
        return a, b

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        self._check_inputs(x, y)
        a, b = self.potentials(x, y)
        scores = torch.matmul(torch.matmul(x, self.weight), y.transpose(-1, -2))
        scores = scores + a[..., :, None] + b[..., None, :] + self.bias
        return scores if self.residual is None else scores + self.residual(x, y)

    @torch.no_grad()
    def init_gaussian_(self, x: Tensor, y: Tensor, ridge: float = 1e-6) -> QuadraticCritic:
        r"""Set the parameters to the pointwise MI of the Gaussian fitted to ``(x, y)``
        (the residual, if any, is set to output zero).

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
                that collinear features do not make it singular.

        Returns:
            ``self``, initialised in place.
        """
        if x.dim() != 2 or y.dim() != 2 or x.shape[0] != y.shape[0]:
            raise ValueError(
                f"init_gaussian_ needs paired samples x (n, {self.dim_x}) and y (n, "
                f"{self.dim_y}), got shapes {tuple(x.shape)} and {tuple(y.shape)}"
            )
        self._check_inputs(x, y)
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
            (self.bias, const),
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


class ConcatCritic(Critic):
    r"""Joint critic :math:`f(x, y) = \mathrm{MLP}([x, y])` over every pair.

    The first layer is split, :math:`W[x; y] = W_x x + W_y y`, so it costs ``N + M`` products
    instead of ``N * M``; the remaining layers run on all ``N * M`` pairs, ``chunk_size`` rows
    at a time. With ``checkpoint=True`` each chunk's activations are recomputed in the backward
    pass, so training memory is bounded by one chunk too.

    Args:
        dim_x: features of ``x``.
        dim_y: features of ``y``.
        hidden: hidden widths (at least one layer).
        chunk_size: rows of the score matrix per chunk (``None``: all at once).
        checkpoint: recompute chunk activations in backward instead of storing them.
        activation: the non-linearity class.

    Example:
        >>> import torch
        >>> critic = ConcatCritic(2, 3, hidden=(16,), chunk_size=4)
        >>> critic(torch.randn(10, 2), torch.randn(7, 3)).shape
        torch.Size([10, 7])
    """

    def __init__(
        self,
        dim_x: int,
        dim_y: int,
        hidden: Sequence[int] = (256, 256),
        chunk_size: int | None = None,
        checkpoint: bool = False,
        activation: type[nn.Module] = nn.ReLU,
    ):
        super().__init__()
        hidden = tuple(hidden)
        if len(hidden) < 1:
            raise ValueError("ConcatCritic needs at least one hidden layer, got hidden=()")
        if chunk_size is not None:
            _check_positive_int(chunk_size, "chunk_size")
        _check_positive_int(dim_x, "dim_x")
        _check_positive_int(dim_y, "dim_y")
        self.dim_x, self.dim_y = dim_x, dim_y
        self.first_x = nn.Linear(dim_x, hidden[0])
        self.first_y = nn.Linear(dim_y, hidden[0], bias=False)
        self.rest = nn.Sequential(activation(), mlp(hidden[0], hidden[1:], 1, activation))
        self.chunk_size = chunk_size
        self.checkpoint = checkpoint

    def _block(self, hx: Tensor, hy: Tensor) -> Tensor:
        # hx (..., n, H), hy (..., M, H) -> (..., n, M)
        return self.rest(hx[..., :, None, :] + hy[..., None, :, :]).squeeze(-1)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        self._check_inputs(x, y)
        hx, hy = self.first_x(x), self.first_y(y)
        lead = torch.broadcast_shapes(hx.shape[:-2], hy.shape[:-2])
        hx = hx.expand(*lead, *hx.shape[-2:])
        hy = hy.expand(*lead, *hy.shape[-2:])
        n = hx.shape[-2]
        step = self.chunk_size or n
        blocks = []
        for start in range(0, n, step):  # loop over row chunks, not samples
            part = hx[..., start : start + step, :]
            if self.checkpoint and torch.is_grad_enabled():
                blocks.append(checkpoint(self._block, part, hy, use_reentrant=False))
            else:
                blocks.append(self._block(part, hy))
        return torch.cat(blocks, dim=-2) if len(blocks) > 1 else blocks[0]


_CRITICS: dict[str, type[Critic]] = {
    "separable": SeparableCritic,
    "bilinear": BilinearCritic,
    "quadratic": QuadraticCritic,
    "concat": ConcatCritic,
}


def available_critics() -> list[str]:
    """Names accepted by :func:`get_critic`.

    Example:
        >>> available_critics()
        ['separable', 'bilinear', 'quadratic', 'concat']
    """
    return list(_CRITICS)


def get_critic(name: str | nn.Module, dim_x: int, dim_y: int, **kwargs: Any) -> nn.Module:
    """Build a critic by name (or return a given module unchanged).

    Args:
        name: ``"separable"``, ``"bilinear"``, ``"quadratic"`` or ``"concat"``, or an
            ``nn.Module``.
        dim_x: features of ``x``.
        dim_y: features of ``y``.
        **kwargs: constructor arguments of the critic class.

    Example:
        >>> get_critic("bilinear", 3, 4)
        BilinearCritic()
    """
    if isinstance(name, nn.Module):
        return name
    if not isinstance(name, str) or name.lower() not in _CRITICS:
        raise ValueError(f"unknown critic {name!r}; choose one of {sorted(_CRITICS)}")
    return _CRITICS[name.lower()](dim_x, dim_y, **kwargs)
