r"""The default critic of :func:`~mitools.estimate.estimate_mi`: the Gaussian form plus a joint
residual that can follow dependence no quadratic or low-rank form can.

.. math::

    f(x, y) = f_{\text{quad}}(x, y) + v^\top \operatorname{relu}\big(g(x) + h(y)\big)

with :math:`f_{\text{quad}}` the :class:`~mitools.critics.QuadraticCritic` (started at the
Gaussian fit) and :math:`g, h` MLPs to :math:`\mathbb{R}^H`. The residual is a one-hidden-layer
network on the pair whose first layer is itself a network of each side: it is not separable,
so it can draw a thin band :math:`|x - y| < \epsilon` with a few units (a separable
:math:`g(x)^\top h(y)` needs a rank that grows as the band narrows), at a cost of
:math:`H` operations per pair on top of the per-sample encoders.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mitools.critics import QuadraticCritic
from mitools.critics.base import Critic, mlp

__all__: list[str] = []

#: pair-by-unit elements computed at once when scoring all pairs: bounds the memory, and
#: blocks of about 1 MB stay in cache (8x faster on a CPU than 16 MB blocks)
CHUNK_ELEMENTS = 1 << 18


class JointResidual(nn.Module):
    r""":math:`r(x, y) = v^\top \operatorname{relu}(g(x) + h(y))`, scored on all pairs.

    ``v`` starts at zero, so the residual starts at zero and still gets gradients."""

    def __init__(self, dim_x: int, dim_y: int, hidden: Sequence[int], width: int):
        super().__init__()
        self.g = mlp(dim_x, tuple(hidden), width)
        self.h = mlp(dim_y, tuple(hidden), width)
        self.v = nn.Parameter(torch.zeros(width))

    def pairs(self, gx: Tensor, hy: Tensor) -> Tensor:
        """The residual of matched pairs from their encodings ``gx, hy (P, H)``: ``(P,)``."""
        return torch.relu(gx + hy) @ self.v

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        gx, hy = self.g(x), self.h(y)  # (..., N, H), (..., M, H)
        n, m, width = gx.shape[-2], hy.shape[-2], gx.shape[-1]
        step = max(1, CHUNK_ELEMENTS // max(1, m * width))
        blocks = [  # blocks of rows, each vectorised over all its pairs
            torch.relu_(gx[..., i : i + step, None, :] + hy[..., None, :, :]) @ self.v
            for i in range(0, n, step)
        ]
        return blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=-2)


class QuadraticJointCritic(Critic):
    """:class:`~mitools.critics.QuadraticCritic` plus a :class:`JointResidual`.

    Args:
        dim_x: features of ``x``.
        dim_y: features of ``y``.
        hidden: hidden widths of the residual's encoders.
        width: units of the residual's pair layer.
    """

    def __init__(self, dim_x: int, dim_y: int, hidden: Sequence[int] = (64, 64),
                 width: int = 32):
        super().__init__()
        self.dim_x, self.dim_y = dim_x, dim_y
        self.quadratic = QuadraticCritic(dim_x, dim_y)
        self.residual = JointResidual(dim_x, dim_y, hidden, width)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        self._check_inputs(x, y)
        return self.quadratic(x, y) + self.residual(x, y)

    def score_pairs(self, x: Tensor, y: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
        """Scores of the pairs ``(x[rows[k]], y[cols[k]])``, ``(P,)``, without scoring all
        ``N * M`` pairs: each sample is encoded once, and the quadratic form is the critic's
        own forward on one pair at a time (leading dimensions)."""
        quadratic = self.quadratic(x[rows][:, None, :], y[cols][:, None, :])[:, 0, 0]
        gx, hy = self.residual.g(x), self.residual.h(y)
        return quadratic + self.residual.pairs(gx[rows], hy[cols])

    @torch.no_grad()
    def init_gaussian_(self, x: Tensor, y: Tensor, ridge: float = 1e-6) -> QuadraticJointCritic:
        """Start at the Gaussian fit (:meth:`QuadraticCritic.init_gaussian_`), residual zero."""
        self.quadratic.init_gaussian_(x, y, ridge)
        self.residual.v.zero_()
        return self
