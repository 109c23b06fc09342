"""The benchmark scripts' command lines: what they write, and what they refuse (no timing
runs: only the cheap paths of each script)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH / "peers"))

from samples import save_sample  # noqa: E402


def _fake_samples(folder: Path, tasks: list[str]) -> list[dict]:
    """A samples folder as ``peers/sample_bmi_tasks.py --benchmark`` writes it (tiny)."""
    rng = np.random.default_rng(0)
    rows = []
    for i, task in enumerate(tasks):
        x = rng.normal(size=(200, 1))
        y = x + rng.normal(size=(200, 1))
        name = f"{task}-seed0.npz"
        save_sample(folder / name, task, "fake", 0.35, x, y, seed=0)
        rows.append({"task_id": task, "file": name, "seed": 0, "family": f"family{i}",
                     "name": task.upper(), "group": "fake", "dim_x": 1, "dim_y": 1,
                     "true_mi": 0.35, "n": 200, "params": {}})
    (folder / "index.json").write_text(json.dumps({"samples": rows}))
    return rows


def _existing(path: Path, tasks: dict, records: list) -> str:
    text = json.dumps({"benchmark": "beyond_normal", "side": "mitools",
                       "runs": [{"provenance": {}, "argv": []}], "tasks": tasks,
                       "records": records}, indent=1)
    path.write_text(text)
    return text


def test_beyond_normal_run_adding_nothing_leaves_the_file(tmp_path: Path,
                                                           monkeypatch) -> None:
    import beyond_normal

    # bmi's venv missing: the run skips bmi_ksg and has nothing to add
    monkeypatch.setattr(beyond_normal, "BMI_PYTHON", tmp_path / "no-venv" / "python")

    data = tmp_path / "data"
    rows = _fake_samples(data, ["one", "two"])
    out = tmp_path / "out.json"
    done = [{"sample": rows[0]["file"], "estimator": "gaussian", "task": "one"}]
    before = _existing(out, {"old": {"name": "Old"}, "one": {"name": "ONE"}}, done)
    beyond_normal.main(["--data", str(data), "--tasks", "one", "--seeds", "0",
                        "--methods", "gaussian,bmi_ksg", "--out", str(out)])
    assert out.read_text() == before


def test_beyond_normal_merges_task_metadata(tmp_path: Path) -> None:
    import beyond_normal

    data = tmp_path / "data"
    _fake_samples(data, ["one", "two"])
    out = tmp_path / "out.json"
    _existing(out, {"old": {"name": "Old"}}, [])
    beyond_normal.main(["--data", str(data), "--tasks", "one", "--seeds", "0",
                        "--methods", "gaussian", "--out", str(out)])
    payload = json.loads(out.read_text())
    assert set(payload["tasks"]) == {"old", "one", "two"}
    assert payload["tasks"]["old"] == {"name": "Old"}
    assert len(payload["runs"]) == 2 and len(payload["records"]) == 1


def _accuracy_run(mi: float, load: float) -> dict:
    return {"provenance": {"date": "d", "commit": "c" * 40 + "+dirty", "python": "3",
                           "torch": "t", "numpy": "n", "cpu": "cpu", "cpu_count": 2,
                           "torch_threads": 1},
            "n": 5000, "threads": 1, "load_average": [load, load, load],
            "summary": [{"mi": mi, "seeds": 2, "mean": mi, "within_5_percent": 1.0,
                         "coverage": 1.0, "median_time_s": 1.0, "max_time_s": 1.0}]}


def test_accuracy_section_reads_only_the_committed_runs(tmp_path: Path, monkeypatch) -> None:
    import render_docs

    monkeypatch.setattr(render_docs, "RESULTS", tmp_path)
    (tmp_path / "estimate_accuracy.json").write_text(json.dumps(_accuracy_run(2.0, 1.0)))
    (tmp_path / "estimate_accuracy_high.json").write_text(json.dumps(_accuracy_run(6.0, 2.0)))
    (tmp_path / "estimate_accuracy_quick.json").write_text(json.dumps(_accuracy_run(9.0, 0)))
    rst = render_docs.accuracy_section()
    assert "* - 2\n" in rst and "* - 6\n" in rst and "* - 9\n" not in rst
    assert "side by side" not in rst
    assert "2 nats run on a 2-core machine with 1 torch thread(s), at a load average of 1.0;" \
        in rst
    assert "6 nats run on a 2-core machine with 1 torch thread(s), at a load average of 2.0 " \
        "(other jobs running beside it)" in rst


@pytest.mark.parametrize("script", ["render_docs", "beyond_normal_report", "estimate_gpu",
                                    "knn_check", "screen_check"])
def test_help_answers_without_running(script: str, tmp_path: Path, monkeypatch,
                                      capsys) -> None:
    module = __import__(script)
    for name in ("RESULTS", "OUT"):  # anything written would land here
        if hasattr(module, name):
            monkeypatch.setattr(module, name, tmp_path / name)
    with pytest.raises(SystemExit) as exc:
        module.main(["--help"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("usage: ")
    assert not any(tmp_path.iterdir())


def _results_copy(tmp_path: Path, monkeypatch):
    import shutil

    import render_docs

    results = tmp_path / "benchmarks" / "results"
    shutil.copytree(BENCH / "results", results)
    monkeypatch.setattr(render_docs, "ROOT", tmp_path)
    monkeypatch.setattr(render_docs, "RESULTS", results)
    monkeypatch.setattr(render_docs, "OUT", tmp_path / "benchmarks.rst")
    return render_docs, results


def test_render_docs_refuses_missing_results(tmp_path: Path, monkeypatch) -> None:
    render_docs, results = _results_copy(tmp_path, monkeypatch)
    (results / "consistency.json").unlink()
    (results / "time_claims.json").unlink()
    with pytest.raises(SystemExit) as exc:
        render_docs.main([])
    message = str(exc.value.code)
    assert "consistency.json" in message and "time_claims.json" in message
    assert "\n" not in message and not (tmp_path / "benchmarks.rst").exists()


def test_render_docs_refuses_corrupt_json(tmp_path: Path, monkeypatch) -> None:
    render_docs, results = _results_copy(tmp_path, monkeypatch)
    (results / "consistency.json").write_text("{bad")
    with pytest.raises(SystemExit) as exc:
        render_docs.main([])
    message = str(exc.value.code)
    assert "consistency.json" in message and "not valid JSON" in message
    assert "\n" not in message and not (tmp_path / "benchmarks.rst").exists()


def test_beyond_normal_report_refuses_a_missing_side(tmp_path: Path) -> None:
    import beyond_normal_scoring as bn

    (tmp_path / "beyond_normal_mitools.json").write_text(
        (BENCH / "results" / "beyond_normal_mitools.json").read_text())
    with pytest.raises(SystemExit, match=r"missing .*beyond_normal_bmi\.json"):
        bn.load(tmp_path, require=True)


def test_provenance_line_keeps_the_dirty_suffix() -> None:
    import render_docs

    prov = _accuracy_run(2.0, 1.0)["provenance"]
    assert f"commit ``{'c' * 12}+dirty``" in render_docs.provenance_line(prov)
    assert f"commit ``{'c' * 12}``" in render_docs.provenance_line(
        {**prov, "commit": "c" * 40})


@pytest.mark.parametrize("script, args", [
    ("staircase", ["--critics", "foo"]), ("staircase", ["--steps-per-level", "0"]),
    ("consistency", ["--mi", "-1"]), ("estimate_accuracy", ["--levels", "abc"]),
    ("estimate_accuracy", ["--n", "10"]), ("mild_non_gaussian", ["--sizes", "10"]),
    ("training_check", ["--dim", "0"]), ("beyond_normal", ["--estimate-mi-args", "{bad"]),
    ("upper_bounds_heldout", ["--n", "10"]), ("upper_bounds_heldout", ["--max-steps", "0"]),
    ("beyond_normal", ["--seeds", "a"]), ("peers/compare", ["--peers", "foo"]),
    ("peers/compare", ["--levels", "x"]), ("training_check", ["--window", "0"]),
    ("staircase", ["--batch-size", "1"]), ("consistency", ["--seed", "-1"]),
    ("mild_non_gaussian", ["--s", "0"])])
def test_bad_options_are_usage_errors(script: str, args: list, tmp_path: Path) -> None:
    import subprocess

    proc = subprocess.run([sys.executable, str(BENCH / f"{script}.py"), *args],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**__import__("os").environ,
                               "PYTHONPATH": str(BENCH.parent)})
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"{Path(script).name}.py: error: ") and args[0] in line


def _usage_error(module, argv: list, capsys) -> str:
    """``module.main(argv)``'s usage error: exit status 2 and one line, no traceback."""
    with pytest.raises(SystemExit) as exc:
        module.main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("args, names", [
    (["--dtypes", "float99"], ["--dtypes", "'float99'", "float32, bfloat16, float64"]),
    (["--versions", "nonsense"], ["--versions", "'nonsense'", "hand_written, dense"]),
    (["--batches", "0,-3"], ["--batches", "0 is not above 0"]),
    (["--batches", "abc"], ["--batches", "'abc' is not an integer"]),
    (["--device", "cuda"], ["--device", "'cuda'", "CUDA is not available", "cpu"]),
    (["--device", "tpu9"], ["--device", "'tpu9'", "cpu, cuda or cuda:N"]),
    (["--gpu"], ["--gpu", "CUDA is not available"]),
    (["--repeats", "0"], ["--repeats", "0 is below 1"]),
])
def test_local_loss_refuses_bad_values_before_running(args, names, tmp_path: Path,
                                                      monkeypatch, capsys) -> None:
    """Tryout: each of these gave a traceback (--device cuda on a machine without a GPU
    after building the first inputs)."""
    import local_loss

    monkeypatch.setattr(local_loss.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(local_loss, "sweep", lambda args: pytest.fail("the sweep ran"))
    line = _usage_error(local_loss, [*args, "--out", str(tmp_path / "o" / "x.json")], capsys)
    assert ": error: argument " in line
    for name in names:
        assert name in line
    assert not (tmp_path / "o").exists()


def test_local_loss_modes_only_fill_the_options_not_given() -> None:
    import local_loss

    args = local_loss.parse_args(["--quick", "--batches", "8", "--dtypes", "float64",
                                  "--versions", "dense"])
    assert (args.batches, args.dtypes, args.versions, args.side) == ([8], ["float64"],
                                                                      ("dense",), 4)
    assert args.time_budget == 30.0 and args.out.name == "local_loss_quick.json"


def test_time_claims_makes_the_output_folder_before_the_first_job(tmp_path: Path,
                                                                  monkeypatch) -> None:
    """Tryout: a bad --out failed only after every job had run (minutes lost)."""
    import time_claims

    out = tmp_path / "some" / "missing" / "dir" / "file.json"
    seen = []

    def measure(argv: list) -> dict:
        seen.append(out.parent.is_dir())  # made before the job, not after
        return {"command": "x", "wall_s": 1.0, "cpu_s": 1.0, "peak_rss_mb": 1,
                "load_before": 0.0, "stdout_tail": ""}

    monkeypatch.setattr(time_claims, "measure", measure)
    time_claims.main(["--jobs", "tiny", "--out", str(out)])
    assert seen == [True] and out.exists() and out.with_suffix(".md").exists()


@pytest.mark.parametrize("blocker", ["file", "folder"])
def test_time_claims_refuses_an_unwritable_output_before_any_job(blocker: str, tmp_path: Path,
                                                                 monkeypatch, capsys) -> None:
    import time_claims

    monkeypatch.setattr(time_claims, "measure", lambda argv: pytest.fail("a job ran"))
    if blocker == "file":  # a file where a folder must be
        (tmp_path / "taken").write_text("")
        out, why = tmp_path / "taken" / "dir" / "x.json", "taken is a file"
    else:  # a folder where the output file must be
        (tmp_path / "x.json").mkdir()
        out, why = tmp_path / "x.json", "is a folder, not a file"
    line = _usage_error(time_claims, ["--out", str(out)], capsys)
    assert "error: argument --out: " in line and why in line


@pytest.mark.parametrize("failed", [False, True])
def test_run_bmi_beyond_normal_names_the_missing_venv_and_its_command(failed: bool,
                                                                     tmp_path: Path) -> None:
    """Tryout: without bmi's venv the script exited 127 with bash's bare "No such file or
    directory". A copy of the script runs, so that a venv next to the real one is not used."""
    import shutil
    import subprocess

    script = tmp_path / "run_bmi_beyond_normal.sh"
    shutil.copy(BENCH / "peers" / script.name, script)
    if failed:  # make_venvs.sh leaves this after a failed install
        (tmp_path / ".venv-bmi.failed").write_text("install failed\n")
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "bash benchmarks/peers/make_venvs.sh bmi" in proc.stderr
    assert ("install failed" if failed else f"no {tmp_path / '.venv-bmi'}") in proc.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("script", ["peers/make_venvs.sh", "gpu_check.sh"])
def test_shell_scripts_name_a_missing_python(script: str, tmp_path: Path) -> None:
    import os
    import subprocess

    proc = subprocess.run(["bash", str(BENCH / script)], capture_output=True, text=True,
                          timeout=30, cwd=tmp_path,
                          env={**os.environ, "PYTHON": "no-such-python-here"})
    assert proc.returncode == 1
    assert "no Python interpreter 'no-such-python-here'" in proc.stderr
    assert "PYTHON=" in proc.stderr


@pytest.mark.parametrize("script, argv, expected", [
    ("consistency", ["--quick", "--n", "1000"], {"n": 1000, "max_steps": 100}),
    ("consistency", ["--quick", "--max-steps", "7"], {"n": 600, "max_steps": 7}),
    ("consistency", [], {"n": 4000, "max_steps": None}),  # None: estimate_mi's own
    ("training_check", ["--quick", "--steps-per-level", "150"],
     {"steps_per_level": 150, "window": 100}),
    ("training_check", ["--quick", "--window", "20"], {"steps_per_level": 200, "window": 20}),
    ("training_check", [], {"steps_per_level": 4000, "window": 500}),
    ("staircase", ["--quick", "--steps-per-level", "300", "--window", "30"],
     {"steps_per_level": 300, "window": 30}),
    ("staircase", ["--quick"], {"steps_per_level": 200, "window": 100}),
])
def test_quick_changes_only_the_defaults(script: str, argv: list, expected: dict,
                                         tmp_path: Path) -> None:
    """Tryout: --quick silently replaced --n, --max-steps, --steps-per-level and --window
    given on the same command line."""
    module = __import__(script)
    out = ["--out-dir" if script == "staircase" else "--out", str(tmp_path / "out")]
    args = module.parse_args([*argv, *out])
    assert {k: getattr(args, k) for k in expected} == expected


@pytest.mark.parametrize("argv, expected", [
    (["--quick", "--n", "2000", "--max-steps", "40"], (2000, 40)),
    (["--quick"], (1000, 300)),
])
def test_upper_bounds_heldout_quick_keeps_explicit_options(argv, expected, tmp_path: Path,
                                                           monkeypatch) -> None:
    import upper_bounds_heldout as ub

    seen = []

    def one_case(task, n, seed, max_steps):
        seen.append((n, max_steps))
        raise KeyboardInterrupt  # stop before any fitting

    monkeypatch.setattr(ub, "one_case", one_case)
    with pytest.raises(KeyboardInterrupt):
        ub.main([*argv, "--out", str(tmp_path / "ub")])
    assert seen == [expected]


def test_beyond_normal_quick_keeps_explicit_tasks_and_steps(tmp_path: Path) -> None:
    import beyond_normal

    data = tmp_path / "data"
    _fake_samples(data, ["one", "two"])
    out = tmp_path / "out.json"
    beyond_normal.main(["--quick", "--data", str(data), "--tasks", "two", "--methods",
                        "gaussian", "--estimate-mi-args", '{"max_steps": 7}', "--out",
                        str(out)])
    payload = json.loads(out.read_text())
    assert [r["task"] for r in payload["records"]] == ["two"]
    assert payload["runs"][-1]["estimate_mi_args"] == {"max_steps": 7}


@pytest.mark.parametrize("script", ["staircase", "training_check"])
def test_a_window_longer_than_a_level_is_recorded_as_used(script: str, tmp_path: Path) -> None:
    module = __import__(script)
    out = ["--out-dir" if script == "staircase" else "--out", str(tmp_path)]
    args = module.parse_args(["--steps-per-level", "40", "--window", "100", *out])
    assert (args.steps_per_level, args.window) == (40, 40)


def test_staircase_records_the_window_it_used(tmp_path: Path, monkeypatch, capsys) -> None:
    """Tryout: --steps-per-level 3 summarised 3 steps per level but recorded window 500."""
    import staircase
    import staircase_report
    import torch

    monkeypatch.setattr(staircase, "run_staircase",  # no training: a trace of the right size
                        lambda kind, transform, schedule, bounds, **kw:
                        torch.zeros(schedule.total_steps, len(bounds)))
    monkeypatch.setattr(staircase_report, "figure", lambda *args, **kwargs: None)
    staircase.main(["--critics", "separable", "--tasks", "gaussian", "--families", "lower",
                    "--steps-per-level", "3", "--threads", "1", "--out-dir", str(tmp_path)])
    protocol = json.loads((tmp_path / "separable-gaussian.json").read_text())["protocol"]
    assert (protocol["steps_per_level"], protocol["window"]) == (3, 3)
    assert "--window 500 is longer than a level: using 3" in capsys.readouterr().err


@pytest.mark.parametrize("content, why", [
    (b"{bad", "is not valid JSON (line 1, column 2"),
    (b"\xff\xfe\x00", "cannot be read"),  # not text
    (b'{"records": [{"estimator": "ksg"}]}', "is not a results file"),  # no "sample"
    (b'{"records": [], "written": "x"}', "is not a results file of beyond_normal.py"),
])
def test_beyond_normal_refuses_a_results_file_it_cannot_resume_from(content: bytes, why: str,
                                                                    tmp_path: Path) -> None:
    """Tryout: a corrupt results file gave a JSONDecodeError traceback; one of another
    shape (bmi's side, say) would have been rewritten as this script's."""
    import beyond_normal

    data = tmp_path / "data"
    _fake_samples(data, ["one"])
    out = tmp_path / "out.json"
    out.write_bytes(content)
    with pytest.raises(SystemExit) as exc:
        beyond_normal.main(["--data", str(data), "--methods", "gaussian", "--out", str(out)])
    message = str(exc.value.code)
    assert message.startswith(f"beyond_normal.py: {out} ") and why in message
    assert "--fresh" in message and "left as it is" in message and "\n" not in message
    assert out.read_bytes() == content  # nothing written over it
    beyond_normal.main(["--data", str(data), "--methods", "gaussian", "--out", str(out),
                        "--fresh"])  # what the message offers: start over
    assert len(json.loads(out.read_text())["records"]) == 1


def test_beyond_normal_names_a_corrupt_sample_index(tmp_path: Path) -> None:
    import beyond_normal

    (tmp_path / "index.json").write_text('{"samples": ')
    with pytest.raises(SystemExit) as exc:
        beyond_normal.main(["--data", str(tmp_path), "--out", str(tmp_path / "o.json")])
    message = str(exc.value.code)
    assert f"{tmp_path / 'index.json'} is not a sample index" in message
    assert "delete it and draw the samples anew" in message


@pytest.mark.parametrize("script", ["beyond_normal", "knn_check", "screen_check"])
@pytest.mark.parametrize("content, why", [
    ("{}", "KeyError: 'samples'"), ("garbage", "JSONDecodeError"),
    ('{"samples": [{"task_id": "t"}]}', "sample 0 lacks family"),
])
def test_every_script_reading_the_sample_index_names_a_damaged_one(
        tmp_path: Path, script: str, content: str, why: str) -> None:
    """A new user: knn_check.py and screen_check.py gave KeyError and JSONDecodeError
    tracebacks on an index beyond_normal.py named; all three read it through one check."""
    import importlib

    (tmp_path / "index.json").write_text(content)
    with pytest.raises(SystemExit) as exc:
        importlib.import_module(script).main(["--data", str(tmp_path),
                                              "--out", str(tmp_path / "o.json")])
    message = str(exc.value.code)
    assert message.startswith(f"{script}.py: {tmp_path / 'index.json'} is not a sample index")
    assert why in message and "\n" not in message, message


def test_screen_check_report_names_a_missing_or_damaged_results_file(tmp_path: Path) -> None:
    import screen_check

    out = tmp_path / "none.json"
    with pytest.raises(SystemExit, match=rf"screen_check.py: no results file {out}"):
        screen_check.main(["--report", "--out", str(out)])
    out.write_text("{}")
    with pytest.raises(SystemExit, match=rf"{out} is not a results file .*KeyError: 'rows'"):
        screen_check.main(["--report", "--out", str(out)])


def test_read_records_names_a_corrupt_file(tmp_path: Path) -> None:
    """run_bmi.py --resume and compare.py --reuse read their files through it."""
    from samples import read_records

    path = tmp_path / "out.json"
    assert read_records(str(path)) == []
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match=rf"{path} is not a results file"):
        read_records(str(path))


def test_screen_check_counts_stops_and_the_ones_the_end_would_have_trained() -> None:
    import screen_check

    def bn(gain, end, gaussian=True, spiral=False, stop_step=100):
        return {"set": "beyond_normal", "gaussian_dependence": gaussian, "wide_spiral": spiral,
                "check_gain": gain, "end_gain": end, "check_stops": gain <= 3.0,
                "stop_step": stop_step if gain <= 3.0 else None, "end_screens": end <= 2.0}

    rows = [bn(-1.0, -1.0), bn(2.5, 2.5, stop_step=200), bn(5.7, 5.7), bn(1.0, 0.5, False, True),
            bn(8.0, 6.0, False), {**bn(2.8, 2.8, False), "set": "mild", "n": 300}]
    table = {r[0]: r[1:] for r in screen_check.summary_rows(rows)}
    assert table["Beyond Normal, Gaussian dependence"] == [
        "3", "-1.0", "2.5", "5.7", "2 (1)", "1"]
    assert table["Beyond Normal, 25 x 25 spirals"] == ["1", "1.0", "1.0", "1.0", "1 (1)", "0"]
    assert table["Beyond Normal, other non-Gaussian"] == ["1", "8.0", "8.0", "8.0", "0 (0)", "0"]
    assert table["y = x + 0.35 (x^2 - 1) + 0.7 noise, n = 300"] == [
        "1", "2.8", "2.8", "2.8", "1 (1)", "1"]
    assert len(screen_check.HEADER) == 7


SCRIPTS_WITH_OPTIONS = ["beyond_normal", "beyond_normal_report", "consistency",
                        "estimate_accuracy", "estimate_gpu", "knn_check", "local_loss",
                        "mild_non_gaussian", "render_docs", "screen_check", "staircase",
                        "time_claims", "training_check", "upper_bounds_heldout"]


@pytest.mark.parametrize("script", SCRIPTS_WITH_OPTIONS)
def test_every_option_has_help(script: str, monkeypatch) -> None:
    """Regression (tenth tryout): ``staircase.py --help`` listed ``--critics``, ``--tasks``,
    ``--batch-size``, ``--threads`` and ``--seed`` with no word (not the choices, not the
    default: 2 threads, where the committed runs used 1), ``consistency.py --help``
    ``--dim``, ``--mi``, ``--seed``, ``--threads`` and ``--out`` alike; 34 options of 9
    scripts in all. The parser is caught before it parses, so nothing runs."""
    import argparse

    caught: list[argparse.ArgumentParser] = []

    class Caught(Exception):
        pass

    def catch(self, *args, **kwargs):
        caught.append(self)
        raise Caught

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", catch)
    monkeypatch.setattr(sys, "argv", [script])
    module = __import__(script)
    with pytest.raises(Caught):
        try:
            module.main([])
        except TypeError:  # a main() that reads sys.argv itself
            module.main()
    bare = [a.option_strings[0] for a in caught[0]._actions
            if a.option_strings and not a.help]
    assert bare == [], f"{script}: options without help: {bare}"
    # a shortened option is an error, never silently another option (staircase.py --thr 4
    # was --threads 4), as in mitools estimate and the image-text example
    assert caught[0].allow_abbrev is False, f"{script}: takes shortened options"


def test_consistency_table_has_no_nan_standard_error() -> None:
    """Regression (tenth tryout): ``consistency.py --generative`` wrote "5.365 ± nan" for
    every bound (one fitted q gives no standard error); the cell is the value alone."""
    from consistency import estimate_cell

    assert estimate_cell({"value": 5.3654, "stderr": float("nan")}) == "5.365"
    assert estimate_cell({"value": 2.0421, "stderr": 0.0123}) == "2.042 ± 0.012"
