"""examples.image_text: pretraining modes, resume, metrics, evaluation, CLI, torchrun."""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from examples.image_text.__main__ import main
from examples.image_text.config import make_config
from examples.image_text.evaluate import (
    REGIMES,
    GridHead,
    downstream,
    edema_metrics,
    roc_auc,
    zone_accuracy,
)
from examples.image_text.objective import PretrainObjective
from examples.image_text.pointing import KINDS, pointing, sentence_cell_maps, site_kind
from examples.image_text.train import load_checkpoint, load_datasets, load_pretrained, pretrain

ROOT = Path(__file__).resolve().parents[1]
TINY = {"n_train": 64, "n_test": 32, "batch_size": 16, "epochs": 1}


@pytest.fixture(scope="module")
def tiny_ds():
    return load_datasets(make_config("tiny", **TINY))


@pytest.mark.parametrize(
    "mode, reduction, bound, critic",
    [
        ("local", "max", "infonce", "separable"),
        ("local", "mean", "infonce", "separable"),
        ("local", "pair_max", "infonce", "separable"),
        ("local", "pair_max", "dv", "concat"),
        ("local", "attention", "infonce", "separable"),
        ("local", "attention", "mine", "bilinear"),
        ("local", "max", "mine", "separable"),
        ("local", "max", "dv", "bilinear"),
        ("global", "mean", "infonce", "separable"),
        ("global", "mean", "nwj", "bilinear"),
    ],
)
def test_every_mode_trains_a_few_steps(tmp_path, tiny_ds, mode, reduction, bound, critic) -> None:
    cfg = make_config("tiny", **TINY, mode=mode, reduction=reduction, bound=bound, critic=critic,
                      out_dir=str(tmp_path))
    out = pretrain(cfg, tiny_ds)
    assert len(out.losses) == 64 // 16
    assert all(math.isfinite(v) for v in out.losses + out.estimates)
    model, _, saved = load_pretrained(out.checkpoint)
    assert saved.mode == mode and saved.bound == bound
    # the checkpoint restores the trained weights
    state = load_checkpoint(out.checkpoint)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, state["model"][k])


@pytest.mark.parametrize("reduction", ["mean", "max", "pair_max", "attention"])
def test_all_sentences_mode_trains_and_restores(tmp_path, tiny_ds, reduction) -> None:
    cfg = make_config("tiny", **TINY, mode="local", reduction=reduction, sentences="all",
                      out_dir=str(tmp_path))
    out = pretrain(cfg, tiny_ds)
    assert len(out.losses) == 64 // 16
    assert all(math.isfinite(v) for v in out.losses + out.estimates)
    _, _, saved = load_pretrained(out.checkpoint)
    assert saved.sentences == "all" and out.checkpoint.parent.name.endswith("-all")


@pytest.mark.parametrize("reduction, contrast", [
    ("mean", "images"), ("pair_max", "images"), ("attention", "sentences"), ("attention", "both"),
])
def test_all_sentences_with_one_sentence_each_is_the_one_sentence_objective(reduction,
                                                                            contrast) -> None:
    torch.manual_seed(0)
    kw = {"reduction": reduction, "critic_kwargs": {"hidden": (), "embed_dim": 4}}
    if reduction != "mean":
        kw["contrast"] = contrast
    one = PretrainObjective("local", 8, 6, **kw).double()
    every = PretrainObjective("local", 8, 6, all_sentences=True, **kw).double()
    every.load_state_dict(one.state_dict())
    cells, text = torch.randn(5, 2, 2, 8).double(), torch.randn(5, 6).double()
    a = one(cells, text)
    b = every(cells, text[:, None, :], text_mask=torch.ones(5, 1, dtype=torch.bool))
    torch.testing.assert_close(a.loss, b.loss)
    # padding slots change nothing
    padded = torch.cat([text[:, None, :], torch.randn(5, 1, 6).double()], dim=1)
    mask = torch.tensor([[True, False]] * 5)
    c = every(cells, padded, text_mask=mask)
    torch.testing.assert_close(a.loss, c.loss)


def test_pooled_objectives_are_a_bound_on_pooled_scores_in_either_direction() -> None:
    from mitools.bounds import infonce
    from mitools.critics import AttentionPoolCritic, MaxPoolCritic

    torch.manual_seed(0)
    cells, text = torch.randn(6, 2, 2, 8).double(), torch.randn(6, 5).double()
    for reduction, pool in (("pair_max", MaxPoolCritic), ("attention", AttentionPoolCritic)):
        for contrast in ("images", "sentences", "both"):
            obj = PretrainObjective("local", 8, 5, reduction=reduction, contrast=contrast,
                                    attention_temperature=0.5,
                                    critic_kwargs={"hidden": (3,), "embed_dim": 4}).double()
            critic = pool(obj.critic, **({"temperature": 0.5} if reduction == "attention" else {}))
            s = critic(cells.flatten(1, 2), text)
            want = {"images": infonce(s), "sentences": infonce(s.T),
                    "both": (infonce(s) + infonce(s.T)) / 2}[contrast]
            torch.testing.assert_close(obj(cells, text).loss, -want)
    with pytest.raises(ValueError, match="contrast must be"):
        PretrainObjective("local", 8, 5, reduction="attention", contrast="rows")


@pytest.mark.slow
def test_pretraining_raises_the_estimate(tmp_path) -> None:
    # global mode: local InfoNCE on single sentences needs the quick preset's ~900 steps to
    # rise (0.0 -> 0.2 nats), too many for a test
    cfg = make_config("tiny", n_train=512, n_test=32, batch_size=32, epochs=6, lr=3e-3,
                      mode="global", out_dir=str(tmp_path))
    out = pretrain(cfg)
    first, last = sum(out.estimates[:8]) / 8, sum(out.estimates[-8:]) / 8
    assert last > first + 0.05, (first, last)
    assert max(out.estimates) <= math.log(32) + 1e-4  # InfoNCE never exceeds log K


def test_resume_equals_uninterrupted(tmp_path, tiny_ds) -> None:
    base = dict(TINY, epochs=3, out_dir=str(tmp_path / "a"))
    full = pretrain(make_config("tiny", **base), tiny_ds)
    cut = dict(base, out_dir=str(tmp_path / "b"))
    first = pretrain(make_config("tiny", **cut), tiny_ds, stop_after=1)
    assert len(first.losses) == len(full.losses) // 3
    resumed = pretrain(make_config("tiny", **cut), tiny_ds, resume=True)
    assert len(resumed.losses) == len(full.losses)
    diff = max(abs(a - b) for a, b in zip(full.losses, resumed.losses, strict=True))
    assert diff <= 1e-6, diff
    a = load_checkpoint(full.checkpoint)["model"]
    b = load_checkpoint(resumed.checkpoint)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=0)


def test_a_finished_run_resumes_to_a_no_op_and_a_missing_one_starts(tmp_path, tiny_ds, capsys):
    cfg = make_config("tiny", **TINY, out_dir=str(tmp_path))
    out = pretrain(cfg, tiny_ds, resume=True)
    assert "no checkpoint" in capsys.readouterr().out
    again = pretrain(cfg, tiny_ds, resume=True)
    assert again.losses == out.losses


@pytest.mark.parametrize("change, named", [
    ({"bound": "dv"}, "--bound 'infonce' in the checkpoint, 'dv' now"),
    ({"lr": 1e-2}, "--lr 0.001 in the checkpoint, 0.01 now"),
    ({"critic": "bilinear"}, "--critic 'separable'"),
    ({"dim": 32, "critic_embed_dim": 32}, "--critic-embed-dim 16 in the checkpoint, 32 now, "
                                          "--dim 16"),
    ({"preset": "quick"}, "--batch-size 16 in the checkpoint, 64 now"),
])
def test_resume_refuses_other_settings_naming_them(tmp_path, tiny_ds, change, named) -> None:
    # the tryout: --resume with another --bound, --lr, --critic, --dim or preset went on
    # silently, mislabelled the checkpoint, or ended in a raw load_state_dict traceback
    pretrain(make_config("tiny", **dict(TINY, epochs=2), out_dir=str(tmp_path)), tiny_ds,
             stop_after=1)
    change = dict(change)
    preset = change.pop("preset", "tiny")
    settings = {**(TINY if preset == "tiny" else {"n_train": 64, "n_test": 32}), "epochs": 2,
                **change}
    cfg = make_config(preset, **settings, out_dir=str(tmp_path))
    with pytest.raises(ValueError, match="cannot resume .*checkpoint.pt: it was pretrained with "
                                         "other settings .*" + re.escape(named)):
        pretrain(cfg, tiny_ds, resume=True)


def test_resume_extends_epochs_and_refuses_fewer_than_done(tmp_path, tiny_ds, capsys) -> None:
    cfg = make_config("tiny", **dict(TINY, epochs=2), out_dir=str(tmp_path))
    pretrain(cfg, tiny_ds)
    with pytest.raises(ValueError, match=r"to --epochs 1: it has done 2 epochs already; "
                                         r"resume with --epochs 2 or more"):
        pretrain(make_config("tiny", **TINY, out_dir=str(tmp_path)), tiny_ds, resume=True)
    more = pretrain(make_config("tiny", **dict(TINY, epochs=3, device="cpu", threads=1),
                                out_dir=str(tmp_path)), tiny_ds, resume=True)
    assert len(more.losses) == 3 * 64 // 16 and load_checkpoint(more.checkpoint)["epoch"] == 2
    # from the command line: a usage error (exit 2) before any data is generated (it was a
    # runtime error, exit 1, after the data: the ninth tryout checks --resume first)
    with pytest.raises(SystemExit) as exit_:
        main(["pretrain", "--preset", "tiny", "--n-train", "64", "--n-test", "32",
              "--batch-size", "16", "--epochs", "3", "--bound", "dv", "--resume",
              "--out-dir", str(tmp_path)])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("python -m examples.image_text pretrain: error: cannot resume")
    assert "--bound 'infonce'" in last and "Traceback" not in last


def _brute_auc(s, y) -> float:
    pos = [a for a, t in zip(s, y, strict=True) if t]
    neg = [a for a, t in zip(s, y, strict=True) if not t]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_roc_auc_matches_pairwise_count_with_ties() -> None:
    g = torch.Generator().manual_seed(0)
    for n in (2, 7, 40):
        s = torch.randint(0, 5, (n,), generator=g).float()  # many ties
        y = torch.rand(n, generator=g) < 0.4
        y[0], y[1] = True, False
        assert roc_auc(s, y) == pytest.approx(_brute_auc(s.tolist(), y.tolist()), abs=1e-12)
    assert math.isnan(roc_auc(torch.rand(4), torch.zeros(4)))


def test_edema_metrics_perfect_and_ignored_rows() -> None:
    target = torch.tensor([0, 1, 2, 3, -1])
    logits = torch.nn.functional.one_hot(target.clamp(min=0), 4).float() * 5
    auc, acc = edema_metrics(logits, target)
    assert auc == pytest.approx(1.0) and acc == pytest.approx(1.0)
    auc, acc = edema_metrics(-logits, target)
    assert auc == pytest.approx(0.0) and acc == pytest.approx(0.0)


def test_cell_map_matches_loop() -> None:
    torch.manual_seed(0)
    obj = PretrainObjective("local", 6, 5, critic_kwargs={"hidden": (7,), "embed_dim": 4})
    cells, text, ref = torch.randn(3, 2, 2, 6), torch.randn(3, 5), torch.randn(4, 2, 2, 6)
    got = obj.cell_map(cells, text, reference=ref)
    for k, i, j in itertools.product(range(3), range(2), range(2)):
        own = obj.critic(cells[k, i, j][None], text[k][None])[0, 0]
        others = torch.stack([obj.critic(ref[r, i, j][None], text[k][None])[0, 0]
                              for r in range(4)])
        want = own - (torch.logsumexp(others, 0) - math.log(4))
        torch.testing.assert_close(got[k, i, j], want, atol=1e-5, rtol=1e-5)


def test_grid_head_matches_a_loop_and_zone_accuracy() -> None:
    torch.manual_seed(0)
    head = GridHead(5, 4, 3).double()
    cells = torch.randn(2, 2, 2, 5, dtype=torch.float64)
    head.norm.fit(cells)
    flat = cells.reshape(-1, 5)
    x = (cells.reshape(2, 4, 5) - flat.mean(0)) / flat.std(0)
    w = head.linear.weight.reshape(3, 4, 5)
    for b, k in itertools.product(range(2), range(3)):
        want = sum(w[k, p] @ x[b, p] for p in range(4)) + head.linear.bias[k]
        torch.testing.assert_close(head(cells)[b, k], want)
    truth = torch.eye(6)[[1, 4, 4]]
    truth = torch.cat([truth, torch.tensor([[1.0, 1, 0, 0, 0, 0], [float("nan"), 0, 0, 0, 0, 0]])])
    logits = torch.eye(6)[[1, 4, 0, 0, 0]]  # two right, one wrong; the rest are not counted
    assert zone_accuracy(logits, truth) == pytest.approx(2 / 3)
    assert math.isnan(zone_accuracy(logits[:1], torch.zeros(1, 6)))


def test_downstream_regimes_and_pointing(tmp_path, tiny_ds) -> None:
    cfg = make_config("tiny", **TINY, out_dir=str(tmp_path))
    out = pretrain(cfg, tiny_ds)
    model, _, _ = load_pretrained(out.checkpoint)
    before = {k: v.clone() for k, v in model.image.state_dict().items()}
    for regime in REGIMES:
        res = downstream(cfg, tiny_ds, regime, None if regime == "supervised" else model,
                         pretraining="local")
        assert 0.0 <= res.edema_accuracy <= 1.0
        assert len(res.finding_auc) == 10
        assert not math.isnan(res.edema_auc) and not math.isnan(res.localized_auc)
    for k, v in model.image.state_dict().items():  # fine-tuning works on a copy
        torch.testing.assert_close(v, before[k])
    with pytest.raises(ValueError, match="needs pretrained"):
        downstream(cfg, tiny_ds, "frozen")
    with pytest.raises(ValueError, match="regime"):
        downstream(cfg, tiny_ds, "linear", model)


def test_pointing_matches_a_loop_over_sentences(tmp_path, tiny_ds) -> None:
    from examples.image_text.data import site_cell_mask

    cfg = make_config("tiny", **TINY, out_dir=str(tmp_path))
    model, objective, _ = load_pretrained(pretrain(cfg, tiny_ds).checkpoint)
    pt = pointing(cfg, tiny_ds, model, objective, "local")
    te = tiny_ds.test
    img, slot = torch.nonzero(te.sites >= 0, as_tuple=True)
    maps = sentence_cell_maps(model, objective, te, img, slot, torch.device("cpu"))
    masks = site_cell_mask(maps.shape[-1])
    for kind in KINDS:
        rows = [k for k in range(img.numel())
                if kind == "all" or site_kind(int(te.sites[img[k], slot[k]])) == kind]
        assert pt.sentences[kind] == len(rows)
        site_masks = [masks[int(te.sites[img[k], slot[k]])].flatten() for k in rows]
        hits = [bool(m[int(maps[k].flatten().argmax())]) for k, m in zip(rows, site_masks,
                                                                         strict=True)]
        assert pt.hit_rate[kind] == pytest.approx(sum(hits) / len(rows))
        assert pt.random_cell[kind] == pytest.approx(
            sum(float(m.double().mean()) for m in site_masks) / len(rows))
        fixed = max(sum(bool(m[c]) for m in site_masks) for c in range(masks[0].numel()))
        assert pt.best_fixed[kind] == pytest.approx(fixed / len(rows))


def test_cli_all_writes_table_json_and_figure(tmp_path, capsys) -> None:
    rc = main(["all", "--preset", "tiny", "--n-train", "64", "--n-test", "32",
               "--batch-size", "16", "--out-dir", str(tmp_path), "--threads", "1"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| Fine-tuned | local-attention |" in printed
    assert "| Frozen + cell-grid probe | global |" in printed
    assert "| Supervised only | none |" in printed
    assert "| best fixed cell |" in printed and "| random cell |" in printed
    # one line per phase, with the elapsed time
    assert "seed 0: pretraining local-attention (1 epochs)" in printed
    assert "done: total" in printed and "CPU" in printed
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["seeds"] == [0] and len(payload["runs"][0]["downstream"]) == 9
    assert (tmp_path / "results.md").exists()
    assert (tmp_path / "seed0" / "cell_mi.png").stat().st_size > 1000
    # evaluate alone reuses the checkpoints (and their data settings); table averages seeds
    assert main(["evaluate", "--preset", "tiny", "--out-dir", str(tmp_path)]) == 0
    assert "32 test pairs" in capsys.readouterr().out
    assert main(["table", "--out-dir", str(tmp_path), "--seeds", "0"]) == 0
    assert "| Fine-tuned | local-attention |" in capsys.readouterr().out
    # a missing seed: one line naming the file, no traceback
    assert main(["table", "--out-dir", str(tmp_path), "--seeds", "0", "1"]) == 1
    err = capsys.readouterr().err
    assert re.fullmatch(r"python -m examples.image_text table: error: no results for seed 1: "
                        r"expected .*seed1/results\.json; seeds with results there: 0 \(run "
                        r"`evaluate` for the others\)\n", err)


def test_cli_rejects_bad_input(tmp_path, capsys) -> None:
    # runtime errors: one line on stderr, exit 1, no traceback
    assert main(["evaluate", "--preset", "tiny", "--out-dir", str(tmp_path)]) == 1
    assert "error: no pretraining checkpoint" in capsys.readouterr().err
    assert main(["pretrain", "--preset", "tiny", "--data", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert "MIMIC-CXR-JPG folder not found" in err and len(err.splitlines()) == 1
    with pytest.raises(ValueError, match="mode must be"):
        make_config("tiny", mode="patch")
    with pytest.raises(ValueError, match="sentences must be 'one' or 'all'"):
        make_config("tiny", sentences="some")
    with pytest.raises(ValueError, match="reduction must be one of"):
        make_config("tiny", reduction="median")
    with pytest.raises(ValueError, match="attention_temperature must be > 0"):
        make_config("tiny", attention_temperature=0.0)
    with pytest.raises(ValueError, match="threads must be >= 0"):
        make_config("tiny", threads=-2)
    with pytest.raises(ValueError, match="unknown config fields"):
        make_config("tiny", epochz=3)
    with pytest.raises(ValueError, match="unknown preset"):
        make_config("huge")
    with pytest.raises(SystemExit):
        main(["pretrain", "--batch-size", "many"])
    with pytest.raises(SystemExit):  # evaluate takes no training options
        main(["evaluate", "--epochs", "3"])


def _torchrun(tmp_path: Path, nproc: int, out: str, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", "-m", "examples.image_text", "pretrain", "--preset", "tiny",
           "--n-train", "64", "--n-test", "16", "--batch-size", "16", "--epochs", "2",
           "--out-dir", str(tmp_path / out), "--device", "cpu", "--threads", "1", *extra]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.mark.slow
@pytest.mark.parametrize("extra, folder", [
    ((), "local-attention"),
    (("--contrast", "both", "--sentences", "all"), "local-attention-all"),
    (("--mode", "global"), "global"),
])
def test_torchrun_two_processes_matches_one(tmp_path, extra, folder) -> None:
    two = _torchrun(tmp_path, 2, "two", *extra)
    assert two.returncode == 0, two.stderr[-3000:]
    one = _torchrun(tmp_path, 1, "one", *extra)
    assert one.returncode == 0, one.stderr[-3000:]
    a = load_checkpoint(tmp_path / f"one/seed0/pretrain-{folder}/checkpoint.pt")
    b = load_checkpoint(tmp_path / f"two/seed0/pretrain-{folder}/checkpoint.pt")
    # the estimate is the global-batch one on both; gathered negatives make them equal
    torch.testing.assert_close(torch.tensor(a["estimates"]), torch.tensor(b["estimates"]),
                               atol=1e-4, rtol=1e-4)
    # parameters: compared as a whole. Adam divides near-zero gradients (~1e-9, pure float
    # summation-order noise) by their own scale, so such entries move by up to lr per step in
    # either run (observed: max 2e-3 after 8 steps at lr 1e-3, with or without clipping),
    # while the estimates above agree to 1e-7 in the first steps.
    diff = torch.cat([(a["model"][k] - b["model"][k]).flatten() for k in a["model"]])
    ref = torch.cat([a["model"][k].flatten() for k in a["model"]])
    assert float(diff.norm() / ref.norm()) < 1e-3


def test_all_evaluates_only_the_checkpoints_it_wrote(tmp_path, tiny_ds, capsys) -> None:
    # found measuring the README's main job: a run left in the output folder by another
    # preset or an older version (here: another width and reduction) was picked up by
    # `all`'s evaluation and crashed it with a state-dict size mismatch
    stale = make_config("tiny", **TINY, out_dir=str(tmp_path), mode="local", reduction="max",
                        width=4)
    pretrain(stale, tiny_ds)
    rc = main(["all", "--preset", "tiny", "--n-train", "64", "--n-test", "32",
               "--batch-size", "16", "--out-dir", str(tmp_path), "--threads", "1"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| Fine-tuned | local-attention |" in printed and "local-max" not in printed


def test_a_checkpoint_whose_weights_do_not_fit_is_named(tmp_path, tiny_ds) -> None:
    cfg = make_config("tiny", **TINY, out_dir=str(tmp_path))
    pretrain(cfg, tiny_ds)
    path = next(tmp_path.glob("seed0/pretrain-*/checkpoint.pt"))
    state = torch.load(path, weights_only=True)
    state["config"]["width"] = state["config"]["width"] * 2  # settings of another version
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"checkpoint.pt: its weights do not fit .*--out-dir"):
        load_pretrained(path)


@pytest.mark.parametrize("bound", ["club", "vclub", "l1out", "doe"])
@pytest.mark.parametrize("mode, reduction", [("local", "pair_max"), ("local", "attention"),
                                             ("local", "max"), ("local", "mean"),
                                             ("global", "mean")])
def test_every_objective_refuses_bounds_that_are_not_lower_bounds(bound, mode, reduction) -> None:
    # the tryout: `pretrain --bound club --reduction pair_max` (or attention) maximised an
    # upper bound on an unnormalised critic and printed a "final MI estimate"; the pooled
    # reductions skipped the checks that LocalMILoss / GlobalMILoss apply
    with pytest.raises(ValueError, match=rf"the bound '{bound}' needs log conditional densities"):
        PretrainObjective(mode, 8, 8, bound=bound, reduction=reduction)


def test_the_objective_refuses_an_upper_bound_even_on_a_log_density_critic(monkeypatch) -> None:
    from mitools.critics import SeparableCritic

    monkeypatch.setattr(SeparableCritic, "log_density", True, raising=False)
    for mode, reduction in (("local", "max"), ("local", "mean"), ("global", "mean")):
        with pytest.raises(ValueError, match="'club' is not a lower bound"):
            PretrainObjective(mode, 8, 8, bound="club", reduction=reduction)
    with pytest.raises(ValueError, match="MaxPoolCritic does not declare log_density"):
        PretrainObjective("local", 8, 8, bound="club", reduction="pair_max")


def test_evaluate_refuses_an_interrupted_checkpoint(tmp_path, tiny_ds, capsys) -> None:
    # the tryout: a run interrupted after 1 of 10 epochs was scored without a word
    cfg = make_config("tiny", **dict(TINY, epochs=3), out_dir=str(tmp_path))
    pretrain(cfg, tiny_ds, stop_after=1)
    assert main(["evaluate", "--preset", "tiny", "--out-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert re.search(r"checkpoint\.pt has done 1 of its 3 epochs \(an interrupted run\); "
                     r"finish it with .* --resume", err) and len(err.splitlines()) == 1
    pretrain(cfg, tiny_ds, resume=True)
    assert main(["evaluate", "--preset", "tiny", "--out-dir", str(tmp_path)]) == 0


def test_evaluate_seed_from_python_refuses_an_interrupted_checkpoint(tmp_path, tiny_ds,
                                                                    monkeypatch) -> None:
    # the command line checked this, a call of evaluate_seed(paths=None) did not
    from examples.image_text.pipeline import evaluate_seed

    cfg = make_config("tiny", **dict(TINY, epochs=3), out_dir=str(tmp_path))
    out = pretrain(cfg, tiny_ds, stop_after=1)
    trained = []  # and it refuses before any downstream training (review)
    monkeypatch.setattr("examples.image_text.pipeline.downstream",
                        lambda *args, **kwargs: trained.append(args[2]))
    for paths in (None, [out.checkpoint]):
        with pytest.raises(ValueError, match=r"has done 1 of its 3 epochs"):
            evaluate_seed(cfg, tiny_ds, paths=paths)
    assert trained == []
    load_pretrained(out.checkpoint)  # for inspection, an unfinished run still loads
    with pytest.raises(ValueError, match=r"has done 1 of its 3 epochs"):
        load_pretrained(out.checkpoint, finished=True)
