"""examples.image_text: a new user's tryout, each reported input run through the command line
in-process (``main``), tiny preset, a few dozen pairs."""

from __future__ import annotations

import json
import shlex
import shutil

import pytest
import torch
from image_text_runner import PROG, SMALL, runtime_error, usage_error

from examples.image_text.__main__ import main
from examples.image_text.data import _cache_path
from examples.image_text.train import load_checkpoint


@pytest.fixture(scope="module")
def two_modes(tmp_path_factory):
    """A seed with a 1-epoch global and a 2-epoch local-attention checkpoint."""
    out = tmp_path_factory.mktemp("two_modes")
    assert main(["pretrain", "--mode", "global", *SMALL, "--out-dir", str(out)]) == 0
    assert main(["pretrain", "--mode", "local", *SMALL, "--epochs", "2",
                 "--out-dir", str(out)]) == 0
    return out


def test_evaluate_refuses_checkpoints_of_other_epochs_naming_commands_that_work(
        tmp_path, two_modes, capsys) -> None:
    # the tryout: "...(epochs); evaluate them separately" with no way to do so
    # a folder with a space (the eighth tryout: the commands named split it in two)
    out = tmp_path / "out dir"
    shutil.copytree(two_modes, out)
    capsys.readouterr()
    line = runtime_error(capsys, ["evaluate", *SMALL[:4], "--out-dir", str(out)])
    assert "(--epochs 1 vs 2); evaluate them separately" in line
    assert f"evaluate --seed 0 --out-dir '{out}' --modes global`" in line
    named = line.split("`")[3]
    assert named.endswith("--modes local-attention")
    # the command it names works, as a shell splits it
    assert shlex.split(named)[:3] == ["python", "-m", "examples.image_text"]
    assert main([*shlex.split(named)[3:], *SMALL[:4]]) == 0
    payload = json.loads((out / "seed0" / "results.json").read_text())
    labels = {r["pretraining"] for r in payload["runs"][0]["downstream"]}
    assert labels == {"none", "untrained", "local-attention"}
    capsys.readouterr()
    line = runtime_error(capsys, ["evaluate", *SMALL[:4], "--out-dir", str(out),
                                   "--modes", "local-max"])
    assert "--modes local-max: no such checkpoint" in line
    assert "this seed has global, local-attention" in line


def test_a_copied_output_folder_resumes_and_evaluates(tmp_path, two_modes, capsys) -> None:
    # the tryout: "cannot resume ...: other settings (--out-dir '/tmp/x' in the checkpoint,
    # '/tmp/x_b' now)"; the cache folder is a location too
    out = tmp_path / "copy"
    shutil.copytree(two_modes, out)
    assert main(["pretrain", "--mode", "global", *SMALL, "--epochs", "2", "--resume",
                 "--cache-dir", str(tmp_path / "cache"), "--out-dir", str(out)]) == 0
    assert int(load_checkpoint(out / "seed0" / "pretrain-global" / "checkpoint.pt")["epoch"]) == 1
    # both now 2 epochs; the global one has another --cache-dir: evaluated together
    assert main(["evaluate", *SMALL[:4], "--out-dir", str(out)]) == 0
    assert "results:" in capsys.readouterr().out


def test_evaluate_after_a_move_caches_only_where_it_is_told(tmp_path, capsys) -> None:
    # the review: after the output folder (with its cache) was moved, `evaluate` wrote the
    # data cache to the --cache-dir recorded in the checkpoints, recreating the old folder
    old, new = tmp_path / "old", tmp_path / "new"
    for mode in ("global", "local"):
        assert main(["pretrain", "--mode", mode, *SMALL, "--out-dir", str(old / "out"),
                     "--cache-dir", str(old / "cache")]) == 0
    assert len(list((old / "cache").glob("*.pt"))) == 2
    old.rename(new)
    assert main(["evaluate", *SMALL[:4], "--out-dir", str(new / "out")]) == 0
    assert not old.exists()  # no cache: the default, whatever the checkpoints recorded
    assert main(["evaluate", *SMALL[:4], "--out-dir", str(new / "out"),
                 "--cache-dir", str(tmp_path / "here")]) == 0
    assert not old.exists() and len(list((tmp_path / "here").glob("*.pt"))) == 2
    payload = json.loads((new / "out" / "seed0" / "results.json").read_text())
    assert payload["config"]["cache_dir"] == str(tmp_path / "here")
    assert payload["config"]["out_dir"] == str(new / "out")
    capsys.readouterr()


def test_evaluate_runs_of_separate_modes_add_up(tmp_path, capsys, monkeypatch) -> None:
    # the review: `evaluate --modes global`, then `evaluate --modes local-attention` left
    # seed0/results.json and the summary with local-attention's rows only
    out = str(tmp_path / "out")
    for mode in ("global", "local"):
        assert main(["pretrain", "--mode", mode, *SMALL, "--out-dir", out]) == 0
    for modes in ("global", "local-attention"):
        assert main(["evaluate", *SMALL[:4], "--out-dir", out, "--modes", modes]) == 0
    for path in (tmp_path / "out" / "seed0" / "results.json", tmp_path / "out" / "results.json"):
        payload = json.loads(path.read_text())
        assert [r["pretraining"] for r in payload["runs"][0]["downstream"]
                if r["regime"] == "frozen"] == ["untrained", "global", "local-attention"], path
    # rows of other settings are refused before any work, naming the file and the settings
    def no_work(*args, **kwargs):
        raise AssertionError("evaluated before refusing")

    monkeypatch.setattr("examples.image_text.pipeline.evaluate_seed", no_work)
    capsys.readouterr()
    line = runtime_error(capsys, ["evaluate", *SMALL[:4], "--out-dir", out, "--modes",
                                   "global", "--linear-steps", "3"])
    assert "seed0/results.json holds results of local-attention evaluated with other " in line
    assert "(--linear-steps 5 vs 3)" in line


def test_a_torch_file_that_is_not_a_checkpoint_is_named(tmp_path, two_modes, capsys) -> None:
    # the tryout: evaluate gave KeyError 'epoch', all --resume KeyError 'config'
    out = tmp_path / "out"
    shutil.copytree(two_modes, out)
    torch.save({"a": 1}, out / "seed0" / "pretrain-global" / "checkpoint.pt")
    capsys.readouterr()
    # evaluate: a runtime error; all --resume: a usage error, before any work (ninth tryout)
    for check, argv in ((runtime_error, ["evaluate", *SMALL[:4]]),
                        (usage_error, ["all", *SMALL, "--resume"])):
        line = check(capsys, [*argv, "--out-dir", str(out)])
        assert (f"checkpoint {out}/seed0/pretrain-global/checkpoint.pt is not a pretraining "
                "checkpoint of this example (it lacks 'epoch'") in line
        assert "delete it" in line
    torch.save([1, 2], out / "seed0" / "pretrain-global" / "checkpoint.pt")
    line = runtime_error(capsys, ["evaluate", *SMALL[:4], "--out-dir", str(out)])
    assert "(it holds a list, not a dict)" in line


def test_a_torch_file_that_is_not_a_data_cache_is_named(tmp_path, capsys) -> None:
    # the tryout: KeyError 'meta' in data.py
    cache = tmp_path / "cache"
    cache.mkdir()
    path = _cache_path(cache, 32, 64, 0)
    torch.save({"a": 1}, path)
    line = runtime_error(capsys, ["pretrain", *SMALL, "--cache-dir", str(cache),
                                   "--out-dir", str(tmp_path / "out")])
    assert f"data cache file {path} is not a data cache of this example" in line
    assert "delete it; the data is generated anew" in line


@pytest.mark.parametrize("content, says", [
    ("{}", "is not a results file of this example (it lacks 'config'"),
    ("[1, 2]", "holds a JSON list, not the object"),
    ("garbage", "is not valid JSON (Expecting value: line 1 column 1 (char 0))"),
    ('{"config": {}, "finding_names": [], "runs": []}', "is not a results file"),
    ('{"config": [], "finding_names": [], "runs": [{"downstream": [], "pointing": []}]}',
     "is not a results file"),
])
def test_a_results_file_that_is_not_one_is_named(tmp_path, capsys, content, says) -> None:
    # the tryout: KeyError / TypeError tracebacks, and a JSON error that named no file
    (tmp_path / "seed0").mkdir()
    path = tmp_path / "seed0" / "results.json"
    path.write_text(content)
    (tmp_path / "results.json").write_text("[1]")  # what `table` would keep: not an object
    line = runtime_error(capsys, ["table", "--seeds", "0", "--out-dir", str(tmp_path)])
    assert f"results file {path} {says}" in line
    assert line.endswith("delete it and rerun `evaluate` (or `all`) for that seed")


@pytest.mark.parametrize("command", ["all", "evaluate", "table"])
def test_a_seed_given_twice_is_ausage_error(tmp_path, capsys, command) -> None:
    # the tryout: `all --seeds 0 0` trained seed 0 twice and reported "2 seeds", sd 0
    extra = SMALL[:4] if command != "table" else ()
    line = usage_error(capsys, [command, *extra, "--seeds", "0", "1", "0",
                                 "--out-dir", str(tmp_path)])
    assert line == (f"{PROG} {command}: error: --seeds 0 1 0: seed 0 is given more than once; "
                    "give each seed once (a repeat would count as another seed)")
    assert not (tmp_path / "seed0").exists()


@pytest.mark.parametrize("argv, flag, named", [
    (("all", "--out-dir", "{f}"), "--out-dir", "{f} is a file"),
    (("pretrain", "--out-dir", "{f}/sub"), "--out-dir", "{f}/sub: {f} is a file"),
    (("table", "--out-dir", "{f}"), "--out-dir", "{f} is a file"),
    (("all", "--out-dir", "{d}", "--cache-dir", "{f}"), "--cache-dir", "{f} is a file"),
    (("evaluate", "--out-dir", "{d}", "--seed", "3"), "--out-dir", "{d}: {d}/seed3 is a file"),
])
def test_a_file_in_the_place_of_a_folder_is_a_usage_error_before_any_work(
        tmp_path, capsys, monkeypatch, argv, flag, named) -> None:
    # the tryout: "[Errno 20] Not a directory" after the data was generated, "[Errno 17]"
    def no_data(*args, **kwargs):
        raise AssertionError("data generated before the folders were checked")

    monkeypatch.setattr("examples.image_text.pipeline.load_datasets", no_data)
    monkeypatch.setattr("examples.image_text.train.load_datasets", no_data)
    f, d = tmp_path / "afile", tmp_path / "dir"
    f.write_text("")
    (d / "seed3").parent.mkdir()
    (d / "seed3").write_text("")
    args = [a.format(f=f, d=d) for a in argv]
    extra = () if argv[0] == "table" else ("--preset", "tiny", "--threads", "1")
    line = usage_error(capsys, [*args, *extra])
    assert line == (f"{PROG} {argv[0]}: error: {flag} {named.format(f=f, d=d)}, not a folder; "
                    f"move the file away or give another {flag}")


@pytest.mark.parametrize("argv, message", [
    (("pretrain", "--lr", "inf"), "--lr must be a finite number, got inf"),
    (("all", "--head-lr-factor", "inf"), "--head-lr-factor must be a finite number, got inf"),
    (("pretrain", "--clip-grad-norm", "inf"), "--clip-grad-norm must be a finite number"),
    (("supervised", "--labelled-fraction", "nan"),
     "--labelled-fraction must be in (0, 1], got nan"),
    (("pretrain", "--attention-temperature", "inf"), "--attention-temperature must be a fin"),
    (("all", "--weight-decay", "inf"), "--weight-decay must be a finite number, got inf"),
    (("pretrain", "--device", "mps"), "--device 'mps' is not available on this machine; "
                                      "available: auto, cpu"),
    (("supervised", "--finetune-epochs", "0"), "--finetune-epochs must be >= 1, got 0"),
    (("pretrain", "--critic-hidden", "abc"), "argument --critic-hidden: must be "
                                             "comma-separated positive ints, e.g. 64,64"),
    (("pretrain", "--critic-hidden", "64,0"), "argument --critic-hidden: must be "
                                              "comma-separated positive ints"),
])
def test_bad_values_that_got_through_are_usage_errors(tmp_path, capsys, monkeypatch, argv,
                                                      message) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    line = usage_error(capsys, [*argv, "--preset", "tiny", "--out-dir", str(tmp_path)])
    assert line.startswith(f"{PROG} {argv[0]}: error: {message}")


def test_threads_above_the_cores_are_refused(tmp_path, capsys, monkeypatch) -> None:
    # the tryout: --threads 1000 was accepted (a 1 s run took 33 s)
    monkeypatch.setattr("examples.image_text.__main__.usable_cpus", lambda: 2)
    line = usage_error(capsys, ["pretrain", "--preset", "tiny", "--threads", "3",
                                 "--out-dir", str(tmp_path)])
    assert line == (f"{PROG} pretrain: error: --threads 3 is more than the 2 cores this "
                    "process may use, which only slows it down; give at most 2 (0: the "
                    "default, the smaller of 4 and the cores)")


def test_a_cuda_index_beyond_the_devices_is_ausage_error(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    line = usage_error(capsys, ["pretrain", "--preset", "tiny", "--device", "cuda:3",
                                 "--out-dir", str(tmp_path)])
    assert line.endswith("--device 'cuda:3': this machine has 1 CUDA devices; available: "
                         "auto, cpu, cuda, cuda:0")


@pytest.mark.parametrize("argv, below", [
    (("all",), ""), (("supervised",), "/sub"), (("pretrain",), "/sub/deeper"), (("table",), ""),
])
def test_an_out_dir_that_cannot_be_written_is_a_usage_error_before_any_work(
        tmp_path, capsys, monkeypatch, argv, below) -> None:
    # the eighth tryout: a read-only --out-dir failed with "[Errno 1] Operation not
    # permitted: '.../seed0'" after the data was generated, and `supervised` after training
    import os

    def no_data(*args, **kwargs):
        raise AssertionError("data generated before the output folder was checked")

    monkeypatch.setattr("examples.image_text.pipeline.load_datasets", no_data)
    monkeypatch.setattr("examples.image_text.train.load_datasets", no_data)
    locked = tmp_path / "locked"
    locked.mkdir()
    import tempfile

    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp(*args, dir=None, **kwargs):
        if dir is not None and os.path.abspath(dir) == str(locked):
            raise PermissionError(13, "Permission denied")
        return real_mkdtemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    extra = () if argv[0] == "table" else ("--preset", "tiny", "--threads", "1")
    line = usage_error(capsys, [*argv, "--out-dir", f"{locked}{below}", *extra])
    where = f"{locked}{below}" + (f": {locked}" if below else "")
    assert line == (f"{PROG} {argv[0]}: error: --out-dir {where} is not writable: no folder "
                    "can be made in it (Permission denied: permissions, or a read-only file "
                    "system); give another --out-dir")
    assert list(locked.iterdir()) == []  # the check leaves nothing behind


def test_an_out_dir_where_os_access_says_yes_but_no_folder_can_be_made(capsys) -> None:
    # docs audit 2: os.access said yes for /proc as root, and the run then failed with a bare
    # "[Errno 2] No such file or directory" (exit 1) instead of the usage error (exit 2)
    import os

    if not os.path.isdir("/proc") or not os.access("/proc", os.W_OK):
        pytest.skip("needs a /proc that os.access calls writable (Linux, as root)")
    line = usage_error(capsys, ["table", "--out-dir", "/proc/mitools-out"])
    assert line.startswith(f"{PROG} table: error: --out-dir /proc/mitools-out: /proc is not "
                           "writable: no folder can be made in it (")


@pytest.mark.parametrize("argv, says", [
    (("table", "--preset", "tiny"), "unrecognized arguments: --preset tiny (--preset is an "
     "option of all, pretrain, evaluate, supervised, not of table; see " + PROG
     + " table --help)"),
    (("pretrain", "--seeds", "0", "1"), "unrecognized arguments: --seeds 0 1 (--seeds is an "
     "option of all, evaluate, table, not of pretrain; see " + PROG + " pretrain --help)"),
    (("all", "--mode=global"), "unrecognized arguments: --mode=global (--mode is an option of "
     "pretrain, not of all; see " + PROG + " all --help)"),
    (("all", "--frobnicate"), "unrecognized arguments: --frobnicate (no command takes "
     "--frobnicate; see " + PROG + " all --help)"),
    (("all", "--seed", "0", "1"), "unrecognized arguments: 1"),
])
def test_an_option_of_another_command_is_named_with_the_commands_that_take_it(
        capsys, argv, says) -> None:
    # the eighth tryout: `table --preset tiny` printed the top-level usage and
    # "python -m examples.image_text: error: unrecognized arguments: --preset tiny",
    # naming neither the command nor the ones that take the option
    assert usage_error(capsys, argv) == f"{PROG} {argv[0]}: error: {says}"


def test_a_closed_output_stops_with_141_and_the_resume_hint(tmp_path, capsys, monkeypatch) -> None:
    # the eighth tryout: `all ... | head -3` ended with "error: [Errno 32] Broken pipe", exit 1
    def closed(*args, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("examples.image_text.__main__.evaluate_seeds", closed)
    assert main(["all", *SMALL, "--out-dir", str(tmp_path)]) == 141
    err = capsys.readouterr().err
    assert err.strip() == (f"{PROG} all: stopped: its output was closed (e.g. `| head`); rerun "
                           "the same command with --resume to continue from the last epoch "
                           "checkpoint (from the start where none was written yet)")
