"""Downstream evaluation: regimes, probes and metrics.

Regimes (all trained on the labelled fraction of the training split, tested on the test split):

* ``supervised``: the image encoder trained from scratch with a cell-grid head;
* ``frozen``: a pretrained image encoder, frozen, with a linear probe on its mean-pooled vector;
* ``frozen_grid``: the same frozen encoder with a linear probe on its whole cell grid;
* ``finetune``: a pretrained image encoder trained further with a cell-grid head, starting
  from the ``frozen_grid`` probe (linear probe, then fine-tune).

Heads: a 4-way edema-severity classifier and one logistic output per binary finding, trained
jointly (cross-entropy + binary cross-entropy; unknown labels are ignored). The **cell-grid
head** (:class:`GridHead`) is linear in the whole grid of cells: a mean-pooled vector dilutes
a finding that covers two of 64 cells and cannot tell one zone from another, and a fully
supervised encoder read through the mean reaches only about 0.7 AUC on the zone opacities.

Metrics: edema macro AUC (one-vs-rest, averaged over the severities present), edema accuracy,
AUC per finding, and **zone localisation**: among test images with exactly one opacity, how
often the highest of the six opacity outputs names its zone (chance 1/6).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import Config
from .models import ImageEncoder
from .sites import ZONES
from .train import Datasets, EncodedPairs, Encoders, _progress, build_encoders, resolve_device

__all__ = [
    "LOCALIZED",
    "REGIMES",
    "GridHead",
    "RegimeResult",
    "downstream",
    "edema_metrics",
    "roc_auc",
    "zone_accuracy",
]

#: Regimes of :func:`downstream`, in table order.
REGIMES = ("supervised", "frozen", "frozen_grid", "finetune")
#: The findings that have a place in the image: the zone opacities, the effusions, the line.
LOCALIZED: tuple[str, ...] = (*(f"opacity_{z}" for z in ZONES), "effusion_right",
                              "effusion_left", "device")


class RegimeResult(NamedTuple):
    """Test metrics of one downstream regime (AUCs and accuracies in [0, 1])."""

    regime: str
    pretraining: str
    edema_auc: float
    edema_accuracy: float
    finding_auc: tuple[float, ...]
    zone_accuracy: float
    finding_names: tuple[str, ...]

    @property
    def mean_finding_auc(self) -> float:
        """Mean AUC over every binary finding."""
        return _nanmean(list(self.finding_auc))

    @property
    def localized_auc(self) -> float:
        """Mean AUC over the localized findings (:data:`LOCALIZED`)."""
        return _nanmean([a for a, n in zip(self.finding_auc, self.finding_names, strict=True)
                         if n in LOCALIZED])


def _nanmean(values: list[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return sum(vals) / len(vals) if vals else float("nan")


def roc_auc(scores: Tensor, labels: Tensor) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties).

    Returns ``nan`` when only one class is present.

    Example:
        >>> roc_auc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0, 0, 1, 1]))
        0.75
    """
    labels = labels.bool()
    n_pos = int(labels.sum())
    n_neg = labels.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    s = scores.double()
    order = torch.argsort(s)
    sorted_s = s[order]
    ranks = torch.empty_like(s)
    # Average ranks over ties: first/last position of each distinct value.
    _, inverse, counts = torch.unique_consecutive(sorted_s, return_inverse=True,
                                                  return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    avg = ends - (counts.double() - 1) / 2  # 1-based average rank per distinct value
    ranks[order] = avg[inverse]
    u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def edema_metrics(logits: Tensor, target: Tensor) -> tuple[float, float]:
    """(macro one-vs-rest AUC, accuracy) of ``logits (N, C)`` for labels ``target (N,)``.

    Rows with ``target < 0`` (unknown) are ignored; classes absent from ``target`` are left
    out of the macro average.
    """
    keep = target >= 0
    logits, target = logits[keep], target[keep]
    if target.numel() == 0:
        return float("nan"), float("nan")
    prob = logits.softmax(-1)
    aucs = [roc_auc(prob[:, c], target == c) for c in range(logits.shape[1])]
    aucs = [a for a in aucs if not math.isnan(a)]
    macro = sum(aucs) / len(aucs) if aucs else float("nan")
    acc = float((logits.argmax(-1) == target).double().mean())
    return macro, acc


def zone_accuracy(opacity_logits: Tensor, opacity: Tensor) -> float:
    """Share of images with exactly one opacity whose highest zone output is that zone.

    Args:
        opacity_logits: ``(N, 6)`` scores of the six zone opacities.
        opacity: ``(N, 6)`` labels (1 present, 0 absent, nan unknown).

    Returns:
        The accuracy (chance 1/6), ``nan`` without such images.

    Example:
        >>> zone_accuracy(torch.eye(6)[[0, 2, 5]], torch.eye(6)[[0, 3, 5]])
        0.6666666666666666
    """
    known = ~torch.isnan(opacity).any(-1)
    one = known & (opacity.nan_to_num(0).sum(-1) == 1)
    if not bool(one.any()):
        return float("nan")
    truth = opacity[one].argmax(-1)
    return float((opacity_logits[one].argmax(-1) == truth).double().mean())


class _Standardise(nn.Module):
    """Fixed per-feature standardisation, fitted on the labelled training features."""

    mu: Tensor
    sd: Tensor

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mu", torch.zeros(dim))
        self.register_buffer("sd", torch.ones(dim))

    def fit(self, h: Tensor) -> None:
        flat = h.reshape(-1, h.shape[-1])
        self.mu.copy_(flat.mean(0))
        self.sd.copy_(flat.std(0).clamp(min=1e-6))

    def forward(self, h: Tensor) -> Tensor:
        return (h - self.mu) / self.sd


class _PooledHead(nn.Module):
    """Linear edema and finding outputs on the standardised mean-pooled vector ``(B, D)``."""

    def __init__(self, dim: int, n_outputs: int) -> None:
        super().__init__()
        self.norm = _Standardise(dim)
        self.linear = nn.Linear(dim, n_outputs)

    def forward(self, cells: Tensor) -> Tensor:
        return self.linear(self.norm(cells.mean(dim=(1, 2))))


class GridHead(nn.Module):
    r"""A linear map of the whole standardised cell grid: one weight per (cell, channel, output).

    .. math::

        \text{logit}_k = \sum_{p} w_{kp}^\top \tilde x_p + b_k

    with :math:`\tilde x_p` the cell features standardised per channel (statistics over all
    cells). It can read a finding at its own cells (a zone's opacity at that zone), which the
    mean-pooled vector cannot tell apart from the same finding elsewhere. Trained as a probe it
    is a convex problem (logistic and softmax regression), so it has no bad optimum to fall
    into: an attention-pooling probe we tried first gave results that moved by up to 0.3 AUC
    with its initialisation. :math:`K (P D + 1)` parameters.

    Args:
        dim: cell features D.
        cells: cells P of the grid.
        n_outputs: K.

    Example:
        >>> head = GridHead(16, 4, 14)
        >>> head(torch.randn(3, 2, 2, 16)).shape
        torch.Size([3, 14])
    """

    def __init__(self, dim: int, cells: int, n_outputs: int) -> None:
        super().__init__()
        self.norm = _Standardise(dim)
        self.linear = nn.Linear(cells * dim, n_outputs)

    def forward(self, cells: Tensor) -> Tensor:
        """``cells (B, M, M, D)`` -> logits ``(B, K)``."""
        return self.linear(self.norm(cells).flatten(1))


def _head_loss(logits: Tensor, edema: Tensor, findings: Tensor) -> Tensor:
    loss = logits.new_zeros(())
    if bool((edema >= 0).any()):
        loss = loss + F.cross_entropy(logits[:, :4], edema, ignore_index=-1)
    known = ~torch.isnan(findings)
    if bool(known.any()):
        loss = loss + F.binary_cross_entropy_with_logits(
            logits[:, 4:][known], findings[known], reduction="mean"
        )
    return loss


@torch.no_grad()
def encode_cells(encoder: ImageEncoder, images: Tensor, device: torch.device,
                 batch: int = 256) -> Tensor:
    """The frozen encoder's cells ``(N, M, M, D)`` of ``images``, in eval mode, on ``device``."""
    encoder.eval()
    return torch.cat([encoder(images[s : s + batch].to(device)).local
                      for s in range(0, images.shape[0], batch)])


def _fit_probe(head: nn.Module, cells: Tensor, edema: Tensor, findings: Tensor,
               cfg: Config) -> None:
    """Full-batch training of a probe's parameters on frozen cells."""
    head.norm.fit(cells if isinstance(head, GridHead) else cells.mean(dim=(1, 2)))
    opt = torch.optim.Adam(head.parameters(), lr=cfg.linear_lr, weight_decay=1e-3)
    for _ in range(cfg.linear_steps):
        loss = _head_loss(head(cells), edema, findings)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def downstream(cfg: Config, ds: Datasets, regime: str, pretrained: Encoders | None = None,
               pretraining: str = "none") -> RegimeResult:
    """Train heads (and, unless frozen, the image encoder) on the labelled subset; test.

    Args:
        cfg: the run configuration (downstream fields).
        ds: the data.
        regime: one of ``REGIMES``.
        pretrained: the pretrained encoders (required unless ``supervised``).
        pretraining: a label for the table (``"local (attention)"``, ``"global"``, ...).
    """
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {REGIMES}, got {regime!r}")
    if regime != "supervised" and pretrained is None:
        raise ValueError(f"regime {regime!r} needs pretrained encoders")
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed + 7)
    g = torch.Generator().manual_seed(cfg.seed + 11)
    lab = ds.labelled
    tr, te = ds.train, ds.test
    n_out = 4 + tr.findings.shape[1]
    if regime == "supervised":
        encoder = build_encoders(cfg, len(ds.tokenizer)).image
    else:
        assert pretrained is not None
        encoder = ImageEncoder(cfg.image_size, grid=cfg.grid, width=cfg.width, dim=cfg.dim,
                               context_kernel=cfg.context_kernel)
        encoder.load_state_dict(pretrained.image.state_dict())
    encoder.to(device)
    head: nn.Module = (_PooledHead(cfg.dim, n_out) if regime == "frozen"
                       else GridHead(cfg.dim, cfg.grid * cfg.grid, n_out)).to(device)

    # A pretrained encoder gets a probe on its frozen features first; the frozen regimes stop
    # there, "finetune" then trains encoder and head together from it (the head does not
    # wreck the features in the first steps). "supervised" trains a fresh encoder and head
    # with the fine-tuning recipe.
    e_y, f_y = tr.edema[lab].to(device), tr.findings[lab].to(device)
    if regime != "supervised":
        _fit_probe(head, encode_cells(encoder, tr.images[lab], device), e_y, f_y, cfg)
    else:
        head.norm.fit(encode_cells(encoder, tr.images[lab], device))
    if regime in ("supervised", "finetune"):
        _finetune(cfg, encoder, head, ds, g, device, f"{regime} ({pretraining})")
    with torch.no_grad():
        logits = head(encode_cells(encoder, te.images, device)).cpu()
    return _metrics(regime, pretraining, logits, te, ds.finding_names)


def _finetune(cfg: Config, encoder: ImageEncoder, head: nn.Module, ds: Datasets,
              g: torch.Generator, device: torch.device, desc: str) -> None:
    opt = torch.optim.AdamW([
        {"params": encoder.parameters(), "lr": cfg.finetune_lr},
        {"params": head.parameters(), "lr": cfg.finetune_lr * cfg.head_lr_factor},
    ], weight_decay=1e-4)
    tr, lab, b = ds.train, ds.labelled, cfg.downstream_batch_size
    n = lab.numel()
    steps = max(1, n // b)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.finetune_epochs * steps)
    for _ in _progress(range(cfg.finetune_epochs), cfg.progress, desc):
        encoder.train()
        perm = lab[torch.randperm(n, generator=g)]
        for s in range(steps):
            idx = perm[s * b : (s + 1) * b]
            logits = head(encoder(tr.images[idx].to(device)).local)
            loss = _head_loss(logits, tr.edema[idx].to(device), tr.findings[idx].to(device))
            if not loss.requires_grad:  # no known label in this batch (sparse real labels)
                continue
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()


def _metrics(regime: str, pretraining: str, logits: Tensor, test: EncodedPairs,
             names: tuple[str, ...]) -> RegimeResult:
    auc, acc = edema_metrics(logits[:, :4], test.edema)
    f_logit = logits[:, 4:]
    f_auc = []
    for k in range(f_logit.shape[1]):
        known = ~torch.isnan(test.findings[:, k])
        f_auc.append(roc_auc(f_logit[known, k], test.findings[known, k] > 0.5))
    zones = [names.index(f"opacity_{z}") for z in ZONES] if all(
        f"opacity_{z}" in names for z in ZONES) else []
    zone_acc = (zone_accuracy(f_logit[:, zones], test.findings[:, zones]) if zones
                else float("nan"))
    return RegimeResult(regime, pretraining, auc, acc, tuple(f_auc), zone_acc, names)
