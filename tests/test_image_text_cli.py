"""examples.image_text: the command line's help, threads, and checkpoints that load safely."""

from __future__ import annotations

import argparse
import re

import pytest
import torch

from examples.image_text.__main__ import _parser, main
from examples.image_text.config import (
    CHOICES,
    DATA_LOCATIONS,
    GROUPS,
    HELP,
    make_config,
    resolve_threads,
)
from examples.image_text.train import load_checkpoint, load_pretrained, pretrain

TRAINING = ("--epochs", "--lr", "--reduction", "--bound", "--batch-size", "--mode")


def _help(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_top_level_help_lists_every_command_without_markup(capsys) -> None:
    text = _help(capsys)
    for command in ("all", "pretrain", "evaluate", "supervised", "table"):
        assert f"    {command}" in text, command
    assert "``" not in text and ":class:" not in text
    assert "--preset tiny" in text  # the first thing to try


@pytest.mark.parametrize("command, groups", [
    ("all", ("data", "model", "pretraining", "downstream", "run")),
    ("pretrain", ("data", "model", "pretraining", "run")),
    ("evaluate", ("downstream", "run")),
    ("supervised", ("data", "model", "downstream", "run")),
])
def test_each_command_shows_only_its_option_groups(capsys, command, groups) -> None:
    text = _help(capsys, command)
    for group, names in GROUPS.items():
        shown = f"{group} options:" in text
        assert shown == (group in groups), (command, group)
        for name in names:
            flag = "--" + name.replace("_", "-") + " "
            if command == "evaluate" and name in (*DATA_LOCATIONS, "cache_dir"):
                continue  # where the data is now, and this run's cache: a group below
            if group in groups and not (command == "all" and name == "mode"):
                assert flag in text, (command, flag)
                # real help text, not only a default
                assert HELP[name].split()[0] in text
            else:
                assert flag not in text, (command, flag)
    assert "or the preset's" not in text
    # evaluate takes where the data is now, not what it is
    assert ("data location options:" in text) == (command == "evaluate")


def test_table_and_evaluate_list_no_training_options(capsys) -> None:
    for command in ("table", "evaluate"):
        text = _help(capsys, command)
        for flag in TRAINING:
            assert f"{flag} " not in text, (command, flag)
    text = _help(capsys, "table")
    assert "--out-dir" in text and "--seeds" in text and "--preset" not in text


def test_help_shows_defaults_and_preset_overrides(capsys) -> None:
    text = " ".join(_help(capsys, "pretrain").split())  # argparse wraps lines
    assert "pretraining epochs per mode (default 20; full 20, tiny 1)" in text
    assert "--threads" in text and "On a shared machine use 1" in text


def test_on_off_options_are_flags() -> None:
    # --progress took a value (true/false); an on/off option is a flag pair
    with pytest.raises(SystemExit):
        _parser().parse_args(["pretrain", "--progress", "no"])
    args = _parser().parse_args(["pretrain", "--no-progress", "--critic-cosine"])
    assert isinstance(args, argparse.Namespace)
    assert args.cfg_progress is False and args.cfg_critic_cosine is True
    assert _parser().parse_args(["pretrain"]).cfg_progress is None  # the preset decides


def test_help_shows_one_default_each_and_the_choices(capsys) -> None:
    text = " ".join(_help(capsys, "all").split())
    # "(default: inside --data) (default none)": two defaults in one option
    assert re.search(r"\(default[^()]*\) \(default", text) is None
    assert "MIMIC-CXR reports folder (default: inside --data) --labels-csv" in text
    assert "--progress, --no-progress" in text and "(true/false)" not in text
    assert "(default on; tiny off)" in text
    for flag, choices in (("--reduction", "{mean,max,pair_max,attention}"),
                          ("--contrast", "{images,sentences,both}"),
                          ("--sentences", "{one,all}"),
                          ("--critic", "{separable,bilinear,concat,quadratic}")):
        assert f"{flag} {choices}" in text, flag
    with pytest.raises(SystemExit):
        _parser().parse_args(["pretrain", "--reduction", "median"])
    assert "(default none)" in text and "(default )" not in text  # --critic-hidden: none


def test_critic_choices_are_the_registered_critics() -> None:
    from mitools.critics import available_critics

    assert set(CHOICES["critic"]) == set(available_critics())


def test_tiny_is_called_a_smoke_test_and_threads_advice_agrees(capsys) -> None:
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    # the time every text states is the committed measurement's (time_claims.py), rounded
    claims = json.loads((root / "benchmarks" / "results" / "time_claims.json").read_text())
    about = f"about {round(claims['tiny']['wall_s'])} s"
    top = " ".join(_help(capsys).split())
    assert about in top and "smoke test" in top and "near 0" in top
    assert "--threads 2" not in top and "--preset quick --threads 1" in top
    preset = " ".join(_help(capsys, "all").split())
    assert f"tiny ({about}: a smoke test" in preset
    docs = (root / "docs" / "image_text.rst").read_text()
    readme = (root / "README.md").read_text()
    for text in (docs, readme):
        assert "--threads 2 " not in text and about in text
        stated = set(re.findall(r"about (\d+) s\b", text))
        assert stated <= {about.split()[1]}, stated  # no other "about N s" left behind
    assert "quadratic" in docs and "smoke test" in docs and "near zero" in docs


def test_threads_default_is_bounded_and_explicit_values_win(monkeypatch) -> None:
    assert resolve_threads(3) == 3
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(64)), raising=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 64)
    assert resolve_threads(0) == 4
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0}, raising=False)
    assert resolve_threads(0) == 1
    # a lower torch count (OMP_NUM_THREADS=1 or torch.set_num_threads(1)) is kept: on a
    # 2-core machine the example printed "2 threads" under OMP_NUM_THREADS=1
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(64)), raising=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert resolve_threads(0) == 1


def test_main_sets_the_threads(tmp_path, capsys) -> None:
    before = torch.get_num_threads()
    try:
        main(["pretrain", "--preset", "tiny", "--n-train", "32", "--n-test", "8",
              "--batch-size", "16", "--threads", "1", "--out-dir", str(tmp_path)])
        assert torch.get_num_threads() == 1
        out = capsys.readouterr().out
        assert "pretrain: preset tiny, 1 threads" in out and "done: total" in out
    finally:
        torch.set_num_threads(before)


class _Payload:
    """Not a tensor or a plain value: a weights-only load must refuse it."""


def test_checkpoints_hold_plain_values_and_refuse_anything_else(tmp_path) -> None:
    cfg = make_config("tiny", n_train=32, n_test=8, batch_size=16, out_dir=str(tmp_path))
    path = pretrain(cfg).checkpoint
    state = load_checkpoint(path)  # weights_only=True
    assert isinstance(state["config"], dict) and isinstance(state["rng"]["torch"], torch.Tensor)
    bad = tmp_path / "bad.pt"
    torch.save({**state, "extra": _Payload()}, bad)
    with pytest.raises(ValueError, match=r"refusing to load checkpoint .*bad\.pt"):
        load_checkpoint(bad)
    with pytest.raises(ValueError, match="refusing to load"):
        load_pretrained(bad)
    # resume refuses it too
    torch.save({**state, "extra": _Payload()}, path)
    with pytest.raises(ValueError, match="refusing to load checkpoint"):
        pretrain(cfg, resume=True)
    with pytest.raises(FileNotFoundError, match="no pretraining checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize("argv, message", [
    (("pretrain", "--max-sentences", "0"), "--max-sentences must be >= 1, got 0"),
    (("pretrain", "--text-heads", "3"), "--text-heads (3) must divide dim (16)"),
    (("pretrain", "--width", "3"), "--width must be 1, 2, 4 or a multiple of 8, got 3"),
    (("pretrain", "--device", "gpu"), "--device must be 'auto', 'cpu', 'cuda'"),
    (("all", "--lr", "-1"), "--lr must be > 0, got -1.0"),
    (("supervised", "--finetune-lr", "nan"), "--finetune-lr must be > 0, got nan"),
    (("pretrain", "--image-size", "100"), "--image-size must be 64, 128 or 256, got 100"),
    (("pretrain", "--batch-size", "500"), "--batch-size (500) exceeds --n-train (96)"),
    (("all", "--bound", "club"), "the bound 'club' needs log conditional densities"),
])
def test_bad_option_values_are_usage_errors_before_any_data(tmp_path, capsys, monkeypatch,
                                                           argv, message) -> None:
    # the tryout: each of these ended in a traceback, some after generating the data
    def no_data(*args, **kwargs):
        raise AssertionError("data generated before the options were checked")

    monkeypatch.setattr("examples.image_text.pipeline.load_datasets", no_data)
    monkeypatch.setattr("examples.image_text.train.load_datasets", no_data)
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--preset", "tiny", "--out-dir", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"python -m examples.image_text {argv[0]}: error: {message}" in err
    assert "Traceback" not in err


def test_a_cuda_device_without_cuda_is_a_usage_error(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exit_:
        main(["pretrain", "--preset", "tiny", "--device", "cuda", "--out-dir", str(tmp_path)])
    assert exit_.value.code == 2
    assert "--device 'cuda': this torch build or machine has no CUDA" in capsys.readouterr().err


def test_ctrl_c_exits_130_with_the_resume_hint(tmp_path, capsys, monkeypatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("examples.image_text.pipeline.pretrain", interrupted)
    rc = main(["all", "--preset", "tiny", "--n-train", "32", "--n-test", "8", "--batch-size",
               "16", "--threads", "1", "--out-dir", str(tmp_path)])
    assert rc == 130
    err = capsys.readouterr().err
    assert err == ("python -m examples.image_text all: interrupted; rerun the same command with "
                   "--resume to continue from the last epoch checkpoint (from the start "
                   "where none was written yet)\n")


def test_config_refuses_what_the_models_would_fail_on() -> None:
    for bad in ({"text_heads": 0}, {"dim": 12, "text_heads": 8}, {"width": 12},
                {"image_size": 100}, {"grid": 64}, {"context_kernel": 2}, {"lr": 0.0},
                {"weight_decay": -1.0}, {"linear_steps": 0}, {"device": "gpu"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            make_config("tiny", **bad)
    make_config("tiny", width=24, device="cuda:1", image_size=128, grid=16)  # accepted


def _damage(path, how: str) -> None:
    import os

    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "garbage": os.urandom(2000),
                      "empty": b""}[how])


@pytest.mark.parametrize("how", ["truncated", "garbage", "empty"])
def test_a_damaged_checkpoint_is_named_damaged_not_unsafe(tmp_path, capsys, how) -> None:
    # the tryout: a garbage checkpoint got the warning about arbitrary code, a truncated one a
    # raw "PytorchStreamReader failed reading zip archive" traceback
    cfg = make_config("tiny", n_train=32, n_test=8, batch_size=16, out_dir=str(tmp_path))
    path = pretrain(cfg).checkpoint
    _damage(path, how)
    with pytest.raises(ValueError, match=r"checkpoint .*checkpoint\.pt is damaged \(truncated"
                                         r".*delete it") as err:
        load_checkpoint(path)
    assert "arbitrary code" not in str(err.value)
    assert main(["evaluate", "--preset", "tiny", "--out-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().err
    assert "checkpoint.pt is damaged" in out and "Traceback" not in out


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_a_damaged_cache_file_is_named_as_a_cache_file(tmp_path, how) -> None:
    from examples.image_text.data import generate_synthetic

    generate_synthetic(8, cache_dir=tmp_path)
    (path,) = tmp_path.glob("synthetic-*.pt")
    _damage(path, how)
    with pytest.raises(ValueError, match=rf"data cache file {re.escape(str(path))} is damaged "
                                         r".*generated anew"):
        generate_synthetic(8, cache_dir=tmp_path)
    assert not list(tmp_path.glob("*.tmp"))  # written atomically


def test_every_text_names_max_not_pair_max_the_papers_objective() -> None:
    # REFERENCE.md (Liao, Moyer et al.): MI estimated between every local feature and the
    # sentence, the cell with the highest MI maximised, i.e. LocalMILoss(reduction="max"), as
    # the README and the guide say; image_text.rst, --reduction's help and objective.py called
    # pair_max "the paper's"
    from pathlib import Path

    from examples.image_text import config, objective

    root = Path(__file__).resolve().parents[1]
    texts = {"image_text.rst": (root / "docs" / "image_text.rst").read_text(),
             "objective.py": objective.__doc__, "--reduction": HELP["reduction"],
             "Config": config.Config.__doc__}
    for name, text in texts.items():
        flat = " ".join(text.split())
        assert re.search(r"\*\*the paper's\*\*,? \(?``\"?pair_max"
                         r"|pair_max[^;.)]*(?<!not )the paper\b", flat) is None, name
        assert re.search(r"max[`\"]*:? (is )?(\*\*)?the paper's", flat), name


def test_docs_agree_with_the_committed_times_the_epilog_and_the_threads(capsys) -> None:
    # the tryout: image_text.rst said 118 s / 231 s while time_claims.md says 99.9 / 195.2;
    # the epilog said --finetune-epochs 20, the docs 10; the threads' effect was not stated
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    docs = " ".join((root / "docs" / "image_text.rst").read_text().split())
    readme = (root / "README.md").read_text()
    claims = (root / "benchmarks" / "results" / "time_claims.md").read_text()
    main_row = next(line for line in claims.splitlines() if line.startswith("| main:"))
    wall, cpu = main_row.split("|")[2].strip(), main_row.split("|")[3].strip()
    assert f"took **{wall} s wall, {cpu} s of CPU" in docs
    assert f"{wall} s wall, {cpu} s CPU" in readme
    assert "118 s" not in docs and "231 s" not in docs
    top = _help(capsys)
    ft = re.findall(r"supervised --labelled-fraction 1 --finetune-epochs (\d+)", top + docs)
    assert len(ft) == 2 and ft[0] == ft[1], ft
    assert f"not the default {make_config().finetune_epochs}" in " ".join(top.split())
    assert f"the default is {make_config().finetune_epochs}" in docs
    assert "come from ``--threads 1``" in docs and "Another thread count" in docs
    main_job = readme[readme.index("# 1. the main job"):readme.index("# 2. the tests")]
    assert "`--threads 1`" in main_job and "summation order" in main_job
    assert "Measured before this change" not in docs  # a stale claim without its data version
    assert "(0.099)" not in docs and "on the 3-seed mean (0.099" in docs
