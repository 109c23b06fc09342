"""Regression tests of the command line's second new-user tryout: each keeps its reproduction.

In-process calls of :func:`mitools.cli.main` (the same code as ``mitools estimate``), and one
subprocess of the reproduction that mattered most.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mitools.cli import main

ROOT = Path(__file__).resolve().parents[1]
N = 300


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("tryout")
    rng = np.random.default_rng(0)
    a, b, c = rng.standard_normal((3, N))
    np.savez(d / "xonly.npz", x=a)
    np.savez(d / "one.npz", arr=np.c_[a, b, c])
    np.savez(d / "xy.npz", x=np.c_[a, b], y=a + c)
    np.savez(d / "xyz.npz", x=np.c_[a, b], y=a + c, z=c)
    np.save(d / "x.npy", np.c_[a, b])
    return d


def _main(capsys: pytest.CaptureFixture[str], data: Path, *args: str) -> tuple[int, str, str]:
    cwd = os.getcwd()
    os.chdir(data)
    try:
        code = main(["estimate", *args])
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    return code, out, err


def _usage(capsys: pytest.CaptureFixture[str], data: Path, *args: str) -> str:
    with pytest.raises(SystemExit) as stop:
        _main(capsys, data, *args)
    err = " ".join(capsys.readouterr().err.split())
    assert stop.value.code == 2, err
    return err


# --- fault 1: one .npz gave Y = X (inf nats) or X's columns inside Y, silently ---


def test_an_archive_without_y_is_an_error_in_a_subprocess(data: Path) -> None:
    # "mitools estimate xonly.npz --method gaussian" printed "inf nats", exit 0
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "mitools", "estimate", "xonly.npz",
                           "--method", "gaussian"], cwd=data, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 1 and done.stdout == "", done.stdout
    assert "xonly.npz has no array 'y' (it has: x)" in done.stderr, done.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (("xonly.npz",), "xonly.npz has no array 'y' (it has: x); with one .npz, X and Y are "
                         "its arrays x and y"),
        # gave 4.07 nats with "Y: 0, 1, 2 of one.npz[arr]"
        (("one.npz", "--x-cols", "0,1"), "one.npz has no array 'x' (it has: arr)"),
        (("one.npz", "--y-cols", "2"), "one.npz has no array 'x' (it has: arr)"),
        (("xy.npz", "--y-key", "q"), "xy.npz has no array 'q' (it has: x, y); choose with "
                                     "--y-key"),
    ],
)
def test_one_archive_needs_its_x_and_y(capsys, data: Path, args, message) -> None:
    code, out, err = _main(capsys, data, *args, "--method", "ksg")
    assert code == 1 and out == "" and message in err, err


@pytest.mark.parametrize(
    "args, message",
    [
        # --x-key y gave inf: X and Y were both y
        (("xy.npz", "--x-key", "y"), "X and Y are both the array 'y' of xy.npz (it has: x, y)"),
        (("xy.npz", "--y-key", "x"), "X and Y are both the array 'x' of xy.npz"),
        (("one.npz", "--x-key", "arr", "--y-key", "arr"), "X and Y are both the array 'arr'"),
        (("one.npz", "--x-key", "arr", "--y-key", "arr", "--x-cols", "0,1", "--y-cols", "1:"),
         "columns 1 are in both X and Y"),
        (("xy.npz", "--x-key", "x", "--y-key", "x", "--x-cols", "0", "--y-cols", "0"),
         "columns 0 are in both X and Y"),
        # two names of one archive (default keys: X is x, Y falls back on the lone array)
        (("xonly.npz", "xonly.npz"), "columns 0 are in both X and Y: X and Y name the same"),
        (("one.npz", "one.npz", "--x-cols", "0"), "columns 0 are in both X and Y"),
        (("xy.npz", "link.npz", "--x-key", "x", "--y-key", "x"), "columns 0, 1 are in both"),
        (("x.npy", "hard.npy", "--x-cols", "0", "--y-cols", "0"), "X and Y name the same file"),
    ],
)
def test_x_and_y_never_share_a_column(capsys, data: Path, args, message) -> None:
    if not (data / "link.npz").exists():
        (data / "link.npz").symlink_to(data / "xy.npz")
        os.link(data / "x.npy", data / "hard.npy")
    assert message in _usage(capsys, data, *args, "--method", "ksg")


@pytest.mark.parametrize(
    "args, inputs",
    [
        (("one.npz", "--x-key", "arr", "--y-key", "arr", "--x-cols", "0,1"),
         "X: 0, 1 of one.npz[arr]; Y: 2 of one.npz[arr]"),
        (("one.npz", "--x-key", "arr", "--y-key", "arr", "--y-cols", "-1"),
         "X: 0, 1 of one.npz[arr]; Y: 2 of one.npz[arr]"),
        (("xy.npz",), "X: 0, 1 of xy.npz[x]; Y: 0 of xy.npz[y]"),
        (("xyz.npz", "--y-key", "z"), "X: 0, 1 of xyz.npz[x]; Y: 0 of xyz.npz[z]"),
        (("xy.npz", "xy.npz"), "X: 0, 1 of xy.npz[x]; Y: 0 of xy.npz[y]"),
        (("xonly.npz", "xy.npz"), "X: 0 of xonly.npz[x]; Y: 0 of xy.npz[y]"),
    ],
)
def test_archives_that_name_x_and_y(capsys, data: Path, args, inputs) -> None:
    code, out, err = _main(capsys, data, *args, "--method", "gaussian", "--json")
    assert code == 0, err
    assert json.loads(out)["inputs"] == inputs


def test_a_directory_is_said_to_be_one(capsys, data: Path) -> None:
    # "cannot tell the format of /tmp/somedir from its name"
    for args in ((str(data),), ("x.npy", str(data))):
        code, out, err = _main(capsys, data, *args, "--method", "gaussian")
        assert code == 1 and out == "" and f"{data} is a directory, not a file" in err, err
    code, _, err = _main(capsys, data, "x.npy", "missing.xlsx", "--method", "gaussian")
    assert code == 1 and "no such file: missing.xlsx" in err, err


# --- fault 2: an option of another method was silently ignored (--groups with neural) ---


@pytest.mark.parametrize(
    "args, message",
    [
        # printed "20 groups", exit 0
        (("--groups", "0", "--max-steps", "50"), "--groups does not apply to --method neural"),
        (("--groups", "10"), "--groups does not apply to --method neural"),  # even the default
        (("--method", "gaussian", "--threads", "1"), "--threads does not apply to --method "
                                                     "gaussian"),
        (("--method", "gaussian", "--device", "cpu"), "--device does not apply"),
        (("--method", "ksg", "--folds", "2"), "--folds does not apply to --method ksg"),
        (("--method", "ksg2", "--max-steps", "5"), "--max-steps does not apply"),
        (("--method", "mixed", "--bound", "dv"), "--bound does not apply"),
    ],
)
def test_an_option_of_another_method_is_a_usage_error(capsys, data: Path, args, message):
    assert message in _usage(capsys, data, "xy.npz", *args)


def test_the_options_of_each_method_still_apply(capsys, data: Path) -> None:
    for args in (("--method", "ksg", "--groups", "0", "--threads", "1"),
                 ("--method", "gaussian", "--groups", "5"),
                 ("--method", "mixed", "--groups", "4", "--k", "2")):
        code, out, err = _main(capsys, data, "xy.npz", *args, "--json")
        assert code == 0, err
        groups = args[args.index("--groups") + 1]
        uncertainty = json.loads(out)["uncertainty"]
        assert (f"({groups} groups" in uncertainty) if groups != "0" else (
            "none" in uncertainty or json.loads(out)["stderr"] is None), uncertainty
    code, out, err = _main(capsys, data, "xy.npz", "--method", "ksg", "--json")
    assert code == 0 and "(10 groups" in json.loads(out)["uncertainty"], err


# --- fault 3: the text output rounded the confidence level (0.975 printed "98%") ---


@pytest.mark.parametrize("level, shown", [("0.975", "97.5%"), ("0.999", "99.9%"),
                                          ("0.95", "95%"), ("0.5", "50%")])
def test_the_level_is_printed_as_given(capsys, data: Path, level, shown) -> None:
    code, out, err = _main(capsys, data, "xy.npz", "--method", "gaussian", "--level", level)
    assert code == 0, err
    assert out.startswith("I(X; Y) = ") and f"({shown} interval " in out, out
