"""The command line's output: the estimate (text or JSON), and the library's words as options.

The library's messages speak Python (``groups=0``, ``discrete_x=True``, ``mixed_ksg``); before
they reach a command-line user, :func:`cli_terms` rewrites them as the options that do the
same (``--groups 0``, ``--discrete-x``, ``--method mixed``).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import warnings
from dataclasses import asdict
from typing import Any

import numpy as np

from mitools.cli.errors import count

__all__ = ["cli_terms", "headline", "report", "with_warnings"]

#: the Python API's pointer to ``result.diagnostics``, which the command line has not got
_API_TAIL = " See result.diagnostics."

#: (pattern, replacement): the library's Python words as command-line options, in order
_TERMS = (
    (r"\bmax_steps[= ]", "--max-steps "),
    (r"\bgroups=(\d+)", r"--groups \1"),
    (r"\bfolds=(\d+)", r"--folds \1"),
    (r"\bthreads=(\d+)", r"--threads \1"),
    (r"\bpass discrete_([xy])=False", r"leave out --discrete-\1"),
    (r"\bdiscrete_([xy])=True", r"--discrete-\1"),
    (r"\bdiscrete_([xy])=False", r"without --discrete-\1"),
    (r"\bscreen=False", "--no-screen"),
    (r"\b([Ll])eave device=None", r"\1eave out --device"),
    (r"\bdevice='([^']*)'", r"--device \1"),
    (r"\b([Uu]se) (?:mitools\.classical\.)?mixed_ksg\b", r"\1 --method mixed"),
    (r"\((?:mitools\.classical\.)?mixed_ksg\b", "(--method mixed"),
    (r" \('noise'\)", ""),  # KSG's tie-breaking noise is not a command-line option
    (r"\) or lr\b", ")"),  # nor is the learning rate
    (r", or init='random' with another critic", ""),  # nor the critic's start
    (r" or too high an lr\b", ""),  # (the learning rate, again)
    (r"\blower k\b", "lower --k"),
    (r"\bwhatever k\b", "whatever --k"),
    (r"\b(and|with) k=(\d+)", r"\1 --k \2"),  # advice of a k (not "needs k=3 neighbours")
)


def cli_terms(message: str) -> str:
    """A message of the library in command-line terms: one line, options as flags.

    Example:
        >>> cli_terms("Use groups=4 (a rougher interval) or groups=0 (the value alone)")
        'Use --groups 4 (a rougher interval) or --groups 0 (the value alone)'
    """
    text = " ".join(message.split())
    if text.endswith(_API_TAIL):
        text = text.removesuffix(_API_TAIL) + ' --json lists them under "diagnostics".'
    for pattern, replacement in _TERMS:
        text = re.sub(pattern, replacement, text)
    return text


def with_warnings(run: Any) -> tuple[Any, list[str]]:
    """``run()``, printing each warning it raises once, as ``mitools: warning: ...`` on stderr
    (no Python file:line prefix); returns its result and the warning lines."""
    lines: list[str] = []

    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
             line: Any = None) -> None:
        text = cli_terms(str(message))
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
    plain = {k: _number(v) for k, v in asdict(diagnostics).items()}
    plain["flags"] = [cli_terms(flag) for flag in diagnostics.flags]
    return plain


def headline(result: Any) -> str:
    """The first line of the text report: the first line of ``print(result)``, built by the
    same function (:func:`mitools.estimate.result.estimate_line`)."""
    from mitools.estimate.result import estimate_line

    return estimate_line(result)


def report(result: Any, args: argparse.Namespace, x: np.ndarray, y: np.ndarray,
           describe: str, dropped: int, seconds: float, warned: list[str]) -> None:
    """Print ``result`` on stdout: one JSON object (``--json``) or a few lines of text.

    JSON has no infinity: an infinite estimate is ``"value": null`` with ``"infinite": true``
    (``null`` elsewhere means a number that is not available, e.g. the end of a one-sided
    interval)."""
    number = _number
    infinite = result.value == math.inf
    uncertainty = cli_terms(result.uncertainty)
    if args.json:
        record = {
            "value": number(result.value), "infinite": infinite,
            "stderr": number(result.stderr),
            "interval": [number(v) for v in result.interval], "level": result.level,
            "sided": result.sided,
            "unit": "nats", "method": result.method, "uncertainty": uncertainty,
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
    print(headline(result))
    print(f"method: {result.method}; {count(x.shape[0], 'sample')}, X of "
          f"{count(x.shape[1], 'column')} and Y of {count(y.shape[1], 'column')}; "
          f"{seconds:.1f} s")
    print(f"inputs: {describe}")
    print(f"uncertainty: {uncertainty}")
    diagnostics = _diagnostics(result)
    for flag in diagnostics["flags"] if diagnostics else ():
        print(f"diagnostics: {cli_terms(flag)}")
