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

#: The six lung zones; index ``z`` is finding ``opacity_<zone>``. "right" is the patient's right.
ZONES: tuple[str, ...] = (
    "right_upper",
    "right_middle",
    "right_lower",
    "left_upper",
    "left_middle",
    "left_lower",
)
#: Binary findings, in the column order of :attr:`ImageTextData.findings`.
FINDINGS: tuple[str, ...] = (
    *(f"opacity_{z}" for z in ZONES),
    "effusion_right",
    "effusion_left",
    "device",
    "cardiomegaly",
)
#: The sites of localized findings (the six opacity zones, the effusions, the line), indexed by
#: ``ImageTextData.sentence_sites``; :func:`site_cell_mask` gives their cells.
SITES: tuple[str, ...] = (*ZONES, "effusion_right", "effusion_left", "effusion_both", "device")
#: Edema severity names, index = label.
EDEMA_LEVELS: tuple[str, ...] = ("none", "vascular congestion", "interstitial", "alveolar")

_CACHE_VERSION = 3
_NUISANCE = (0.06, 0.05)  # healthy hilar prominence, healthy lung texture (max amplitudes)
_CHUNK = 512  # images rendered per vectorised chunk (bounds peak memory; part of the data)

# ---- geometry (normalised coordinates: u horizontal, v vertical downwards, both in [-1, 1]) ----
# Lung fields as ellipses; the image-left lung is the patient's right lung.
_LUNG_CENTRE = ((-0.40, -0.05), (0.40, -0.05))  # (u, v) of patient right, patient left
_LUNG_RADII = ((0.30, 0.62), (0.28, 0.62))
# The zones tile the chest's central square [-0.75, 0.75]^2: two sides (image left = patient
# right) by three heights. The boundaries lie on cell boundaries of 4x4, 8x8 and 16x16 grids,
# so a zone is a set of whole cells and a finding drawn in it has its peak cell there.
_SIDE_U = ((-0.75, 0.0), (0.0, 0.75))  # patient right (image left), patient left
_ZONE_V = ((-0.75, -0.25), (-0.25, 0.25), (0.25, 0.75))  # upper, middle, lower
# Where an opacity's centre is drawn inside its zone (before pose): inside the lung, at least
# 0.08 from the zone's edges (the pose moves a point by at most 0.08 near the zone edges).
_OPACITY_V = ((-0.55, -0.35), (-0.17, 0.17), (0.33, 0.45))
# The central line runs from the neck down to the superior vena cava: this box holds it.
_DEVICE_BOX = (-0.5, 0.25, -1.0, 0.0)  # (u0, u1, v0, v1)


def _site_box(site: int) -> tuple[float, float, float, float]:
    """(u0, u1, v0, v1) of a site's box: a zone, an effusion (the lung base), the line."""
    name = SITES[site]
    if site < len(ZONES):
        side, third = divmod(site, 3)
        return (*_SIDE_U[side], *_ZONE_V[third])
    if name == "effusion_right":
        return (*_SIDE_U[0], *_ZONE_V[2])
    if name == "effusion_left":
        return (*_SIDE_U[1], *_ZONE_V[2])
    if name == "effusion_both":
        return (_SIDE_U[0][0], _SIDE_U[1][1], *_ZONE_V[2])
    return _DEVICE_BOX


def site_cell_mask(grid: int) -> Tensor:
    """Which cells of a ``grid x grid`` feature map belong to each site of :data:`SITES`.

    A cell belongs to a site when its centre lies in the site's box (half-open, so the six
    zones never share a cell): the zones tile ``[-0.75, 0.75]^2`` in normalised image
    coordinates (two sides, three heights; the patient's right is the image's left), an
    effusion is the lower zone of its side (both sides for ``effusion_both``), the device is
    the box its line runs through from the neck to the superior vena cava. Used by the
    pointing score.

    Args:
        grid: cells per side of the local feature block (8 for 64x64 images).

    Returns:
        Boolean tensor of shape ``(len(SITES), grid, grid)``.

    Raises:
        ValueError: ``grid < 1``.

    Example:
        >>> m = site_cell_mask(8)
        >>> m.shape, int(m[0].sum()), bool(m[0, 1, 1]), bool(m[0, 1, 6])
        (torch.Size([10, 8, 8]), 6, True, False)
    """
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 1:
        raise ValueError(f"grid must be a positive int, got {grid!r}")
    centres = (torch.arange(grid, dtype=torch.float64) + 0.5) / grid * 2 - 1
    masks = torch.zeros(len(SITES), grid, grid, dtype=torch.bool)
    for k in range(len(SITES)):
        u0, u1, v0, v1 = _site_box(k)
        in_u = (centres >= u0) & (centres < u1)
        in_v = (centres >= v0) & (centres < v1)
        masks[k] = in_v[:, None] & in_u[None, :]
    return masks


def zone_cell_mask(grid: int) -> Tensor:
    """The cells of each lung zone: the first six masks of :func:`site_cell_mask`.

    Example:
        >>> m = zone_cell_mask(8)
        >>> m.shape, bool((m.sum(0) <= 1).all())  # the zones never share a cell
        (torch.Size([6, 8, 8]), True)
    """
    return site_cell_mask(grid)[: len(ZONES)]


# ---- reports ----
_ZONE_WORDS: dict[int, tuple[str, ...]] = {
    0: ("right upper zone", "right upper lobe", "right apex", "right upper lung"),
    1: ("right mid zone", "right middle lobe", "right midlung", "right perihilar region"),
    2: ("right lower zone", "right lower lobe", "right base", "right lung base"),
    3: ("left upper zone", "left upper lobe", "left apex", "left upper lung"),
    4: ("left mid zone", "lingula", "left midlung", "left perihilar region"),
    5: ("left lower zone", "left lower lobe", "left base", "left lung base"),
}
_OPACITY_TEMPLATES = (
    "Focal opacity in the {zone}.",
    "There is a consolidation in the {zone}.",
    "Patchy airspace opacity is seen in the {zone}.",
    "New opacification of the {zone}, concerning for pneumonia.",
    "{Zone} consolidation.",
)
_OPACITY_NEGATIONS = (
    "No focal consolidation.",
    "No focal airspace opacity.",
    "There is no consolidation.",
    "Lungs are without focal opacity.",
)
_EFFUSION_TEMPLATES = (
    "Small {side} pleural effusion.",
    "There is a {side} pleural effusion.",
    "{Side}-sided pleural effusion is present.",
    "Blunting of the {side} costophrenic angle, consistent with effusion.",
)
_EFFUSION_BOTH = (
    "Bilateral pleural effusions.",
    "Small bilateral pleural effusions are present.",
)
_EFFUSION_NEGATIONS = (
    "No pleural effusion.",
    "There is no pleural effusion.",
    "No effusion is seen.",
    "Costophrenic angles are sharp.",
)
_DEVICE_TEMPLATES = (
    "A central venous catheter terminates in the superior vena cava.",
    "Right internal jugular line is in place.",
    "Support line with tip projecting over the cavoatrial junction.",
    "A catheter is seen, tip in the mid SVC.",
)
_DEVICE_NEGATIONS = (
    "No lines or tubes.",
    "No support devices are seen.",
)
_HEART_TEMPLATES = (
    "The heart is enlarged.",
    "Cardiomegaly.",
    "Enlarged cardiac silhouette.",
    "Moderate cardiomegaly is present.",
)
_HEART_NEGATIONS = (
    "Heart size is normal.",
    "The cardiac silhouette is within normal limits.",
    "Normal heart size.",
)
_EDEMA_TEMPLATES: tuple[tuple[str, ...], ...] = (
    ("No pulmonary edema.", "No evidence of edema.", "There is no pulmonary vascular congestion."),
    (
        "Mild pulmonary vascular congestion.",
        "Pulmonary vascular engorgement is noted.",
        "Mild vascular congestion without frank edema.",
    ),
    (
        "Interstitial pulmonary edema.",
        "Moderate pulmonary edema with interstitial markings.",
        "Increased interstitial markings consistent with edema.",
    ),
    (
        "Alveolar pulmonary edema.",
        "Severe pulmonary edema.",
        "Diffuse airspace opacities consistent with alveolar edema.",
    ),
)
_FILLER = (
    "PA and lateral views of the chest.",
    "Comparison is made to the prior study.",
    "No pneumothorax.",
    "The osseous structures are unremarkable.",
    "Mediastinal contours are stable.",
    "Portable AP view of the chest.",
)


@dataclass
class ImageTextData:
    """Paired images, reports and labels.

    Attributes:
        images: ``(N, 1, S, S)`` float32 in ``[0, 1]``.
        reports: N reports, each a list of sentences.
        edema: ``(N,)`` int64 edema severity in ``0..3``; ``-1`` where unknown.
        findings: ``(N, F)`` float32 binary finding labels; ``nan`` where unknown.
        finding_names: the F column names.
        sentence_sites: per report and sentence, the index into :data:`SITES` of the
            localized finding the sentence describes (an opacity's zone, an effusion's side,
            the line), else ``-1``.
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


def _report(
    rng: np.random.Generator,
    opacity: np.ndarray,
    effusion: np.ndarray,
    device: bool,
    cardio: bool,
    edema: int,
) -> tuple[list[str], list[int]]:
    """One report: its sentences and the site (index into :data:`SITES`) of the finding each
    sentence describes (-1: none, a negation, a global finding), shuffled together."""

    def pick(options: Sequence[str]) -> str:
        return options[int(rng.integers(len(options)))]

    out: list[tuple[str, int]] = []
    zones = np.flatnonzero(opacity)
    for z in zones:
        zone = pick(_ZONE_WORDS[int(z)])
        tmpl = pick(_OPACITY_TEMPLATES)
        out.append((tmpl.format(zone=zone, Zone=zone[0].upper() + zone[1:]), int(z)))
    if len(zones) == 0 and rng.random() < 0.7:
        out.append((pick(_OPACITY_NEGATIONS), -1))
    if effusion[0] and effusion[1]:
        out.append((pick(_EFFUSION_BOTH), SITES.index("effusion_both")))
    elif effusion.any():
        side = "right" if effusion[0] else "left"
        tmpl = pick(_EFFUSION_TEMPLATES)
        out.append((tmpl.format(side=side, Side=side.capitalize()),
                    SITES.index(f"effusion_{side}")))
    elif rng.random() < 0.7:
        out.append((pick(_EFFUSION_NEGATIONS), -1))
    if device:
        out.append((pick(_DEVICE_TEMPLATES), SITES.index("device")))
    elif rng.random() < 0.3:
        out.append((pick(_DEVICE_NEGATIONS), -1))
    if cardio:
        out.append((pick(_HEART_TEMPLATES), -1))
    elif rng.random() < 0.6:
        out.append((pick(_HEART_NEGATIONS), -1))
    if edema > 0 or rng.random() < 0.8:
        out.append((pick(_EDEMA_TEMPLATES[edema]), -1))
    n_filler = int(rng.integers(0, 3))
    for k in rng.choice(len(_FILLER), size=n_filler, replace=False):
        out.append((_FILLER[int(k)], -1))
    if not out:  # nothing present and nothing negated: a normal study
        out.append(("No acute cardiopulmonary process.", -1))
    order = rng.permutation(len(out))
    return [out[i][0] for i in order], [out[i][1] for i in order]


def _cache_path(cache_dir: str | Path, n: int, size: int, seed: int) -> Path:
    key = hashlib.sha1(f"{_CACHE_VERSION}-{n}-{size}-{seed}".encode()).hexdigest()[:12]
    return Path(cache_dir) / f"synthetic-n{n}-s{size}-seed{seed}-{key}.pt"


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
            blob = torch.load(path, weights_only=True)
            meta = json.loads(blob["meta"])
            return ImageTextData(
                images=blob["images"].float() / 255.0,
                reports=meta["reports"],
                edema=blob["edema"],
                findings=blob["findings"],
                finding_names=FINDINGS,
                sentence_sites=meta["sites"],
            )
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
        sents, zs = _report(rng, op_np[i], ef_np[i], bool(dev_np[i]), bool(car_np[i]),
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
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "images": images_u8,
                "edema": edema,
                "findings": findings,
                "meta": json.dumps({"reports": reports, "sites": sites}),
            },
            path,
        )
    return data
