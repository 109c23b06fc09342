"""The reports of the synthetic data: sentence templates with synonyms, negations, filler.

A report lists one sentence per finding present (an opacity names its zone, an effusion its
side; "right" is the patient's right), negations for some absent findings, an edema sentence,
uninformative sentences, in shuffled order. Each sentence carries the site of the localized
finding it describes (:data:`~examples.image_text.data.SITES`), or -1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .sites import SITES

__all__ = ["report_sentences"]

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



def report_sentences(
    rng: np.random.Generator,
    opacity: np.ndarray,
    effusion: np.ndarray,
    device: bool,
    cardio: bool,
    edema: int,
) -> tuple[list[str], list[int]]:
    """One report: its sentences and the site of the finding each sentence describes (an
    index into :data:`~examples.image_text.sites.SITES`; -1: none, a negation, a global
    finding), shuffled together."""

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
