"""The rows the command line keeps: NaN / inf rows refused or dropped, columns as float64."""

from __future__ import annotations

import sys

import numpy as np

from mitools.cli.errors import DataError

__all__ = ["drop_nonfinite", "stack"]


def drop_nonfinite(
    columns: list[tuple[str, str, str, np.ndarray]], dropna: bool
) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """X's and Y's columns without the rows holding NaN or an infinity (``dropna``; without
    it such rows are a :class:`DataError` naming the file, the columns and the first row)."""
    n = len(columns[0][3])
    bad = np.zeros(n, dtype=bool)
    where, empty, any_inf = [], [], False
    for role, name, _, col in columns:
        if col.dtype.kind != "f":
            continue
        nan, inf = np.isnan(col), np.isinf(col)
        if nan.any() or inf.any():
            bad |= nan | inf
            any_inf |= bool(inf.any())
            count = int((nan | inf).sum())
            where.append(f"{role} column {name!r}: {count}"
                         + (f" ({int(inf.sum())} infinite)" if inf.any() else ""))
            if count == n:
                empty.append(f"{role} column {name!r}")
    count = int(bad.sum())
    what = "missing (NaN) or infinite values" if any_inf else "missing values (NaN)"
    files = " and ".join(dict.fromkeys(source for _, _, source, _ in columns))
    if count and not dropna:
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{count} of {n} rows have {what} in {files} ({'; '.join(where)}; the first is "
            f"data row {first}, counting from 0); pass --dropna to drop them"
        )
    if count == n:
        why = (f"{', '.join(empty)} {'has' if len(empty) == 1 else 'have'} no finite values"
               if empty else f"no row has a finite value in every column: {'; '.join(where)}")
        raise DataError(f"--dropna dropped all {n} rows of {files} ({why})")
    if count:
        print(f"mitools: dropped {count} of {n} rows with {what} ({'; '.join(where)})",
              file=sys.stderr)
    keep = ~bad
    return ([c[keep] for role, _, _, c in columns if role == "X"],
            [c[keep] for role, _, _, c in columns if role == "Y"], count)


def stack(cols: list[np.ndarray], role: str) -> np.ndarray:
    """Exact float64 columns (integers shifted first, see :mod:`mitools.inputs`)."""
    from mitools.inputs import as_float64_columns

    try:
        return np.hstack([as_float64_columns(c, role) for c in cols])
    except (TypeError, ValueError) as exc:
        raise DataError(str(exc)) from exc
