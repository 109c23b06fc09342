"""examples.image_text: synthetic data, tokenizer, encoders."""

from __future__ import annotations

import pytest
import torch

from examples.image_text import data as D
from examples.image_text.data import FINDINGS, ZONES, generate_synthetic, zone_cell_mask
from examples.image_text.models import ImageEncoder, TextEncoder
from examples.image_text.text import WordTokenizer


@pytest.fixture(scope="module")
def sample() -> D.ImageTextData:
    return generate_synthetic(300, seed=5)


def test_deterministic_for_a_seed_and_different_across_seeds() -> None:
    a, b = generate_synthetic(40, seed=3), generate_synthetic(40, seed=3)
    c = generate_synthetic(40, seed=4)
    assert torch.equal(a.images, b.images)
    assert a.reports == b.reports and a.sentence_zones == b.sentence_zones
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
    edema_sents = [set(t) for t in D._EDEMA_TEMPLATES]
    eff_pos = {"right": _positive_sentences(D._EFFUSION_TEMPLATES, side=("right",)),
               "left": _positive_sentences(D._EFFUSION_TEMPLATES, side=("left",))}
    for i, (sents, zones) in enumerate(zip(sample.reports, sample.sentence_zones, strict=True)):
        f = sample.findings[i].bool().tolist()
        assert sents, "every report has a sentence"
        assert len(sents) == len(zones)
        # local: exactly the labelled zones are named, each by a sentence using its words
        named = sorted(z for z in zones if z >= 0)
        assert named == [z for z in range(6) if f[z]]
        for s, z in zip(sents, zones, strict=True):
            if z >= 0:
                assert any(w in s.lower() for w in D._ZONE_WORDS[z]), (s, ZONES[z])
        if any(f[:6]):
            assert not set(sents) & set(D._OPACITY_NEGATIONS)
        # effusions
        if f[6] and f[7]:
            assert set(sents) & set(D._EFFUSION_BOTH)
        elif f[6] or f[7]:
            side = "right" if f[6] else "left"
            assert set(sents) & eff_pos[side]
        else:
            negated = ("no", "there is no")
            assert not any("effusion" in s.lower() and not s.lower().startswith(negated)
                           for s in sents)
        assert (f[8] and bool(set(sents) & set(D._DEVICE_TEMPLATES))) or (
            not f[8] and not set(sents) & set(D._DEVICE_TEMPLATES))
        assert (f[9] and bool(set(sents) & set(D._HEART_TEMPLATES))) or (
            not f[9] and not set(sents) & set(D._HEART_TEMPLATES))
        # diffuse: the edema sentence (if any) names the labelled severity, and only it
        levels = {k for k, group in enumerate(edema_sents) if set(sents) & group}
        assert levels <= {int(sample.edema[i])}
        if int(sample.edema[i]) > 0:
            assert levels == {int(sample.edema[i])}


def test_reports_are_shuffled_and_varied(sample: D.ImageTextData) -> None:
    first = [r[0] for r in sample.reports]
    assert len(set(first)) > 20
    heart_first = sum(s in D._HEART_TEMPLATES + D._HEART_NEGATIONS for s in first)
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


def test_zone_masks_cover_both_lungs_and_differ() -> None:
    m = zone_cell_mask(8)
    assert m.shape == (6, 8, 8)
    assert all(m[z].any() for z in range(6))
    assert not (m[:3].any(0) & m[3:].any(0)).any(), "right and left zones never share a cell"
    with pytest.raises(ValueError, match="grid"):
        zone_cell_mask(0)


def test_cache_roundtrip(tmp_path) -> None:
    a = generate_synthetic(12, seed=2, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.pt"))) == 1
    b = generate_synthetic(12, seed=2, cache_dir=tmp_path)
    assert torch.equal(a.images, b.images) and a.reports == b.reports
    fresh = generate_synthetic(12, seed=2)
    assert float((fresh.images - b.images).abs().max()) <= 0.5 / 255 + 1e-6


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
