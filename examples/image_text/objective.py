"""The pretraining objective: mitools' local / global MI losses between images and text.

This module is the pipeline's only contact with the MI losses. ``mode="global"`` is
:class:`mitools.GlobalMILoss` (the mean-pooled image against the whole report). ``mode="local"``
scores every cell of the image's ``M x M`` block against one sentence, in one of three ways
(``reduction``):

* **per-position** (``"mean"``, ``"max"``): :class:`mitools.LocalMILoss` estimates MI for each
  cell position over the batch and maximises the mean (Deep InfoMax) or the best of them;
  ``"max"`` is the paper's objective (Liao, Moyer et al. 2021: MI estimated between every
  local feature and the sentence, the cell with the highest MI maximised);
* **pair-level max** (``"pair_max"``), a pair-level variant: each (image, sentence) pair is
  scored by its best cell, :class:`mitools.critics.MaxPoolCritic`, then one bound over the
  batch;
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
from mitools.local import check_bound_and_critic
from mitools.samplers import AllPairs, LocalToGlobal

__all__ = ["CONTRASTS", "MODES", "POOLED", "REDUCTIONS", "PretrainObjective", "StepMI"]

MODES = ("local", "global")
#: Local-mode reductions: per-position ``mean`` / ``max`` (:class:`mitools.LocalMILoss`), and
#: the pair-level ``pair_max`` / ``attention`` (a pooled critic, then one bound).
REDUCTIONS = ("mean", "max", "pair_max", "attention")
#: The reductions that pool the cells inside the critic.
POOLED = ("pair_max", "attention")
#: What the bound's rows are, for pooled reductions (see ``PretrainObjective``).
CONTRASTS = ("images", "sentences", "both")


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
        reduction: for ``mode="local"``, one of ``REDUCTIONS`` (see the module).
        gather: negatives from every rank under ``torch.distributed``.
        all_sentences: local mode with every sentence of a report: ``text (B, S, Dt)`` with a
            ``text_mask (B, S)``. Per-position reductions give each (cell, sentence slot) pair
            of positions its own estimate over the batch (:class:`mitools.samplers.AllPairs`)
            and reduce over all of them; pooled ones give each sentence slot its own bound
            over the batch and average them, weighted by their real sentences.
        attention_temperature: the attention's temperature (``reduction="attention"``), in
            the units of the critic's scores.
        contrast: pooled reductions only: the bound's rows are the ``"images"`` (each image
            picks its sentence from the batch's), the ``"sentences"`` (each sentence picks
            its image: the question pointing asks), or ``"both"`` (their mean, as in CLIP and
            GLoRIA). Per-position reductions estimate each cell's MI over images.
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
                 contrast: str = "images", critic_kwargs: dict[str, Any] | None = None) -> None:
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
            self.loss = _PooledLoss(bound, pooled, gather, contrast)
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
        estimator = self.loss.estimator
        if estimator.direction != "lower":  # e.g. club on a log-density critic
            raise ValueError(
                f"the bound {estimator.name!r} is not a lower bound "
                f"(direction={estimator.direction!r}): pretraining maximises a lower bound of "
                "the critic's scores; use a discriminative bound (infonce, dv, nwj, flo, ...)"
            )

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
    """A pooled critic (one score per image-sentence pair), then one bound over the batch.

    ``contrast`` says what the bound's rows are: ``"images"`` (each image picks its sentence
    among the batch's), ``"sentences"`` (each sentence picks its image among the batch's: the
    question pointing asks), or ``"both"`` (the mean of the two, as CLIP and GLoRIA do). With
    every sentence of a report, each sentence slot is its own problem; slots are averaged,
    weighted by their real sentences.
    """

    def __init__(self, bound: str, critic: MaxPoolCritic | AttentionPoolCritic,
                 gather: bool, contrast: str = "images") -> None:
        super().__init__()
        if contrast not in CONTRASTS:
            raise ValueError(f"contrast must be one of {CONTRASTS}, got {contrast!r}")
        self.critic = critic
        self.gather = gather
        self.contrast = contrast
        # one estimator per direction: MINE keeps a moving average per estimation problem.
        # The checks of mitools.local (LocalMILoss, GlobalMILoss): a bound that needs
        # log-densities is refused on a critic that does not declare them.
        self.estimator, _ = check_bound_and_critic(bound, critic)
        self.estimator_t, _ = check_bound_and_critic(bound, critic)

    def forward(self, cells: Tensor, text: Tensor, y_mask: Tensor | None = None) -> StepMI:
        b = cells.shape[0]
        x = cells.flatten(1, -2)  # (B, P, D)
        # sentence slots lead: (S, B, Dt) and (S, B); one slot without a mask
        slots = text[None] if y_mask is None else text.transpose(0, 1)
        mask = (torch.ones(slots.shape[:2], dtype=torch.bool, device=text.device)
                if y_mask is None else y_mask.transpose(0, 1))
        distributed = (self.gather and torch.distributed.is_available()
                       and torch.distributed.is_initialized())
        offset = torch.distributed.get_rank() * b if distributed else 0
        values = []
        local_scores = None if distributed else self.critic(x, slots)  # (S, B, B)
        if self.contrast in ("images", "both"):
            cols, col_mask = slots, mask
            if distributed:
                cols = all_gather_with_grad(slots.transpose(0, 1)).transpose(0, 1)
                col_mask = all_gather_with_grad(mask.T.to(text.dtype)).T.bool()
            scores = local_scores if local_scores is not None else self.critic(x, cols)
            used = mask.any(-1) & (col_mask.sum(-1) >= 2)  # an anchor and a negative
            values.append(_slot_mean(self.estimator(scores[used], offset=offset,
                                                    row_mask=mask[used],
                                                    col_mask=col_mask[used]), mask[used],
                                     distributed))
        if self.contrast in ("sentences", "both"):
            images = all_gather_with_grad(x) if distributed else x
            scores = local_scores if local_scores is not None else self.critic(images, slots)
            used = mask.any(-1)
            values.append(_slot_mean(self.estimator_t(scores[used].transpose(-1, -2),
                                                      offset=offset, row_mask=mask[used]),
                                     mask[used], distributed))
        value = sum(values) / len(values)
        estimate = value.detach().clone()
        if distributed:
            torch.distributed.all_reduce(estimate)
            estimate /= torch.distributed.get_world_size()
        return StepMI(-value, estimate)


def _slot_mean(per_slot: Tensor, rows: Tensor, distributed: bool) -> Tensor:
    """Mean of per-slot values ``(S,)`` weighted by each slot's real rows ``(S, B)``: the mean
    over every real (image, sentence) row. Under ``torch.distributed`` the rows of all ranks
    count, so that the mean over ranks is the one-process value on the whole batch."""
    weight = rows.sum(-1).to(per_slot.dtype)
    total, count = (per_slot * weight).sum(), weight.sum()
    if not distributed:
        return total / count
    count = count.detach().clone()
    torch.distributed.all_reduce(count)
    return total * torch.distributed.get_world_size() / count
