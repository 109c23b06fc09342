"""Tests of the command line (mitools.cli): file types, column selection, errors, exit codes.

A few cases run ``python -m mitools`` in a subprocess (each pays torch's import, ~2 s CPU);
the others call :func:`mitools.cli.main` in this process, which is the same code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run_main

from mitools.classical import ksg
from mitools.cli import main

ROOT = Path(__file__).resolve().parents[1]
N = 300


def text_dtype() -> str:
    """The dtype pandas reads a .csv text column as: ``str`` from pandas 3, ``object`` before
    (the extra ``[io]`` admits pandas 2.0)."""
    import io

    pd = pytest.importorskip("pandas")
    return str(pd.read_csv(io.StringIO("a\nx\n"))["a"].dtype)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pd = pytest.importorskip("pandas")
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, 2))
    y = x[:, :1] + rng.standard_normal((N, 1))
    np.save(d / "x.npy", x)
    np.save(d / "y.npy", y)
    np.save(d / "y_short.npy", y[:-1])
    np.savez(d / "xy.npz", x=x, y=y)
    np.savez(d / "other.npz", features=x, target=y)
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": y[:, 0], "city": ["Paris"] * N,
                          "ts": 1_700_000_000_000_000_000 + rng.permutation(N)})
    frame.to_csv(d / "d.csv", index=False)
    frame.to_csv(d / "d.tsv", sep="\t", index=False)
    frame[["a", "b", "c"]].to_csv(d / "noheader.csv.gz", index=False, header=False)
    try:
        frame.to_parquet(d / "d.parquet")
    except ImportError:
        pass
    holes = frame.copy()
    holes.loc[[3, 7], "a"] = np.nan
    holes.loc[[7, 9], "c"] = np.nan
    holes.to_csv(d / "nan.csv", index=False)
    frame[["a", "b", "c"]].iloc[:4].to_csv(d / "tiny.csv", index=False)
    # the files of a new user's tryout
    for name in ("empty.npy", "empty.npz", "empty.csv"):
        (d / name).write_bytes(b"")
    (d / "corrupt.npz").write_bytes(b"not a zip archive")
    (d / "header_only.csv").write_text("a,b,c\n")
    infinite = frame[["a", "b", "c"]].copy()
    infinite.loc[5, "a"], infinite.loc[9, "c"], infinite.loc[11, "b"] = np.inf, -np.inf, np.nan
    infinite.to_csv(d / "inf.csv", index=False)
    empty_column = frame[["a", "c"]].assign(e=np.nan)
    empty_column.to_csv(d / "allnan.csv", index=False)
    text = frame[["a", "c", "city"]].assign(
        c=["0.5", "0.25"] + ["abc"] + [f"{v}" for v in frame["c"][3:]],
        lab=np.where(x[:, 0] > 0, "pos", "neg"))
    text.to_csv(d / "text.csv", index=False)
    frame[["a", "c"]].assign(lab=(x[:, 0] > 0).astype(int) + (x[:, 1] > 0)).to_csv(
        d / "labels.csv", index=False)
    return d


def _expected(data: Path) -> float:
    return ksg(np.load(data / "x.npy"), np.load(data / "y.npy")).value


def _run(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "mitools", "estimate", *args], cwd=data,
                          env=env, capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.parametrize(
    "args",
    [
        ("x.npy", "y.npy"),
        ("xy.npz",),
        ("d.csv", "--x-cols", "a,b", "--y-cols", "c"),
        ("d.tsv", "--x-cols", "0:2", "--y-cols", "c"),
        ("d.parquet", "--x-cols", "a,b", "--y-cols", "c"),
    ],
    ids=["npy", "npz", "csv", "tsv", "parquet"],
)
def test_every_file_type_in_a_subprocess(data: Path, args: tuple[str, ...]) -> None:
    if args[0].endswith(".parquet") and not (data / "d.parquet").exists():
        pytest.skip("pyarrow is not installed")
    done = _run(data, *args, "--method", "ksg", "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["value"] == pytest.approx(_expected(data), rel=1e-12)
    assert record["method"] == "ksg1" and record["n_samples"] == N and record["unit"] == "nats"
    # KSG's jackknife interval is two-sided: it describes the estimator's sampling noise
    assert record["sided"] == "two-sided"
    assert record["interval"][0] < record["value"] < record["interval"][1]


def test_errors_in_a_subprocess_have_exit_codes_and_no_traceback(data: Path) -> None:
    missing = _run(data, "missing.csv", "--method", "gaussian")
    assert missing.returncode == 1 and "no such file: missing.csv" in missing.stderr
    usage = _run(data, "d.csv", "--method", "ksg", "--k", "0")
    assert usage.returncode == 2 and "--k: must be a positive integer" in usage.stderr
    for done in (missing, usage):
        assert "Traceback" not in done.stderr and done.stdout == ""


def test_human_readable_output(capsys: pytest.CaptureFixture[str], data: Path) -> None:
    code, out, _ = run_main(capsys, data, "d.csv", "--y-cols", "c", "--x-cols", "a,b",
                         "--method", "gaussian")
    assert code == 0
    assert out.startswith("I(X; Y) = ") and "95 % interval" in out and "nats" in out
    assert "X: a, b of d.csv; Y: c of d.csv" in out and "jackknife" in out


@pytest.mark.parametrize(
    "args, columns",
    [
        (("--x-cols", "a,b", "--y-cols", "c"), ("a, b", "c")),
        (("--x-cols", "0,1", "--y-cols", "-3"), ("a, b", "c")),
        (("--x-cols", ":2", "--y-cols", "2"), ("a, b", "c")),
        (("--y-cols", "c", "--x-cols", "b,a"), ("b, a", "c")),
    ],
)
def test_column_selection(capsys, data: Path, args, columns) -> None:
    code, out, err = run_main(capsys, data, "d.csv", *args, "--method", "gaussian", "--json")
    assert code == 0, err
    assert json.loads(out)["inputs"] == f"X: {columns[0]} of d.csv; Y: {columns[1]} of d.csv"


def test_one_file_default_columns(capsys, data: Path) -> None:
    code, out, _ = run_main(capsys, data, "noheader.csv.gz", "--no-header", "--y-cols", "2",
                         "--method", "ksg", "--json")
    assert code == 0 and json.loads(out)["value"] == pytest.approx(_expected(data), rel=1e-12)
    code, out, _ = run_main(capsys, data, "x.npy", "--method", "gaussian", "--json")
    assert code == 0 and json.loads(out)["inputs"] == "X: 0 of x.npy; Y: 1 of x.npy"
    code, out, _ = run_main(capsys, data, "other.npz", "--x-key", "features", "--y-key", "target",
                         "--method", "ksg", "--json")
    assert code == 0 and json.loads(out)["value"] == pytest.approx(_expected(data), rel=1e-12)


def test_missing_values_and_dropna(capsys, data: Path) -> None:
    args = ("nan.csv", "--x-cols", "a,b", "--y-cols", "c", "--method", "ksg", "--json")
    code, out, err = run_main(capsys, data, *args)
    assert code == 1 and out == ""
    assert "3 of 300 rows have missing values" in err and "--dropna" in err
    assert "X column 'a': 2; Y column 'c': 2" in err
    code, out, err = run_main(capsys, data, *args, "--dropna")
    assert code == 0 and "dropped 3 of 300 rows" in err
    record = json.loads(out)
    assert record["dropped_rows"] == 3 and record["n_samples"] == N - 3


def test_integer_timestamps_keep_their_precision(capsys, data: Path) -> None:
    code, out, _ = run_main(capsys, data, "d.csv", "--x-cols", "ts", "--y-cols", "c",
                         "--method", "mixed", "--json", "--groups", "0")
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(data / "d.csv")
    from mitools.classical import mixed_ksg

    shifted = (frame["ts"] - frame["ts"].min()).to_numpy()
    assert code == 0
    assert json.loads(out)["value"] == mixed_ksg(shifted, frame["c"], groups=0).value


@pytest.mark.parametrize(
    "args, message",
    [
        (("d.csv", "--x-cols", "a,city", "--y-cols", "c"),
         "X has non-numeric columns in d.csv: 'city'"),
        (("d.csv", "--y-cols", "c"), "non-numeric columns in d.csv: 'city'"),
        (("x.npy", "y_short.npy"), "X has 300 rows (x.npy) but Y has 299 (y_short.npy)"),
        (("tiny.csv", "--x-cols", "a", "--y-cols", "c"),
         "ksg1 needs at least 20 samples (every sample needs k=3 neighbours"),
        (("d.csv", "--x-cols", "a,zz", "--y-cols", "c"), "d.csv has no column 'zz'"),
        (("xy.npz", "--x-key", "q"), "xy.npz has no array 'q' (it has: x, y)"),
        (("d.csv",), "d.csv has 5 columns (a, b, c, city, ts): say which are X and which Y"),
        (("x.npy", "data.xlsx"), "cannot tell the format of data.xlsx"),
        (("x.npy", "missing.npy"), "no such file: missing.npy"),
    ],
)
def test_data_errors_in_the_users_terms(capsys, data: Path, args, message) -> None:
    if "data.xlsx" in args:
        (data / "data.xlsx").write_text("not a spreadsheet")
    code, out, err = run_main(capsys, data, *args, "--method", "ksg")
    assert code == 1 and out == ""
    assert err.startswith("mitools: error: ") and message in err, err


@pytest.mark.parametrize(
    "args, message",
    [
        (("--method", "ksg", "--bound", "dv"), "--bound does not apply to --method ksg"),
        (("--method", "gaussian", "--k", "5"), "--k does not apply to --method gaussian"),
        (("--method", "ksg", "--no-screen"), "--no-screen does not apply to --method ksg"),
        (("--bound", "nope"), "invalid choice: 'nope' (choose from 'infonce'"),
        (("--method", "kde"), "invalid choice: 'kde'"),
        (("--groups", "1", "--method", "ksg"), "must be 0 (no interval) or at least 2"),
        (("--level", "95", "--method", "ksg"), "strictly between 0 and 1"),
    ],
)
def test_usage_errors_exit_with_2(capsys, data: Path, args, message) -> None:
    with pytest.raises(SystemExit) as stop:
        run_main(capsys, data, "xy.npz", *args)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_a_column_in_both_x_and_y_is_a_usage_error(capsys, data: Path) -> None:
    with pytest.raises(SystemExit) as stop:
        run_main(capsys, data, "d.csv", "--x-cols", "a,c", "--y-cols", "c", "--method", "ksg")
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "column c is in both X and Y" in err and "usage: mitools estimate" in err


def test_warnings_are_one_line_each_and_json_holds_the_diagnostics(capsys, tmp_path) -> None:
    # y = sin(3x) + noise: 100 steps are too few, and the fit says so
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, 400)
    np.savez(tmp_path / "sin.npz", x=x, y=np.sin(3 * x) + 0.1 * rng.standard_normal(400))
    common = ("sin.npz", "--max-steps", "100", "--folds", "2", "--threads", "1")
    code, out, err = run_main(capsys, tmp_path, *common, "--json")
    assert code == 0, err
    lines = err.splitlines()
    assert lines and all(line.startswith("mitools: warning: ") for line in lines), err
    assert "result.diagnostics" not in err and ".py:" not in err and "Warning" not in err
    assert "ran to --max-steps 100" in err and '--json lists them under "diagnostics"' in err
    record = json.loads(out)
    flags = record["diagnostics"]["flags"]
    assert flags and "2 of 2 folds ran to --max-steps 100" in flags[0]  # in the CLI's words
    assert record["diagnostics"]["unconverged_folds"] == 2 and record["diagnostics"]["folds"] == 2
    assert [w.removeprefix("mitools: warning: ") for w in lines] == record["warnings"]
    code, out, _ = run_main(capsys, tmp_path, *common)  # plain text repeats the flags
    assert code == 0 and "diagnostics: estimate_mi" not in out
    assert "diagnostics: 2 of 2 folds ran to --max-steps 100" in out


def test_classical_json_has_no_diagnostics(capsys, data: Path) -> None:
    code, out, _ = run_main(capsys, data, "xy.npz", "--method", "gaussian", "--json")
    record = json.loads(out)
    assert code == 0 and record["diagnostics"] is None and record["warnings"] == []


def test_parquet_without_pyarrow_says_what_to_install(capsys, data: Path, monkeypatch) -> None:
    if not (data / "d.parquet").exists():
        pytest.skip("pyarrow is not installed")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "fastparquet", None)
    code, _, err = run_main(capsys, data, "d.parquet", "--x-cols", "a", "--y-cols", "c",
                         "--method", "ksg")
    assert code == 1 and "pip install pyarrow, or from a clone pip install -e '.[io]'" in err


def test_neural_method_with_few_steps(capsys, data: Path) -> None:
    code, out, err = run_main(capsys, data, "xy.npz", "--max-steps", "5", "--folds", "2",
                           "--threads", "1", "--seed", "1", "--json")
    assert code == 0, err
    record = json.loads(out)
    assert record["method"] == "neural" and record["bound"] == "dv"
    # one-sided by default: a lower confidence bound, and no upper end (JSON null, not inf)
    assert record["sided"] == "lower" and record["interval"][1] is None
    assert record["interval"][0] < record["value"]


def test_no_screen_trains_every_fold(capsys, data: Path) -> None:
    code, out, err = run_main(capsys, data, "xy.npz", "--max-steps", "5", "--folds", "2",
                           "--threads", "1", "--no-screen", "--json")
    assert code == 0, err
    assert json.loads(out)["diagnostics"]["untrained_folds"] == 0


def test_help_documents_exit_codes_and_the_console_script_is_declared(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["estimate", "--help"])
    text = capsys.readouterr().out
    assert "Exit codes: 0 success, 1 a problem with the data, 2 a usage error" in text
    for option in ("--x-cols", "--y-cols", "--x-key", "--dropna", "--method", "--bound",
                   "--seed", "--device", "--threads", "--json"):
        assert option in text
    # the defaults are estimate_mi's (auto device, load-aware threads), and say so
    flat = " ".join(text.split())
    assert "(default, as estimate_mi: a GPU when CUDA is available, else the CPU)" in flat
    assert "default, as estimate_mi: min(4, idle CPUs)" in flat
    assert "gaussian: does not take it" in flat
    pyproject = (ROOT / "pyproject.toml").read_text()  # (tomllib needs Python 3.11)
    scripts = pyproject.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    assert 'mitools = "mitools.cli:main"' in scripts


def test_bound_choices_are_estimate_mis_and_upper_bounds_are_a_usage_error(capsys) -> None:
    # a new user's --bound club printed 5114 nats as a "95% lower confidence bound"
    from mitools.estimate.options import estimate_bounds

    with pytest.raises(SystemExit):
        main(["estimate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"lower bound trained by --method neural: {', '.join(estimate_bounds())}" in text
    with pytest.raises(SystemExit) as info:
        main(["estimate", "x.npy", "--bound", "club"])
    assert info.value.code == 2 and "invalid choice: 'club'" in capsys.readouterr().err


# --- the faults of a new user's tryout, each kept as a regression test ---


def test_unreadable_files_say_so_in_a_subprocess(data: Path) -> None:
    done = _run(data, "empty.npy", "y.npy", "--method", "gaussian")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == "mitools: error: cannot read empty.npy: empty file\n", done.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (("empty.npz",), "cannot read empty.npz: empty file"),
        (("empty.csv",), "cannot read empty.csv: empty file"),
        (("corrupt.npz",), "cannot read corrupt.npz: "),
        (("header_only.csv", "--x-cols", "a"), "header_only.csv has no data rows (only a "
                                              "header row: a, b, c)"),
        # the first data row of a header-less table was read as its names, silently
        (("noheader.csv.gz", "--y-cols", "2"), "the header row of noheader.csv.gz holds only "
                                               "numbers"),
        (("inf.csv", "--x-cols", "a,b", "--y-cols", "c"),
         "3 of 300 rows have missing (NaN) or infinite values in inf.csv (X column 'a': 1 (1 "
         "infinite); X column 'b': 1; Y column 'c': 1 (1 infinite); the first is data row 5"),
        (("allnan.csv", "--x-cols", "a", "--y-cols", "e", "--dropna"),
         "--dropna dropped all 300 rows of allnan.csv (Y column 'e' has no finite values)"),
        # the example was a valid number, '0.5'
        (("text.csv", "--x-cols", "a", "--y-cols", "c"),
         "Y has non-numeric columns in text.csv: 'c' (dtype {text}; data row 2 holds 'abc', "
         "not a number)"),
        (("text.csv", "--x-cols", "lab", "--y-cols", "city"),
         "X has non-numeric columns in text.csv: 'lab' (dtype {text}; data row 0 holds 'pos', "
         "not a number); Y has non-numeric columns in text.csv: 'city' (dtype {text}; data "
         "row 0 holds 'Paris', not a number); choose numeric columns"),
    ],
)
def test_tryout_data_errors(capsys, data: Path, args, message) -> None:
    code, out, err = run_main(capsys, data, *args, "--method", "gaussian")
    message = message.replace("{text}", text_dtype())
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("mitools: error: ") and message in err, err


def test_a_numeric_header_needs_no_header_or_header(capsys, data: Path) -> None:
    code, out, err = run_main(capsys, data, "noheader.csv.gz", "--y-cols", "2", "--method",
                           "gaussian")
    assert code == 1 and "pass --no-header" in err and "pass --header" in err
    code, out, err = run_main(capsys, data, "noheader.csv.gz", "--y-cols", "2", "--header",
                           "--method", "gaussian", "--json")
    assert code == 0, err
    assert json.loads(out)["n_samples"] == N - 1  # asked for: the first row is the header


def test_dropna_drops_infinite_rows_and_says_so(capsys, data: Path) -> None:
    code, out, err = run_main(capsys, data, "inf.csv", "--x-cols", "a,b", "--y-cols", "c",
                           "--method", "gaussian", "--json", "--dropna")
    assert code == 0, err
    assert "dropped 3 of 300 rows with missing (NaN) or infinite values" in err
    record = json.loads(out)
    assert record["dropped_rows"] == 3 and record["n_samples"] == N - 3


def test_dropping_every_row_leaks_no_numpy_warning(capsys, data: Path) -> None:
    code, _, err = run_main(capsys, data, "allnan.csv", "--x-cols", "a", "--y-cols", "e",
                         "--dropna", "--method", "gaussian")
    assert code == 1 and "warning" not in err and "Mean of empty slice" not in err


@pytest.mark.parametrize(
    "args, columns",
    [
        (("--x-cols", "-5,-4", "--y-cols", "-3"), "X: a, b of d.csv; Y: c of d.csv"),
        (("--x-cols", "-5:-3", "--y-cols", "c"), "X: a, b of d.csv; Y: c of d.csv"),
        (("--y-cols", "-3", "--x-cols=-4,-5"), "X: b, a of d.csv; Y: c of d.csv"),
    ],
)
def test_negative_columns_with_a_space(capsys, data: Path, args, columns) -> None:
    # "--y-cols -2,-1" failed in argparse: "expected one argument"
    code, out, err = run_main(capsys, data, "d.csv", *args, "--method", "gaussian", "--json")
    assert code == 0, err
    assert json.loads(out)["inputs"] == columns


@pytest.mark.parametrize(
    "args, message",
    [
        (("xy.npz", "--seed", "-1"), "argument --seed: must be an integer from 0 to 4294967295"),
        (("xy.npz", "--seed", "99999999999999999999"), "argument --seed: must be an integer"),
        (("xy.npz", "--seed", "one"), "argument --seed: must be an integer from 0 to "
                                      "4294967295, got 'one'"),
        (("xy.npz", "--method", "neural", "--folds", "1"), "argument --folds: must be an "
                                                           "integer of at least 2"),
        (("xy.npz", "--method", "neural", "--device", "banana"),
         "argument --device: 'banana' is not a device (cpu, cuda, cuda:1, mps); available "
         "here: cpu"),
        (("xy.npz", "--k", "three"), "argument --k: must be a positive integer, got 'three'"),
        (("x.npy", "y.npy", "--x-key", "foo"), "--x-key applies to .npz files only; X's file "
                                               "is .npy"),
        (("x.npy", "xy.npz", "--y-key", "y", "--x-key", "x"), "--x-key applies to .npz"),
        (("x.npy", "y.npy", "--no-header"), "--no-header applies to .csv / .tsv files only"),
        (("xy.npz", "--discrete-x"), "--discrete-x does not apply to --method ksg"),
        (("xy.npz", "--method", "gaussian", "--discrete-y"), "--discrete-y does not apply"),
        (("d.csv", "--x-cols", "0,a", "--y-cols", "c"),
         "--x-cols 0,a names column 'a' of d.csv twice"),
        (("d.csv", "--x-cols", "a", "--y-cols", "c,1:3"), "names column 'c' of d.csv twice"),
        # two names of one file gave 17.7 nats for a column against itself
        (("d.csv", "./d.csv", "--x-cols", "a", "--y-cols", "a"),
         "column a is in both X and Y: X and Y name the same file, d.csv"),
        (("--header", "d.csv", "--no-header"), "not allowed with argument"),
    ],
)
def test_tryout_usage_errors_exit_with_2(capsys, data: Path, args, message) -> None:
    with pytest.raises(SystemExit) as stop:
        run_main(capsys, data, *args, *(() if "--method" in args else ("--method", "ksg")))
    assert stop.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert message in err, err


def test_seed_and_folds_in_a_subprocess(data: Path) -> None:
    done = _run(data, "xy.npz", "--seed", "-1", "--method", "gaussian")
    assert done.returncode == 2 and "argument --seed: must be an integer" in done.stderr
    done = _run(data, "d.csv", "--x-cols", "a", "--y-cols", "-3,-2", "--method", "gaussian")
    assert "argument --y-cols" not in done.stderr
    assert done.returncode == 1 and "non-numeric columns in d.csv: 'city'" in done.stderr


def test_a_closed_stdout_is_quiet_in_a_subprocess(data: Path) -> None:
    # mitools estimate ... | head -1 printed a BrokenPipeError traceback
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "mitools", "estimate", "x.npy", "y.npy",
                             "--method", "gaussian"], cwd=data, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # closed before anything is written: the write must fail
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=600) == 141
    assert err == "", err


def test_a_stdout_closed_from_the_start_is_quiet_in_a_subprocess(data: Path) -> None:
    """Regression (review): started with stdout closed (`>&-`, sys.stdout None), the command
    failed with "AttributeError: 'NoneType' object has no attribute 'flush'" (exit 1)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    done = subprocess.run(f'"{sys.executable}" -m mitools estimate x.npy y.npy --method '
                          "gaussian >&-", shell=True, cwd=data, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 141, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("spec", ["--1", "²", "-²", "1:--2"])
def test_column_specs_that_are_not_indices_are_names(capsys, data: Path, spec) -> None:
    """Regression (review): "--x-cols=--1" ended in int('--1')'s traceback (str.isdigit
    after stripping every minus; a superscript digit passes isdigit too)."""
    code, _, err = run_main(capsys, data, "d.csv", f"--x-cols={spec}", "--y-cols", "c",
                         "--method", "gaussian")
    assert code in (1, 2) and "Traceback" not in err and spec in err


def test_library_messages_read_as_options(capsys, data: Path) -> None:
    from mitools.cli.report import cli_terms

    code, _, err = run_main(capsys, data, "xy.npz", "--method", "ksg", "--groups", "200")
    assert code == 1 and "Use --groups 150 (a rougher interval) or --groups 0" in err
    assert "groups=" not in err
    code, _, err = run_main(capsys, data, "tiny.csv", "--x-cols", "a", "--y-cols", "c",
                         "--method", "gaussian")
    assert code == 1 and "for every classical estimator" in err
    # the warnings of the estimators (today's and the ones the lead is writing)
    assert cli_terms("pass discrete_x=True, which one-hot encodes") == (
        "pass --discrete-x, which one-hot encodes")
    tie = cli_terms("ties are broken by tiny noise ('noise'), which biases the estimate. Use "
                    "mitools.classical.mixed_ksg (discrete_x=True / discrete_y=True for a "
                    "label); for a discrete variable use mixed_ksg with discrete_y=True")
    assert tie == ("ties are broken by tiny noise, which biases the estimate. Use --method "
                   "mixed (--discrete-x / --discrete-y for a label); for a discrete variable "
                   "use --method mixed with --discrete-y")
    assert cli_terms("Use folds=2 or more samples.") == "Use --folds 2 or more samples."
    code, _, err = run_main(capsys, data, "labels.csv", "--x-cols", "lab", "--y-cols", "a",
                         "--method", "ksg", "--groups", "0")
    assert code == 0 and "repeats values" in err and "--method mixed" in err
    assert "mitools.classical" not in err and "'noise'" not in err


def test_discrete_x_reaches_the_neural_method(capsys, data: Path) -> None:
    common = ("labels.csv", "--x-cols", "lab", "--y-cols", "a", "--max-steps", "5", "--folds",
              "2", "--threads", "1", "--json")
    code, out, err = run_main(capsys, data, *common)
    assert code == 0, err
    assert "x looks discrete" in err and "pass --discrete-x" in err and "discrete_x" not in err
    code, out, err = run_main(capsys, data, *common, "--discrete-x")
    assert code == 0, err
    assert "looks discrete" not in err and json.loads(out)["method"] == "neural"


def test_an_infinite_estimate_in_json_and_text(capsys, data: Path, monkeypatch) -> None:
    from mitools import classical
    from mitools.estimate import MIEstimate

    infinite = MIEstimate(value=float("inf"), stderr=float("nan"),
                          interval=(float("nan"), float("nan")), level=0.95, method="gaussian",
                          uncertainty="none: the estimate is not finite")
    monkeypatch.setattr(classical, "gaussian_mi", lambda *a, **k: infinite)
    code, out, _ = run_main(capsys, data, "xy.npz", "--method", "gaussian", "--json")
    record = json.loads(out)
    assert code == 0 and record["value"] is None and record["infinite"] is True
    code, out, _ = run_main(capsys, data, "xy.npz", "--method", "gaussian")
    assert out.startswith("I(X; Y) = inf nats (no interval: the estimate is infinite) [gaussian]\n")
    monkeypatch.undo()
    code, out, _ = run_main(capsys, data, "xy.npz", "--method", "gaussian", "--json")
    assert code == 0 and json.loads(out)["infinite"] is False


def test_discrete_x_reaches_mixed_ksg(capsys, data: Path) -> None:
    pd = pytest.importorskip("pandas")
    from mitools.classical import mixed_ksg

    frame = pd.read_csv(data / "labels.csv")
    args = ("labels.csv", "--x-cols", "lab", "--y-cols", "a", "--method", "mixed", "--json")
    code, out, err = run_main(capsys, data, *args, "--discrete-x")
    assert code == 0, err
    expected = mixed_ksg(frame["lab"].to_numpy(), frame["a"].to_numpy(), discrete_x=True)
    assert json.loads(out)["value"] == expected.value
    code, out, err = run_main(capsys, data, *args)
    plain = mixed_ksg(frame["lab"].to_numpy(), frame["a"].to_numpy())
    assert code == 0 and json.loads(out)["value"] == plain.value


def test_a_text_label_column_gives_the_estimate_of_its_codes(capsys, data: Path) -> None:
    """A CSV's text labels (read by pandas as text) with --discrete-x: the estimate of the
    same labels coded as integers; without the flag they are refused as before."""
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(data / "labels.csv")
    names = np.array(["high", "low", "mid"])[frame["lab"].to_numpy()]  # 'high' < 'low' < 'mid'
    frame.assign(animal=names).to_csv(data / "animals.csv", index=False)
    args = ("--y-cols", "a", "--method", "mixed", "--discrete-x", "--json")
    done = _run(data, "animals.csv", "--x-cols", "animal", *args)  # a fresh process
    assert done.returncode == 0, done.stderr
    code, out, err = run_main(capsys, data, "animals.csv", "--x-cols", "lab", *args)
    assert code == 0, err
    from mitools.classical import mixed_ksg

    expected = mixed_ksg(frame["lab"], frame["a"], discrete_x=True).value
    assert json.loads(done.stdout)["value"] == json.loads(out)["value"] == expected
    neural = ("--y-cols", "a", "--discrete-x", "--max-steps", "5", "--folds", "2", "--threads",
              "1", "--json")
    _, text_out, err = run_main(capsys, data, "animals.csv", "--x-cols", "animal", *neural)
    _, code_out, _ = run_main(capsys, data, "animals.csv", "--x-cols", "lab", *neural)
    assert json.loads(text_out)["value"] == json.loads(code_out)["value"], err
    code, _, err = run_main(capsys, data, "animals.csv", "--x-cols", "animal", "--y-cols", "a",
                            "--method", "mixed")
    assert code == 1 and f"'animal' (dtype {text_dtype()}; data row 0 holds" in err
    assert "read as such with --discrete-x / --discrete-y" in err


def test_empty_label_cells_are_missing_values(capsys, data: Path) -> None:
    pd = pytest.importorskip("pandas")
    from mitools.classical import mixed_ksg

    frame = pd.read_csv(data / "labels.csv")
    names = np.array(["high", "low", "mid"], dtype=object)[frame["lab"].to_numpy()]
    names[[4, 9]] = None
    frame.assign(animal=names).to_csv(data / "gaps.csv", index=False)
    args = ("gaps.csv", "--x-cols", "animal", "--y-cols", "a", "--method", "mixed",
            "--discrete-x", "--json")
    code, _, err = run_main(capsys, data, *args)
    assert code == 1 and ("2 of 300 rows have missing values (NaN) in gaps.csv (X column "
                          "'animal': 2; the first is data row 4") in err
    code, out, err = run_main(capsys, data, *args, "--dropna")
    keep = np.ones(len(frame), dtype=bool)
    keep[[4, 9]] = False
    expected = mixed_ksg(frame["lab"][keep], frame["a"][keep], discrete_x=True).value
    assert code == 0 and json.loads(out)["value"] == expected and "dropped 2 of 300" in err


def test_an_estimate_at_its_ceiling_warns_on_the_command_line(capsys, data: Path) -> None:
    x = np.random.default_rng(0).standard_normal(N)
    np.savez(data / "cubic.npz", x=x, y=x**3)  # an infinite MI
    code, out, err = run_main(capsys, data, "cubic.npz", "--method", "ksg2", "--groups", "0")
    assert code == 0 and out.startswith("I(X; Y) = ")
    assert err.startswith("mitools: warning: ksg2: the estimate, ") and err.count("\n") == 1
    assert "is a lower figure" in err and f"With n = {N} and k = 3, ksg2 cannot give" in err


def test_a_monotone_relation_warns_on_the_command_line_below_the_ceiling(capsys, data: Path
                                                                          ) -> None:
    """Regression: ``--method ksg --k 10`` on 50 samples of y = x**3 read 0.6 nats, below the
    ceiling rules, with no warning; the exact-relation warning speaks the command line's
    terms."""
    x = np.random.default_rng(0).standard_normal(50)
    np.savez(data / "small_cube.npz", x=x, y=x**3)
    code, out, err = run_main(capsys, data, "small_cube.npz", "--method", "ksg", "--k", "10",
                              "--groups", "0")
    assert code == 0 and out.startswith("I(X; Y) = ") and err.count("\n") == 1, err
    assert err.startswith("mitools: warning: ksg1: the estimate, ") and (
        "an increasing or decreasing function of x" in err and "is infinite" in err
        and "(--method mixed with --discrete-x or --discrete-y)" in err)


def test_integers_beyond_int64_in_a_table_are_numbers(capsys, tmp_path: Path) -> None:
    """Regression (a sixth new user's tryout): a .csv column of integers such as 2**70 + i,
    which pandas keeps as Python ints, was refused as "numbers stored as text; store them
    as numbers"; it is read exactly (shifted by its minimum), also with an empty cell and
    --dropna, and gives the estimate of the shifted column."""
    rng = np.random.default_rng(0)
    i = rng.permutation(200)
    y = (i + rng.normal(0, 20, 200)).tolist()
    rows = [f"{2**70 + int(v)},{w!r}" for v, w in zip(i, y, strict=True)]
    (tmp_path / "big.csv").write_text("big,y\n" + "\n".join(rows) + "\n")
    (tmp_path / "small.csv").write_text(
        "big,y\n" + "\n".join(f"{int(v)},{w!r}" for v, w in zip(i, y, strict=True)) + "\n")
    (tmp_path / "gap.csv").write_text("big,y\n" + "\n".join(rows[:-1]) + "\n,0.5\n")
    values = []
    for args in (("big.csv",), ("small.csv",), ("gap.csv", "--dropna")):
        code, out, err = run_main(capsys, tmp_path, *args, "--method", "gaussian", "--json")
        assert code == 0, err
        values.append(json.loads(out)["value"])
    assert values[0] == values[1] == pytest.approx(values[2], abs=0.02) and values[0] > 1


def test_integers_beyond_int64_read_as_text_by_pandas_2_are_numbers(
        capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression (packaging tryout): pandas before 3.0 (the extra ``[io]`` admits 2.0) reads
    a .csv column of 2**70 + i as text ('1180591620717411303424'), not as Python ints, and
    the command line refused it: "'big' (dtype object: numbers stored as text; store them as
    numbers)", exit 1. Read here as pandas 2 reads it (text), it gives the estimate of the
    column of small integers, as with pandas 3; a column with other text stays text."""
    pd = pytest.importorskip("pandas")
    from mitools.cli.text_tables import integers_beyond_int64

    read_csv = pd.read_csv

    def as_pandas_2(*args, **kwargs):  # pandas 2: the too-large integers as str objects
        kwargs.setdefault("dtype", {"big": object})
        return read_csv(*args, **kwargs)

    monkeypatch.setattr(pd, "read_csv", as_pandas_2)
    rng = np.random.default_rng(0)
    i = rng.permutation(200)
    y = (i + rng.normal(0, 20, 200)).tolist()
    (tmp_path / "big.csv").write_text("big,y\n" + "\n".join(
        f"{2**70 + int(v)},{w!r}" for v, w in zip(i, y, strict=True)) + "\n")
    (tmp_path / "small.csv").write_text("big,y\n" + "\n".join(
        f"{int(v)},{w!r}" for v, w in zip(i, y, strict=True)) + "\n")
    assert read_csv(tmp_path / "big.csv", dtype={"big": object})["big"][0] == str(2**70 + int(i[0]))
    values = []
    for name in ("big.csv", "small.csv"):
        code, out, err = run_main(capsys, tmp_path, name, "--method", "gaussian", "--json")
        assert code == 0, err
        values.append(json.loads(out)["value"])
    assert values[0] == values[1] > 1
    frame = pd.DataFrame({"big": pd.Series([str(2**70 + 1), None, " -7"], dtype=object),
                          "text": pd.Series(["a", "5", None], dtype=object)})
    out_frame = integers_beyond_int64(frame)
    assert out_frame["big"][0] == 2**70 + 1 and pd.isna(out_frame["big"][1])
    assert out_frame["big"][2] == -7 and out_frame["text"].tolist() == ["a", "5", None]


def test_a_header_name_with_spaces_is_found_without_them(capsys, tmp_path: Path) -> None:
    """Regression: a header cell " age" could not be chosen by name (the option's tokens are
    stripped, the header's are not), and the error listed it as "age" beside "no column
    'age'". Chosen alike now; an unknown name lists such names quoted."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=100)
    b = (a + rng.normal(size=100)).tolist()
    lines = [f"{u!r},{v!r}" for u, v in zip(a.tolist(), b, strict=True)]
    (tmp_path / "s.csv").write_text(" age ,out come\n" + "\n".join(lines) + "\n")
    code, out, err = run_main(capsys, tmp_path, "s.csv", "--x-cols", "age", "--y-cols",
                              "out come", "--method", "gaussian", "--json")
    assert code == 0, err
    assert json.loads(out)["inputs"] == "X:  age  of s.csv; Y: out come of s.csv"
    code, _, err = run_main(capsys, tmp_path, "s.csv", "--x-cols", "agee", "--method", "ksg")
    assert code == 1 and "(columns: ' age ', out come;" in err
