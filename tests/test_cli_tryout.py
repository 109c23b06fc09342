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
from cli_runner import run_main

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


def _usage(capsys: pytest.CaptureFixture[str], data: Path, *args: str) -> str:
    with pytest.raises(SystemExit) as stop:
        run_main(capsys, data, *args)
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
    code, out, err = run_main(capsys, data, *args, "--method", "ksg")
    assert code == 1 and out == "" and message in err, err


@pytest.mark.parametrize(
    "args, message",
    [
        # --x-key y gave inf: X and Y were both y
        (("xy.npz", "--x-key", "y"), "X and Y are both the array 'y' of xy.npz (it has: x, y)"),
        (("xy.npz", "--y-key", "x"), "X and Y are both the array 'x' of xy.npz"),
        (("one.npz", "--x-key", "arr", "--y-key", "arr"), "X and Y are both the array 'arr'"),
        (("one.npz", "--x-key", "arr", "--y-key", "arr", "--x-cols", "0,1", "--y-cols", "1:"),
         "column 1 is in both X and Y"),
        (("xy.npz", "--x-key", "x", "--y-key", "x", "--x-cols", "0", "--y-cols", "0"),
         "column 0 is in both X and Y"),
        # two names of one archive (default keys: X is x, Y falls back on the lone array)
        (("xonly.npz", "xonly.npz"), "column 0 is in both X and Y: X and Y name the same"),
        (("one.npz", "one.npz", "--x-cols", "0"), "column 0 is in both X and Y"),
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
    code, out, err = run_main(capsys, data, *args, "--method", "gaussian", "--json")
    assert code == 0, err
    assert json.loads(out)["inputs"] == inputs


def test_a_directory_is_said_to_be_one(capsys, data: Path) -> None:
    # "cannot tell the format of /tmp/somedir from its name"
    for args in ((str(data),), ("x.npy", str(data))):
        code, out, err = run_main(capsys, data, *args, "--method", "gaussian")
        assert code == 1 and out == "" and f"{data} is a directory, not a file" in err, err
    code, _, err = run_main(capsys, data, "x.npy", "missing.xlsx", "--method", "gaussian")
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
        code, out, err = run_main(capsys, data, "xy.npz", *args, "--json")
        assert code == 0, err
        groups = args[args.index("--groups") + 1]
        uncertainty = json.loads(out)["uncertainty"]
        assert (f"({groups} groups" in uncertainty) if groups != "0" else (
            "none" in uncertainty or json.loads(out)["stderr"] is None), uncertainty
    code, out, err = run_main(capsys, data, "xy.npz", "--method", "ksg", "--json")
    assert code == 0 and "(10 groups" in json.loads(out)["uncertainty"], err


# --- fault 3: the text output rounded the confidence level (0.975 printed "98%") ---


@pytest.mark.parametrize("level, shown", [("0.975", "97.5 %"), ("0.999", "99.9 %"),
                                          ("0.95", "95 %"), ("0.5", "50 %")])
def test_the_level_is_printed_as_given(capsys, data: Path, level, shown) -> None:
    code, out, err = run_main(capsys, data, "xy.npz", "--method", "gaussian", "--level", level)
    assert code == 0, err
    assert out.startswith("I(X; Y) = ") and f", {shown} interval [" in out, out


# --- fault 4: messages in the Python API's words, advice that fails, readings that mislead ---


@pytest.fixture(scope="module")
def tables(data: Path) -> Path:
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(1)
    a, c = rng.standard_normal((2, N))
    pd.DataFrame({"a": a, "c": a + c}).to_csv(data / "d.csv", index=False)
    # 99 classes of 3 and 3 of 1; 100 classes of 3
    for name, lab in (("rare1", np.r_[np.repeat(np.arange(99), 3), 99, 100, 101]),
                      ("rare3", np.repeat(np.arange(100), 3))):
        pd.DataFrame({"lab": lab, "a": lab % 7 + c}).to_csv(data / f"{name}.csv", index=False)
    flags = pd.DataFrame({"a": a, "flag": pd.array([True, False] * (N // 2), dtype="boolean")})
    flags.loc[3, "flag"] = None
    flags.to_csv(data / "boolna.csv", index=False)
    pd.DataFrame({"a": a, "c": a + c}).to_csv(data / "semi.csv", sep=";", index=False)
    pd.DataFrame({"a": a, "c": a + c}).to_csv(data / "commas.tsv", index=False)
    pd.DataFrame({"a": a, "b": c, "c": a + c}).to_csv(data / "idx.csv")  # with its index
    pd.DataFrame({"c": a + c}).to_csv(data / "idx2.csv")
    return data


def test_discrete_x_on_a_continuous_column_says_leave_it_out(capsys, tables: Path) -> None:
    # the neural method ended "pass discrete_x=False"
    args = ("d.csv", "--x-cols", "a", "--y-cols", "c", "--discrete-x")
    code, _, err = run_main(capsys, tables, *args, "--max-steps", "5")
    assert code == 1 and "continuous variable; leave out --discrete-x" in err, err
    assert "discrete_x" not in err
    # mixed advised a lower --k, which cannot help a class of 1 sample
    code, _, err = run_main(capsys, tables, *args, "--method", "mixed")
    assert code == 1 and "lower --k" not in err, err
    assert "x has 300 distinct values among 300 samples: if it is a continuous variable, " \
           "leave out --discrete-x" in err, err


def test_class_advice_is_given_only_where_it_works(capsys, tables: Path) -> None:
    # neural advised --method mixed, which then failed on the same data (a class of 1)
    common = ("--x-cols", "lab", "--y-cols", "a", "--discrete-x")
    code, _, err = run_main(capsys, tables, "rare1.csv", *common, "--max-steps", "5")
    assert code == 1 and "use --method mixed" not in err, err
    assert "(--method mixed cannot take them either: a class of x holds 1 sample, and it " \
           "needs at least 2 in every class, with --k 1)" in err, err
    for k in ("1", "2", "3"):  # and indeed mixed fails whatever --k
        code, _, err = run_main(capsys, tables, "rare1.csv", *common, "--method", "mixed",
                             "--k", k, "--groups", "0")
        assert code == 1 and "whatever --k" in err and "lower --k" not in err, err
    # classes of 3: the advice names the --k that works, and following it works
    code, _, err = run_main(capsys, tables, "rare3.csv", *common, "--max-steps", "5")
    assert code == 1 and "or use --method mixed with --discrete-x and --k 2" in err, err
    code, _, err = run_main(capsys, tables, "rare3.csv", *common, "--method", "mixed")
    assert code == 1 and "drop them, or lower --k to 2" in err, err
    code, out, err = run_main(capsys, tables, "rare3.csv", *common, "--method", "mixed", "--k",
                           "2", "--json")
    assert code == 0 and json.loads(out)["method"] == "mixed_ksg", err


def test_a_flag_column_with_gaps_is_numbers_with_missing_values(capsys, tables: Path) -> None:
    # "numbers stored as text; store them as numbers", and --dropna did not help
    args = ("boolna.csv", "--x-cols", "flag", "--y-cols", "a", "--method", "gaussian")
    code, _, err = run_main(capsys, tables, *args)
    assert code == 1 and "stored as text" not in err, err
    assert "1 of 300 rows have missing values (NaN) in boolna.csv (X column 'flag': 1; the " \
           "first is data row 3" in err and "--dropna" in err, err
    code, out, err = run_main(capsys, tables, *args, "--dropna", "--json")
    assert code == 0 and json.loads(out)["dropped_rows"] == 1, err


@pytest.mark.parametrize(
    "args, message",
    [
        # "semi.csv has 1 columns (a;c): say which are X and which Y"
        (("semi.csv",), "the first row of semi.csv is one column when split at ',' ('a;c') "
                        "but holds ';': the file looks separated by ';'; pass --sep ';'"),
        (("commas.tsv",), "commas.tsv is one column when split at '\\t' ('a,c') but holds "
                          "',': the file looks separated by ','; pass --sep ','"),
    ],
)
def test_another_separator_is_named(capsys, tables: Path, args, message) -> None:
    code, out, err = run_main(capsys, tables, *args, "--method", "gaussian")
    assert code == 1 and out == "" and message in err, err


def test_sep_reads_the_table(capsys, tables: Path) -> None:
    for args in (("semi.csv", "--sep", ";"), ("commas.tsv", "--sep", ",")):
        code, out, err = run_main(capsys, tables, *args, "--method", "gaussian", "--json")
        assert code == 0 and json.loads(out)["inputs"] == (
            f"X: a of {args[0]}; Y: c of {args[0]}"), err
    assert "--sep applies to .csv / .tsv files only" in _usage(
        capsys, tables, "xy.npz", "--sep", ";", "--method", "gaussian")
    assert "argument --sep: must be one character" in _usage(
        capsys, tables, "semi.csv", "--sep", ";;", "--method", "gaussian")


@pytest.mark.parametrize(
    "args, message",
    [
        # X silently held the index, "X: Unnamed: 0, a, b of idx.csv"
        (("idx.csv", "--y-cols", "c"), "column 0 of idx.csv has no name in its header row "
                                       "(read as 'Unnamed: 0'): most likely a row index"),
        (("idx.csv", "--x-cols", "a"), "Name Y's columns with --y-cols"),
        (("idx2.csv",), "column 0 of idx2.csv has no name"),  # two columns: X was the index
    ],
)
def test_a_saved_index_is_no_feature(capsys, tables: Path, args, message) -> None:
    code, out, err = run_main(capsys, tables, *args, "--method", "gaussian")
    assert code == 1 and out == "" and message in err, err


def test_columns_named_around_a_saved_index(capsys, tables: Path) -> None:
    for args, inputs in ((("--x-cols", "a,b", "--y-cols", "c"), "X: a, b of idx.csv"),
                         (("--x-cols", "0", "--y-cols", "c"), "X: Unnamed: 0 of idx.csv")):
        code, out, err = run_main(capsys, tables, "idx.csv", *args, "--method", "gaussian",
                               "--json")
        assert code == 0 and json.loads(out)["inputs"].startswith(inputs), err


def test_library_words_in_command_line_terms() -> None:
    from mitools.cli.report import cli_terms

    assert cli_terms("a continuous variable; pass discrete_y=False") == (
        "a continuous variable; leave out --discrete-y")
    assert cli_terms("keep ksg (mixed_ksg takes the rounding for structure)") == (
        "keep ksg (--method mixed takes the rounding for structure)")
