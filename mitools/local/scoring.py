"""Scoring: how a critic is evaluated on blocks of position pairs.

The critic's declared capability decides: a *separable* critic (``critic.separable``, and
``critic=None``, the plain dot product) is asked once for its factors ``u = φ(x)`` per
``x`` position and ``v = ψ(y)`` per ``y`` position (:meth:`~mitools.critics.Critic.factorise`),
and a block's scores are one batched matmul of factors; the fused paths never form the scores
at all. Any other critic is called as a black box on each block. Scores are formed in float32
or higher whatever the features' dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from mitools.critics import dot_scores

__all__ = ["Scorer"]


class Scorer:
    """A critic seen through its capabilities.

    Args:
        critic: an ``nn.Module`` or callable ``f(x (..., N, Cx), y (..., M, Cy)) -> (..., N, M)``,
            or ``None`` for the dot product :math:`x^\\top y`.
    """

    def __init__(self, critic: Callable[[Tensor, Tensor], Tensor] | None):
        self.critic = critic
        self.separable = critic is None or bool(getattr(critic, "separable", False))

    @property
    def name(self) -> str:
        """The critic's class name (``"critic=None"`` for the dot product)."""
        return "critic=None" if self.critic is None else type(self.critic).__name__

    def channels(self) -> tuple[int | None, int | None]:
        """The channels the critic declares for ``x`` and ``y`` (``None``: undeclared)."""
        dims = [getattr(self.critic, f"dim_{side}", None) for side in ("x", "y")]
        return tuple(d if isinstance(d, int) else None for d in dims)  # type: ignore[return-value]

    def check_dot_product(self, cx: int, cy: int, patterns: tuple[str, str], shapes: Any) -> None:
        """``critic=None`` needs as many channels on both sides."""
        if self.critic is None and cx != cy:
            raise ValueError(
                f"critic=None scores the dot product x·y, which needs as many channels on both "
                f"sides; got Cx={cx} and Cy={cy} (x of shape {tuple(shapes[0])} with x_pattern "
                f"{patterns[0]!r}, y of shape {tuple(shapes[1])} with y_pattern "
                f"{patterns[1]!r}); pass a critic"
            )

    def factors(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """The factors ``u (P, N, E)``, ``v (Q, M, E)`` of position-major features."""
        if self.critic is None:
            return x, y
        return self.critic.factorise(x, y)  # type: ignore[union-attr]

    def score(self, x: Tensor, y: Tensor) -> Tensor:
        """Scores ``(k, N, M)`` of a block: ``x (k|1, N, .)`` against ``y (k|1, M, .)``, given as
        factors for a separable critic, as features otherwise."""
        if self.separable:
            return dot_scores(x, y)
        assert self.critic is not None
        if x.shape[0] == 1 and y.shape[0] == 1:  # one problem: the critic's plain 2-D call
            scores = self.critic(x[0], y[0])[None]
        else:
            scores = self.critic(x, y)
        return scores.to(torch.promote_types(scores.dtype, torch.float32))

    def score_pairs(self, x: Tensor, y: Tensor) -> Tensor:
        """Elementwise pairs ``x (k, N, .)``, ``y (k, N, .)`` -> ``(k, N)``."""
        if self.separable:
            dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), torch.float32)
            return (x.to(dtype) * y.to(dtype)).sum(-1)
        return self.score(x[..., None, :], y[..., None, :])[..., 0, 0]
