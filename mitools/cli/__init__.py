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

Exit codes: 0 success; 1 a problem with the data (a missing, empty or unreadable file, a
header row of numbers only, a missing column or key, non-numeric columns, NaN or infinite
rows without ``--dropna``, differing row counts, too few samples, a missing optional reader);
2 a usage error (unknown option, bad value, a ``--device`` this machine has not got, an option
that does not apply, a column chosen twice or for both X and Y); 141 stdout closed before the
output was written (``| head``; 128 + SIGPIPE, as a shell reports a program that SIGPIPE
ended); 130 interrupted.

Layout: ``mitools.cli.parser`` (options), ``mitools.cli.tables`` (X's and Y's columns),
``mitools.cli.files`` (one file as a table; with ``formats``, ``numpy_files`` and
``text_tables``), ``mitools.cli.errors`` (the two kinds of problem), ``mitools.cli.rows``
(NaN / inf rows), ``mitools.cli.report`` (output, the library's messages in command-line
terms).

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
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from mitools.cli.errors import DataError, UsageError
from mitools.cli.parser import attach_negative_columns, build_parser, unrecognized_message
from mitools.cli.report import cli_terms, report, with_warnings
from mitools.cli.rows import drop_nonfinite, stack
from mitools.cli.tables import load

__all__ = ["main"]

#: exit code when stdout is closed before the output is written (128 + SIGPIPE)
EXIT_BROKEN_PIPE = 141


def _estimate(args: argparse.Namespace, x: np.ndarray, y: np.ndarray) -> Any:
    progress = False if args.no_progress else None  # None: the library's own rule
    if args.method == "neural":
        from mitools.estimate import estimate_mi

        options: dict[str, Any] = dict(bound=args.bound or "dv", seed=args.seed,
                                       device=args.device, progress=progress,
                                       level=args.level, discrete_x=args.discrete_x,
                                       discrete_y=args.discrete_y)
        if args.max_steps is not None:
            options["max_steps"] = args.max_steps
            options["eval_every"] = min(100, args.max_steps)
        if args.folds is not None:
            options["folds"] = args.folds
        if args.no_screen:
            options["screen"] = False
        if args.threads is not None:
            options["threads"] = args.threads  # None: estimate_mi's load-aware default
        return estimate_mi(x, y, **options)
    from mitools import classical

    common = dict(level=args.level, seed=args.seed)
    if args.groups is not None:  # else the estimators' own default
        common["groups"] = args.groups
    if args.method == "gaussian":
        return classical.gaussian_mi(x, y, **common)
    knn = dict(common, k=args.k or 3, threads=args.threads, progress=progress)
    if args.method == "mixed":
        return classical.mixed_ksg(x, y, discrete_x=bool(args.discrete_x),
                                   discrete_y=bool(args.discrete_y), **knn)
    return classical.ksg(x, y, estimator=2 if args.method == "ksg2" else 1, **knn)


def _check_options(args: argparse.Namespace) -> None:
    """Refuse (exit code 2) an option that does not apply to ``--method`` or a bad value the
    parser cannot see alone."""
    neural = args.method == "neural"
    # every option that some method ignores has the default None (or False), so that one
    # given to a method that ignores it is told, not silently dropped
    for option, value, applies in (("--bound", args.bound, neural),
                                   ("--groups", args.groups, not neural),
                                   ("--threads", args.threads, args.method != "gaussian"),
                                   ("--max-steps", args.max_steps, neural),
                                   ("--folds", args.folds, neural),
                                   ("--no-screen", args.no_screen or None, neural),
                                   ("--device", args.device, neural),
                                   ("--discrete-x", args.discrete_x or None,
                                    args.method in ("neural", "mixed")),
                                   ("--discrete-y", args.discrete_y or None,
                                    args.method in ("neural", "mixed")),
                                   ("--k", args.k, args.method in ("ksg", "ksg2", "mixed"))):
        if value is not None and not applies:
            args.subparser.error(f"{option} does not apply to --method {args.method}")
    if args.bound is not None:
        from mitools.estimators import get_estimator

        try:
            get_estimator(args.bound)
        except ValueError as exc:
            args.subparser.error(f"--bound: {exc}")
    if args.device is not None:
        import torch

        from mitools.estimate.options import available_devices, resolve_device

        try:
            kind = torch.device(args.device).type
        except (RuntimeError, TypeError, ValueError):
            kind = None
        if kind not in ("cpu", "cuda", "mps"):
            args.subparser.error(
                f"argument --device: {args.device!r} is not a device (cpu, cuda, cuda:1, mps); "
                f"available here: {', '.join(available_devices())}")
        # a device this machine has not got (cuda without a GPU, cuda:3 with one) is a value
        # of the option that the library refuses: a usage error, checked before the data
        # are read, in the library's words (its ValueErrors from the estimate are the data's)
        try:
            resolve_device(args.device, None)
        except ValueError as exc:
            args.subparser.error(cli_terms(str(exc)))


def _closed_stdout() -> int:
    """stdout was closed early (``| head``): send what is left to devnull, so that Python's
    flush at exit does not fail again (the recipe of Python's ``signal`` docs)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (a test's capture)
        pass
    return EXIT_BROKEN_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mitools`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(
        attach_negative_columns(sys.argv[1:] if argv is None else argv))
    if extra:  # argparse's own error, with the options each unknown one may have meant
        args.subparser.error(unrecognized_message(args.subparser, extra))
    _check_options(args)
    try:
        columns, describe = load(args)
        xs, ys, dropped = drop_nonfinite(columns, args.dropna)
        x, y = stack(xs, "X"), stack(ys, "Y")
        start = time.perf_counter()
        try:
            result, warned = with_warnings(lambda: _estimate(args, x, y))
        except (TypeError, ValueError) as exc:
            raise DataError(cli_terms(str(exc))) from exc
        if sys.stdout is None:  # started with stdout closed (`>&-`): nowhere to write
            return EXIT_BROKEN_PIPE
        report(result, args, x, y, describe, dropped, time.perf_counter() - start, warned)
        sys.stdout.flush()  # a closed pipe fails here, not at exit
    except BrokenPipeError:
        return _closed_stdout()
    except UsageError as exc:
        args.subparser.error(str(exc))
    except DataError as exc:
        print(f"mitools: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mitools: interrupted", file=sys.stderr)
        return 130
    return 0
