"""Regression tests of the command line's third new-user tryout: each keeps its reproduction,
run as the user ran it, ``python -m mitools`` in a subprocess (each pays torch's import, ~2 s
CPU), except where a check needs the report's objects in-process.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import mitools
from mitools.cli.report import report
from mitools.estimate import MIEstimate

ROOT = Path(__file__).resolve().parents[1]
N = 300


def _mitools(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "mitools", *args], cwd=data, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def _estimate(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _mitools(data, "estimate", *args)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("tryout3")
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, N))
    np.save(d / "x.npy", a)
    np.save(d / "y.npy", a + b)
    np.save(d / "one.npy", a)  # one column
    np.save(d / "few_x.npy", a[:15])
    np.save(d / "few_y.npy", b[:15])
    np.savez(d / "one.npz", arr=a)
    (d / "garbage.npy").write_bytes(np.random.default_rng(1).bytes(500))
    (d / "text.npy").write_text("a,b\n1,2\n3,4\n")  # a csv renamed .npy
    np.save(d / "objects.npy", np.array([1.0, "a", None] * 100, dtype=object))
    (d / "garbage.npz").write_bytes(np.random.default_rng(2).bytes(500))
    np.savez(d / "good.npz", x=a, y=a + b)
    whole = (d / "good.npz").read_bytes()
    (d / "cut.npz").write_bytes(whole[: len(whole) // 2])  # a damaged zip
    np.savez(d / "objkey.npz", x=np.array([1.0, "a"] * (N // 2), dtype=object), y=a)
    with zipfile.ZipFile(d / "member.npz", "w") as z:  # an entry that is no .npy
        z.writestr("x.npy", b"not an array")
        z.writestr("y.npy", b"not an array")
    (d / "zip.npy").write_bytes(whole)  # an .npz under a .npy name
    (d / "arr.npz").write_bytes((d / "x.npy").read_bytes())  # and the converse
    return d


# --- fault 1: numpy's "pickled (object) data ... allow_pickle=" for files that are no pickle ---


@pytest.mark.parametrize(
    "args, message",
    [
        (("garbage.npy", "y.npy"), "cannot read garbage.npy: not a readable .npy file "
                                   "(damaged, or another format saved under that name)"),
        (("text.npy", "y.npy"), "cannot read text.npy: not a readable .npy file"),
        (("x.npy", "objects.npy"), "cannot read objects.npy: it holds an object array (Python "
                                   "objects, stored as a pickle), which mitools will not "
                                   "unpickle; save numbers instead, e.g. np.save(path, "
                                   "a.astype(float))"),
        (("garbage.npz",), "cannot read garbage.npz: not a readable .npz file (damaged, or "
                           "another format saved under that name)"),
        (("x.npy", "garbage.npz"), "cannot read garbage.npz: not a readable .npz file"),
        (("cut.npz",), "cannot read cut.npz: not a readable .npz file (damaged"),
        (("objkey.npz",), "cannot read objkey.npz[x]: it holds an object array (Python "
                          "objects, stored as a pickle), which mitools will not unpickle; "
                          "save numbers instead, e.g. np.savez(path, x=a.astype(float))"),
        (("member.npz",), "cannot read member.npz: not a readable .npz file (damaged, or "
                          "another format saved under that name; its entry 'x' is not a "
                          ".npy array)"),  # was a traceback (AttributeError)
        (("zip.npy", "y.npy"), "cannot read zip.npy: it is an .npz archive (a zip), not a "
                               ".npy file; rename it .npz"),
        (("arr.npz",), "cannot read arr.npz: it is a .npy file (one array), not an .npz "
                       "archive; rename it .npy"),
    ],
)
def test_unreadable_numpy_files_say_what_they_are(data: Path, args, message) -> None:
    done = _estimate(data, *args, "--method", "gaussian")
    assert done.returncode == 1 and done.stdout == "", done.stderr  # a data problem
    assert done.stderr.startswith("mitools: error: ") and message in done.stderr, done.stderr
    assert "allow_pickle" not in done.stderr and "Traceback" not in done.stderr


# --- fault 2: "x.npy has 1 columns (0): say which are X and which Y with --x-cols" ---


@pytest.mark.parametrize(
    "args, message",
    [
        (("one.npy",), "one.npy has 1 column (0), which cannot be split into X and Y: give Y "
                       "in a second file, row by row with X (mitools estimate X_FILE "
                       "Y_FILE)\n"),
        (("one.npy", "--x-cols", "0"), "one.npy has 1 column (0), which cannot be split"),
        (("one.npz", "--x-key", "arr", "--y-key", "arr", "--x-cols", "0"),
         "one.npz[arr] has 1 column (0), which cannot be split into X and Y: give Y in a "
         "second file, row by row with X (mitools estimate X_FILE Y_FILE) or as another "
         "array of the archive (--y-key)"),
    ],
)
def test_one_column_asks_for_a_second_file(data: Path, args, message) -> None:
    done = _estimate(data, *args, "--method", "gaussian")
    assert done.returncode == 1 and done.stdout == "" and message in done.stderr, done.stderr
    assert "columns" not in done.stderr and "--x-cols and/or" not in done.stderr


def test_counts_of_one_are_singular(data: Path) -> None:
    done = _estimate(data, "x.npy", "y.npy", "--method", "gaussian")
    assert done.returncode == 0, done.stderr
    assert "; 300 samples, X of 1 column and Y of 1 column; " in done.stdout, done.stdout


# --- fault 3: the neural method printed "I(X; Y) = v nats (95% lower confidence bound low" ---


def test_a_lower_bound_reads_as_print_result_in_a_subprocess(data: Path) -> None:
    done = _estimate(data, "x.npy", "y.npy", "--max-steps", "5", "--folds", "2", "--threads",
                     "1", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith("I(X; Y) >= ") and " nats (95 % lower confidence bound); " \
        "estimate " in first and first.endswith(" (sampling noise) [neural]"), first


@pytest.mark.parametrize("level, shown", [(0.95, "95"), (0.975, "97.5")])
def test_the_text_report_of_a_lower_bound_is_print_results(capsys, level, shown) -> None:
    result = MIEstimate(value=0.20433, stderr=0.01254, interval=(0.17931, math.inf),
                        level=level, sided="lower", uncertainty="jackknife")
    args = SimpleNamespace(json=False)
    x = y = np.zeros((10, 1))
    report(result, args, x, y, "X: 0 of x.npy; Y: 0 of y.npy", 0, 0.1, [])
    first = capsys.readouterr().out.splitlines()[0]
    assert first == (f"I(X; Y) >= 0.1793 nats ({shown} % lower confidence bound); estimate "
                     "0.2043 ± 0.0125 (sampling noise) [neural]")
    # one text (fourth tryout: the command line's read "95%" and had no "[neural]")
    assert str(result) == first


# --- fault 4: --device cuda without CUDA exited 1 (a data problem), --device gpu 2 ---


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_a_device_this_machine_has_not_got_is_a_usage_error(data: Path) -> None:
    done = _estimate(data, "x.npy", "y.npy", "--device", "cuda", "--max-steps", "5")
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert "usage: mitools estimate" in done.stderr
    err = " ".join(done.stderr.split())
    assert "mitools estimate: error: --device cuda: CUDA is not available (this PyTorch" in err
    assert "available devices: cpu" in err and "Leave out --device to use a GPU" in err
    assert "device=" not in err  # the option, not the Python argument


def test_a_cuda_index_beyond_the_devices_is_a_usage_error(data: Path) -> None:
    index = torch.cuda.device_count() + 1
    done = _estimate(data, "x.npy", "y.npy", "--device", f"cuda:{index}", "--max-steps", "5")
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert f"--device cuda:{index}: " in done.stderr, done.stderr


def test_an_unknown_device_is_a_usage_error_and_data_errors_stay_1(data: Path) -> None:
    done = _estimate(data, "x.npy", "y.npy", "--device", "gpu")
    assert done.returncode == 2, done.stderr
    assert "argument --device: 'gpu' is not a device" in done.stderr, done.stderr
    # the library's refusal of the data (too few samples), with a device that exists, is
    # still a data problem, exit code 1
    done = _estimate(data, "few_x.npy", "few_y.npy", "--device", "cpu", "--folds", "2",
                     "--max-steps", "5")
    assert done.returncode == 1 and done.stdout == "", done.stderr
    assert "mitools: error: estimate_mi needs at least 10 samples per fold" in done.stderr


# --- fault 5: "mitools --version" was a usage error ---


def test_version_prints_the_packages_version(data: Path) -> None:
    done = _mitools(data, "--version")
    assert done.returncode == 0 and done.stdout == f"mitools {mitools.__version__}\n", done
    assert "--version" in _mitools(data, "--help").stdout


def test_more_threads_than_cpus_is_a_usage_error(data: Path) -> None:
    """Tryout: --threads 100000 ended in a segmentation fault (exit 139) inside torch."""
    done = _estimate(data, "x.npy", "y.npy", "--threads", "100000", "--max-steps", "2")
    assert done.returncode == 2, done.stderr
    assert "argument --threads: must be an integer from 1 to" in done.stderr
    assert "(the CPUs this process may use), got 100000" in done.stderr
