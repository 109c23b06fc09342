"""The command line's options: the argument parser, its value checks, negative column indices.

A bad value is refused by argparse itself (exit code 2) with a message that names the option:
``argument --seed: must be an integer from 0 to 4294967295, got -1``.
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Callable, Collection, Sequence

from mitools.option_checks import MAX_SEED, usable_cpus  # the limits --seed, --threads say

__all__ = ["METHODS", "attach_negative_columns", "build_parser", "closest_options",
           "did_you_mean", "unrecognized_message"]

METHODS = ("neural", "ksg", "ksg2", "gaussian", "mixed")
EXIT_CODES = ("Exit codes: 0 success, 1 a problem with the data, 2 a usage error, 141 stdout "
              "closed early (e.g. piped into head).")

_COLUMN_OPTIONS = ("--x-cols", "--y-cols")


def attach_negative_columns(argv: Sequence[str]) -> list[str]:
    """``--y-cols -2,-1`` as ``--y-cols=-2,-1``: argparse reads a value that starts with ``-``
    and is not a plain negative number as an option, and fails with "expected one argument".

    Example:
        >>> attach_negative_columns(["d.csv", "--y-cols", "-2,-1", "--x-cols", "a"])
        ['d.csv', '--y-cols=-2,-1', '--x-cols', 'a']
    """
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":  # what follows is positional
            out.extend(argv[i:])
            break
        if token in _COLUMN_OPTIONS and i + 1 < len(argv) and re.match(r"-\d", argv[i + 1]):
            out.append(f"{token}={argv[i + 1]}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def closest_options(option: str, options: Collection[str], *, begun_only: bool = False
                    ) -> list[str]:
    """The long options a misspelled or shortened ``option`` (``--mode``, ``--max``) may have
    meant: every option of ``options`` that begins with it, else (unless ``begun_only``) the
    one closest in spelling, else none. The parsers take no abbreviations
    (``allow_abbrev=False``: ``--seed`` never silently means ``--seeds``); this names what was
    likely meant.

    Example:
        >>> closest_options("--mode", ["--modes", "--seed", "--seeds"])
        ['--modes']
        >>> closest_options("--n", ["--n-test", "--n-train", "--k"])
        ['--n-test', '--n-train']
        >>> closest_options("--max-step", ["--max-steps", "--k"]), closest_options("--xyz", ["--k"])
        (['--max-steps'], [])
    """
    name = option.split("=", 1)[0]
    long = sorted(o for o in options if o.startswith("--"))
    begun = [o for o in long if o.startswith(name)]
    return begun if begun or begun_only else difflib.get_close_matches(name, long, n=1)


def did_you_mean(option: str, options: Collection[str], *, begun_only: bool = False) -> str:
    """``"did you mean --a, --b or --c?"``: the :func:`closest_options` of ``option``, or
    ``""`` when there are none.

    Example:
        >>> did_you_mean("--n", ["--n-test", "--n-train", "--no-x"])
        'did you mean --n-test, --n-train or --no-x?'
    """
    close = closest_options(option, options, begun_only=begun_only)
    if not close:
        return ""
    named = [", ".join(close[:-1]), close[-1]] if close[1:] else close
    return f"did you mean {' or '.join(named)}?"


def unrecognized_message(parser: argparse.ArgumentParser, extra: Sequence[str]) -> str:
    """argparse's "unrecognized arguments: ..." with, for each unknown long option of
    ``extra``, the options of ``parser`` it may have meant (:func:`closest_options`).

    Example:
        >>> p = argparse.ArgumentParser(allow_abbrev=False)
        >>> _ = p.add_argument("--seeds")
        >>> unrecognized_message(p, ["--seed", "1"])
        'unrecognized arguments: --seed 1 (--seed: did you mean --seeds?)'
    """
    hints = [f"{arg.split('=', 1)[0]}: {hint}" for arg in extra if arg.startswith("--")
             for hint in [did_you_mean(arg, parser._option_string_actions)] if hint]
    return (f"unrecognized arguments: {' '.join(extra)}"
            + (f" ({'; '.join(hints)})" if hints else ""))


def _integer(low: int, high: int | None, what: str) -> Callable[[str], int]:
    """An argparse type: an integer in ``[low, high]``; ``what`` says the range in words."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value

    return parse


_positive = _integer(1, None, "a positive integer")
_folds = _integer(2, None, "an integer of at least 2 (a fold to train on and one to test on)")
_seed = _integer(0, MAX_SEED, f"an integer from 0 to {MAX_SEED}")
_threads = _integer(1, usable_cpus(), f"an integer from 1 to {usable_cpus()} (the CPUs this "
                    "process may use)")


def _groups(text: str) -> int:
    value = _integer(0, None, "0 (no interval) or at least 2")(text)
    if value == 1:
        raise argparse.ArgumentTypeError(f"must be 0 (no interval) or at least 2, got {text}")
    return value


def _separator(text: str) -> str:
    """One character; ``\\t`` (as typed in a shell) or ``tab`` is a tab."""
    sep = "\t" if text in ("\\t", "tab") else text
    if len(sep) != 1 or sep in "\n\r\"":
        raise argparse.ArgumentTypeError(f"must be one character such as ';' or '\\t', got "
                                         f"{text!r}")
    return sep


def _level(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``mitools`` (its ``--help`` documents every option)."""
    from mitools import __version__
    from mitools.estimate.options import estimate_bounds

    # allow_abbrev=False, here and in each subparser: a shortened or misspelled option is an
    # error naming the options it may mean, never silently another option (--max: --max-steps)
    parser = argparse.ArgumentParser(
        prog="mitools", description="Mutual-information estimation from the command line.",
        epilog=EXIT_CODES, allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print mitools' version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser(
        "estimate", help="estimate I(X; Y) of paired samples, in nats",
        description="Estimate the mutual information I(X; Y), in nats, of paired samples: "
                    "the columns of X against those of Y, row by row.",
        epilog=f"{EXIT_CODES} Example: mitools estimate data.csv --x-cols age,weight "
               "--y-cols outcome --method ksg",
        allow_abbrev=False,
    )
    p.set_defaults(subparser=p)
    p.add_argument("x", metavar="X", help="file with X (.npy, .npz, .csv, .tsv, .parquet), "
                   "or with both X and Y")
    p.add_argument("y", metavar="Y", nargs="?", help="file with Y (same number of rows)")
    io = p.add_argument_group("inputs")
    io.add_argument("--x-cols", metavar="COLS", help="X's columns: names, 0-based indices "
                    "(negative ones count from the end) or ranges like 0:3 (columns 0, 1, 2: "
                    "the end is left out), comma-separated; a name wins over an index "
                    "(default: all, or all but Y's)")
    io.add_argument("--y-cols", metavar="COLS", help="Y's columns (same forms)")
    io.add_argument("--x-key", metavar="KEY", help="X's array in an .npz (default: x)")
    io.add_argument("--y-key", metavar="KEY", help="Y's array in an .npz (default: y)")
    header = io.add_mutually_exclusive_group()
    header.add_argument("--no-header", action="store_true",
                        help="the .csv/.tsv has no header row (columns are then 0, 1, ...)")
    header.add_argument("--header", action="store_true",
                        help="the .csv/.tsv's first row is its header even if it holds only "
                        "numbers (without this, such a row is refused as a likely data row)")
    io.add_argument("--sep", type=_separator, metavar="SEP",
                    help="the .csv/.tsv's field separator, e.g. ';' or '\\t' (default: , for "
                    ".csv, a tab for .tsv)")
    io.add_argument("--dropna", action="store_true",
                    help="drop rows with missing (NaN) or infinite values and say how many")
    est = p.add_argument_group("estimator")
    est.add_argument("--method", choices=METHODS, default="neural",
                     help="neural: mitools.estimate_mi (default); ksg / ksg2: Kraskov et al.'s "
                     "estimators 1 / 2; gaussian: from canonical correlations; mixed: Gao et "
                     "al. for discrete or mixed data (labels)")
    bounds = estimate_bounds()  # the lower bounds estimate_mi takes
    est.add_argument("--bound", choices=bounds, metavar="BOUND",
                     help=f"lower bound trained by --method neural: {', '.join(bounds)} "
                     "(default: dv)")
    for role in ("x", "y"):
        est.add_argument(f"--discrete-{role}", action="store_true",
                         help=f"{role.upper()} holds labels: its rows are categories, compared "
                         "by equality only; text columns are read as labels (neural, mixed)")
    est.add_argument("--k", type=_positive, help="neighbours of ksg, ksg2, mixed (default: 3)")
    est.add_argument("--max-steps", type=_positive, help="training steps per fold (neural)")
    est.add_argument("--folds", type=_folds, help="cross-fitting folds, at least 2 (neural)")
    est.add_argument("--no-screen", action="store_true",
                     help="train every fold, not only the first when it finds nothing beyond "
                          "the Gaussian fit, each choosing its critic on its validation part "
                          "alone (neural)")
    est.add_argument("--groups", type=_groups,
                     help="jackknife groups of the classical methods' interval (0: none; "
                     "default: 10); not neural, whose folds set its groups")
    est.add_argument("--level", type=_level, default=0.95,
                     help="confidence level of the interval (default: 0.95)")
    est.add_argument("--seed", type=_seed, default=0,
                     help=f"random seed, 0 to {MAX_SEED} (default: 0)")
    run = p.add_argument_group("running")
    run.add_argument("--device", help="neural: cpu, cuda, cuda:1, ... (default, as "
                     "estimate_mi: a GPU when CUDA is available, else the CPU)")
    run.add_argument("--threads", type=_threads,
                     help="CPU threads. neural: torch's threads during the fit (default, as "
                     "estimate_mi: min(4, idle CPUs), idle meaning the CPUs this process may "
                     "use less the 1-minute load average); ksg, ksg2, mixed: workers of the "
                     "neighbour searches (default: every CPU this process may use); gaussian: "
                     "does not take it. On a shared machine use 1")
    run.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    run.add_argument("--no-progress", action="store_true",
                     help="no progress bar (one is shown on stderr when it is a terminal and "
                          "tqdm is installed)")
    return parser
