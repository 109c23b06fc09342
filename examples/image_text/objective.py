"""The pretraining objective: mitools' local / global MI losses between images and text.

This module is the pipeline's only contact with the MI losses. ``mode="global"`` is
:class:`mitools.GlobalMILoss` (the mean-pooled image against the whole report). ``mode="local"``
scores every cell of the image's ``M x M`` block against one sentence, in one of three ways
(``reduction``):

* **per-position** (``"mean"``, ``"max"``): :class:`mitools.LocalMILoss` estimates MI for each
  cell position over the batch and maximises the mean (Deep InfoMax) or the best of them;
* **the paper's** (``"pair_max"``): each (image, sentence) pair is scored by its best cell,
  :class:`mitools.critics.MaxPoolCritic`, then one bound over the batch (Liao, Moyer et al.
  2021: "the cell with the highest MI");
* **attention** (``"attention"``): the sentence attends over the cells with a temperature and
  the attended cell feature is scored, :class:`mitools.critics.AttentionPoolCritic`, then one
  bound (GLoRIA's local alignment, Huang et al. ICCV 2021).

The bound (``"infonce"``, ``"dv"``, ``"mine"``, ...) and the cell critic are chosen by name.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from mitools import GlobalMILoss, LocalMILoss
from mitools.critics import AttentionPoolCritic, MaxPoolCritic, get_critic
from mitools.distributed import all_gather_with_grad
from mitools.estimators import get_estimator
from mitools.samplers import AllPairs, LocalToGlobal

__all__ = ["MODES", "POOLED", "REDUCTIONS", "PretrainObjective", "StepMI"]

MODES = ("local", "global")
#: Local-mode reductions: per-position ``mean`` / ``max`` (:class:`mitools.LocalMILoss`), and
#: the pair-level ``pair_max`` / ``attention`` (a pooled critic, then one bound).
REDUCTIONS = ("mean", "max", "pair_max", "attention")
#: The reductions that pool the cells inside the critic.
POOLED = ("pair_max", "attention")


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
        reduction: for ``mode="local"``, one of :data:`REDUCTIONS` (see the module).
        gather: negatives from every rank under ``torch.distributed``.
        all_sentences: local mode with every sentence of a report: ``text (B, S, Dt)`` with a
            ``text_mask (B, S)``. Per-position reductions give each (cell, sentence slot) pair
            of positions its own estimate over the batch (:class:`mitools.samplers.AllPairs`)
            and reduce over all of them; pooled ones give each sentence slot its own bound
            over the batch and average them, weighted by their real sentences.
        attention_temperature: the attention's temperature (``reduction="attention"``), in
            the units of the critic's scores.
        critic_kwargs: extra arguments of the cell critic.

    Example:
        >>> obj = PretrainObjective("local", 16, 8, critic_kwargs={"hidden": (), "embed_dim": 8})
        >>> out = obj(torch.randn(4, 2, 2, 16), torch.randn(4, 8))
        >>> out.loss.shape, obj.cell_map(torch.randn(4, 2, 2, 16), torch.randn(4, 8)).shape
        (torch.Size([]), torch.Size([4, 2, 2]))
    """

    def __init__(self, mode: str, dim_image: int, dim_text: int, *, bound: str = "infonce",
                 critic: str = "separable", reduction: str = "max", gather: bool = False,
                 all_sentences: bool = False, attention_temperature: float = 1.0,
                 critic_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode == "local" and reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.mode, self.reduction = mode, reduction
        self.critic = get_critic(critic, dim_image, dim_text, **(critic_kwargs or {}))
        if mode == "local" and reduction in POOLED:
            pooled = (MaxPoolCritic(self.critic) if reduction == "pair_max" else
                      AttentionPoolCritic(self.critic, temperature=attention_temperature))
            self.loss = _PooledLoss(bound, pooled, gather)
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


class _PooledLoss(nn.Module):
    """A pooled critic (one score per image-sentence pair), then one bound over the batch."""

    def __init__(self, bound: str, critic: MaxPoolCritic | AttentionPoolCritic,
                 gather: bool) -> None:
        super().__init__()
        self.estimator = get_estimator(bound)
        self.critic = critic
        self.gather = gather

    def forward(self, cells: Tensor, text: Tensor, y_mask: Tensor | None = None) -> StepMI:
        b = cells.shape[0]
        x = cells.flatten(1, -2)  # (B, P, D)
        distributed = (self.gather and torch.distributed.is_available()
                       and torch.distributed.is_initialized())
        offset = torch.distributed.get_rank() * b if distributed else 0
        if y_mask is None:  # one sentence per image: (B, Dt)
            value = self.estimator(self.critic(x, all_gather_with_grad(text) if distributed
                                               else text), offset=offset)
        else:  # every sentence slot s is its own problem: (S, B, B) scores
            cols, col_mask = text, y_mask
            if distributed:
                cols = all_gather_with_grad(text)
                col_mask = all_gather_with_grad(y_mask.to(text.dtype)).bool()
            scores = self.critic(x, cols.transpose(0, 1))  # (S, B, B_all)
            rows, col_mask = y_mask.transpose(0, 1), col_mask.transpose(0, 1)  # (S, B), (S, B_all)
            used = rows.any(-1) & (col_mask.sum(-1) >= 2)  # slots with an anchor and a negative
            per_slot = self.estimator(scores[used], offset=offset, row_mask=rows[used],
                                      col_mask=col_mask[used])
            weight = rows[used].sum(-1).to(per_slot.dtype)
            value = (per_slot * weight).sum() / weight.sum()
        estimate = value.detach().clone()
        if distributed:
            torch.distributed.all_reduce(estimate)
            estimate /= torch.distributed.get_world_size()
        return StepMI(-value, estimate)
