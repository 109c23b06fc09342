"""Learned marginal potentials added to any critic: :math:`f(x, y) + a(x) + b(y)`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, cast

import torch
from torch import Tensor, nn

from mitools.critics.base import _check_widths, mlp, promoted_linear
from mitools.option_checks import check_int


class _Separable(Protocol):
    def factorise(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]: ...

__all__ = ["MarginalPotentials"]


class MarginalPotentials(nn.Module):
    r"""Adds learned marginal potentials to a critic: :math:`f(x, y) + a(x) + b(y)`.

    The pointwise MI :math:`\log p(y|x) - \log p(y)` of many distributions (all Gaussian
    ones) is a low-rank interaction plus terms in :math:`x` alone and :math:`y` alone.
    Bounds like DV, NWJ and JS are not invariant to those terms, so a critic that must learn
    them inside its embeddings wastes capacity; two small scalar functions learn them
    directly. Each potential is a small MLP minus a learned quadratic form,

    .. math:: a(x) = \mathrm{MLP}_a(x) - \lVert P_a x \rVert^2,

    since ReLU networks extrapolate linearly while log-densities decay at least
    quadratically in the tails (where held-out negatives that the training set never showed
    must still get low scores). A separable ``critic`` stays separable.

    Args:
        critic: the interaction critic, ``(..., N, Dx), (..., M, Dy) -> (..., N, M)``.
        dim_x: features of ``x``.
        dim_y: features of ``y``.
        hidden: hidden widths of the potential networks :math:`a` and :math:`b`.

    Raises:
        TypeError: a ``critic`` that is not callable.
        ValueError: ``dim_x`` or ``dim_y`` differs from the wrapped critic's.

    Example:
        >>> import torch
        >>> from mitools.critics import SeparableCritic
        >>> f = MarginalPotentials(SeparableCritic(3, 2, hidden=()), 3, 2)
        >>> f(torch.randn(5, 3), torch.randn(4, 2)).shape
        torch.Size([5, 4])
    """

    def __init__(self, critic: nn.Module, dim_x: int, dim_y: int, hidden: Sequence[int] = (64,)):
        super().__init__()
        if not callable(critic):  # else the first call failed: "'int' object is not callable"
            raise TypeError(
                f"MarginalPotentials: critic must be a critic scoring x (..., N, Dx) against "
                f"y (..., M, Dy) (an nn.Module), got {type(critic).__name__}"
            )
        self.critic = critic
        dim_x, dim_y = check_int("dim_x", dim_x), check_int("dim_y", dim_y)
        for arg, want in (("dim_x", dim_x), ("dim_y", dim_y)):
            has = getattr(critic, arg, None)
            if isinstance(has, int) and has != want:  # else the first call fails, naming it
                raise ValueError(
                    f"MarginalPotentials: {arg}={want} but the wrapped "
                    f"{type(critic).__name__} was built with {arg}={has}"
                )
        self.dim_x, self.dim_y = dim_x, dim_y
        hidden = _check_widths(hidden)
        self.a = mlp(dim_x, hidden, 1)
        self.b = mlp(dim_y, hidden, 1)
        self.quad_x = nn.Linear(dim_x, dim_x, bias=False)
        self.quad_y = nn.Linear(dim_y, dim_y, bias=False)
        # Small, not zero: the gradient of ||P x||^2 vanishes at P = 0.
        nn.init.normal_(self.quad_x.weight, std=0.05)
        nn.init.normal_(self.quad_y.weight, std=0.05)

    def potentials(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """The potentials :math:`a(x)` ``(..., N)`` and :math:`b(y)` ``(..., M)``."""
        a = self.a(x).squeeze(-1) - promoted_linear(self.quad_x, x).square().sum(-1)
        b = self.b(y).squeeze(-1) - promoted_linear(self.quad_y, y).square().sum(-1)
        return a, b

    @property
    def separable(self) -> bool:
        """Separable when the wrapped critic is (see :meth:`factorise`)."""
        return bool(getattr(self.critic, "separable", False))

    def factorise(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """The wrapped critic's factors augmented with the potentials: ``[u, a(x), 1]`` and
        ``[v, 1, b(y)]`` (only when the wrapped critic is separable)."""
        if not self.separable:
            raise TypeError(
                f"MarginalPotentials: the wrapped {type(self.critic).__name__} is not separable"
            )
        # any separable module (a Critic or not); nn.Module's stub types the methods it does
        # not declare as Tensor | Module (its __getattr__)
        u, v = cast(_Separable, self.critic).factorise(x, y)
        a, b = self.potentials(x, y)
        u = torch.cat([u, a[..., None].to(u.dtype), u.new_ones((*u.shape[:-1], 1))], dim=-1)
        v = torch.cat([v, v.new_ones((*v.shape[:-1], 1)), b[..., None].to(v.dtype)], dim=-1)
        return u, v

    if TYPE_CHECKING:  # nn.Module types its __call__ as returning Any
        def __call__(self, x: Tensor, y: Tensor) -> Tensor: ...

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        scores = self.critic(x, y)  # checks the inputs first
        a, b = self.potentials(x, y)
        return scores + a[..., :, None].to(scores.dtype) + b[..., None, :].to(scores.dtype)
