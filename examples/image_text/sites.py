"""The findings' names and where they lie: zones, sites, and their cells on a feature grid.

Normalised image coordinates: u horizontal, v vertical downwards, both in [-1, 1]. The image's
left is the patient's right (the radiological convention).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["EDEMA_LEVELS", "FINDINGS", "SITES", "ZONES", "site_cell_mask", "zone_cell_mask"]

#: The six lung zones; index ``z`` is finding ``opacity_<zone>``. "right" is the patient's right.
ZONES: tuple[str, ...] = (
    "right_upper",
    "right_middle",
    "right_lower",
    "left_upper",
    "left_middle",
    "left_lower",
)
#: Binary findings, in the column order of :attr:`~examples.image_text.data.ImageTextData.findings`.
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

# The zones tile the chest's central square [-0.75, 0.75]^2: two sides (image left = patient
# right) by three heights. The boundaries lie on cell boundaries of 4x4, 8x8 and 16x16 grids,
# so a zone is a set of whole cells and a finding drawn in it has its peak cell there.
_SIDE_U = ((-0.75, 0.0), (0.0, 0.75))  # patient right (image left), patient left
_ZONE_V = ((-0.75, -0.25), (-0.25, 0.25), (0.25, 0.75))  # upper, middle, lower
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
