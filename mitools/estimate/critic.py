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

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from mitools.critics import MarginalPotentials, QuadraticCritic, get_critic
from mitools.critics.base import Critic, mlp
from mitools.estimators import Estimator
from mitools.pair_blocks import rows_per_block

__all__: list[str] = []

class JointResidual(nn.Module):
    r""":math:`r(x, y) = v^\top \operatorname{relu}(g(x) + h(y))`, scored on all pairs.

    ``v`` starts at zero, so the residual starts at zero and still gets gradients."""

    def __init__(self, dim_x: int, dim_y: int, hidden: Sequence[int], width: int):
        super().__init__()
        self.g = mlp(dim_x, tuple(hidden), width)
        self.h = mlp(dim_y, tuple(hidden), width)
        self.v = nn.Parameter(torch.zeros(width))

    def pairs(self, gx: Tensor, hy: Tensor) -> Tensor:
        """The residual of matched pairs from their encodings ``gx, hy (..., H)`` (broadcast
        against each other): ``(...)``."""
        # in place on the sum, a fresh tensor: relu's backward needs only its output
        return torch.relu_(gx + hy) @ self.v.to(torch.promote_types(gx.dtype, hy.dtype))

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        gx, hy = self.g(x), self.h(y)  # (..., N, H), (..., M, H)
        n, m, width = gx.shape[-2], hy.shape[-2], gx.shape[-1]
        if not torch.is_grad_enabled() and not self.v.any():
            # v = 0 (the Gaussian start, kept when training did not beat it): the residual is
            # exactly zero, and evaluating it on all pairs would cost N * M * H operations
            dtype = torch.promote_types(gx.dtype, hy.dtype)
            return gx.new_zeros((*torch.broadcast_shapes(gx.shape[:-2], hy.shape[:-2]), n, m),
                                dtype=dtype)
        step = rows_per_block(m, width)
        blocks = [  # blocks of rows, each vectorised over all its pairs
            self.pairs(gx[..., i : i + step, None, :], hy[..., None, :, :])
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

    def score_shifted(self, x: Tensor, y: Tensor, shifts: Tensor) -> Tensor:
        """Scores of the matched pairs and of ``len(shifts)`` shifted pairings, ``(1 + S, N)``:
        row 0 holds ``f(x[i], y[i])``, row ``1 + k`` holds ``f(x[i], y[(i + shifts[k]) % N])``,
        without scoring all ``N * N`` pairs.

        Each sample is encoded once, as the quadratic critic's factors (:meth:`~mitools.critics.
        QuadraticCritic.factorise`) beside the residual's encoding; only the y side's encodings
        are gathered, and the x side is broadcast against them (gathering both sides pair by
        pair cost more, in the backward's scatter, than the scores themselves)."""
        self._check_inputs(x, y, broadcast=False)
        if x.dim() != 2 or x.shape[0] != y.shape[0]:
            raise ValueError(f"score_shifted needs paired samples x (N, {self.dim_x}) and y "
                             f"(N, {self.dim_y}), got {tuple(x.shape)} and {tuple(y.shape)}")
        u, v = self.quadratic.factorise(x, y)  # (N, K) each, float32 or wider
        gx, hy = self.residual.g(x), self.residual.h(y)  # (N, H)
        dtype = torch.promote_types(u.dtype, gx.dtype)  # as forward: the wider of the two
        u, v, gx, hy = u.to(dtype), v.to(dtype), gx.to(dtype), hy.to(dtype)
        n = x.shape[0]
        offsets = torch.cat([shifts.new_zeros(1), shifts]).to(x.device)
        partner = ((torch.arange(n, device=x.device) + offsets[:, None]) % n).reshape(-1)

        def shifted(t: Tensor) -> Tensor:  # (N, C) -> (1 + S, N, C)
            # index_select: its backward (index_add) is deterministic on a multithreaded CPU,
            # where that of t[index] (index_put with accumulation) varies from run to run;
            # each side's factors on their own, since slicing one gathered tensor costs a
            # zero-filled copy of all of it per slice in the backward
            return t.index_select(0, partner).view(-1, n, t.shape[-1])

        return (u * shifted(v)).sum(-1) + self.residual.pairs(gx, shifted(hy))

    @torch.no_grad()
    def init_gaussian_(self, x: Tensor, y: Tensor, ridge: float = 1e-6,
                       offset: float = 0.0) -> QuadraticJointCritic:
        """Start at the Gaussian fit plus ``offset`` (:meth:`QuadraticCritic.init_gaussian_`),
        residual zero."""
        self.quadratic.init_gaussian_(x, y, ridge, offset)
        self.residual.v.zero_()
        return self


def quadratic_residual(residual: str | None, hidden: Sequence[int]) -> str | None:
    """The residual the quadratic critic gets: ``residual`` (``"joint"`` or
    ``"separable"``), or ``None`` (the pure Gaussian form) when it is ``None`` or ``hidden``
    is ``()``, which leaves the residual's networks no layers."""
    return residual if len(hidden) else None


def check_residual_option(critic: str | nn.Module, residual: str | None,
                          hidden: Sequence[int]) -> None:
    """Refuse a ``residual`` that the critic :func:`build_critic` builds would ignore: a
    residual named for a critic other than ``"quadratic"`` (a module keeps its own), or
    ``"joint"`` / ``"separable"`` with ``hidden=()``, which leaves the residual no layers
    (:func:`quadratic_residual`).

    Args:
        critic: the checked ``critic`` option (a lower-case name or a module).
        residual: the ``residual`` option as given (``"auto"``, ``"joint"``, ``"separable"``
            or ``None``).
        hidden: the ``hidden`` option.

    Raises:
        ValueError: naming the residual, the critic or ``hidden=()``, and what to pass.
    """
    if residual not in ("auto", None) and critic != "quadratic":
        raise ValueError(
            f"residual={residual!r} chooses what critic='quadratic' adds to its Gaussian "
            "form; " + (f"critic={critic!r} has no residual" if isinstance(critic, str) else
                        "a critic given as a module keeps its own") +
            ": leave residual='auto'")
    if residual in ("joint", "separable") and quadratic_residual(residual, hidden) is None:
        raise ValueError(f"residual={residual!r} needs hidden layers for its networks, and "
                         "hidden=() gives the pure quadratic form: pass residual=None "
                         "for that, or hidden widths, e.g. hidden=(64, 64)")


def build_critic(critic: str | nn.Module, dim_x: int, dim_y: int, hidden: Sequence[int],
                 embed_dim: int, potentials: bool, residual: str | None = "joint"
                 ) -> nn.Module:
    """The critic named by ``critic`` (a module is deep-copied); for ``"quadratic"``,
    ``residual`` chooses the joint (:class:`QuadraticJointCritic`)
    or separable (:class:`~mitools.critics.QuadraticCritic`) residual, or none."""
    if isinstance(critic, nn.Module):
        return copy.deepcopy(critic)
    name = critic.lower()
    kwargs: dict[str, Any] = {}
    if name == "quadratic":
        residual = quadratic_residual(residual, hidden)
        if residual is None:
            return QuadraticCritic(dim_x, dim_y)
        if residual == "joint":
            return QuadraticJointCritic(dim_x, dim_y, tuple(hidden), embed_dim)
        kwargs["hidden"] = tuple(hidden)
    if name in ("separable", "concat"):
        kwargs["hidden"] = tuple(hidden)
    if name in ("separable", "quadratic"):
        kwargs["embed_dim"] = embed_dim
    model: nn.Module = get_critic(critic, dim_x, dim_y, **kwargs)
    if potentials and not isinstance(model, QuadraticCritic):
        model = MarginalPotentials(model, dim_x, dim_y)
    return model


def check_shaping_options(critic: str | nn.Module, residual: str | None, bound: Estimator,
                          hidden: Sequence[int], embed_dim: int, negatives: int,
                          potentials: bool = True) -> None:
    """Refuse ``hidden``, ``embed_dim`` or ``negatives`` where the critic that
    :func:`build_critic` builds would not use them, at values other than their defaults
    (``mitools.estimate.options.DEFAULT_HIDDEN``, ``DEFAULT_EMBED_DIM``,
    ``DEFAULT_NEGATIVES``): a value given and silently ignored reads as a setting that was
    tried. ``hidden=()`` is also taken where a named critic has no networks (it asks for
    none); a module has its own.

    ``hidden`` shapes the separable and concat critics' networks and the quadratic critic's
    residual; ``embed_dim`` the separable critic's embedding and the quadratic critic's
    residual; ``negatives`` the sampled negative pairs of the joint residual
    (:class:`QuadraticJointCritic`, or a module with ``score_shifted``) under DV, MINE or
    NWJ (``mitools.estimate.evaluation.SAMPLED_NEGATIVES_BOUNDS``). A critic given as a
    module keeps its own widths. ``potentials=False`` cannot take the quadratic critic's own
    marginal terms :math:`a(x) + b(y)` away, so it is refused with that critic.

    Args:
        critic: the checked ``critic`` option (a lower-case name or a module).
        residual: the quadratic critic's residual, resolved (``"joint"``, ``"separable"`` or
            ``None``); ``None`` for other critics.
        bound: the estimator the folds train (a probe of it).
        hidden, embed_dim, negatives, potentials: the options.

    Raises:
        ValueError: naming each ignored option with its value, and why it is ignored.
    """
    from mitools.estimate.evaluation import _summarisable
    from mitools.estimate.options import DEFAULT_EMBED_DIM, DEFAULT_HIDDEN, DEFAULT_NEGATIVES

    built_residual = quadratic_residual(residual, hidden) if critic == "quadratic" else None
    networks = not isinstance(critic, nn.Module) and (
        critic in ("separable", "concat") or built_residual is not None)
    if isinstance(critic, nn.Module):
        what = (f"critic={type(critic).__name__}(...) is a module that keeps its own "
                "networks: build it with the widths you want, or pass a name")
    elif critic == "bilinear":
        what = "critic='bilinear' is x^T W y, with no hidden layers or embedding"
    elif critic == "concat":
        what = "critic='concat' has no embedding: its network scores each pair [x_i, y_j]"
    else:
        what = (f"{'residual=None' if residual is None else 'hidden=()'} leaves "
                "critic='quadratic' the Gaussian form, with no networks")
    ignored = []
    asks_for_none = not len(hidden) and not isinstance(critic, nn.Module)
    if not networks and tuple(hidden) != DEFAULT_HIDDEN and not asks_for_none:
        ignored.append(f"hidden={tuple(hidden)!r}")
    if not (networks and critic != "concat") and embed_dim != DEFAULT_EMBED_DIM:
        ignored.append(f"embed_dim={embed_dim!r}")
    if ignored:
        raise ValueError(f"{' and '.join(ignored)} would shape nothing: {what}")
    if not potentials and critic == "quadratic":
        raise ValueError("potentials=False would change nothing: critic='quadratic' has its "
                         "own marginal terms a(x) + b(y), part of its Gaussian form; "
                         "potentials= adds them to the separable, bilinear or concat critic")
    sampled = (hasattr(critic, "score_shifted") if isinstance(critic, nn.Module)
               else built_residual == "joint")
    if negatives != DEFAULT_NEGATIVES and not (sampled and _summarisable(bound)):
        raise ValueError(
            f"negatives={negatives!r} would change nothing: it sets the sampled negative pairs "
            "of the quadratic critic's joint residual under DV, MINE or NWJ, and "
            f"{'this critic' if isinstance(critic, nn.Module) else f'critic={critic!r}'}"
            f"{'' if critic != 'quadratic' else f' with residual={residual!r}'} under "
            f"bound={getattr(bound, 'name', type(bound).__name__)!r} scores all pairs of each "
            "batch")
