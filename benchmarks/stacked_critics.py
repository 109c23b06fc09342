"""Critics and estimators stacked along a leading model axis, for the staircase benchmark.

``models`` independent critics evaluated with one batched matmul per layer: model ``m`` of a
stacked critic computes exactly what an unstacked critic with model ``m``'s weights would
(``tests/test_staircase_stacking.py`` checks it against a per-model loop). Since Adam is
elementwise, training the stack trains each model as if it were alone.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor, nn

from mitools.estimators import Estimator


class StackedLinear(nn.Module):
    """``models`` independent linear layers applied at once: ``(M, n, i) -> (M, n, o)``.

    Initialised like ``nn.Linear`` (uniform in ``±1/sqrt(i)``) independently per model.
    """

    def __init__(self, models: int, dim_in: int, dim_out: int, bias: bool = True):
        super().__init__()
        bound = 1.0 / math.sqrt(dim_in)
        self.weight = nn.Parameter(torch.empty(models, dim_in, dim_out).uniform_(-bound, bound))
        self.bias = (
            nn.Parameter(torch.empty(models, 1, dim_out).uniform_(-bound, bound)) if bias else None
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:  # shared input (n, i): one einsum for all models
            out = torch.einsum("ni,mio->mno", x, self.weight)
        else:
            out = torch.bmm(x, self.weight)
        return out if self.bias is None else out + self.bias


class StackedMLP(nn.Module):
    """``models`` MLPs ``Linear -> ReLU -> ... -> Linear`` evaluated with batched matmuls."""

    def __init__(self, models: int, dim_in: int, hidden: tuple[int, ...], dim_out: int):
        super().__init__()
        widths = (dim_in, *hidden, dim_out)
        self.layers = nn.ModuleList(
            StackedLinear(models, a, b) for a, b in itertools.pairwise(widths)
        )

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x


class StackedSeparableCritic(nn.Module):
    """``f_m(x, y) = g_m(x) · h_m(y)`` for every model m: scores ``(M, N, N)``."""

    def __init__(self, models: int, dim_x: int, dim_y: int, hidden=(256, 256), embed_dim=32):
        super().__init__()
        self.g = StackedMLP(models, dim_x, tuple(hidden), embed_dim)
        self.h = StackedMLP(models, dim_y, tuple(hidden), embed_dim)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return torch.bmm(self.g(x), self.h(y).transpose(1, 2))


class StackedConcatCritic(nn.Module):
    """``f_m(x, y) = MLP_m([x, y])`` on all pairs; the first layer is split into x and y parts."""

    def __init__(self, models: int, dim_x: int, dim_y: int, hidden=(256, 256)):
        super().__init__()
        hidden = tuple(hidden)
        self.first_x = StackedLinear(models, dim_x, hidden[0])
        self.first_y = StackedLinear(models, dim_y, hidden[0], bias=False)
        self.rest = StackedMLP(models, hidden[0], hidden[1:], 1)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        hx, hy = self.first_x(x), self.first_y(y)  # (M, N, H)
        m, n, h = hx.shape
        pairs = torch.relu(hx[:, :, None, :] + hy[:, None, :, :]).reshape(m, n * n, h)
        return self.rest(pairs).reshape(m, n, n)


def make_critic(kind: str, models: int, dim: int) -> nn.Module:
    """``models`` stacked critics of ``kind`` ('separable' or 'concat') on ``dim``-d x and y."""
    if kind == "separable":
        return StackedSeparableCritic(models, dim, dim)
    if kind == "concat":
        return StackedConcatCritic(models, dim, dim)
    raise ValueError(f"unknown critic {kind!r}; choose 'separable' or 'concat'")


class StackedEstimators(Estimator):
    """One estimator per model of stacked scores: ``(B, K, K) -> (B,)``."""

    def __init__(self, estimators: list[Estimator]):
        super().__init__()
        self.estimators = nn.ModuleList(estimators)
        self.needs_targets = any(getattr(e, "needs_targets", False) for e in estimators)

    def forward(self, scores: Tensor, *, anchors: Tensor | None = None,
                targets: Tensor | None = None, **_: object) -> Tensor:
        return torch.stack([
            est(scores[m], anchors=anchors,
                **({"targets": targets} if getattr(est, "needs_targets", False) else {}))
            for m, est in enumerate(self.estimators)
        ])

