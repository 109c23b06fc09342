"""Where the MI is: per-cell MI maps of a sentence, the pointing score, and the figure.

For every test sentence that describes a localized finding (an opacity's zone, an effusion's
side, the central line; :data:`~examples.image_text.data.SITES`), the **pointing score** asks
whether the cell with the highest pointwise MI with the sentence lies in the finding's site
(:func:`~examples.image_text.data.site_cell_mask`). Two pointers that ignore image and
sentence are the baselines: a uniformly random cell, and the single cell that is right most
often on the test sentences (the best fixed cell, fitted on the test set itself).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import Config
from .evaluate import encode_cells
from .objective import PretrainObjective
from .sites import SITES, ZONES, site_cell_mask
from .train import Datasets, EncodedPairs, Encoders, resolve_device

__all__ = ["KINDS", "PointingResult", "cell_mi_figure", "pointing", "sentence_cell_maps",
           "site_kind"]

#: Kinds of localized finding the pointing score reports separately (``all``: every one).
KINDS = ("all", "opacity", "effusion", "device")


def site_kind(site: int) -> str:
    """``"opacity"``, ``"effusion"`` or ``"device"``: the kind of a site (an index into
    :data:`~examples.image_text.sites.SITES`).

    Example:
        >>> [site_kind(s) for s in (0, 6, 8, 9)]
        ['opacity', 'effusion', 'effusion', 'device']
    """
    if site < len(ZONES):
        return "opacity"
    return "device" if SITES[site] == "device" else "effusion"


class PointingResult(NamedTuple):
    """Pointing per kind of finding (keys: ``all``, ``opacity``, ``effusion``, ``device``;
    rates in [0, 1]).

    Attributes:
        pretraining: the encoder's label.
        hit_rate: share of sentences whose highest-MI cell lies in the finding's site.
        random_cell: expected hit rate of a uniformly random cell.
        best_fixed: hit rate of the single best cell for every sentence of the kind.
        sentences: sentences of the kind.
    """

    pretraining: str
    hit_rate: dict[str, float]
    random_cell: dict[str, float]
    best_fixed: dict[str, float]
    sentences: dict[str, int]


@torch.no_grad()
def sentence_cell_maps(model: Encoders, objective: PretrainObjective, test: EncodedPairs,
                       image_idx: Tensor, sentence_slot: Tensor, device: torch.device,
                       reference: int = 256, chunk: int = 256) -> Tensor:
    """Per-cell pointwise MI maps ``(K, M, M)`` of K (image, sentence) pairs of ``test``.

    Each cell's score for the sentence is normalised by the log-mean-exp of that cell's score
    over the first ``reference`` test images (:meth:`PretrainObjective.cell_map`).
    """
    model.eval()
    objective.eval()
    ref_cells = encode_cells(model.image, test.images[:reference], device)
    maps = []
    for s in range(0, image_idx.numel(), chunk):
        img, slot = image_idx[s : s + chunk], sentence_slot[s : s + chunk]
        own = encode_cells(model.image, test.images[img], device)
        text = model.text(test.sentences[img, slot].to(device))
        maps.append(objective.cell_map(own, text, reference=ref_cells).cpu())
    return torch.cat(maps)


def _rates(hits: Tensor, masks: Tensor) -> tuple[float, float, float]:
    """(hit rate, random cell, best fixed cell) of hits ``(K,)`` against masks ``(K, P)``."""
    m = masks.double()
    return float(hits.double().mean()), float(m.mean()), float(m.mean(0).max())


def pointing(cfg: Config, ds: Datasets, model: Encoders, objective: PretrainObjective,
             pretraining: str) -> PointingResult:
    """How often the highest-MI cell of a localized finding's sentence lies in its site."""
    device = resolve_device(cfg.device)
    model.to(device)
    objective.to(device)
    te = ds.test
    img, slot = torch.nonzero(te.sites >= 0, as_tuple=True)
    if img.numel() == 0:
        nan = {k: float("nan") for k in KINDS}
        return PointingResult(pretraining, nan, nan, nan, dict.fromkeys(KINDS, 0))
    maps = sentence_cell_maps(model, objective, te, img, slot, device)
    m = maps.shape[-1]
    sites = te.sites[img, slot]
    masks = site_cell_mask(m).reshape(len(SITES), m * m)[sites]  # (K, P)
    best = maps.reshape(maps.shape[0], -1).argmax(-1)
    hits = masks[torch.arange(best.numel()), best]
    kinds = [site_kind(int(s)) for s in sites]
    out: tuple[dict, dict, dict, dict] = ({}, {}, {}, {})
    for kind in KINDS:
        sel = torch.tensor([kind in ("all", k) for k in kinds])
        if not bool(sel.any()):
            rates = (float("nan"),) * 3
        else:
            rates = _rates(hits[sel], masks[sel])
        for d, v in zip(out, (*rates, int(sel.sum())), strict=True):
            d[kind] = v
    return PointingResult(pretraining, *out)


def _examples(te: EncodedPairs, count: int) -> tuple[Tensor, Tensor]:
    """(image, slot) of up to ``count`` sentences of distinct images and sites, kinds
    alternating."""
    img, slot = torch.nonzero(te.sites >= 0, as_tuple=True)
    chosen: list[int] = []
    seen: set[int] = set()
    images: set[int] = set()
    for want in ("opacity", "effusion", "device", "opacity", "opacity", "effusion"):
        for k in range(img.numel()):
            site = int(te.sites[img[k], slot[k]])
            if site not in seen and int(img[k]) not in images and site_kind(site) == want:
                seen.add(site)
                images.add(int(img[k]))
                chosen.append(k)
                break
        if len(chosen) == count:
            break
    ids = torch.tensor(chosen, dtype=torch.long)
    return img[ids], slot[ids]


def cell_mi_figure(path: Path, ds: Datasets, models: dict[str, tuple[Encoders, PretrainObjective]],
                   device: torch.device, examples: int = 5) -> Path | None:
    """Save a figure: test images with a localized finding's sentence, and each model's
    per-cell MI map of it (box: the finding's site; cross: the highest-MI cell)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Rectangle
    except ImportError:
        return None
    te = ds.test
    img, slot = _examples(te, examples)
    if img.numel() == 0:
        return None
    cols = img.numel()
    fig, axes = plt.subplots(1 + len(models), cols, figsize=(2.4 * cols, 2.5 * (1 + len(models))),
                             squeeze=False)
    size = te.images.shape[-1]
    for col in range(cols):
        ax = axes[0, col]
        ax.imshow(te.images[img[col], 0].numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title("\n".join(_wrap(ds.tokenizer.decode(te.sentences[img[col], slot[col]]), 26)),
                     fontsize=7)
        ax.axis("off")
    for row, (name, (model, objective)) in enumerate(models.items(), start=1):
        maps = sentence_cell_maps(model, objective, te, img, slot, device)
        m = maps.shape[-1]
        smask = site_cell_mask(m)
        cell = size / m
        for col in range(cols):
            ax = axes[row, col]
            ax.imshow(te.images[img[col], 0].numpy(), cmap="gray", vmin=0, vmax=1)
            up = F.interpolate(maps[col][None, None], size=(size, size), mode="nearest")[0, 0]
            ax.imshow(up.numpy(), cmap="inferno", alpha=0.55)
            r, c = torch.nonzero(smask[int(te.sites[img[col], slot[col]])], as_tuple=True)
            ax.add_patch(Rectangle((float(c.min()) * cell - 0.5, float(r.min()) * cell - 0.5),
                                   float(c.max() - c.min() + 1) * cell,
                                   float(r.max() - r.min() + 1) * cell,
                                   fill=False, edgecolor="cyan", linewidth=1))
            best = int(maps[col].flatten().argmax())
            ax.plot((best % m + 0.5) * cell - 0.5, (best // m + 0.5) * cell - 0.5, "c+",
                    markersize=9)
            ax.set_title(f"{name}", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")  # the suffix names the format
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)  # an interrupted write leaves the old figure, not half of one
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
