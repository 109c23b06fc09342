"""examples.image_text, the ninth tryout: shortened options, ``evaluate``'s summary of every
seed, a damaged checkpoint under ``--resume``, the lock file of a seed's results. Run through
the command line in-process (``main``), tiny preset, a few dozen pairs."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import threading
import time

import pytest
import torch
from image_text_runner import PROG, SMALL, usage_error

from examples.image_text.__main__ import _parser, _subparsers, main
from examples.image_text.seed_results import _locked


@pytest.fixture
def no_data(monkeypatch):
    """Fail if any data is generated (what is refused must be refused before)."""
    def refuse(*args, **kwargs):
        raise AssertionError("data generated before the refusal")

    monkeypatch.setattr("examples.image_text.pipeline.load_datasets", refuse)
    monkeypatch.setattr("examples.image_text.train.load_datasets", refuse)


# 1. shortened options


def test_no_parser_of_the_example_takes_abbreviations() -> None:
    parser = _parser()
    assert parser.allow_abbrev is False
    assert {name: p.allow_abbrev for name, p in _subparsers(parser).items()} == dict.fromkeys(
        ("all", "pretrain", "evaluate", "supervised", "table"), False)


@pytest.mark.parametrize("argv, says", [
    # the tryout: `evaluate --mode global` silently meant --modes global
    (("evaluate", "--mode", "global"), "unrecognized arguments: --mode global (--mode is an "
     "option of pretrain, not of evaluate; did you mean --modes?; see " + PROG
     + " evaluate --help)"),
    # `table --seed 0` silently meant --seeds 0
    (("table", "--seed", "0"), "unrecognized arguments: --seed 0 (--seed is an option of all, "
     "pretrain, evaluate, supervised, not of table; did you mean --seeds?; see " + PROG
     + " table --help)"),
    (("pretrain", "--thr", "1"), "unrecognized arguments: --thr 1 (--thr: did you mean "
     "--threads?; see " + PROG + " pretrain --help)"),
    (("all", "--epoch=2"), "unrecognized arguments: --epoch=2 (--epoch: did you mean "
     "--epochs?; see " + PROG + " all --help)"),
])
def test_a_shortened_option_is_refused_naming_the_option_meant(tmp_path, capsys, no_data,
                                                               argv, says) -> None:
    line = usage_error(capsys, [*argv, "--out-dir", str(tmp_path)])
    assert line == f"{PROG} {argv[0]}: error: {says}"
    assert not list(tmp_path.iterdir())


# 2. evaluate's summary: every seed with results


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    """Seeds 0 and 1, each with a 1-epoch global checkpoint."""
    out = tmp_path_factory.mktemp("two_seeds")
    for seed in ("0", "1"):
        assert main(["pretrain", "--mode", "global", *SMALL, "--seed", seed,
                     "--out-dir", str(out)]) == 0
    return out


def test_evaluate_of_one_seed_keeps_every_seed_in_the_summary(tmp_path, two_seeds,
                                                              capsys) -> None:
    # the tryout: `evaluate --seed 1` rewrote OUT_DIR/results.md and .json with seed 1 alone
    # ("1 seed"); a later `table` gave back both
    out = tmp_path / "out"
    shutil.copytree(two_seeds, out)
    for seed in ("0", "1"):
        assert main(["evaluate", *SMALL[:4], "--seed", seed, "--out-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.rstrip().splitlines()[-2] == (
        f"results: {out / 'results.md'} (and results.json), the mean of seeds 0, 1")
    summary = json.loads((out / "results.json").read_text())
    assert summary["seeds"] == [0, 1]
    assert "(2 seeds; mean ± sd over seeds)" in (out / "results.md").read_text()
    # this run's timings and the earlier run's, of the seeds averaged
    assert {k.split("/")[0] for k in summary["timings_s"]} == {"seed0", "seed1"}
    # the same summary `table` writes: one code path
    md = (out / "results.md").read_text()
    assert main(["table", "--out-dir", str(out)]) == 0
    assert (out / "results.md").read_text() == md
    assert json.loads((out / "results.json").read_text())["runs"] == summary["runs"]
    # 4. the lock of each seed's results is not left behind
    assert not list(out.glob("seed*/results.lock"))


# 3. a damaged checkpoint under --resume


@pytest.fixture(scope="module")
def one_run(tmp_path_factory):
    """Seed 0 with a 1-epoch global and a 1-epoch local-attention checkpoint."""
    out = tmp_path_factory.mktemp("one_run")
    for mode in ("global", "local"):
        assert main(["pretrain", "--mode", mode, *SMALL, "--out-dir", str(out)]) == 0
    return out


RESUME_REMEDY = ("--resume expected the checkpoint `pretrain` writes after every epoch; delete "
                 "it (then --resume starts that run anew), or rerun without --resume (every "
                 "run starts anew and replaces its checkpoint)")


@pytest.mark.parametrize("how, damage", [
    ("truncated, or not a file torch wrote", lambda b: b[: len(b) // 2]),
    ("truncated, or not a file torch wrote", lambda b: os.urandom(2000)),
    ("truncated: it is empty, 0 bytes", lambda b: b""),
])
@pytest.mark.parametrize("command", ["pretrain", "all"])
def test_a_damaged_checkpoint_is_refused_by_resume_before_any_work(
        tmp_path, one_run, capsys, no_data, how, damage, command) -> None:
    # the tryout: `all --resume` trained the global run, then stopped at the damaged local
    # checkpoint, with a remedy in `pretrain`'s words; now refused first, as a usage error
    out = tmp_path / "out"
    shutil.copytree(one_run, out)
    path = out / "seed0" / "pretrain-local-attention" / "checkpoint.pt"
    path.write_bytes(damage(path.read_bytes()))
    argv = [command, *SMALL, "--out-dir", str(out), "--resume"]
    line = usage_error(capsys, [*argv, *(("--mode", "local") if command == "pretrain" else ())])
    assert line == (f"{PROG} {command}: error: checkpoint {path} is damaged ({how}): "
                    f"{RESUME_REMEDY}")


def test_a_checkpoint_resume_cannot_continue_is_named_with_what_to_do(
        tmp_path, one_run, capsys, no_data) -> None:
    out = tmp_path / "out"
    shutil.copytree(one_run, out)
    path = out / "seed0" / "pretrain-global" / "checkpoint.pt"
    argv = ["pretrain", "--mode", "global", *SMALL, "--out-dir", str(out), "--resume"]
    # another torch file under its name
    torch.save({"a": 1}, path)
    line = usage_error(capsys, argv)
    assert line.startswith(f"{PROG} pretrain: error: checkpoint {path} is not a pretraining "
                           "checkpoint of this example (it lacks 'epoch'")
    assert line.endswith(RESUME_REMEDY)
    # the checkpoint of another run, copied into this run's folder: resuming "with the
    # checkpoint's settings", as the message said, would resume another folder's run
    shutil.copy(out / "seed0" / "pretrain-local-attention" / "checkpoint.pt", path)
    line = usage_error(capsys, argv)
    assert line == (f"{PROG} pretrain: error: cannot resume {path}: it is the checkpoint of "
                    "another run than the one its folder is for (--mode 'local' in the "
                    "checkpoint, 'global' now): it was copied or moved there; delete it, or "
                    "move it back to its own folder, then rerun (without it, --resume starts "
                    "that run anew)")


def test_an_altered_optimizer_state_is_named_not_a_traceback(tmp_path, one_run, capsys) -> None:
    out = tmp_path / "out"
    shutil.copytree(one_run, out)
    path = out / "seed0" / "pretrain-global" / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    state["rng"]["sampler"] = torch.zeros(3)
    state["config"]["epochs"] = 2
    torch.save(state, path)
    assert main(["pretrain", "--mode", "global", *SMALL, "--epochs", "2", "--out-dir", str(out),
                 "--resume"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert (f"cannot resume {path}: its optimizer, schedule or random state does not fit this "
            "run (TypeError: RNG state must be a torch.ByteTensor); delete it") in err


# 4. the lock file


def test_the_lock_is_exclusive_though_its_file_is_removed_on_release(tmp_path) -> None:
    # each holder removes the lock file on release; a run that had opened the removed file
    # must not then hold a lock a newcomer does not see: no increment may be lost
    seed_dir = tmp_path / "seed0"
    counter = tmp_path / "counter"
    counter.write_text("0")

    def bump() -> None:
        for _ in range(30):
            with _locked(seed_dir):
                value = int(counter.read_text())
                time.sleep(0.0005)
                counter.write_text(str(value + 1))

    threads = [threading.Thread(target=bump) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter.read_text() == "180"
    assert not (seed_dir / "results.lock").exists()
    # an exception inside releases and removes it too, and a stale file is taken over
    with pytest.raises(KeyError), _locked(seed_dir):
        raise KeyError
    (seed_dir / "results.lock").write_text("")  # left by a run that was killed
    with _locked(seed_dir):
        pass
    assert not (seed_dir / "results.lock").exists()


def test_mitools_parsers_take_no_abbreviations_either() -> None:
    from mitools.cli.parser import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert parser.allow_abbrev is False
    assert all(p.allow_abbrev is False for p in sub.choices.values())


# 5. a new user's tryout


@pytest.mark.parametrize("argv, flag", [
    (("pretrain", *SMALL, "--out-dir", ""), "--out-dir ''"),
    (("all", *SMALL, "--cache-dir", " "), "--cache-dir ' '"),
    (("table", "--out-dir", ""), "--out-dir ''"),
])
def test_an_empty_path_is_ausage_error(tmp_path, capsys, monkeypatch, no_data, argv,
                                        flag) -> None:
    # the tryout: `pretrain --out-dir ""` wrote seed0/ into the current folder, silently
    monkeypatch.chdir(tmp_path)
    line = usage_error(capsys, argv)
    assert line == (f"{PROG} {argv[0]}: error: {flag} is empty; give a path (. for the "
                    "current folder)")
    assert not list(tmp_path.iterdir())
    line = usage_error(capsys, ["evaluate", "--preset", "tiny", "--data", ""])
    assert line.endswith("--data '' is empty; give a path (. for the current folder), or leave "
                         "--data out for the synthetic data")


def test_table_names_the_seeds_that_have_results(tmp_path, capsys) -> None:
    # the tryout: `table --seeds 3` said only that seed 3 had none
    (tmp_path / "seed0").mkdir()
    shutil.copy(_one_seed_results(tmp_path), tmp_path / "seed0" / "results.json")
    assert main(["table", "--out-dir", str(tmp_path), "--seeds", "0", "3"]) == 1
    assert capsys.readouterr().err.strip().endswith(
        f"no results for seed 3: expected {tmp_path}/seed3/results.json; seeds with results "
        "there: 0 (run `evaluate` for the others)")


def _one_seed_results(tmp_path):
    """A results file of one seed, written by the report's own writer."""
    from examples.image_text.config import make_config
    from examples.image_text.evaluate import RegimeResult
    from examples.image_text.report import write_results

    row = RegimeResult("frozen", "global", .5, .5, (.5,), .5, (.5,))
    write_results(tmp_path / "src", make_config("tiny"), [([row], [])], ("a",), [0])
    return tmp_path / "src" / "results.json"


def test_evaluate_names_seeds_it_cannot_average_with_its_own(tmp_path, two_seeds,
                                                             capsys) -> None:
    # evaluate's summary takes every seed with results: one of other settings is named, and
    # the seed's own results are written all the same
    out = tmp_path / "out"
    shutil.copytree(two_seeds, out)
    assert main(["evaluate", *SMALL[:4], "--seed", "0", "--out-dir", str(out)]) == 0
    assert main(["pretrain", "--mode", "global", *SMALL, "--seed", "2", "--epochs", "2",
                 "--out-dir", str(out)]) == 0
    capsys.readouterr()
    assert main(["evaluate", *SMALL[:4], "--seed", "2", "--out-dir", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.strip().endswith(
        "but not their mean: seeds 0 and 2 were run with different settings (epochs 1 vs 2); "
        "only seeds run alike are averaged: rerun one of them with the other's settings; or "
        "average the seeds that agree with `table --seeds ...`")
    assert (out / "seed2" / "results.json").exists()
    assert json.loads((out / "results.json").read_text())["seeds"] == [0]
