"""Synthetic chest radiographs with free-text reports: the pipeline's embedded default data.

Every image is drawn from a chest-like template (thorax, two lung fields, mediastinum, heart,
ribs, noise, random pose and exposure) and carries findings of three kinds:

* **local**: an airspace opacity in one of six lung zones (right/left x upper/middle/lower),
  a left or right pleural effusion, a support device line;
* **semi-global**: an enlarged heart (cardiomegaly);
* **diffuse**: pulmonary-edema severity 0-3 (0 none, 1 vascular congestion, 2 interstitial,
  3 alveolar), the downstream task of Liao, Moyer et al. (MICCAI 2021).

Its report is a list of sentences drawn from varied templates and synonyms, with negations for
absent findings ("No pleural effusion."), uninformative sentences, in shuffled order. Sides
follow the radiological convention: the patient's right lung is on the image's left.

Images are generated in vectorised chunks (no loop over pixels or samples), reports with a
seeded ``numpy`` generator; the same ``seed`` always gives the same data.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .files import load_tensor_file, save_atomic
from .reports import report_sentences
from .sites import (
    EDEMA_LEVELS,
    FINDINGS,
    SITES,
    ZONES,
    site_cell_mask,
    zone_cell_mask,
)

__all__ = [
    "EDEMA_LEVELS",
    "FINDINGS",
    "SITES",
    "ZONES",
    "ImageTextData",
    "generate_synthetic",
    "site_cell_mask",
    "zone_cell_mask",
]


_CACHE_VERSION = 3
_NUISANCE = (0.06, 0.05)  # healthy hilar prominence, healthy lung texture (max amplitudes)
_CHUNK = 512  # images rendered per vectorised chunk (bounds peak memory; part of the data)

# ---- geometry (normalised coordinates: u horizontal, v vertical downwards, both in [-1, 1]) ----
# Lung fields as ellipses; the image-left lung is the patient's right lung.
_LUNG_CENTRE = ((-0.40, -0.05), (0.40, -0.05))  # (u, v) of patient right, patient left
_LUNG_RADII = ((0.30, 0.62), (0.28, 0.62))
# Where an opacity's centre is drawn inside its zone (before pose): inside the lung, at least
# 0.08 from the zone's edges (the pose moves a point by at most 0.08 near the zone edges).
_OPACITY_V = ((-0.55, -0.35), (-0.17, 0.17), (0.33, 0.45))


@dataclass
class ImageTextData:
    """Paired images, reports and labels.

    Attributes:
        images: ``(N, 1, S, S)`` float32 in ``[0, 1]``.
        reports: N reports, each a list of sentences.
        edema: ``(N,)`` int64 edema severity in ``0..3``; ``-1`` where unknown.
        findings: ``(N, F)`` float32 binary finding labels; ``nan`` where unknown.
        finding_names: the F column names.
        sentence_sites: per report and sentence, the index into
            :data:`~examples.image_text.sites.SITES` of the localized finding the sentence
            describes (an opacity's zone, an effusion's side, the line), else ``-1``.
    """

    images: Tensor
    reports: list[list[str]]
    edema: Tensor
    findings: Tensor
    finding_names: tuple[str, ...]
    sentence_sites: list[list[int]]

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index: Tensor | Sequence[int]) -> ImageTextData:
        """The pairs at ``index`` (a 1-D index tensor or sequence)."""
        idx = torch.as_tensor(index, dtype=torch.long)
        ids = idx.tolist()
        return ImageTextData(
            images=self.images[idx],
            reports=[self.reports[i] for i in ids],
            edema=self.edema[idx],
            findings=self.findings[idx],
            finding_names=self.finding_names,
            sentence_sites=[self.sentence_sites[i] for i in ids],
        )


def _coords(size: int) -> tuple[Tensor, Tensor]:
    c = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    v, u = torch.meshgrid(c, c, indexing="ij")
    return u, v  # (S, S) each


def _ellipse(u: Tensor, v: Tensor, cu: Tensor, cv: Tensor, ru: Tensor, rv: Tensor, edge: float):
    """Soft ellipse indicator, batched over the leading dim of the centre/radius tensors."""
    d = ((u - cu[:, None, None]) / ru[:, None, None]) ** 2 + (
        (v - cv[:, None, None]) / rv[:, None, None]
    ) ** 2
    return torch.sigmoid((1 - d) / edge)


def _smooth_noise(n: int, size: int, coarse: int, g: torch.Generator) -> Tensor:
    """Band-limited noise (N, S, S): white noise on a coarse grid, bicubic upsampled."""
    z = torch.randn(n, 1, coarse, coarse, generator=g)
    return F.interpolate(z, size=(size, size), mode="bicubic", align_corners=False)[:, 0]


def _render(
    n: int,
    size: int,
    g: torch.Generator,
    opacity: Tensor,
    effusion: Tensor,
    device: Tensor,
    cardio: Tensor,
    edema: Tensor,
) -> Tensor:
    """Render ``n`` images (N, 1, S, S) from their labels; all randomness from ``g``."""

    def unif(lo: float, hi: float, *shape: int) -> Tensor:
        return lo + (hi - lo) * torch.rand(*(shape or (n,)), generator=g)

    u, v = _coords(size)
    # Pose: small shift and scale of the whole chest.
    su, sv, sc = unif(-0.05, 0.05), unif(-0.05, 0.05), unif(0.95, 1.05)
    uu = (u[None] - su[:, None, None]) / sc[:, None, None]
    vv = (v[None] - sv[:, None, None]) / sc[:, None, None]
    zero = torch.zeros(n)

    def ell(cu: float | Tensor, cv: float | Tensor, ru: float | Tensor, rv: float | Tensor,
            edge: float = 0.04) -> Tensor:
        def t(a: float | Tensor) -> Tensor:
            return a if isinstance(a, Tensor) else zero + a
        return _ellipse(uu, vv, t(cu), t(cv), t(ru), t(rv), edge)

    thorax = ell(0.0, 0.05, 0.86, 0.95, 0.03)
    img = 0.08 + 0.42 * thorax
    lungs = []
    for side in range(2):
        (cu, cv), (ru, rv) = _LUNG_CENTRE[side], _LUNG_RADII[side]
        lungs.append(ell(cu + unif(-0.02, 0.02), cv, ru * unif(0.95, 1.05), rv, 0.05))
    lung = lungs[0] + lungs[1]
    img = img - 0.28 * lung
    # Ribs: curved periodic bands inside the thorax.
    phase = unif(0, 1)[:, None, None]
    period = unif(0.24, 0.28)[:, None, None]
    rib_v = vv - 0.35 * uu**2
    ribs = torch.clamp(torch.cos(2 * math.pi * (rib_v / period + phase)), min=0) ** 6
    img = img + 0.07 * ribs * thorax
    # Mediastinum and heart (semi-global finding: enlarged heart).
    img = img + 0.25 * ell(0.0, -0.45, 0.10, 0.50, 0.05)
    heart_ru = torch.where(cardio, unif(0.40, 0.46), unif(0.26, 0.31))
    img = img + 0.33 * ell(0.10 + 0.25 * (heart_ru - 0.28), 0.32, heart_ru, 0.26, 0.04)

    # Diffuse finding: pulmonary edema, graded, against patient-to-patient lung density.
    sev = edema.float()[:, None, None]
    img = img + unif(-0.05, 0.05)[:, None, None] * lung
    hilar = ell(-0.22, -0.02, 0.22, 0.30, 0.3) + ell(0.22, -0.02, 0.22, 0.30, 0.3)
    # every patient has some hilar prominence and lung texture of their own
    img = img + unif(0.0, _NUISANCE[0])[:, None, None] * hilar * lung
    own_texture = _smooth_noise(n, size, max(size // 3, 4), g).abs()
    img = img + unif(0.0, _NUISANCE[1])[:, None, None] * own_texture * lung
    congest = torch.tensor([0.0, 0.07, 0.09, 0.11])[edema][:, None, None]
    img = img + congest * unif(0.7, 1.3)[:, None, None] * hilar * lung
    reticular = torch.tensor([0.0, 0.0, 0.06, 0.07])[edema][:, None, None]
    texture = _smooth_noise(n, size, max(size // 3, 4), g).abs()
    img = img + reticular * texture * lung
    alveolar = (sev >= 3).float() * unif(0.10, 0.16)[:, None, None]
    patches = torch.sigmoid(2.0 * _smooth_noise(n, size, 6, g) + 1.0)
    batwing = torch.exp(-(uu.abs() / 0.5) ** 2)
    img = img + alveolar * patches * (0.5 + batwing) * lung

    # Local findings: opacities in lung zones (Gaussian blobs clipped to the lungs).
    for z in range(len(ZONES)):
        has = opacity[:, z]  # parameters are drawn for every sample: same draws, any labels
        side, third = divmod(z, 3)
        cu_l, ru_l = _LUNG_CENTRE[side][0], _LUNG_RADII[side][0]
        ou = cu_l + 0.8 * (unif(0.0, 1.0) * (2 * ru_l - 0.24) - ru_l + 0.12)
        ov = unif(*_OPACITY_V[third])
        rad = unif(0.10, 0.15)[:, None, None]
        amp = torch.where(has, unif(0.36, 0.50), zero)[:, None, None]
        blob = torch.exp(-((uu - ou[:, None, None]) ** 2 + (vv - ov[:, None, None]) ** 2) / rad**2)
        img = img + amp * blob * lungs[side]

    # Pleural effusions: dense fluid filling the lung base with a lateral meniscus.
    for side in range(2):
        has = effusion[:, side]
        cu = _LUNG_CENTRE[side][0]
        level = unif(0.22, 0.40)[:, None, None] - 0.25 * ((uu - cu).abs() / 0.3) ** 2
        base = ell(cu, 0.25, 0.34, 0.45, 0.05)
        fluid = torch.sigmoid((vv - level) / 0.035) * base * thorax
        img = img + torch.where(has, unif(0.35, 0.45), zero)[:, None, None] * fluid

    # Device: a thin bright line from the neck to the superior vena cava.
    u_top, u_tip, v_tip = unif(-0.30, -0.15), unif(-0.10, 0.02), unif(-0.25, 0.05)
    pu = uu - u_top[:, None, None]
    pv = vv + 1.0
    du, dv = (u_tip - u_top)[:, None, None], (v_tip + 1.0)[:, None, None]
    t = torch.clamp((pu * du + pv * dv) / (du**2 + dv**2), 0, 1)
    dist2 = (pu - t * du) ** 2 + (pv - t * dv) ** 2
    line = torch.exp(-dist2 / (1.6 / size) ** 2)
    img = img + torch.where(device, unif(0.45, 0.6), zero)[:, None, None] * line

    # Exposure, contrast and quantum noise.
    img = unif(0.85, 1.15)[:, None, None] * img + unif(-0.05, 0.05)[:, None, None]
    img = img + 0.05 * torch.randn(n, size, size, generator=g)
    return img.clamp(0, 1)[:, None]


def _cache_path(cache_dir: str | Path, n: int, size: int, seed: int) -> Path:
    key = hashlib.sha1(f"{_CACHE_VERSION}-{n}-{size}-{seed}".encode()).hexdigest()[:12]
    return Path(cache_dir) / f"synthetic-n{n}-s{size}-seed{seed}-{key}.pt"


def _read_cache(path: Path, n: int) -> ImageTextData:
    """The data of a cache file, refused with a ``ValueError`` naming it when it is damaged
    or holds anything but what :func:`generate_synthetic` writes (another torch file)."""
    remedy = "delete it; the data is generated anew on the next run"
    blob = load_tensor_file(path, "data cache file", remedy)
    try:
        meta = json.loads(blob["meta"])
        data = ImageTextData(
            images=blob["images"].float() / 255.0,
            reports=list(meta["reports"]),
            edema=blob["edema"],
            findings=blob["findings"],
            finding_names=FINDINGS,
            sentence_sites=list(meta["sites"]),
        )
        shapes_fit = (data.images.shape[0] == data.edema.shape[0] == data.findings.shape[0]
                      == len(data.reports) == len(data.sentence_sites) == n)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        shapes_fit = False
    if not shapes_fit:
        raise ValueError(f"data cache file {path} is not a data cache of this example (it lacks "
                         f"the images, labels or reports of {n} pairs): {remedy}")
    return data


def generate_synthetic(
    n: int,
    *,
    size: int = 64,
    seed: int = 0,
    cache_dir: str | Path | None = None,
) -> ImageTextData:
    """Generate ``n`` synthetic radiograph-report pairs with labels.

    Finding prevalences: each zone opacity 12%, each effusion 15%, device 25%,
    cardiomegaly 25%; edema severity 0/1/2/3 with probabilities 0.4/0.2/0.2/0.2.

    Args:
        n: number of pairs.
        size: image side in pixels: 64 (default), 128 or 256.
        seed: the data is a pure function of ``(n, size, seed)``.
        cache_dir: if given, the data is saved there (uint8 images) on the first call and
            loaded on later calls with the same arguments.

    Returns:
        An :class:`ImageTextData`; images hold 8-bit grey levels (multiples of 1/255).

    Example:
        >>> d = generate_synthetic(4, seed=1)
        >>> d.images.shape, d.edema.shape, d.findings.shape
        (torch.Size([4, 1, 64, 64]), torch.Size([4]), torch.Size([4, 10]))
        >>> bool((generate_synthetic(4, seed=1).images == d.images).all())
        True
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if size not in (64, 128, 256):
        raise ValueError(f"size must be 64, 128 or 256, got {size}")
    if cache_dir is not None:
        path = _cache_path(cache_dir, n, size, seed)
        if path.exists():
            return _read_cache(path, n)
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    opacity = torch.rand(n, len(ZONES), generator=g) < 0.12
    effusion = torch.rand(n, 2, generator=g) < 0.15
    device = torch.rand(n, generator=g) < 0.25
    cardio = torch.rand(n, generator=g) < 0.25
    edema = torch.multinomial(torch.tensor([0.4, 0.2, 0.2, 0.2]), n, replacement=True,
                              generator=g)
    images = torch.cat(
        [
            _render(
                min(_CHUNK, n - s), size, g, opacity[s : s + _CHUNK],
                effusion[s : s + _CHUNK], device[s : s + _CHUNK],
                cardio[s : s + _CHUNK], edema[s : s + _CHUNK],
            )
            for s in range(0, n, _CHUNK)
        ]
    )
    op_np, ef_np = opacity.numpy(), effusion.numpy()
    dev_np, car_np, ed_np = device.numpy(), cardio.numpy(), edema.numpy()
    reports, sites = [], []
    for i in range(n):
        sents, zs = report_sentences(rng, op_np[i], ef_np[i], bool(dev_np[i]), bool(car_np[i]),
                            int(ed_np[i]))
        reports.append(sents)
        sites.append(zs)
    findings = torch.cat([opacity, effusion, device[:, None], cardio[:, None]], 1).float()
    # 8-bit grey levels, as a radiograph file holds them: the same values with and without
    # the cache
    images_u8 = (images * 255.0).round().to(torch.uint8)
    data = ImageTextData(images_u8.float() / 255.0, reports, edema, findings, FINDINGS, sites)
    if cache_dir is not None:
        path = _cache_path(cache_dir, n, size, seed)
        save_atomic(
            path,
            {
                "images": images_u8,
                "edema": edema,
                "findings": findings,
                "meta": json.dumps({"reports": reports, "sites": sites}),
            },
        )
    return data
