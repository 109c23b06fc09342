"""examples.image_text.mimic on a miniature MIMIC-CXR-JPG layout generated here."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from examples.image_text.mimic import (
    CHEXPERT_FINDINGS,
    load_mimic_cxr,
    read_grayscale,
    report_sentences,
)

REPORT_A = "\n".join([
    "                                 FINAL REPORT",
    " EXAMINATION:  CHEST (PA AND LAT)",
    "",
    " INDICATION:  ___F with cough",
    "",
    " FINDINGS:",
    " ",  # MIMIC reports have whitespace-only lines
    " Mild pulmonary vascular congestion.  Small left pleural",
    " effusion is present. No pneumothorax.",
    "",
    " IMPRESSION:",
    " ",
    " 1. Mild congestion.",
    " 2. Small left effusion.",
    "",
])
REPORT_B = "FINDINGS: Heart size is normal. Lungs are clear.\n"


def _study(root: Path, subject: int, study: int) -> Path:
    d = root / "files" / f"p{str(subject)[:2]}" / f"p{subject}" / f"s{study}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _write_report(root: Path, subject: int, study: int, text: str) -> None:
    d = root / "files" / f"p{str(subject)[:2]}" / f"p{subject}"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"s{study}.txt").write_text(text)


@pytest.fixture()
def mimic(tmp_path: Path) -> Path:
    root = tmp_path / "mimic-cxr-jpg"
    rng = np.random.default_rng(0)
    # study 1: two 8-bit JPEG views; study 2: one 16-bit PNG with values near the top
    d1 = _study(root, 10000032, 50000001)
    for k in range(2):
        Image.fromarray(rng.integers(0, 256, (40, 48), dtype=np.uint8)).save(d1 / f"v{k}.jpg")
    d2 = _study(root, 10000033, 50000002)
    arr16 = np.full((32, 32), 60000, dtype=np.uint16)
    arr16[:16] = 65535
    Image.fromarray(arr16).save(d2 / "v0.png")
    _write_report(root, 10000032, 50000001, REPORT_A)
    _write_report(root, 10000033, 50000002, REPORT_B)
    header = "subject_id,study_id," + ",".join(CHEXPERT_FINDINGS)
    row1 = ["10000032", "50000001"] + [""] * len(CHEXPERT_FINDINGS)
    row1[2 + CHEXPERT_FINDINGS.index("Pleural Effusion")] = "1.0"
    row1[2 + CHEXPERT_FINDINGS.index("Edema")] = "-1.0"
    row2 = ["10000033", "50000002"] + ["0.0"] * len(CHEXPERT_FINDINGS)
    (root / "mimic-cxr-2.0.0-chexpert.csv").write_text(
        "\n".join([header, ",".join(row1), ",".join(row2)]) + "\n"
    )
    (root / "edema.csv").write_text("subject_id,study_id,edema_severity\n10000032,50000001,1\n")
    return root


def test_loads_layout_reports_and_labels(mimic: Path) -> None:
    d = load_mimic_cxr(mimic, edema_csv=mimic / "edema.csv", size=16)
    assert d.images.shape == (3, 1, 16, 16)
    assert d.reports[0] == d.reports[1] == [
        "Mild pulmonary vascular congestion.",
        "Small left pleural effusion is present.",
        "No pneumothorax.",
        "Mild congestion.",
        "Small left effusion.",
    ]
    assert d.reports[2] == ["Heart size is normal.", "Lungs are clear."]
    assert d.edema.tolist() == [1, 1, -1]
    eff, edema = CHEXPERT_FINDINGS.index("Pleural Effusion"), CHEXPERT_FINDINGS.index("Edema")
    assert d.findings[0, eff] == 1.0 and math.isnan(d.findings[0, edema])  # uncertain -> nan
    assert math.isnan(d.findings[0, 0])  # blank -> nan
    assert torch.all(d.findings[2] == 0)
    assert d.sentence_sites[2] == [-1, -1]


def test_sixteen_bit_images_do_not_overflow(mimic: Path) -> None:
    img = read_grayscale(next((mimic / "files").rglob("*.png")), 32)
    assert float(img.max()) == pytest.approx(1.0)
    assert float(img[0, 20:].mean()) == pytest.approx(60000 / 65535, abs=1e-4)
    d = load_mimic_cxr(mimic, size=16)
    assert float(d.images.min()) >= 0.0 and float(d.images.max()) <= 1.0


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="MIMIC-CXR-JPG folder not found"):
        load_mimic_cxr(tmp_path / "absent")


def test_image_without_report_is_a_clear_error(mimic: Path) -> None:
    (mimic / "files/p10/p10000033/s50000002.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"has no report: expected .*s50000002\.txt"):
        load_mimic_cxr(mimic, size=16)
    d = load_mimic_cxr(mimic, size=16, on_error="skip")
    assert len(d) == 2


def test_empty_report_is_a_clear_error(mimic: Path) -> None:
    (mimic / "files/p10/p10000033/s50000002.txt").write_text("FINDINGS:\n   \nIMPRESSION: \n")
    with pytest.raises(ValueError, match=r"empty report: no sentence found in .*s50000002"):
        load_mimic_cxr(mimic, size=16)
    with pytest.raises(ValueError, match="on_error"):
        load_mimic_cxr(mimic, on_error="ignore")


def test_report_without_sections_uses_the_text() -> None:
    assert report_sentences("Heart normal. No effusion.") == ["Heart normal.", "No effusion."]
    with pytest.raises(ValueError, match="empty report"):
        report_sentences("  \n ")


def test_pipeline_pretrains_on_the_fixture(mimic: Path, tmp_path: Path) -> None:
    from examples.image_text.config import make_config
    from examples.image_text.train import load_datasets, pretrain

    cfg = make_config("tiny", data=str(mimic), batch_size=2, out_dir=str(tmp_path / "run"))
    ds = load_datasets(cfg)
    assert ds.train.images.shape[0] + ds.test.images.shape[0] == 3
    out = pretrain(cfg, ds)
    assert out.checkpoint.exists() and all(math.isfinite(v) for v in out.losses)
    # evaluation runs; without zone annotations pointing has no sentences to score
    from examples.image_text.evaluate import downstream
    from examples.image_text.pointing import pointing
    from examples.image_text.train import load_pretrained

    model, objective, _ = load_pretrained(out.checkpoint)
    res = downstream(cfg, ds, "frozen_grid", model, pretraining="local")
    assert len(res.finding_auc) == ds.train.findings.shape[1]
    pt = pointing(cfg, ds, model, objective, "local")
    assert pt.sentences["all"] == 0 and math.isnan(pt.hit_rate["all"])


def test_the_phase_line_gives_the_real_split_sizes(mimic: Path, tmp_path: Path, capsys,
                                                   monkeypatch) -> None:
    # the tryout: with --data <MIMIC folder> the phase line printed the preset's synthetic
    # sizes (96 training pairs for tiny), not the folder's
    from examples.image_text.__main__ import main

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("examples.image_text.pipeline.downstream", stop)
    assert main(["supervised", "--preset", "tiny", "--data", str(mimic),
                 "--threads", "1", "--out-dir", str(tmp_path / "run")]) == 130
    out = capsys.readouterr().out
    assert "data (2 training, 1 test pairs" in out and "96" not in out


def test_the_data_folder_is_where_the_data_is_not_a_setting(mimic: Path, tmp_path: Path,
                                                             capsys) -> None:
    # the review: resuming or evaluating a run whose data folder was given by another path
    # (a link, the same data moved) was refused as "other settings (--data '/a' in the
    # checkpoint, '/b' now)"; real setting changes are still refused
    from examples.image_text.__main__ import main
    from examples.image_text.train import load_checkpoint

    link = tmp_path / "link"
    link.symlink_to(mimic)
    run = ["--preset", "tiny", "--threads", "1", "--batch-size", "2",
           "--out-dir", str(tmp_path / "run")]
    assert main(["pretrain", "--mode", "global", "--data", str(mimic), *run]) == 0
    assert main(["pretrain", "--mode", "global", "--data", str(link), "--epochs", "2",
                 "--resume", *run]) == 0
    ckpt = tmp_path / "run" / "seed0" / "pretrain-global" / "checkpoint.pt"
    assert int(load_checkpoint(ckpt)["epoch"]) == 1
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:  # a usage error before any work
        main(["pretrain", "--mode", "global", "--data", str(link), "--epochs", "3",
              "--lr", "0.1", "--resume", *run])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.split(" error: ", 1)[1]  # the message, not the usage lines
    assert "(--lr 0.001 in the checkpoint, 0.1 now)" in err and "--data" not in err
    # checkpoints of one seed with the data at two paths are evaluated together
    assert main(["pretrain", "--mode", "local", "--data", str(mimic), "--epochs", "2",
                 *run]) == 0
    evaluate = ["evaluate", *run[:4], *run[6:]]
    assert main(evaluate) == 0
    # the data moved: evaluate is told where it is now, and says so when it is not
    moved = tmp_path / "moved"
    mimic.rename(moved)
    capsys.readouterr()
    assert main(evaluate) == 1
    assert "give `evaluate` --data" in capsys.readouterr().err
    assert main([*evaluate, "--data", str(moved)]) == 0
    # the synthetic data is another setting, not another place
    capsys.readouterr()
    assert main([*evaluate, "--data", "synthetic"]) == 1
    assert "--data synthetic: " in capsys.readouterr().err


@pytest.mark.parametrize("command", ["all", "supervised", "evaluate"])
def test_a_folder_without_labels_is_refused_before_any_training(mimic: Path, tmp_path: Path,
                                                                capsys, command) -> None:
    # the eighth tryout: a MIMIC-CXR folder without its CheXpert labels file pretrained both
    # modes, then crashed in the supervised baseline with torch's "element 0 of tensors does
    # not require grad"; `pretrain` needs no labels and still runs
    from examples.image_text.__main__ import main

    (mimic / "mimic-cxr-2.0.0-chexpert.csv").unlink()
    run = ["--preset", "tiny", "--threads", "1", "--out-dir", str(tmp_path / "run")]
    data = ["--data", str(mimic)]
    batch = ["--batch-size", "2"]
    if command == "evaluate":
        assert main(["pretrain", "--mode", "global", *data, *batch, *run]) == 0
        argv = ["evaluate", *run]
    else:
        argv = [command, *data, *run, *(batch if command == "all" else ())]
    capsys.readouterr()
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "pretraining" not in out
    assert (f"carry no label, so there is nothing to train the downstream heads on: CheXpert "
            f"labels: no labels file: expected {mimic / 'mimic-cxr-2.0.0-chexpert.csv'} (or "
            ".csv.gz), or give --labels-csv; edema severities: no --edema-csv given") in err
    # the edema severities alone are labels enough
    assert main([*argv, "--edema-csv", str(mimic / "edema.csv"),
                 "--labelled-fraction", "1"]) == 0


def test_a_batch_without_a_known_label_is_skipped_not_a_crash(mimic: Path, tmp_path: Path) -> None:
    # sparse real labels: a fine-tuning batch whose pairs have no known label raised
    # "element 0 of tensors does not require grad"; it contributes no step
    from examples.image_text.config import make_config
    from examples.image_text.evaluate import downstream
    from examples.image_text.train import load_datasets

    cfg = make_config("tiny", data=str(mimic), labelled_fraction=1.0, downstream_batch_size=1,
                      out_dir=str(tmp_path / "run"), finetune_epochs=2)
    ds = load_datasets(cfg)
    ds.train.findings[0] = float("nan")  # one of the two training pairs keeps its labels
    ds.train.edema[0] = -1
    res = downstream(cfg, ds, "supervised")
    assert len(res.finding_auc) == len(CHEXPERT_FINDINGS)


@pytest.mark.parametrize("flag", ["--labels-csv", "--edema-csv"])
def test_a_missing_csv_is_named_by_its_option(mimic: Path, tmp_path: Path, capsys,
                                             flag) -> None:
    # the eighth tryout: a missing --edema-csv read "[Errno 2] No such file or directory"
    # and a missing --labels-csv "labels_csv not found", the library's argument
    from examples.image_text.__main__ import main

    missing = tmp_path / "missing.csv"
    assert main(["all", "--preset", "tiny", "--threads", "1", "--data", str(mimic), flag,
                 str(missing), "--out-dir", str(tmp_path / "run")]) == 1
    assert capsys.readouterr().err.strip().endswith(f"all: error: {flag} {missing}: no such file")
