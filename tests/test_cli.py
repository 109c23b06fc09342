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

from mitools.classical import ksg
from mitools.cli import main

ROOT = Path(__file__).resolve().parents[1]
N = 300


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
    return d


def _expected(data: Path) -> float:
    return ksg(np.load(data / "x.npy"), np.load(data / "y.npy")).value


def _run(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "mitools", "estimate", *args], cwd=data,
                          env=env, capture_output=True, text=True, timeout=600, check=False)


def _main(capsys: pytest.CaptureFixture[str], data: Path, *args: str) -> tuple[int, str, str]:
    cwd = os.getcwd()
    os.chdir(data)
    try:
        code = main(["estimate", *args])
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    return code, out, err


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
    code, out, _ = _main(capsys, data, "d.csv", "--y-cols", "c", "--x-cols", "a,b",
                         "--method", "gaussian")
    assert code == 0
    assert out.startswith("I(X; Y) = ") and "95% interval" in out and "nats" in out
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
    code, out, err = _main(capsys, data, "d.csv", *args, "--method", "gaussian", "--json")
    assert code == 0, err
    assert json.loads(out)["inputs"] == f"X: {columns[0]} of d.csv; Y: {columns[1]} of d.csv"


def test_one_file_default_columns(capsys, data: Path) -> None:
    code, out, _ = _main(capsys, data, "noheader.csv.gz", "--no-header", "--y-cols", "2",
                         "--method", "ksg", "--json")
    assert code == 0 and json.loads(out)["value"] == pytest.approx(_expected(data), rel=1e-12)
    code, out, _ = _main(capsys, data, "x.npy", "--method", "gaussian", "--json")
    assert code == 0 and json.loads(out)["inputs"] == "X: 0 of x.npy; Y: 1 of x.npy"
    code, out, _ = _main(capsys, data, "other.npz", "--x-key", "features", "--y-key", "target",
                         "--method", "ksg", "--json")
    assert code == 0 and json.loads(out)["value"] == pytest.approx(_expected(data), rel=1e-12)


def test_missing_values_and_dropna(capsys, data: Path) -> None:
    args = ("nan.csv", "--x-cols", "a,b", "--y-cols", "c", "--method", "ksg", "--json")
    code, out, err = _main(capsys, data, *args)
    assert code == 1 and out == ""
    assert "3 of 300 rows have missing values" in err and "--dropna" in err
    assert "X column 'a': 2; Y column 'c': 2" in err
    code, out, err = _main(capsys, data, *args, "--dropna")
    assert code == 0 and "dropped 3 of 300 rows" in err
    record = json.loads(out)
    assert record["dropped_rows"] == 3 and record["n_samples"] == N - 3


def test_integer_timestamps_keep_their_precision(capsys, data: Path) -> None:
    code, out, _ = _main(capsys, data, "d.csv", "--x-cols", "ts", "--y-cols", "c",
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
    code, out, err = _main(capsys, data, *args, "--method", "ksg")
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
        _main(capsys, data, "xy.npz", *args)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_a_column_in_both_x_and_y_is_a_usage_error(capsys, data: Path) -> None:
    with pytest.raises(SystemExit) as stop:
        _main(capsys, data, "d.csv", "--x-cols", "a,c", "--y-cols", "c", "--method", "ksg")
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "columns c are in both X and Y" in err and "usage: mitools estimate" in err


def test_warnings_are_one_line_each_and_json_holds_the_diagnostics(capsys, tmp_path) -> None:
    # y = sin(3x) + noise: 100 steps are too few, and the fit says so
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, 400)
    np.savez(tmp_path / "sin.npz", x=x, y=np.sin(3 * x) + 0.1 * rng.standard_normal(400))
    common = ("sin.npz", "--max-steps", "100", "--folds", "2", "--threads", "1")
    code, out, err = _main(capsys, tmp_path, *common, "--json")
    assert code == 0, err
    lines = err.splitlines()
    assert lines and all(line.startswith("mitools: warning: ") for line in lines), err
    assert "result.diagnostics" not in err and ".py:" not in err and "Warning" not in err
    assert "ran to --max-steps 100" in err and '--json lists them under "diagnostics"' in err
    record = json.loads(out)
    flags = record["diagnostics"]["flags"]
    assert flags and "2 of 2 folds ran to max_steps=100" in flags[0]
    assert record["diagnostics"]["unconverged_folds"] == 2 and record["diagnostics"]["folds"] == 2
    assert [w.removeprefix("mitools: warning: ") for w in lines] == record["warnings"]
    code, out, _ = _main(capsys, tmp_path, *common)  # plain text repeats the flags
    assert code == 0 and "diagnostics: estimate_mi" not in out
    assert "diagnostics: 2 of 2 folds ran to --max-steps 100" in out


def test_classical_json_has_no_diagnostics(capsys, data: Path) -> None:
    code, out, _ = _main(capsys, data, "xy.npz", "--method", "gaussian", "--json")
    record = json.loads(out)
    assert code == 0 and record["diagnostics"] is None and record["warnings"] == []


def test_parquet_without_pyarrow_says_what_to_install(capsys, data: Path, monkeypatch) -> None:
    if not (data / "d.parquet").exists():
        pytest.skip("pyarrow is not installed")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "fastparquet", None)
    code, _, err = _main(capsys, data, "d.parquet", "--x-cols", "a", "--y-cols", "c",
                         "--method", "ksg")
    assert code == 1 and "pip install pyarrow, or from a clone pip install -e '.[io]'" in err


def test_neural_method_with_few_steps(capsys, data: Path) -> None:
    code, out, err = _main(capsys, data, "xy.npz", "--max-steps", "5", "--folds", "2",
                           "--threads", "1", "--seed", "1", "--json")
    assert code == 0, err
    record = json.loads(out)
    assert record["method"] == "neural" and record["bound"] == "dv"
    # one-sided by default: a lower confidence bound, and no upper end (JSON null, not inf)
    assert record["sided"] == "lower" and record["interval"][1] is None
    assert record["interval"][0] < record["value"]


def test_no_screen_trains_every_fold(capsys, data: Path) -> None:
    code, out, err = _main(capsys, data, "xy.npz", "--max-steps", "5", "--folds", "2",
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
    assert "default, as estimate_mi: min(4, idle CPUs)" in flat and "gaussian: not used" in flat
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
