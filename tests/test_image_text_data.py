"""examples.image_text: synthetic data, tokenizer, encoders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from examples.image_text import data as D
from examples.image_text import reports as R
from examples.image_text.data import (
    FINDINGS,
    SITES,
    ZONES,
    generate_synthetic,
    site_cell_mask,
    zone_cell_mask,
)
from examples.image_text.models import ImageEncoder, TextEncoder
from examples.image_text.text import WordTokenizer


@pytest.fixture(scope="module")
def sample() -> D.ImageTextData:
    return generate_synthetic(300, seed=5)


def test_deterministic_for_a_seed_and_different_across_seeds() -> None:
    a, b = generate_synthetic(40, seed=3), generate_synthetic(40, seed=3)
    c = generate_synthetic(40, seed=4)
    assert torch.equal(a.images, b.images)
    assert a.reports == b.reports and a.sentence_sites == b.sentence_sites
    assert torch.equal(a.findings, b.findings) and torch.equal(a.edema, b.edema)
    assert not torch.equal(a.images, c.images)
    assert a.reports != c.reports


def test_shapes_ranges_and_sizes() -> None:
    d = generate_synthetic(5, size=128, seed=0)
    assert d.images.shape == (5, 1, 128, 128) and d.images.dtype == torch.float32
    assert float(d.images.min()) >= 0.0 and float(d.images.max()) <= 1.0
    assert d.findings.shape == (5, len(FINDINGS)) and d.finding_names == FINDINGS
    assert set(d.edema.tolist()) <= {0, 1, 2, 3}


def _positive_sentences(templates: tuple[str, ...], **fill: tuple[str, ...]) -> set[str]:
    out = set()
    for t in templates:
        if not fill:
            out.add(t)
            continue
        (key, values), = fill.items()
        for v in values:
            out.add(t.format(**{key: v, key.capitalize(): v[0].upper() + v[1:]}))
    return out


def test_reports_agree_with_labels(sample: D.ImageTextData) -> None:
    edema_sents = [set(t) for t in R._EDEMA_TEMPLATES]
    eff_pos = {"right": _positive_sentences(R._EFFUSION_TEMPLATES, side=("right",)),
               "left": _positive_sentences(R._EFFUSION_TEMPLATES, side=("left",))}
    for i, (sents, sites) in enumerate(zip(sample.reports, sample.sentence_sites, strict=True)):
        f = sample.findings[i].bool().tolist()
        assert sents, "every report has a sentence"
        assert len(sents) == len(sites)
        # local: exactly the labelled zones are named, each by a sentence using its words
        named = sorted(z for z in sites if 0 <= z < 6)
        assert named == [z for z in range(6) if f[z]]
        for s, z in zip(sents, sites, strict=True):
            if 0 <= z < 6:
                assert any(w in s.lower() for w in R._ZONE_WORDS[z]), (s, ZONES[z])
        # the effusion and device sentences carry their sites, and only they
        want = ({SITES.index("effusion_both")} if f[6] and f[7] else
                {SITES.index("effusion_right")} if f[6] else
                {SITES.index("effusion_left")} if f[7] else set())
        assert {z for z in sites if z >= 6} == want | ({SITES.index("device")} if f[8] else set())
        if any(f[:6]):
            assert not set(sents) & set(R._OPACITY_NEGATIONS)
        # effusions
        if f[6] and f[7]:
            assert set(sents) & set(R._EFFUSION_BOTH)
        elif f[6] or f[7]:
            side = "right" if f[6] else "left"
            assert set(sents) & eff_pos[side]
        else:
            negated = ("no", "there is no")
            assert not any("effusion" in s.lower() and not s.lower().startswith(negated)
                           for s in sents)
        assert (f[8] and bool(set(sents) & set(R._DEVICE_TEMPLATES))) or (
            not f[8] and not set(sents) & set(R._DEVICE_TEMPLATES))
        assert (f[9] and bool(set(sents) & set(R._HEART_TEMPLATES))) or (
            not f[9] and not set(sents) & set(R._HEART_TEMPLATES))
        # diffuse: the edema sentence (if any) names the labelled severity, and only it
        levels = {k for k, group in enumerate(edema_sents) if set(sents) & group}
        assert levels <= {int(sample.edema[i])}
        if int(sample.edema[i]) > 0:
            assert levels == {int(sample.edema[i])}


def test_reports_are_shuffled_and_varied(sample: D.ImageTextData) -> None:
    first = [r[0] for r in sample.reports]
    assert len(set(first)) > 20
    heart_first = sum(s in R._HEART_TEMPLATES + R._HEART_NEGATIONS for s in first)
    assert 0 < heart_first < len(first) // 2


def test_label_prevalences(sample: D.ImageTextData) -> None:
    prev = sample.findings.mean(0)
    assert torch.all(prev[:6] > 0.04) and torch.all(prev[:6] < 0.25)
    counts = torch.bincount(sample.edema, minlength=4)
    assert torch.all(counts > 30)


@pytest.mark.parametrize("zone", range(6))
def test_opacity_is_drawn_inside_its_zone(zone: int) -> None:
    n = 16
    opacity = torch.zeros(n, 6, dtype=torch.bool)
    with_op = opacity.clone()
    with_op[:, zone] = True
    off = torch.zeros(n, dtype=torch.bool)
    args = (torch.zeros(n, 2, dtype=torch.bool), off, off, torch.zeros(n, dtype=torch.long))
    base = D._render(n, 64, torch.Generator().manual_seed(1), opacity, *args)
    # the opacity draws happen after every draw of the base template, so the base is equal
    lit = D._render(n, 64, torch.Generator().manual_seed(1), with_op, *args)
    diff = (lit - base)[:, 0]
    assert float(diff.min()) > -1e-6
    cells = torch.nn.functional.avg_pool2d(diff[:, None], 8)[:, 0].reshape(n, 64)
    best = cells.argmax(-1)
    mask = zone_cell_mask(8)[zone].reshape(64)
    assert bool(mask[best].all()), f"zone {ZONES[zone]}: peak cells {best.tolist()}"


def test_zone_masks_tile_the_lungs_without_overlap() -> None:
    for grid in (4, 8, 16):
        m = zone_cell_mask(grid)
        assert m.shape == (6, grid, grid)
        assert all(m[z].any() for z in range(6))
        assert bool((m.sum(0) <= 1).all()), "zones never share a cell"
        if grid >= 8:  # every zone the same number of cells: one chance for a random pointer
            assert len({int(m[z].sum()) for z in range(6)}) == 1
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="grid must be a positive int"):
            site_cell_mask(bad)


def _render_one(site: int, n: int = 12, seed: int = 1) -> torch.Tensor:
    """Images with only the finding of ``site`` minus the same images without it."""
    opacity = torch.zeros(n, 6, dtype=torch.bool)
    effusion = torch.zeros(n, 2, dtype=torch.bool)
    device = torch.zeros(n, dtype=torch.bool)
    name = SITES[site]
    lit_op, lit_ef, lit_dev = opacity.clone(), effusion.clone(), device.clone()
    if site < 6:
        lit_op[:, site] = True
    elif name == "device":
        lit_dev[:] = True
    else:
        lit_ef[:, 0] = name in ("effusion_right", "effusion_both")
        lit_ef[:, 1] = name in ("effusion_left", "effusion_both")
    rest = (torch.zeros(n, dtype=torch.bool), torch.zeros(n, dtype=torch.long))
    base = D._render(n, 64, torch.Generator().manual_seed(seed), opacity, effusion, device, *rest)
    lit = D._render(n, 64, torch.Generator().manual_seed(seed), lit_op, lit_ef, lit_dev, *rest)
    return (lit - base)[:, 0].clamp(min=0)


@pytest.mark.parametrize("site", range(len(SITES)))
def test_label_sentence_and_pointing_mask_agree(site: int) -> None:
    """A finding drawn at a known site: its label, its sentence and its mask say the same."""
    name = SITES[site]
    opacity = np.zeros(6, dtype=bool)
    effusion = np.zeros(2, dtype=bool)
    if site < 6:
        opacity[site] = True
    elif name.startswith("effusion"):
        effusion[:] = [name != "effusion_left", name != "effusion_right"]
    device = name == "device"
    # the label
    findings = [*opacity, *effusion, device]
    label = {FINDINGS[k] for k, v in enumerate(findings) if v}
    want = ({f"opacity_{name}"} if site < 6 else {"device"} if device else
            {f"effusion_{s}" for s, on in zip(("right", "left"), effusion, strict=True) if on})
    assert label == want
    # the sentence: its site, and the side it names ("right" = the patient's right)
    for seed in range(20):
        rng = np.random.default_rng(seed)
        sents, sites = R.report_sentences(rng, opacity, effusion, device, False, 0)
        (sentence,) = [s for s, z in zip(sents, sites, strict=True) if z == site]
        words = sentence.lower()
        if name.startswith(("right", "effusion_right")):
            assert "right" in words and "left" not in words, sentence
        elif name.startswith(("left", "effusion_left")):
            assert ("left" in words or "lingula" in words) and "right" not in words, sentence
    # the mask: where the finding is drawn. Patient's right = the image's left columns.
    mask = site_cell_mask(8)[site]
    cols = torch.nonzero(mask, as_tuple=True)[1]
    if "right" in name:
        assert bool((cols < 4).all())
    elif "left" in name:
        assert bool((cols >= 4).all())
    diff = _render_one(site)
    energy = torch.nn.functional.avg_pool2d(diff[:, None], 8)[:, 0]  # (n, 8, 8)
    peak = energy.flatten(1).argmax(-1)
    assert bool(mask.flatten()[peak].all()), f"{name}: peak cells {peak.tolist()}"
    inside = (energy * mask).sum((1, 2)) / energy.sum((1, 2))
    assert float(inside.min()) > 0.5, f"{name}: share inside its mask {inside.tolist()}"



def test_cache_roundtrip(tmp_path) -> None:
    a = generate_synthetic(12, seed=2, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.pt"))) == 1
    b = generate_synthetic(12, seed=2, cache_dir=tmp_path)
    assert torch.equal(a.images, b.images) and a.reports == b.reports
    fresh = generate_synthetic(12, seed=2)
    assert torch.equal(fresh.images, b.images)  # 8-bit levels with or without the cache


@pytest.mark.parametrize("kwargs, match", [({"n": 0}, "n must"), ({"n": 4, "size": 100}, "size")])
def test_generator_rejects_bad_arguments(kwargs, match) -> None:
    n = kwargs.pop("n")
    with pytest.raises(ValueError, match=match):
        generate_synthetic(n, **kwargs)


def test_tokenizer_roundtrip_and_unknowns() -> None:
    tok = WordTokenizer.build(["No pleural effusion.", "Small left effusion."])
    assert tok.vocab[:2] == ("<pad>", "<unk>")
    ids = tok.encode(["small left effusion.", "zebra"], max_len=3)
    assert ids.tolist()[0] == [tok.index["small"], tok.index["left"], tok.index["effusion"]]
    assert ids.tolist()[1] == [1, 0, 0]
    with pytest.raises(ValueError, match="max_len"):
        tok.encode(["x"], 0)


def test_image_encoder_grid_and_errors() -> None:
    enc = ImageEncoder(128, grid=8, width=4, dim=8)
    f = enc(torch.rand(2, 1, 128, 128))
    assert f.local.shape == (2, 8, 8, 8) and f.pooled.shape == (2, 8)
    torch.testing.assert_close(f.pooled, f.local.mean((1, 2)))
    with pytest.raises(ValueError, match=r"images: expected shape \(B, 1, 128, 128\)"):
        enc(torch.rand(2, 1, 64, 64))
    with pytest.raises(ValueError, match="power of two"):
        ImageEncoder(96, grid=8)


def test_text_encoder_ignores_padding_and_length() -> None:
    torch.manual_seed(0)
    enc = TextEncoder(30, dim=16, layers=1, heads=2, max_len=12).eval()
    ids = torch.tensor([[5, 6, 7, 0, 0, 0]])
    longer = torch.tensor([[5, 6, 7, 0, 0, 0, 0, 0, 0]])
    torch.testing.assert_close(enc(ids), enc(longer), atol=1e-5, rtol=1e-5)
    assert torch.isfinite(enc(torch.zeros(1, 4, dtype=torch.long))).all()
    with pytest.raises(ValueError, match="ids"):
        enc(torch.zeros(1, 13, dtype=torch.long))
