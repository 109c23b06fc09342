r"""A mixture of diagonal Gaussians, :math:`q(y \mid x) = \sum_k \pi_k(x) q_k(y \mid x)`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from mitools.conditionals.base import (
    _diagonal_gaussian_all_pairs,
    _diagonal_gaussian_pairs,
    _MLPConditional,
)
from mitools.option_checks import check_int

__all__ = ["MixtureOfGaussians"]


class MixtureOfGaussians(_MLPConditional):
    r"""Mixture density network: a mixture of diagonal Gaussians with MLP parameters (Bishop 1994).

    .. math::

        \log q(y \mid x) = \log \sum_{k=1}^{K} \pi_k(x)\,
            \mathcal N\big(y;\, \mu_k(x), \operatorname{diag}\sigma_k(x)^2\big)

    with :math:`\pi(x) = \operatorname{softmax}(\cdot)` and
    :math:`\sigma_k = \operatorname{softplus}(\cdot) + \sigma_{\min}`, evaluated in log space
    (``logsumexp`` over components). Scoring all pairs costs :math:`K` times a diagonal
    Gaussian and forms an ``(..., K, N, M)`` tensor.

    Args:
        dim_x: features of ``x``.
        dim_y: features of ``y``.
        components: :math:`K \ge 1`.
        hidden: hidden widths of the parameter MLP.
        min_scale: :math:`\sigma_{\min} > 0`.

    Raises:
        ValueError: a dimension or hidden width that is not an int >= 1 (``components`` too), or a
            ``min_scale`` that is not a finite number > 0; the methods raise as
            :meth:`~mitools.conditionals.ConditionalDensity.log_prob` (inputs that do not
            fit the model).

    Example:
        >>> import torch
        >>> q = MixtureOfGaussians(3, 2, components=4, hidden=(16,))
        >>> q.log_prob(torch.randn(7, 2), torch.randn(5, 3)).shape
        torch.Size([5, 7])
        >>> q.sample(torch.randn(5, 3), generator=torch.Generator().manual_seed(0)).shape
        torch.Size([5, 2])
    """

    def __init__(
        self,
        dim_x: int,
        dim_y: int,
        components: int = 8,
        hidden: Sequence[int] = (256, 256),
        min_scale: float = 1e-3,
    ):
        dim_y = check_int("dim_y", dim_y)
        components = check_int("components", components)
        super().__init__(dim_x, dim_y, hidden, min_scale, components * (1 + 2 * dim_y))
        self.components = components

    def parameters_of(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Log-weights ``(..., N, K)``, means and scales ``(..., N, K, dim_y)``."""
        self._check(x, None, same_n=False)
        out = self.net(x)
        k, d = self.components, self.dim_y
        logits = out[..., :k]
        mean, raw = out[..., k:].unflatten(-1, (k, 2 * d)).chunk(2, dim=-1)
        return F.log_softmax(logits, dim=-1), mean, F.softplus(raw) + self.min_scale

    def _log_prob(self, y: Tensor, x: Tensor) -> Tensor:
        log_w, mean, scale = self.parameters_of(x)
        # components first: (..., K, N, D) against y (..., 1, M, D) -> (..., K, N, M)
        per_component = _diagonal_gaussian_all_pairs(
            y.unsqueeze(-3), mean.transpose(-3, -2), scale.transpose(-3, -2)
        )
        return torch.logsumexp(per_component + log_w.transpose(-1, -2).unsqueeze(-1), dim=-3)

    def _log_prob_pairs(self, y: Tensor, x: Tensor) -> Tensor:
        log_w, mean, scale = self.parameters_of(x)
        per_component = _diagonal_gaussian_pairs(y.unsqueeze(-2), mean, scale)  # (..., N, K)
        return torch.logsumexp(per_component + log_w, dim=-1)

    def _sample(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        log_w, mean, scale = self.parameters_of(x)
        k, d = self.components, self.dim_y
        choice = torch.multinomial(
            log_w.detach().exp().reshape(-1, k), 1, generator=generator
        ).reshape(*log_w.shape[:-1], 1, 1)
        pick = choice.expand(*choice.shape[:-2], 1, d)
        mu = torch.gather(mean, -2, pick).squeeze(-2)
        sigma = torch.gather(scale, -2, pick).squeeze(-2)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        return mu + sigma * eps

    def extra_repr(self) -> str:
        return (f"dim_x={self.dim_x}, dim_y={self.dim_y}, components={self.components}, "
                f"min_scale={self.min_scale}")
