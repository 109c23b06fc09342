"""argparse types for the benchmark scripts: a bad value is a one-line usage error (exit 2),
not a traceback after the run has started."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _number(kind: type, text: str) -> int | float:
    try:
        return kind(text)
    except ValueError:
        name = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {name}") from None


def at_least(minimum: int):
    """An integer of at least ``minimum``."""
    def parse(text: str) -> int:
        value = _number(int, text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        return value
    parse.__name__ = f"integer >= {minimum}"
    return parse


positive_int = at_least(1)


def positive_float(text: str) -> float:
    value = _number(float, text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not positive")
    return value


def number_list(kind: type = float, minimum: float = 0, strict: bool = True):
    """Comma-separated numbers, each above (``strict``) or at least ``minimum``."""
    def parse(text: str) -> list:
        values = [_number(kind, v.strip()) for v in text.split(",") if v.strip()]
        if not values:
            raise argparse.ArgumentTypeError("no values")
        for v in values:
            if v < minimum or (strict and v == minimum):
                raise argparse.ArgumentTypeError(
                    f"{v:g} is {'not above' if strict else 'below'} {minimum:g}")
        return values
    parse.__name__ = f"comma-separated {kind.__name__}s"
    return parse


def name_list(choices):
    """Comma-separated names, each one of ``choices`` (in the order given, repeats dropped)."""
    choices = tuple(choices)

    def parse(text: str) -> list[str]:
        names = list(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))
        unknown = [v for v in names if v not in choices]
        if unknown or not names:
            what = f"unknown {', '.join(map(repr, unknown))}" if unknown else "no values"
            raise argparse.ArgumentTypeError(f"{what}; choose from {', '.join(choices)}")
        return names
    parse.__name__ = "comma-separated names"
    return parse


def fill_defaults(args: argparse.Namespace, defaults: dict) -> argparse.Namespace:
    """Give each option still ``None`` (not given) its value in ``defaults``, the defaults
    of the mode chosen (``--quick``, ``--gpu``, ...): an option given explicitly wins."""
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def level_schedule(args: argparse.Namespace) -> argparse.Namespace:
    """``--steps-per-level`` and ``--window`` of a staircase run (``staircase.py``,
    ``training_check.py``): ``--quick``'s defaults or the full protocol's where not given,
    and a window longer than a level cut to the level (said on stderr), so that the results
    record the window actually used."""
    import sys

    fill_defaults(args, {"steps_per_level": 200, "window": 100} if args.quick
                  else {"steps_per_level": 4000, "window": 500})
    if args.window > args.steps_per_level:
        print(f"--window {args.window} is longer than a level: using {args.steps_per_level} "
              "(--steps-per-level)", file=sys.stderr)
        args.window = args.steps_per_level
    return args


def output_location(parser: argparse.ArgumentParser, option: str, *files) -> None:
    """Create the folders of the ``files`` a run will write, and check that they can be
    written there, before the run: like every benchmark script, a missing folder is
    created; one that cannot be is a usage error now, not a traceback after the run."""
    import os
    from pathlib import Path

    for file in map(Path, files):
        folder = file.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            blocker = next((p for p in (folder, *folder.parents)
                            if p.exists() and not p.is_dir()), None)
            why = f"{blocker} is a file" if blocker else exc.strerror or str(exc)
            parser.error(f"argument {option}: cannot create the folder {folder} ({why})")
        if file.is_dir():
            parser.error(f"argument {option}: {file} is a folder, not a file to write")
        if not os.access(folder, os.W_OK | os.X_OK):
            parser.error(f"argument {option}: the folder {folder} is not writable")


#: what every entry of the Beyond Normal sample index holds (peers/sample_bmi_tasks.py)
SAMPLE_KEYS = ("task_id", "family", "dim_x", "dim_y", "seed", "true_mi", "file")


def read_sample_index(index: Path, who: str) -> list[dict]:
    """The samples listed by the Beyond Normal index ``index``; a one-line exit naming it
    (``who``: the script) where it is not JSON, lists no samples, or an entry lacks one of
    :data:`SAMPLE_KEYS` (a damaged or hand-made file gave a KeyError traceback)."""
    try:
        samples = json.loads(index.read_text())["samples"]
        if not isinstance(samples, list):
            raise TypeError("'samples' is not a list")
        for i, s in enumerate(samples):
            missing = [k for k in SAMPLE_KEYS if not isinstance(s, dict) or k not in s]
            if missing:
                raise KeyError(f"sample {i} lacks {', '.join(missing)}")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        why = f"{type(exc).__name__}: {exc}" if str(exc) else "no list of 'samples'"
        sys.exit(f"{who}: {index} is not a sample index ({why}); delete it and draw the "
                 "samples anew (benchmarks/README.md, 'Beyond Normal: one command'), or pass "
                 "--data")
    return samples


def read_results_entry(path: Path, who: str, key: str) -> Any:
    """``path``'s JSON, entry ``key``; a one-line exit naming the file where it is missing
    or damaged (a FileNotFoundError or KeyError traceback before)."""
    try:
        return json.loads(path.read_text())[key]
    except FileNotFoundError:
        sys.exit(f"{who}: no results file {path}: run the benchmark first, or pass --out")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        sys.exit(f"{who}: {path} is not a results file of this benchmark "
                 f"({type(exc).__name__}: {exc}); restore it (git checkout) or run again")


def beyond_normal_index(parser: argparse.ArgumentParser, data: str | Path) -> Path:
    """``data / "index.json"``, the index of the Beyond Normal samples drawn by
    ``peers/sample_bmi_tasks.py``; a usage error saying how to draw them where it is
    missing."""
    index = Path(data) / "index.json"
    if not index.is_file():
        parser.error(f"argument --data: no {index}; draw the samples first "
                     "(benchmarks/README.md, 'Beyond Normal: one command')")
    return index
