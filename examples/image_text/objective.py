"""The pretraining objective: mitools' local / global MI losses between images and text.

This module is the pipeline's only contact with the MI losses: ``mode="local"`` is
:class:`mitools.LocalMILoss` (every cell of the image's ``M x M`` block against one sentence,
reduction ``max`` as in Liao, Moyer et al. 2021, or ``mean`` as in Deep InfoMax), and
``mode="global"`` is :class:`mitools.GlobalMILoss` (mean-pooled image against the whole report).
The bound (``"infonce"``, ``"dv"``, ``"mine"``, ...) and the critic are chosen by name.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from mitools import GlobalMILoss, LocalMILoss
from mitools.critics import get_critic
from mitools.distributed import all_gather_with_grad
from mitools.samplers import AllPairs, LocalToGlobal

__all__ = ["MODES", "REDUCTIONS", "CellMaxCritic", "PretrainObjective", "StepMI"]

MODES = ("local", "global")
#: Local-mode reductions over cells: ``max`` / ``mean`` of the per-cell MI estimates
#: (:class:`mitools.LocalMILoss`), or ``pair_max``: each (image, sentence) pair scored by its
#: best cell, inside the critic (:class:`CellMaxCritic`).
REDUCTIONS = ("max", "mean", "pair_max")


class CellMaxCritic(nn.Module):
    r"""Score an image's cells against a text vector by the best cell: a multiple-instance critic.

    .. math::

        f(x_i, t_j) = \max_p f_0(x_{i,p}, t_j)

    where :math:`f_0` is any mitools critic on one cell. The image enters flattened,
    ``x (..., N, P * D)``, so the result is an ordinary score tensor ``(..., N, M)`` for any
    bound; the sentence then only has to match the cell that shows its finding.

    Args:
        base: the cell critic :math:`f_0` (``x (..., N, D)``, ``y (..., M, Dy)``).
        cells: P, the number of cells per image.

    Example:
        >>> from mitools.critics import BilinearCritic
        >>> c = CellMaxCritic(BilinearCritic(3, 2), cells=4)
        >>> c(torch.randn(5, 4 * 3), torch.randn(6, 2)).shape
        torch.Size([5, 6])
    """

    def __init__(self, base: nn.Module, cells: int) -> None:
        super().__init__()
        self.base = base
        self.cells = cells

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if x.shape[-1] % self.cells:
            raise ValueError(
                f"x: expected (..., N, {self.cells} * D) flattened cells, got {tuple(x.shape)}"
            )
        cells = x.unflatten(-1, (self.cells, -1)).movedim(-2, -3)  # (..., P, N, D)
        return self.base(cells, y[..., None, :, :]).amax(dim=-3)


class StepMI(NamedTuple):
    """One training step's objective: ``loss`` to minimise, ``estimate`` in nats."""

    loss: Tensor
    estimate: Tensor


class PretrainObjective(nn.Module):
    """Critic + MI bound between image cells and text vectors.

    Args:
        mode: ``"local"`` (cells vs one sentence) or ``"global"`` (pooled image vs report).
        dim_image: channels D of the image's cell features.
        dim_text: size of the text vectors.
        bound: a bound name accepted by :func:`mitools.get_estimator`.
        critic: a critic name accepted by :func:`mitools.get_critic`.
        reduction: over cells, for ``mode="local"``: ``"max"`` (the paper) or ``"mean"``.
        gather: negatives from every rank under ``torch.distributed``.
        all_sentences: local mode with every sentence of a report: ``text (B, S, Dt)`` with a
            ``text_mask (B, S)``; each (cell, sentence slot) pair of positions gets its own
            estimate over the batch (:class:`mitools.samplers.AllPairs`), and ``reduction``
            runs over all of them.
        critic_kwargs: extra arguments of the critic.

    Example:
        >>> obj = PretrainObjective("local", 16, 8, critic_kwargs={"hidden": (), "embed_dim": 8})
        >>> out = obj(torch.randn(4, 2, 2, 16), torch.randn(4, 8))
        >>> out.loss.shape, obj.cell_map(torch.randn(4, 2, 2, 16), torch.randn(4, 8)).shape
        (torch.Size([]), torch.Size([4, 2, 2]))
    """

    def __init__(self, mode: str, dim_image: int, dim_text: int, *, bound: str = "infonce",
                 critic: str = "separable", reduction: str = "max", gather: bool = False,
                 all_sentences: bool = False,
                 critic_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode == "local" and reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.mode, self.reduction = mode, reduction
        self.critic = get_critic(critic, dim_image, dim_text, **(critic_kwargs or {}))
        if mode == "local" and reduction == "pair_max":
            self.loss = _PairMax(bound, self.critic, gather)
        elif mode == "local" and all_sentences:
            self.loss = LocalMILoss(bound=bound, critic=self.critic, sampler=AllPairs(),
                                    reduction=reduction, x_pattern="b h w c", y_pattern="b s c",
                                    gather=gather)
        elif mode == "local":
            self.loss = LocalMILoss(bound=bound, critic=self.critic, sampler=LocalToGlobal(),
                                    reduction=reduction, x_pattern="b h w c", y_pattern="b c",
                                    gather=gather)
        else:
            self.loss = GlobalMILoss(bound=bound, critic=self.critic, x_pattern="b h w c",
                                     y_pattern="b c", pool="mean", gather=gather)

    def forward(self, cells: Tensor, text: Tensor, text_mask: Tensor | None = None) -> StepMI:
        """``cells (B, M, M, D)``, ``text (B, Dt)`` (a sentence or a report per pair), or
        ``text (B, S, Dt)`` with ``text_mask (B, S)`` for ``all_sentences``."""
        out = (self.loss(cells, text) if text_mask is None
               else self.loss(cells, text, y_mask=text_mask))
        return StepMI(out.loss, out.estimate)

    @torch.no_grad()
    def cell_map(self, cells: Tensor, text: Tensor, reference: Tensor | None = None) -> Tensor:
        r"""Pointwise MI of every cell of image k with text k, against reference images.

        .. math::

            m_k(p) = f(x_{k,p}, t_k) - \log \frac{1}{R} \sum_{j=1}^{R} e^{f(r_{j,p}, t_k)}

        (the InfoNCE log-ratio of cell ``p``; the normaliser removes each cell's own bias).

        Args:
            cells: ``(K, M, M, D)`` the images' cells.
            text: ``(K, Dt)`` one text vector per image.
            reference: ``(R, M, M, D)`` cells of the images that normalise; default ``cells``.

        Returns:
            ``(K, M, M)``.
        """
        k, h, w, d = cells.shape
        ref = cells if reference is None else reference
        x = cells.reshape(k, h * w, d).transpose(0, 1)  # (P, K, D)
        r = ref.reshape(ref.shape[0], h * w, d).transpose(0, 1)  # (P, R, D)
        own = self.critic(x, text).diagonal(dim1=1, dim2=2)  # (P, K)
        norm = torch.logsumexp(self.critic(r, text), dim=1) - math.log(r.shape[1])  # (P, K)
        return (own - norm).transpose(0, 1).reshape(k, h, w)


class _PairMax(nn.Module):
    """``reduction="pair_max"``: one score tensor from :class:`CellMaxCritic`, one bound."""

    def __init__(self, bound: str, critic: nn.Module, gather: bool) -> None:
        super().__init__()
        from mitools.estimators import get_estimator

        self.estimator = get_estimator(bound)
        self.critic = critic
        self.gather = gather

    def forward(self, cells: Tensor, text: Tensor) -> StepMI:
        b, h, w, d = cells.shape
        critic = CellMaxCritic(self.critic, h * w)
        offset = 0
        if self.gather and torch.distributed.is_available() and torch.distributed.is_initialized():
            offset = torch.distributed.get_rank() * b
            text = all_gather_with_grad(text)
        value = self.estimator(critic(cells.reshape(b, h * w * d), text), offset=offset)
        estimate = value.detach().clone()
        if offset or (self.gather and torch.distributed.is_initialized()):
            torch.distributed.all_reduce(estimate)
            estimate /= torch.distributed.get_world_size()
        return StepMI(-value, estimate)
