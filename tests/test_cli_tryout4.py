"""Regression tests of the command line's fourth new-user tryout: a constant column under every
classical ``--method`` (exactly 0, no interval), an explicit wrong ``--sep`` (the likely
separator suggested, as without ``--sep``), and the first line of the text report (the text of
``print(result)``). Run in-process (:func:`cli_runner.run_main`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run_main

N = 300


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("tryout4")
    rng = np.random.default_rng(0)
    a, b, c = rng.standard_normal((3, N))
    rows = ["a,b,c,d"] + [f"{u:.17g},{v:.17g},1.5,1.5" for u, v in zip(a, a + b, strict=True)]
    (d / "det.csv").write_text("\n".join(rows) + "\n")
    (d / "data.csv").write_text("age,weight,outcome\n" + "".join(
        f"{u:.17g},{v:.17g},{w:.17g}\n" for u, v, w in zip(a, b, a + b + c, strict=True)))
    (d / "data.tsv").write_text((d / "data.csv").read_text().replace(",", "\t"))
    (d / "named.csv").write_text("weight, kg\n" + "".join(f"{u:.17g}\n" for u in a))
    (d / "other.csv").write_text("height, cm\n" + "".join(f"{u:.17g}\n" for u in a + b))
    return d


@pytest.mark.parametrize("method", ["ksg", "ksg2", "mixed", "gaussian"])
@pytest.mark.parametrize("cols", [("c", "b"), ("a", "c"), ("c,d", "a")])
def test_a_constant_column_reads_exactly_zero_with_no_interval(capsys, data, method,
                                                               cols) -> None:
    """Regression: ``--x-cols c --y-cols b --method ksg2`` (c constant) printed
    ``0.0270 ± 0.0339 nats, 95% interval [-0.0498, 0.1037]`` beside a warning that 0 is the
    estimate; ``--method mixed`` 0.0010."""
    x_cols, y_cols = cols
    code, out, err = run_main(capsys, data, "det.csv", "--x-cols", x_cols, "--y-cols", y_cols,
                              "--method", method)
    assert code == 0, err
    name = {"ksg": "ksg1", "mixed": "mixed_ksg"}.get(method, method)
    assert out.splitlines()[0] == f"I(X; Y) = 0.0000 nats (no interval) [{name}]", out
    assert "is constant (every column holds one value)" in err, err
    assert "jackknife" not in err, err
    code, out, err = run_main(capsys, data, "det.csv", "--x-cols", x_cols, "--y-cols", y_cols,
                              "--method", method, "--json")
    record = json.loads(out)
    assert record["value"] == 0.0 and record["stderr"] is None
    assert record["interval"] == [None, None]


@pytest.mark.parametrize("name, given, likely", [
    ("data.csv", ";", ","), ("data.csv", "|", ","), ("data.tsv", ",", "\\t")])
def test_an_explicit_wrong_sep_names_the_likely_one(capsys, data, name, given, likely) -> None:
    """Regression: ``data.csv --sep ';'`` on a comma file said that the file "has 1 column
    (age,weight,outcome), which cannot be split into X and Y: give Y in a second file";
    without --sep the same mistake was diagnosed."""
    code, out, err = run_main(capsys, data, name, "--sep", given, "--method", "gaussian",
                              "--y-cols", "outcome")
    assert code == 1 and out == ""
    assert f"the file looks separated by {likely!r}".replace("\\\\", "\\") in err, err
    assert f"pass --sep '{likely}' (or leave out --sep)" in err, err
    assert "cannot be split" not in err and "second file" not in err, err


def test_an_explicit_sep_is_taken_at_its_word_for_one_column(capsys, data) -> None:
    """A one-column file whose header holds a comma ('weight, kg') read at an explicit --sep
    is one column: its rows do not split alike at ','."""
    code, out, err = run_main(capsys, data, "named.csv", "other.csv", "--sep", ";",
                              "--method", "gaussian")
    assert code == 0 and "looks separated by" not in err, err
    assert "X: weight, kg of named.csv; Y: height, cm of other.csv" in out, out


@pytest.mark.parametrize("method", ["ksg", "ksg2", "mixed", "gaussian"])
def test_the_first_line_is_print_result(capsys, data, method) -> None:
    """Regression: the docs said that the first line reads as ``print(result)``, but it read
    ``95% interval`` where Python printed ``95 % interval``, without the ``[method]``."""
    from mitools import classical

    code, out, err = run_main(capsys, data, "data.csv", "--x-cols", "age,weight", "--method",
                              method)
    assert code == 0, err
    table = np.loadtxt(data / "data.csv", delimiter=",", skiprows=1)
    x, y = table[:, :2], table[:, 2:]
    result = {"ksg": lambda: classical.ksg(x, y), "ksg2": lambda: classical.ksg(x, y, estimator=2),
              "mixed": lambda: classical.mixed_ksg(x, y),
              "gaussian": lambda: classical.gaussian_mi(x, y)}[method]()
    assert out.splitlines()[0] == str(result).splitlines()[0]
    assert " % interval [" in out.splitlines()[0] and out.splitlines()[0].endswith("]")


def test_print_result_puts_each_flag_on_a_line_as_the_command_line_does() -> None:
    from mitools.estimate import MIEstimate
    from mitools.estimate.diagnostics import Diagnostics
    from mitools.estimate.result import estimate_line

    diagnostics = Diagnostics(optimism_share=0.0, residual_share=0.0, start_value=0.0,
                              unconverged_folds=0, folds=3, flags=("one sign", "another"))
    result = MIEstimate(value=0.5, stderr=0.1, interval=(0.3, float("inf")), level=0.95,
                        sided="lower", diagnostics=diagnostics)
    assert str(result).splitlines() == [estimate_line(result), "diagnostics: one sign",
                                        "diagnostics: another"]
    assert estimate_line(result) == ("I(X; Y) >= 0.3000 nats (95 % lower confidence bound); "
                                     "estimate 0.5000 ± 0.1000 (sampling noise) [neural]")


@pytest.mark.parametrize("given, meant", [
    (("--max", "3"), "(--max: did you mean --max-steps?)"),
    (("--thr=1",), "(--thr: did you mean --threads?)"),
    (("--no-s",), "(--no-s: did you mean --no-screen?)"),
])
def test_a_shortened_option_is_refused_naming_the_option_meant(capsys, data, given,
                                                               meant) -> None:
    """Regression: argparse took prefixes, so ``--max 3`` silently meant ``--max-steps 3`` and
    a typo could land on another option; now every parser has ``allow_abbrev=False``."""
    with pytest.raises(SystemExit) as exit_:
        run_main(capsys, data, "data.csv", "--y-cols", "outcome", *given)
    assert exit_.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line == f"mitools estimate: error: unrecognized arguments: {' '.join(given)} {meant}"
