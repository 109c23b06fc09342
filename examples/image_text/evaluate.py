"""Downstream evaluation, the pointing score, the cell-MI figure and the results table.

Regimes (all trained on the labelled fraction of the training split, tested on the test split):

* ``supervised``: the image encoder trained from scratch with the classification heads;
* ``frozen``: a pretrained image encoder, frozen; linear heads on its pooled vector;
* ``finetune``: a pretrained image encoder trained further with the heads.

A pretrained encoder first gets linear heads fitted on its frozen, standardised pooled vector
(``frozen`` stops there); ``finetune`` then trains encoder and heads together from that start,
with the same optimiser, schedule and epochs as ``supervised`` uses from scratch.

Heads: a 4-way edema-severity classifier and one logistic output per binary finding, trained
jointly (cross-entropy + binary cross-entropy; unknown labels are ignored). Metrics: edema
macro AUC (one-vs-rest, averaged over the severities present), edema accuracy, AUC per finding.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import Config
from .data import ZONES, zone_cell_mask
from .models import ImageEncoder
from .objective import PretrainObjective
from .train import Datasets, EncodedPairs, Encoders, _progress, build_encoders, resolve_device

__all__ = [
    "PointingResult",
    "RegimeResult",
    "downstream",
    "edema_metrics",
    "pointing",
    "results_markdown",
    "roc_auc",
]


class RegimeResult(NamedTuple):
    """Test metrics of one downstream regime."""

    regime: str
    pretraining: str
    edema_auc: float
    edema_accuracy: float
    finding_auc: tuple[float, ...]

    @property
    def mean_finding_auc(self) -> float:
        vals = [v for v in self.finding_auc if not math.isnan(v)]
        return sum(vals) / len(vals) if vals else float("nan")


class PointingResult(NamedTuple):
    """Share of zone-naming sentences whose highest-MI cell lies in the named zone.

    ``chance``: a uniformly random cell; ``best_fixed``: the best single cell used for every
    sentence (a pointer that ignores image and sentence).
    """

    pretraining: str
    hit_rate: float
    chance: float
    best_fixed: float
    sentences: int


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


class _Heads(nn.Module):
    """Fixed standardisation of the pooled vector, then the two linear heads."""

    mu: Tensor
    sd: Tensor

    def __init__(self, dim: int, n_findings: int) -> None:
        super().__init__()
        self.edema = nn.Linear(dim, 4)
        self.findings = nn.Linear(dim, n_findings)
        self.register_buffer("mu", torch.zeros(dim))
        self.register_buffer("sd", torch.ones(dim))

    def set_standardisation(self, mu: Tensor, sd: Tensor) -> None:
        self.mu.copy_(mu)
        self.sd.copy_(sd)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        h = (h - self.mu) / self.sd
        return self.edema(h), self.findings(h)


def _head_loss(heads: _Heads, h: Tensor, edema: Tensor, findings: Tensor) -> Tensor:
    e_logit, f_logit = heads(h)
    loss = h.new_zeros(())
    if bool((edema >= 0).any()):
        loss = loss + F.cross_entropy(e_logit, edema, ignore_index=-1)
    known = ~torch.isnan(findings)
    if bool(known.any()):
        loss = loss + F.binary_cross_entropy_with_logits(
            f_logit[known], findings[known], reduction="mean"
        )
    return loss


@torch.no_grad()
def _pooled(encoder: ImageEncoder, images: Tensor, device: torch.device,
            batch: int = 256) -> Tensor:
    encoder.eval()
    return torch.cat([encoder(images[s : s + batch].to(device)).pooled.cpu()
                      for s in range(0, images.shape[0], batch)])


def _metrics(regime: str, pretraining: str, e_logit: Tensor, f_logit: Tensor,
             test: EncodedPairs) -> RegimeResult:
    auc, acc = edema_metrics(e_logit, test.edema)
    f_auc = []
    for k in range(f_logit.shape[1]):
        known = ~torch.isnan(test.findings[:, k])
        f_auc.append(roc_auc(f_logit[known, k], test.findings[known, k] > 0.5))
    return RegimeResult(regime, pretraining, auc, acc, tuple(f_auc))


def downstream(cfg: Config, ds: Datasets, regime: str, pretrained: Encoders | None = None,
               pretraining: str = "none") -> RegimeResult:
    """Train heads (and, unless frozen, the image encoder) on the labelled subset; test.

    Args:
        cfg: the run configuration (downstream fields).
        ds: the data.
        regime: ``"supervised"``, ``"frozen"`` or ``"finetune"``.
        pretrained: the pretrained encoders (required unless ``supervised``).
        pretraining: a label for the table (``"local"``, ``"global"``, ``"none"``).
    """
    if regime not in ("supervised", "frozen", "finetune"):
        raise ValueError(f"regime must be supervised, frozen or finetune, got {regime!r}")
    if regime != "supervised" and pretrained is None:
        raise ValueError(f"regime {regime!r} needs pretrained encoders")
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed + 7)
    g = torch.Generator().manual_seed(cfg.seed + 11)
    lab = ds.labelled
    tr, te = ds.train, ds.test
    n_find = tr.findings.shape[1]
    if regime == "supervised":
        encoder = build_encoders(cfg, len(ds.tokenizer)).image
    else:
        assert pretrained is not None
        encoder = ImageEncoder(cfg.image_size, grid=cfg.grid, width=cfg.width, dim=cfg.dim,
                     context_kernel=cfg.context_kernel)
        encoder.load_state_dict(pretrained.image.state_dict())
    encoder.to(device)
    heads = _Heads(cfg.dim, n_find).to(device)

    # A pretrained encoder gets a linear probe on its standardised pooled vector; "frozen"
    # stops there, "finetune" then trains encoder and heads together from it (linear probe,
    # then fine-tune: the heads do not wreck the features in the first steps). "supervised"
    # trains a fresh encoder and fresh heads with the same fine-tuning recipe.
    if regime != "supervised":
        x_tr = _pooled(encoder, tr.images[lab], device)
        mu, sd = x_tr.mean(0), x_tr.std(0).clamp(min=1e-6)
        heads.set_standardisation(mu.to(device), sd.to(device))
        e_y, f_y = tr.edema[lab].to(device), tr.findings[lab].to(device)
        opt = torch.optim.Adam(heads.parameters(), lr=cfg.linear_lr, weight_decay=1e-3)
        x_tr = x_tr.to(device)
        for _ in range(cfg.linear_steps):
            loss = _head_loss(heads, x_tr, e_y, f_y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    if regime != "frozen":
        opt = torch.optim.AdamW([
            {"params": encoder.parameters(), "lr": cfg.finetune_lr},
            {"params": heads.parameters(), "lr": cfg.finetune_lr * cfg.head_lr_factor},
        ], weight_decay=1e-4)
        b = cfg.downstream_batch_size
        n = lab.numel()
        steps = max(1, n // b)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.finetune_epochs * steps)
        bar = _progress(range(cfg.finetune_epochs), cfg.progress, f"{regime} ({pretraining})")
        for _ in bar:
            encoder.train()
            perm = lab[torch.randperm(n, generator=g)]
            for s in range(steps):
                idx = perm[s * b : (s + 1) * b]
                h = encoder(tr.images[idx].to(device)).pooled
                loss = _head_loss(heads, h, tr.edema[idx].to(device),
                                  tr.findings[idx].to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    h_te = _pooled(encoder, te.images, device)
    with torch.no_grad():
        e_logit, f_logit = heads(h_te.to(device))
    return _metrics(regime, pretraining, e_logit.cpu(), f_logit.cpu(), te)


@torch.no_grad()
def _cells(encoder: ImageEncoder, images: Tensor, device: torch.device,
           batch: int = 256) -> Tensor:
    encoder.eval()
    return torch.cat([encoder(images[s : s + batch].to(device)).local
                      for s in range(0, images.shape[0], batch)])


@torch.no_grad()
def sentence_cell_maps(model: Encoders, objective: PretrainObjective, test: EncodedPairs,
                       image_idx: Tensor, sentence_slot: Tensor, device: torch.device,
                       reference: int = 256) -> Tensor:
    """Per-cell pointwise MI maps ``(K, M, M)`` of K (image, sentence) pairs of ``test``.

    Each cell's score for the sentence is normalised by the log-mean-exp of that cell's score
    over ``reference`` test images (:meth:`PretrainObjective.cell_map`).
    """
    model.eval()
    objective.eval()
    ref_cells = _cells(model.image, test.images[:reference], device)
    own_cells = _cells(model.image, test.images[image_idx], device)
    text = model.text(test.sentences[image_idx, sentence_slot].to(device))
    return objective.cell_map(own_cells, text, reference=ref_cells).cpu()


def pointing(cfg: Config, ds: Datasets, model: Encoders, objective: PretrainObjective,
             pretraining: str) -> PointingResult:
    """How often the highest-MI cell of a zone-naming sentence lies in that zone."""
    device = resolve_device(cfg.device)
    model.to(device)
    objective.to(device)
    te = ds.test
    img, slot = torch.nonzero(te.zones >= 0, as_tuple=True)
    if img.numel() == 0:
        return PointingResult(pretraining, float("nan"), float("nan"), float("nan"), 0)
    maps = torch.cat([
        sentence_cell_maps(model, objective, te, img[s : s + 256], slot[s : s + 256], device)
        for s in range(0, img.numel(), 256)
    ])
    m = maps.shape[-1]
    masks = zone_cell_mask(m).reshape(len(ZONES), m * m)[te.zones[img, slot]]  # (K, P)
    best = maps.reshape(maps.shape[0], -1).argmax(-1)
    hits = masks[torch.arange(best.numel()), best].double().mean()
    chance = masks.double().mean()
    best_fixed = masks.double().mean(0).max()
    return PointingResult(pretraining, float(hits), float(chance), float(best_fixed),
                          int(img.numel()))


def cell_mi_figure(path: Path, ds: Datasets, models: dict[str, tuple[Encoders, PretrainObjective]],
                   device: torch.device, examples: int = 4) -> Path | None:
    """Save a figure: test images with a zone-naming sentence, and each model's cell-MI map."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Rectangle
    except ImportError:
        return None
    te = ds.test
    img, slot = torch.nonzero(te.zones >= 0, as_tuple=True)
    chosen, seen = [], set()
    for k in range(img.numel()):
        z = int(te.zones[img[k], slot[k]])
        if z not in seen:
            seen.add(z)
            chosen.append(k)
        if len(chosen) == examples:
            break
    if not chosen:
        return None
    ids = torch.tensor(chosen)
    img, slot = img[ids], slot[ids]
    fig, axes = plt.subplots(1 + len(models), len(chosen), figsize=(2.6 * len(chosen),
                                                                     2.7 * (1 + len(models))),
                             squeeze=False)
    size = te.images.shape[-1]
    for col in range(len(chosen)):
        sentence = ds.tokenizer.decode(te.sentences[img[col], slot[col]])
        ax = axes[0, col]
        ax.imshow(te.images[img[col], 0].numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title("\n".join(_wrap(sentence, 28)), fontsize=7)
        ax.axis("off")
    for row, (name, (model, objective)) in enumerate(models.items(), start=1):
        maps = sentence_cell_maps(model, objective, te, img, slot, device)
        m = maps.shape[-1]
        zmask = zone_cell_mask(m)
        for col in range(len(chosen)):
            ax = axes[row, col]
            ax.imshow(te.images[img[col], 0].numpy(), cmap="gray", vmin=0, vmax=1)
            up = F.interpolate(maps[col][None, None], size=(size, size), mode="nearest")[0, 0]
            ax.imshow(up.numpy(), cmap="inferno", alpha=0.55)
            cell = size / m
            zone = int(te.zones[img[col], slot[col]])
            rows, cols = torch.nonzero(zmask[zone], as_tuple=True)
            ax.add_patch(Rectangle((float(cols.min()) * cell - 0.5, float(rows.min()) * cell - 0.5),
                                   float(cols.max() - cols.min() + 1) * cell,
                                   float(rows.max() - rows.min() + 1) * cell,
                                   fill=False, edgecolor="cyan", linewidth=1))
            best = int(maps[col].flatten().argmax())
            ax.plot((best % m + 0.5) * cell - 0.5, (best // m + 0.5) * cell - 0.5, "c+",
                    markersize=9)
            ax.set_title(f"{name} MI", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _wrap(text: str, width: int) -> list[str]:
    lines, cur = [], ""
    for w in text.split():
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    return [*lines, cur]


def _fmt(values: list[float]) -> str:
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return "n/a"
    mean = sum(vals) / len(vals)
    if len(vals) == 1:
        return f"{mean:.3f}"
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
    return f"{mean:.3f} ± {sd:.3f}"


_REGIME_NAMES = {"supervised": "Supervised only", "frozen": "Frozen + linear",
                 "finetune": "Fine-tuned"}


def results_markdown(runs: list[tuple[list[RegimeResult], list[PointingResult]]],
                     finding_names: tuple[str, ...]) -> str:
    """The results tables (mean ± sd over the runs given, one run per seed)."""
    keys = [(r.regime, r.pretraining) for r in runs[0][0]]
    n = len(runs)
    lines = [
        f"Downstream classification on the test split ({n} seed{'s' if n > 1 else ''}; "
        "mean ± sd over seeds)",
        "",
        "| Regime | Pretraining | Edema macro AUC | Edema accuracy | Mean finding AUC |",
        "| --- | --- | --- | --- | --- |",
    ]
    per = {k: [dict(zip(keys, res, strict=True))[k] for res, _ in runs] for k in keys}
    for k in keys:
        rs = per[k]
        lines.append(
            f"| {_REGIME_NAMES[k[0]]} | {k[1]} | {_fmt([r.edema_auc for r in rs])} | "
            f"{_fmt([r.edema_accuracy for r in rs])} | "
            f"{_fmt([r.mean_finding_auc for r in rs])} |"
        )
    lines += ["", "AUC per finding (mean over seeds)", "",
              "| Finding | " + " | ".join(f"{_REGIME_NAMES[k[0]]} ({k[1]})" for k in keys) + " |",
              "| --- |" + " --- |" * len(keys)]
    for j, name in enumerate(finding_names):
        cells = []
        for k in keys:
            vals = [r.finding_auc[j] for r in per[k] if not math.isnan(r.finding_auc[j])]
            cells.append(f"{sum(vals) / len(vals):.3f}" if vals else "n/a")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if runs[0][1]:
        lines += ["", "Pointing: the highest-MI cell of a zone-naming sentence lies in that zone",
                  "", "| Pretraining | Hit rate | Random cell | Best fixed cell | Sentences |",
                  "| --- | --- | --- | --- | --- |"]
        names = [p.pretraining for p in runs[0][1]]
        for i, name in enumerate(names):
            ps = [pts[i] for _, pts in runs]
            lines.append(f"| {name} | {_fmt([p.hit_rate for p in ps])} | "
                         f"{_fmt([p.chance for p in ps])} | {_fmt([p.best_fixed for p in ps])} | "
                         f"{ps[0].sentences} |")
    return "\n".join(lines) + "\n"


def write_results(out_dir: Path, cfg: Config,
                  runs: list[tuple[list[RegimeResult], list[PointingResult]]],
                  finding_names: tuple[str, ...], seeds: list[int],
                  extra: dict[str, object] | None = None) -> str:
    """Write ``results.md`` and ``results.json`` under ``out_dir``; return the markdown."""
    md = results_markdown(runs, finding_names)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.md").write_text(md)
    payload = {
        "config": asdict(cfg),
        "seeds": seeds,
        "finding_names": list(finding_names),
        "runs": [
            {
                "seed": seed,
                "downstream": [{**r._asdict(), "mean_finding_auc": r.mean_finding_auc}
                               for r in res],
                "pointing": [p._asdict() for p in pts],
            }
            for seed, (res, pts) in zip(seeds, runs, strict=True)
        ],
        **(extra or {}),
    }
    (out_dir / "results.json").write_text(json.dumps(payload, indent=2, default=str))
    return md
