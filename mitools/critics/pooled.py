r"""Pooled critics: score a sample's whole grid of positions against a vector, for any critic.

A *position critic* :math:`f_0` scores single positions (an image cell, a token) against a
vector: ``f0(x (..., N, Dx), y (..., M, Dy)) -> (..., N, M)``, the contract of every mitools
critic. The critics here lift it to samples that are **grids of positions**, so that any bound
can be applied to one score per (sample, vector) pair:

* :class:`MaxPoolCritic`: the pair is scored by its best position (a multiple-instance
  critic; Liao, Moyer et al. 2021 train "the cell with the highest MI");
* :class:`AttentionPoolCritic`: the vector attends over the positions with a temperature and
  the attended feature is scored (GLoRIA's local alignment, Huang et al. ICCV 2021).

Shape contract (both): ``x (..., N, P, Dx)`` holds N samples of P positions each (flatten a
grid first, e.g. ``cells.flatten(-3, -2)`` for ``(B, H, W, D)`` cells), ``y (..., M, Dy)`` one
vector per column, and the optional ``mask (..., N, P)`` marks real positions (``True``);
the leading dimensions ``...`` of all three broadcast, by torch's rules (a ``(N, P)`` mask
serves every problem of ``x (K, N, P, Dx)``; a ``(K, N, P)`` mask gives ``K`` problems of one
``x (N, P, Dx)``), and the mask's ``N`` or ``P`` may be 1 (one mask for every sample, or for
every position), never more samples or positions than ``x`` has. The result is a score
tensor ``(..., N, M)`` for any function of :mod:`mitools.bounds` or estimator of
:mod:`mitools.estimators`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mitools.critics.base import Critic
from mitools.option_checks import check_number

__all__ = ["AttentionPoolCritic", "MaxPoolCritic"]


class _PooledCritic(Critic):
    """Shared checks and the per-position scores of a base critic on a grid of positions."""

    def __init__(self, base: nn.Module) -> None:
        super().__init__()
        if not isinstance(base, nn.Module):
            raise TypeError(
                f"{type(self).__name__}: base must be a critic (an nn.Module scoring "
                f"x (..., N, Dx) against y (..., M, Dy)), got {type(base).__name__}"
            )
        self.base = base
        self.dim_x = getattr(base, "dim_x", None)  # type: ignore[assignment]
        self.dim_y = getattr(base, "dim_y", None)  # type: ignore[assignment]

    def _check_grid(self, x: Tensor, y: Tensor, mask: Tensor | None) -> Tensor | None:
        """Check the inputs; return the mask broadcast to ``(*lead, N, P)`` (a view), ``lead``
        the broadcast of the leading dimensions of ``x``, ``y`` and ``mask``."""
        name = type(self).__name__
        for arg, t in (("x", x), ("y", y)):
            if not isinstance(t, Tensor):
                raise TypeError(f"{name}: {arg} must be a torch.Tensor, got {type(t).__name__}")
            if not t.is_floating_point():
                raise TypeError(f"{name}: {arg} must be floating point, got dtype {t.dtype}")
        if x.dim() < 3:
            raise ValueError(
                f"{name}: x must have shape (..., N, P, Dx): N samples of P positions "
                f"(flatten the grid first), got {tuple(x.shape)}"
            )
        if y.dim() < 2:
            raise ValueError(f"{name}: y must have shape (..., M, Dy), got {tuple(y.shape)}")
        if x.shape[-2] < 1:
            raise ValueError(f"{name}: x has no positions (shape {tuple(x.shape)})")
        for arg, t, dim, axes in (("x", x, self.dim_x, "(..., N, P, Dx)"),
                                  ("y", y, self.dim_y, "(..., M, Dy)")):
            if dim is not None and t.shape[-1] != dim:
                raise ValueError(
                    f"{name}: {arg} {axes} has {t.shape[-1]} features (shape {tuple(t.shape)}) "
                    f"but the base critic was built with dim_{arg}={dim}"
                )
        if mask is None:
            return None
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
            raise TypeError(f"{name}: mask must be a bool tensor (..., N, P), got {got}")
        if mask.device != x.device:
            raise ValueError(
                f"{name}: mask is on {mask.device} but x is on {x.device}; move the mask "
                f"(mask.to({str(x.device)!r}))")
        given = tuple(mask.shape)
        mask = mask.reshape((1,) * (2 - mask.dim()) + given)  # torch's rule: (P,) is (1, P)
        n, p = x.shape[-3], x.shape[-2]
        lead = None
        if mask.shape[-2] in (1, n) and mask.shape[-1] in (1, p):
            try:  # the leading dims broadcast as torch's rules say (y's too: one result)
                lead = torch.broadcast_shapes(x.shape[:-3], y.shape[:-2], mask.shape[:-2])
            except RuntimeError:
                pass
        if lead is None:
            raise ValueError(
                f"{name}: mask (..., N, P) must broadcast with x.shape[:-1] = "
                f"{tuple(x.shape[:-1])} (True = a real position), got {given}: its "
                f"last two dims must be N = {n} and P = {p} (or 1), and its leading dims "
                f"{tuple(mask.shape[:-2])} must broadcast with x's {tuple(x.shape[:-3])} and "
                f"y's {tuple(y.shape[:-2])} (x {tuple(x.shape)}, y {tuple(y.shape)})"
            )
        if not bool(mask.any(dim=-1).all()):
            raise ValueError(f"{name}: mask leaves a sample with no real position")
        return mask.expand(*lead, n, p)

    @staticmethod
    def _without_padding(x: Tensor, mask: Tensor | None) -> Tensor:
        """``x`` with its masked positions set to 0, so that whatever padding holds (NaN, inf)
        reaches neither a value nor a gradient (``0 * NaN`` is NaN)."""
        return x if mask is None else x.masked_fill(~mask.unsqueeze(-1), 0.0)

    def position_scores(self, x: Tensor, y: Tensor, mask: Tensor | None = None) -> Tensor:
        """The base critic on every (sample, position, vector): ``(..., N, M, P)``.

        Masked positions (``mask`` False) score ``-inf``, whatever values they hold.
        """
        mask = self._check_grid(x, y, mask)
        x = self._without_padding(x, mask)
        s = self.base(x.movedim(-2, -3), y.unsqueeze(-3))  # (..., P, N, M)
        if mask is not None:
            s = s.masked_fill(~mask.movedim(-1, -2).unsqueeze(-1), float("-inf"))
        return s.movedim(-3, -1)


class MaxPoolCritic(_PooledCritic):
    r"""Score a sample's positions against a vector by the best position.

    .. math::

        f(X_i, y_j) = \max_{p} f_0(x_{i,p}, y_j)

    The vector only has to match the position that shows what it describes (a sentence the
    cell with its finding). Gradients reach the best position of each pair. Cost: the base
    critic on ``N * P`` rows against ``M`` columns; memory ``N * M * P`` scores.

    Args:
        base: the position critic :math:`f_0`, any module scoring ``x (..., N, Dx)`` against
            ``y (..., M, Dy)`` (a mitools critic, or your own).

    Shapes:
        ``x (..., N, P, Dx)``, ``y (..., M, Dy)``, ``mask (..., N, P)`` bool or None
        -> ``(..., N, M)``; the leading dimensions of the three broadcast (the mask's ``N``
        and ``P`` may be 1).

    Raises:
        TypeError: a ``base`` that is not an ``nn.Module``; non-tensor or non-floating inputs,
            a non-bool mask.
        ValueError: a mask on another device than ``x``, ``x`` without a position axis,
            features that do not match the base critic's ``dim_x`` / ``dim_y``, a mask that
            does not broadcast with ``x.shape[:-1]`` (both shapes named), or a sample whose
            positions are all masked.

    Example:
        >>> import torch
        >>> from mitools.critics import BilinearCritic
        >>> critic = MaxPoolCritic(BilinearCritic(3, 2))
        >>> cells = torch.randn(5, 4, 3)             # 5 images of 4 cells, 3 features each
        >>> critic(cells, torch.randn(6, 2)).shape   # one score per (image, sentence)
        torch.Size([5, 6])
    """

    def forward(self, x: Tensor, y: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.position_scores(x, y, mask).amax(dim=-1)


class AttentionPoolCritic(_PooledCritic):
    r"""The vector attends over a sample's positions; the attended feature is scored.

    .. math::

        a_{ijp} = \operatorname{softmax}_p\big(g(x_{i,p}, y_j) / \tau\big), \qquad
        f(X_i, y_j) = f_0\Big(\sum_p a_{ijp}\, x_{i,p},\; y_j\Big)

    GLoRIA's local alignment (Huang et al., ICCV 2021): each word (here: each column vector)
    attends over the image regions and is compared with its own attended region vector. The
    attention scores :math:`g` are the base critic's own unless ``attention`` is given. As
    :math:`\tau \to 0` the attended feature is the best position's (:class:`MaxPoolCritic`
    when :math:`g = f_0`); as :math:`\tau \to \infty` it is the mean over positions (a global
    critic). With a separable critic whose encoder is affine, the score equals the
    attention-weighted mean of the position scores.

    Cost: the attention critic on ``N * P`` rows against ``M`` columns and the base critic on
    ``N * M`` attended features; memory ``N * M * (P + Dx)``.

    Args:
        base: the critic :math:`f_0` that scores an attended feature against its vector.
        temperature: :math:`\tau > 0`, in the units of the attention scores.
        attention: the critic :math:`g` of the attention scores (default: ``base``).

    Shapes:
        ``x (..., N, P, Dx)``, ``y (..., M, Dy)``, ``mask (..., N, P)`` bool or None
        -> ``(..., N, M)``; the leading dimensions of the three broadcast (the mask's ``N``
        and ``P`` may be 1).

    Raises:
        TypeError: a ``base`` or ``attention`` that is not an ``nn.Module``; non-tensor or
            non-floating inputs, a non-bool mask.
        ValueError: a non-positive temperature, a mask on another device than ``x``, ``x``
            without a position axis, features that do not match the base critic's ``dim_x``
            / ``dim_y``, a mask that does not broadcast with ``x.shape[:-1]`` (both shapes
            named), or a sample whose positions are all masked.

    Example:
        >>> import torch
        >>> from mitools.critics import SeparableCritic
        >>> critic = AttentionPoolCritic(SeparableCritic(3, 2, hidden=(8,)), temperature=0.5)
        >>> cells, text = torch.randn(5, 4, 3), torch.randn(6, 2)
        >>> critic(cells, text).shape, critic.weights(cells, text).shape
        (torch.Size([5, 6]), torch.Size([5, 6, 4]))
    """

    def __init__(self, base: nn.Module, temperature: float = 1.0,
                 attention: nn.Module | None = None) -> None:
        super().__init__(base)
        temperature = check_number("temperature", temperature, 0)
        if attention is not None and not isinstance(attention, nn.Module):
            raise TypeError(
                f"AttentionPoolCritic: attention must be a critic module or None, got "
                f"{type(attention).__name__}"
            )
        self.temperature = float(temperature)
        self.attention = attention

    def weights(self, x: Tensor, y: Tensor, mask: Tensor | None = None) -> Tensor:
        """Attention of every column vector over every sample's positions: ``(..., N, M, P)``.

        Each ``[..., i, j, :]`` sums to one over the real positions.
        """
        if self.attention is None:
            logits = self.position_scores(x, y, mask)
        else:
            mask = self._check_grid(x, y, mask)
            x = self._without_padding(x, mask)
            logits = self.attention(x.movedim(-2, -3), y.unsqueeze(-3))  # (..., P, N, M)
            if mask is not None:
                logits = logits.masked_fill(~mask.movedim(-1, -2).unsqueeze(-1), float("-inf"))
            logits = logits.movedim(-3, -1)
        return (logits / self.temperature).softmax(dim=-1)

    def forward(self, x: Tensor, y: Tensor, mask: Tensor | None = None) -> Tensor:
        w = self.weights(x, y, mask)  # (..., N, M, P), float32 or higher (scores)
        # in the promoted dtype: half-precision positions meet float32 weights (matmul takes
        # one dtype; bfloat16 cells failed with "expected scalar type Float")
        x = self._without_padding(x, mask)  # checked by weights; broadcasts as it is
        dtype = torch.promote_types(w.dtype, x.dtype)
        attended = w.to(dtype) @ x.to(dtype)  # (..., N, M, Dx): batched over (..., N)
        # score pair (i, j) against its own column only: columns lead, one row per sample
        s = self.base(attended.movedim(-2, -3), y.unsqueeze(-2))  # (..., M, N, 1)
        return s.squeeze(-1).movedim(-2, -1)

