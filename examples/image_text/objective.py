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

from mitools.critics import get_critic

try:  # the local-MI API of mitools (issue 3)
    from mitools import GlobalMILoss, LocalMILoss  # type: ignore[attr-defined]
    from mitools.samplers import LocalToGlobal  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - until LocalMILoss lands on main
    from ._interim_local import GlobalMILoss, LocalMILoss, LocalToGlobal

__all__ = ["MODES", "PretrainObjective", "StepMI"]

MODES = ("local", "global")


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
        critic_kwargs: extra arguments of the critic.

    Example:
        >>> obj = PretrainObjective("local", 16, 8, critic_kwargs={"hidden": (), "embed_dim": 8})
        >>> out = obj(torch.randn(4, 2, 2, 16), torch.randn(4, 8))
        >>> out.loss.shape, obj.cell_map(torch.randn(4, 2, 2, 16), torch.randn(4, 8)).shape
        (torch.Size([]), torch.Size([4, 2, 2]))
    """

    def __init__(self, mode: str, dim_image: int, dim_text: int, *, bound: str = "infonce",
                 critic: str = "separable", reduction: str = "max", gather: bool = False,
                 critic_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode == "local" and reduction not in ("max", "mean"):
            raise ValueError(f"reduction must be 'max' or 'mean', got {reduction!r}")
        self.mode = mode
        self.critic = get_critic(critic, dim_image, dim_text, **(critic_kwargs or {}))
        if mode == "local":
            self.loss = LocalMILoss(bound=bound, critic=self.critic, sampler=LocalToGlobal(),
                                    reduction=reduction, x_pattern="b h w c", y_pattern="b c",
                                    gather=gather)
        else:
            self.loss = GlobalMILoss(bound=bound, critic=self.critic, x_pattern="b h w c",
                                     y_pattern="b c", pool="mean", gather=gather)

    def forward(self, cells: Tensor, text: Tensor) -> StepMI:
        """``cells (B, M, M, D)``, ``text (B, Dt)`` (a sentence or a report per pair)."""
        out = self.loss(cells, text)
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
