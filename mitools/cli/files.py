"""One file of the command line read as a :class:`Table` of named columns, before any
conversion: ``.npy``, an array of an ``.npz``, ``.csv`` / ``.tsv`` or ``.parquet``
(:func:`read`), and the columns an option names (:meth:`Table.select`)."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mitools.cli.errors import DataError, UsageError, name_list
from mitools.cli.formats import TEXT_TABLES, check_exists, file_kind
from mitools.cli.numpy_files import load_npy, npz_array, open_npz
from mitools.cli.text_tables import check_first_row, flags_with_gaps, integers_beyond_int64

__all__ = ["Table", "pandas_for", "read"]


@dataclass
class Table:
    """Columns read from one file (or one array of an ``.npz``), before any conversion."""

    source: str  #: the file's name (``name[key]`` for an array of an ``.npz``), for messages
    origin: tuple[str, str | None]  #: the resolved path and the ``.npz`` key: what it is
    names: list[str]
    columns: list[Any]
    unnamed: tuple[int, ...] = ()  #: columns of a text table whose header cell is empty

    def select(self, spec: str | None, option: str, exclude: Sequence[int] = ()) -> list[int]:
        """Indices of the columns ``spec`` names (``None``: every column not in ``exclude``).

        A name wins over an index (a column named ``"0"`` is chosen by ``0``); a range
        ``lo:hi`` excludes ``hi``, as in Python. A column named twice is a usage error.
        """
        if spec is None:
            return [j for j in range(len(self.names)) if j not in exclude]
        chosen: list[int] = []
        d = len(self.names)
        # a header cell's spaces (" age") are kept by pandas, and a token's are stripped:
        # such a column is found by its name without them, when only one has that name
        stripped = [n.strip() for n in self.names]
        for token in (t.strip() for t in spec.split(",")):
            if token in self.names:
                picked = [self.names.index(token)]
            elif token and stripped.count(token) == 1:
                picked = [stripped.index(token)]
            elif _is_int(token) and -d <= int(token) < d:
                picked = [int(token) % d]
            elif token.count(":") == 1 and all(_is_int(p) or not p for p in token.split(":")):
                lo, hi = (int(p) if p else None for p in token.split(":"))
                picked = list(range(d)[lo:hi])
            else:
                shown = [repr(n) if n != n.strip() else n for n in self.names]
                raise DataError(
                    f"{self.source} has no column {token!r} (columns: {name_list(shown)}; "
                    "give names, 0-based indices or ranges like 0:3)"
                )
            twice = [self.names[j] for j in picked if j in chosen]
            if twice:
                raise UsageError(f"{option} {spec} names column {twice[0]!r} of {self.source} "
                                 "twice; give each column once")
            chosen.extend(picked)
        return chosen


def _is_int(s: str) -> bool:
    """A column index: ASCII digits, with at most one leading minus (``-2``; not ``--1``,
    nor a superscript digit, which ``str.isdigit`` takes)."""
    digits = s[1:] if s.startswith("-") else s
    return digits.isascii() and digits.isdecimal()


def pandas_for(path: Path) -> Any:
    try:
        import pandas
    except ImportError as exc:
        raise DataError(
            f"reading {path.name} needs pandas: pip install pandas, or from a clone pip "
            "install -e '.[io]' (or use .npy / .npz)"
        ) from exc
    return pandas


def from_array(source: str, origin: tuple[str, str | None], arr: np.ndarray) -> Table:
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataError(f"{source} must hold a 1-D or 2-D array, got shape {arr.shape}")
    return Table(source, origin, [str(j) for j in range(arr.shape[1])], list(arr.T))


def read(path: Path, key: str | None, default_key: str | None, header: bool | None,
         sep: str | None = None) -> Table:
    """One table from ``path``; for ``.npz``, the array ``key`` (or ``default_key``, or the
    only array). ``header``: ``None`` a header row, refused when it holds only numbers;
    ``True`` a header row whatever it holds; ``False`` none. A table without columns or
    rows is a :class:`DataError`. ``sep``: a text table's separator (default by suffix)."""
    table = _read(path, key, default_key, header, sep)
    if not table.columns:
        raise DataError(f"{table.source} has no columns")
    if len(table.columns[0]) == 0:
        heading = (f" (only a header row: {name_list(table.names)})"
                   if file_kind(path) in TEXT_TABLES else "")
        raise DataError(f"{table.source} has no data rows{heading}")
    return table


def _read(path: Path, key: str | None, default_key: str | None, header: bool | None,
          sep: str | None) -> Table:
    check_exists(path)
    kind = file_kind(path)
    if path.stat().st_size == 0:
        raise DataError(f"cannot read {path}: empty file")
    resolved = str(path.resolve())
    try:
        if kind == ".npy":
            return from_array(path.name, (resolved, None), load_npy(path))
        if kind == ".npz":
            with open_npz(path) as archive:
                keys = list(archive.keys())
                name = key or (default_key if default_key in keys else None)
                if name is None and len(keys) == 1:
                    name = keys[0]
                if name is None or name not in keys:
                    raise DataError(
                        f"{path.name} has no array {key or default_key!r} (it has: "
                        f"{name_list(keys)}); choose with --x-key / --y-key"
                    )
                return from_array(f"{path.name}[{name}]", (resolved, name),
                                   npz_array(archive, name, path))
        pd = pandas_for(path)
        if kind in (".parquet", ".pq"):
            try:
                frame = pd.read_parquet(path)
            except ImportError as exc:
                raise DataError(
                    f"reading {path.name} needs pyarrow: pip install pyarrow, or from a clone "
                    "pip install -e '.[io]'"
                ) from exc
        else:
            default = "\t" if kind == ".tsv" else ","
            given, sep = sep is not None, sep or default
            check_first_row(pd, path, sep, header, given, default)
            frame = pd.read_csv(path, sep=sep, header=0 if header is not False else None)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if type(exc).__name__ == "EmptyDataError":  # pandas: not even a header row
            raise DataError(f"cannot read {path}: empty file (no header, no rows)") from exc
        raise DataError(f"cannot read {path}: {exc}") from exc
    frame = flags_with_gaps(frame)
    if kind in TEXT_TABLES:
        frame = integers_beyond_int64(frame)
    names = [str(c) for c in frame.columns]
    unnamed = tuple(j for j, c in enumerate(names) if kind in TEXT_TABLES and header is not False
                    and re.fullmatch(r"Unnamed: \d+", c))
    return Table(path.name, (resolved, None), names,
                 [frame.iloc[:, j] for j in range(frame.shape[1])], unnamed)
