"""The command line: ``mitools estimate X [Y] [options]``, also ``python -m mitools``.

Estimates the mutual information of the columns of ``X`` and those of ``Y``, paired by row,
and prints it in nats with its interval (``--json``: one JSON object on stdout). Progress and
messages go to stderr.

Inputs: ``.npy``; ``.npz`` (arrays ``x`` and ``y``, or ``--x-key`` / ``--y-key``);
``.csv`` / ``.tsv`` (also compressed, e.g. ``.csv.gz``) and ``.parquet``, read with pandas
(from a clone: ``pip install -e ".[io]"``). One file may hold both variables: choose the
columns with ``--x-cols`` / ``--y-cols`` (names, indices or ranges like ``0:3``); the other
variable gets the remaining columns. With two files, ``X`` and ``Y`` hold the same samples
row by row.

Warnings (signs that an estimate falls short, an interval that cannot be computed) print as
one line each, ``mitools: warning: ...``, on stderr; ``--json`` also holds them
(``"warnings"``, and the neural method's ``"diagnostics"``).

Exit codes: 0 success; 1 a problem with the data (a missing or unreadable file, a missing
column or key, non-numeric columns, NaN rows without ``--dropna``, differing row counts, too
few samples, a missing optional reader); 2 a usage error (unknown option, bad value, a
column chosen for both X and Y).

Example:
    >>> import contextlib, io, json, tempfile, os
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal(500)
    >>> path = os.path.join(tempfile.mkdtemp(), "pairs.npz")
    >>> np.savez(path, x=x, y=x + 0.5 * rng.standard_normal(500))  # MI: log(5) / 2 = 0.80
    >>> out = io.StringIO()
    >>> with contextlib.redirect_stdout(out):
    ...     code = main(["estimate", path, "--method", "gaussian", "--json"])
    >>> code, round(json.loads(out.getvalue())["value"], 1)
    (0, 0.8)
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main"]

METHODS = ("neural", "ksg", "ksg2", "gaussian", "mixed")
_COMPRESSION = (".gz", ".bz2", ".zip", ".xz", ".zst")


class DataError(Exception):
    """A problem with the user's data or files (exit code 1)."""


class UsageError(Exception):
    """Options that contradict each other (exit code 2, like argparse's own errors)."""


@dataclass
class _Table:
    """Columns read from one file (or one array of an ``.npz``), before any conversion."""

    source: str
    names: list[str]
    columns: list[np.ndarray]

    def select(self, spec: str | None, exclude: Sequence[int] = ()) -> list[int]:
        if spec is None:
            return [j for j in range(len(self.names)) if j not in exclude]
        chosen: list[int] = []
        d = len(self.names)
        for token in (t.strip() for t in spec.split(",")):
            if token in self.names:
                chosen.append(self.names.index(token))
            elif _is_int(token) and -d <= int(token) < d:
                chosen.append(int(token) % d)
            elif token.count(":") == 1 and all(_is_int(p) or not p for p in token.split(":")):
                lo, hi = (int(p) if p else None for p in token.split(":"))
                chosen.extend(range(d)[lo:hi])
            else:
                raise DataError(
                    f"{self.source} has no column {token!r} (columns: {_names(self.names)}; "
                    "give names, 0-based indices or ranges like 0:3)"
                )
        return chosen


def _is_int(s: str) -> bool:
    return s.lstrip("-").isdigit()


def _names(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSION:
        suffixes = suffixes[:-1]
    kind = suffixes[-1] if suffixes else ""
    if kind in (".npy", ".npz", ".csv", ".tsv", ".parquet", ".pq"):
        return kind
    raise DataError(
        f"cannot tell the format of {path} from its name (expected .npy, .npz, .csv, .tsv or "
        ".parquet)"
    )


def _pandas(path: Path) -> Any:
    try:
        import pandas
    except ImportError as exc:
        raise DataError(
            f"reading {path.name} needs pandas: pip install pandas, or from a clone pip "
            "install -e '.[io]' (or use .npy / .npz)"
        ) from exc
    return pandas


def _from_array(source: str, arr: np.ndarray) -> _Table:
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataError(f"{source} must hold a 1-D or 2-D array, got shape {arr.shape}")
    return _Table(source, [str(j) for j in range(arr.shape[1])], list(arr.T))


def _read(path: Path, key: str | None, default_key: str | None, header: bool) -> _Table:
    """One table from ``path``; for ``.npz``, the array ``key`` (or ``default_key``, or the
    only array)."""
    if not path.exists():
        raise DataError(f"no such file: {path}")
    kind = _kind(path)
    try:
        if kind == ".npy":
            return _from_array(path.name, np.load(path, allow_pickle=False))
        if kind == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                keys = list(archive.keys())
                name = key or (default_key if default_key in keys else None)
                if name is None and len(keys) == 1:
                    name = keys[0]
                if name not in keys:
                    raise DataError(
                        f"{path.name} has no array {key or default_key!r} (it has: "
                        f"{_names(keys)}); choose with --x-key / --y-key"
                    )
                return _from_array(f"{path.name}[{name}]", archive[name])
        pd = _pandas(path)
        if kind in (".parquet", ".pq"):
            try:
                frame = pd.read_parquet(path)
            except ImportError as exc:
                raise DataError(
                    f"reading {path.name} needs pyarrow: pip install pyarrow, or from a clone "
                    "pip install -e '.[io]'"
                ) from exc
        else:
            sep = "\t" if kind == ".tsv" else ","
            frame = pd.read_csv(path, sep=sep, header=0 if header else None)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    names = [str(c) for c in frame.columns]
    return _Table(path.name, names, [frame.iloc[:, j] for j in range(frame.shape[1])])


def _numeric(table: _Table, idx: list[int], role: str) -> list[np.ndarray]:
    """The chosen columns as numpy arrays (NaN kept); non-numeric columns are named."""
    from mitools.inputs import column_values, describe_column

    if not idx:
        raise DataError(f"no columns left for {role} in {table.source}")
    bad, out = [], []
    for j in idx:
        col = table.columns[j]
        if getattr(col.dtype, "kind", "O") not in "biuf":
            bad.append(describe_column(col, table.names[j]))
            continue
        out.append(col if isinstance(col, np.ndarray) else column_values(col, role))
    if bad:
        raise DataError(
            f"{role} has non-numeric columns in {table.source}: {', '.join(bad)}; choose "
            "numeric columns with --x-cols / --y-cols, or encode these as numbers"
        )
    return out


def _load(args: argparse.Namespace) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], str]:
    """X's and Y's columns by name (numeric, NaN kept), and where they came from."""
    header = not args.no_header
    if args.y is None:
        path = Path(args.x)
        if path.exists() and _kind(path) == ".npz":
            tx = _read(path, args.x_key, "x", header)
            ty = _read(path, args.y_key, "y", header)
            ix, iy = tx.select(args.x_cols), ty.select(args.y_cols)
        else:
            tx = ty = _read(path, None, None, header)
            if args.x_cols is None and args.y_cols is None:
                if len(tx.names) != 2:
                    raise DataError(
                        f"{tx.source} has {len(tx.names)} columns ({_names(tx.names)}): say "
                        "which are X and which Y with --x-cols and/or --y-cols"
                    )
                ix, iy = [0], [1]
            elif args.y_cols is None:
                ix = tx.select(args.x_cols)
                iy = tx.select(None, exclude=ix)
            else:
                iy = ty.select(args.y_cols)
                ix = tx.select(args.x_cols, exclude=iy)
            both = sorted(set(ix) & set(iy))
            if both:
                raise UsageError(
                    f"columns {_names([tx.names[j] for j in both])} are in both X and Y "
                    "(--x-cols and --y-cols must not overlap)"
                )
    else:
        tx = _read(Path(args.x), args.x_key, "x", header)
        ty = _read(Path(args.y), args.y_key, "y", header)
        ix, iy = tx.select(args.x_cols), ty.select(args.y_cols)
    xs = dict(zip([tx.names[j] for j in ix], _numeric(tx, ix, "X"), strict=True))
    ys = dict(zip([ty.names[j] for j in iy], _numeric(ty, iy, "Y"), strict=True))
    nx, ny = len(next(iter(xs.values()))), len(next(iter(ys.values())))
    if nx != ny:
        raise DataError(
            f"X has {nx} rows ({tx.source}) but Y has {ny} ({ty.source}); "
            "the rows must be paired samples"
        )
    describe = (f"X: {_names([tx.names[j] for j in ix])} of {tx.source}; "
                f"Y: {_names([ty.names[j] for j in iy])} of {ty.source}")
    return xs, ys, describe


def _drop_missing(
    xs: dict[str, np.ndarray], ys: dict[str, np.ndarray], dropna: bool
) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    columns = {**{("X", k): v for k, v in xs.items()}, **{("Y", k): v for k, v in ys.items()}}
    n = len(next(iter(columns.values())))
    missing = np.zeros(n, dtype=bool)
    where = []
    for (role, name), col in columns.items():
        if col.dtype.kind == "f" and np.isnan(col).any():
            missing |= np.isnan(col)
            where.append(f"{role} column {name!r}: {int(np.isnan(col).sum())}")
    count = int(missing.sum())
    if count and not dropna:
        first = int(np.flatnonzero(missing)[0])
        raise DataError(
            f"{count} of {n} rows have missing values (NaN) ({'; '.join(where)}; the first is "
            f"data row {first}, counting from 0); pass --dropna to drop them"
        )
    keep = ~missing
    if count:
        print(f"mitools: dropped {count} of {n} rows with missing values ({'; '.join(where)})",
              file=sys.stderr)
    return [c[keep] for c in xs.values()], [c[keep] for c in ys.values()], count


def _stack(cols: list[np.ndarray], role: str) -> np.ndarray:
    """Exact float64 columns (integers shifted first, see :mod:`mitools.inputs`)."""
    from mitools.inputs import as_float64_columns

    try:
        return np.hstack([as_float64_columns(c, role) for c in cols])
    except (TypeError, ValueError) as exc:
        raise DataError(str(exc)) from exc


def _estimate(args: argparse.Namespace, x: np.ndarray, y: np.ndarray) -> Any:
    progress = not args.no_progress and sys.stderr.isatty()
    if args.method == "neural":
        import torch

        from mitools.estimate import estimate_mi

        options: dict[str, Any] = dict(bound=args.bound or "dv", seed=args.seed,
                                       device=args.device, progress=progress,
                                       level=args.level)
        if args.max_steps is not None:
            options["max_steps"] = args.max_steps
            options["eval_every"] = min(100, args.max_steps)
        if args.folds is not None:
            options["folds"] = args.folds
        if args.no_screen:
            options["screen"] = False
        if args.threads is not None:
            options["threads"] = args.threads  # None: estimate_mi's load-aware default
        if args.device is not None and str(args.device).startswith("cuda") and not (
                torch.cuda.is_available()):
            raise DataError("--device cuda: CUDA is not available here; use --device cpu")
        return estimate_mi(x, y, **options)
    from mitools import classical

    common = dict(groups=args.groups, level=args.level, seed=args.seed)
    if args.method == "gaussian":
        return classical.gaussian_mi(x, y, **common)
    knn = dict(common, k=args.k or 3, threads=args.threads, progress=progress)
    if args.method == "mixed":
        return classical.mixed_ksg(x, y, **knn)
    return classical.ksg(x, y, estimator=2 if args.method == "ksg2" else 1, **knn)


#: the Python API's pointer to ``result.diagnostics``, which the command line has not got
_API_TAIL = " See result.diagnostics."


def _warning_line(message: str) -> str:
    """A warning of the library in command-line terms: one line, options as flags."""
    text = " ".join(message.split())
    if text.endswith(_API_TAIL):
        text = text.removesuffix(_API_TAIL) + ' --json lists them under "diagnostics".'
    text = re.sub(r"\bmax_steps[= ]", "--max-steps ", text)
    text = text.replace("progress=True needs tqdm", "the progress bar needs tqdm")
    return re.sub(r"\) or lr\b", ")", text)  # the learning rate is not a command-line option


def _with_warnings(run: Any) -> tuple[Any, list[str]]:
    """``run()``, printing each warning it raises once, as ``mitools: warning: ...`` on stderr
    (no Python file:line prefix); returns its result and the warning lines."""
    lines: list[str] = []

    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
             line: Any = None) -> None:
        text = _warning_line(str(message))
        if text not in lines:
            lines.append(text)
            print(f"mitools: warning: {text}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        return run(), lines


def _number(v: Any) -> Any:
    """JSON has no NaN or infinity: ``None`` for them."""
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _diagnostics(result: Any) -> dict[str, Any] | None:
    """``result.diagnostics`` as plain JSON values (``None`` for a classical estimate)."""
    diagnostics = getattr(result, "diagnostics", None)
    if diagnostics is None:
        return None
    from dataclasses import asdict

    plain = {k: _number(v) for k, v in asdict(diagnostics).items()}
    plain["flags"] = list(diagnostics.flags)
    return plain


def _report(result: Any, args: argparse.Namespace, x: np.ndarray, y: np.ndarray,
            describe: str, dropped: int, seconds: float, warned: list[str]) -> None:
    number = _number

    if args.json:
        record = {
            "value": number(result.value), "stderr": number(result.stderr),
            "interval": [number(v) for v in result.interval], "level": result.level,
            "sided": result.sided,
            "unit": "nats", "method": result.method, "uncertainty": result.uncertainty,
            "n_samples": int(x.shape[0]), "x_dim": int(x.shape[1]), "y_dim": int(y.shape[1]),
            "dropped_rows": dropped, "inputs": describe, "seconds": round(seconds, 3),
        }
        if result.method == "neural":
            record.update(bound=result.bound, report=result.report,
                          held_out=number(result.held_out), in_sample=number(result.in_sample),
                          optimism=number(result.optimism))
        record.update(diagnostics=_diagnostics(result), warnings=warned)
        print(json.dumps(record, allow_nan=False))
        return
    low, high = result.interval
    if math.isnan(result.stderr):
        interval = "no interval"
    elif result.sided == "lower":
        interval = (f"{result.level:.0%} lower confidence bound {low:.4f}, "
                    f"stderr {result.stderr:.4f}")
    else:
        interval = (f"{result.level:.0%} interval {low:.4f} to {high:.4f}, "
                    f"stderr {result.stderr:.4f}")
    print(f"I(X; Y) = {result.value:.4f} nats ({interval})")
    print(f"method: {result.method}; {x.shape[0]} samples, X of {x.shape[1]} and Y of "
          f"{y.shape[1]} columns; {seconds:.1f} s")
    print(f"inputs: {describe}")
    print(f"uncertainty: {result.uncertainty}")
    diagnostics = _diagnostics(result)
    for flag in diagnostics["flags"] if diagnostics else ():
        print(f"diagnostics: {_warning_line(flag)}")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _groups(text: str) -> int:
    value = int(text)
    if value == 1 or value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (no interval) or at least 2, got {text}")
    return value


def _level(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text}")
    return value


def _build_parser() -> argparse.ArgumentParser:
    from mitools.estimate.options import estimate_bounds

    """The argument parser of ``mitools`` (its ``--help`` documents every option)."""
    parser = argparse.ArgumentParser(
        prog="mitools", description="Mutual-information estimation from the command line.",
        epilog="Exit codes: 0 success, 1 a problem with the data, 2 a usage error.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser(
        "estimate", help="estimate I(X; Y) of paired samples, in nats",
        description="Estimate the mutual information I(X; Y), in nats, of paired samples: "
                    "the columns of X against those of Y, row by row.",
        epilog="Exit codes: 0 success, 1 a problem with the data, 2 a usage error. "
               "Example: mitools estimate data.csv --x-cols age,weight --y-cols outcome "
               "--method ksg",
    )
    p.set_defaults(subparser=p)
    p.add_argument("x", metavar="X", help="file with X (.npy, .npz, .csv, .tsv, .parquet), "
                   "or with both X and Y")
    p.add_argument("y", metavar="Y", nargs="?", help="file with Y (same number of rows)")
    io = p.add_argument_group("inputs")
    io.add_argument("--x-cols", metavar="COLS", help="X's columns: names, 0-based indices or "
                    "ranges like 0:3, comma-separated (default: all, or all but Y's)")
    io.add_argument("--y-cols", metavar="COLS", help="Y's columns (same forms)")
    io.add_argument("--x-key", metavar="KEY", help="X's array in an .npz (default: x)")
    io.add_argument("--y-key", metavar="KEY", help="Y's array in an .npz (default: y)")
    io.add_argument("--no-header", action="store_true",
                    help="the .csv/.tsv has no header row (columns are then 0, 1, ...)")
    io.add_argument("--dropna", action="store_true",
                    help="drop rows with missing values (NaN) and say how many")
    est = p.add_argument_group("estimator")
    est.add_argument("--method", choices=METHODS, default="neural",
                     help="neural: mitools.estimate_mi (default); ksg / ksg2: Kraskov et al.'s "
                     "estimators 1 / 2; gaussian: from canonical correlations; mixed: Gao et "
                     "al. for discrete or mixed data (labels)")
    bounds = estimate_bounds()  # the lower bounds estimate_mi takes
    est.add_argument("--bound", choices=bounds, metavar="BOUND",
                     help=f"lower bound trained by --method neural: {', '.join(bounds)} "
                     "(default: dv)")
    est.add_argument("--k", type=_positive, help="neighbours of ksg, ksg2, mixed (default: 3)")
    est.add_argument("--max-steps", type=_positive, help="training steps per fold (neural)")
    est.add_argument("--folds", type=_positive, help="cross-fitting folds (neural)")
    est.add_argument("--no-screen", action="store_true",
                     help="train every fold, not only the first when it finds nothing beyond "
                          "the Gaussian fit, each choosing its critic on its validation part "
                          "alone (neural)")
    est.add_argument("--groups", type=_groups, default=10,
                     help="jackknife groups of the classical methods' interval (0: none; "
                     "default: 10)")
    est.add_argument("--level", type=_level, default=0.95,
                     help="confidence level of the interval (default: 0.95)")
    est.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    run = p.add_argument_group("running")
    run.add_argument("--device", help="neural: cpu, cuda, cuda:1, ... (default, as "
                     "estimate_mi: a GPU when CUDA is available, else the CPU)")
    run.add_argument("--threads", type=_positive,
                     help="CPU threads. neural: torch's threads during the fit (default, as "
                     "estimate_mi: min(4, idle CPUs), idle meaning the CPUs this process may "
                     "use less the 1-minute load average); ksg, ksg2, mixed: workers of the "
                     "neighbour searches (default: every CPU this process may use); gaussian: "
                     "not used. On a shared machine use 1")
    run.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    run.add_argument("--no-progress", action="store_true",
                     help="no progress bar (shown on stderr when it is a terminal)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mitools`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    neural = args.method == "neural"
    for option, value, applies in (("--bound", args.bound, neural),
                                   ("--max-steps", args.max_steps, neural),
                                   ("--folds", args.folds, neural),
                                   ("--no-screen", args.no_screen or None, neural),
                                   ("--device", args.device, neural),
                                   ("--k", args.k, args.method in ("ksg", "ksg2", "mixed"))):
        if value is not None and not applies:
            args.subparser.error(f"{option} does not apply to --method {args.method}")
    if args.bound is not None:
        from mitools.estimators import get_estimator

        try:
            get_estimator(args.bound)
        except ValueError as exc:
            args.subparser.error(f"--bound: {exc}")
    try:
        xs, ys, describe = _load(args)
        xs, ys, dropped = _drop_missing(xs, ys, args.dropna)
        x, y = _stack(xs, "X"), _stack(ys, "Y")
        start = time.perf_counter()
        try:
            result, warned = _with_warnings(lambda: _estimate(args, x, y))
        except (TypeError, ValueError) as exc:
            raise DataError(str(exc)) from exc
        _report(result, args, x, y, describe, dropped, time.perf_counter() - start, warned)
    except UsageError as exc:
        args.subparser.error(str(exc))
    except DataError as exc:
        print(f"mitools: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mitools: interrupted", file=sys.stderr)
        return 130
    return 0
