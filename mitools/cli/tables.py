"""Reading the command line's files: tables of named columns, X's and Y's columns.

Every problem is a :class:`DataError` (exit code 1) or a :class:`UsageError` (exit code 2) whose
message names the file, the column and the option concerned.
"""

from __future__ import annotations

import argparse
import re
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DataError", "UsageError", "load"]

_COMPRESSION = (".gz", ".bz2", ".zip", ".xz", ".zst")
_TEXT_TABLES = (".csv", ".tsv")


class DataError(Exception):
    """A problem with the user's data or files (exit code 1)."""


class UsageError(Exception):
    """Options that contradict each other or the files (exit code 2, like argparse's own)."""


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
        for token in (t.strip() for t in spec.split(",")):
            if token in self.names:
                picked = [self.names.index(token)]
            elif _is_int(token) and -d <= int(token) < d:
                picked = [int(token) % d]
            elif token.count(":") == 1 and all(_is_int(p) or not p for p in token.split(":")):
                lo, hi = (int(p) if p else None for p in token.split(":"))
                picked = list(range(d)[lo:hi])
            else:
                raise DataError(
                    f"{self.source} has no column {token!r} (columns: {_names(self.names)}; "
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


def count(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1.

    Example:
        >>> count(1, "column"), count(3, "column")
        ('1 column', '3 columns')
    """
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _names(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def file_kind(path: Path) -> str:
    """``.npy``, ``.npz``, ``.csv``, ``.tsv``, ``.parquet`` or ``.pq`` (a compression suffix
    is looked through); anything else is a :class:`DataError`."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSION:
        suffixes = suffixes[:-1]
    kind = suffixes[-1] if suffixes else ""
    if kind in (".npy", ".npz", *_TEXT_TABLES, ".parquet", ".pq"):
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


def _from_array(source: str, origin: tuple[str, str | None], arr: np.ndarray) -> Table:
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataError(f"{source} must hold a 1-D or 2-D array, got shape {arr.shape}")
    return Table(source, origin, [str(j) for j in range(arr.shape[1])], list(arr.T))


_NPY_MAGIC = b"\x93NUMPY"  # how every .npy file starts (numpy.lib.format.MAGIC_PREFIX)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive (an .npz), or an empty one
#: numpy's words for an array of Python objects, which only unpickling can read
_PICKLED = "allow_pickle"


def _head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(len(_NPY_MAGIC))


def _not_readable(path: Path, kind: str, detail: str = "") -> DataError:
    """A file that numpy cannot read as ``kind``, said as such: numpy's own message for
    bytes that are not a .npy ("contains pickled (object) data ... allow_pickle=") speaks of
    an option the command line has not got, about a file that is no pickle."""
    compressed = (" (a compressed .npy / .npz is not read: decompress it first)"
                  if path.suffixes and path.suffixes[-1].lower() in _COMPRESSION else "")
    return DataError(f"cannot read {path}: not a readable {kind} file (damaged, or another "
                     f"format saved under that name{detail}){compressed}")


def _object_array(source: str, save: str) -> DataError:
    return DataError(
        f"cannot read {source}: it holds an object array (Python objects, stored as a "
        f"pickle), which mitools will not unpickle; save numbers instead, e.g. {save}"
    )


#: what each numpy format starts with, and what to call it
_KINDS = {".npy": (_NPY_MAGIC, "a .npy file (one array)", "a .npy file"),
          ".npz": (_ZIP_MAGIC, "an .npz archive (a zip)", "an .npz archive")}


def _check_kind(path: Path, suffix: str) -> None:
    """Refuse a file that does not start as a ``suffix`` file should: the other numpy format
    under this name (rename it), or bytes of neither (:func:`_not_readable`)."""
    head = _head(path)
    other = ".npz" if suffix == ".npy" else ".npy"
    if head.startswith(_KINDS[other][0]):
        raise DataError(f"cannot read {path}: it is {_KINDS[other][1]}, not "
                        f"{_KINDS[suffix][2]}; rename it {other}")
    if not head.startswith(_KINDS[suffix][0]):
        raise _not_readable(path, suffix)


def _load_npy(path: Path) -> np.ndarray:
    """The array of a ``.npy`` file; anything else is a :class:`DataError` naming the file:
    an ``.npz`` under that name, bytes that are no ``.npy``, an object array, a cut file."""
    _check_kind(path, ".npy")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if _PICKLED in str(exc):
            raise _object_array(path.name, "np.save(path, a.astype(float))") from exc
        raise _not_readable(path, ".npy", f": {exc}") from exc
    except (OSError, EOFError) as exc:
        raise _not_readable(path, ".npy", f": {exc}") from exc


def _open_npz(path: Path) -> Any:
    """``path`` opened as an ``.npz`` archive (use it in a ``with``); a ``.npy`` under that
    name, bytes that are no zip and a damaged zip are :class:`DataError`."""
    _check_kind(path, ".npz")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _not_readable(path, ".npz", f": {exc}") from exc


def _npz_array(archive: Any, name: str, path: Path) -> np.ndarray:
    """The array ``name`` of an open ``.npz``: an object array, an entry that is no ``.npy``
    (numpy returns its bytes) and a damaged entry are :class:`DataError` naming the key."""
    source = f"{path.name}[{name}]"
    try:
        arr = archive[name]
    except ValueError as exc:
        if _PICKLED in str(exc):
            raise _object_array(source, f"np.savez(path, {name}=a.astype(float))") from exc
        raise _not_readable(path, ".npz", f": its array {name!r}: {exc}") from exc
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise _not_readable(path, ".npz", f": its array {name!r}: {exc}") from exc
    if not isinstance(arr, np.ndarray):
        raise _not_readable(path, ".npz", f"; its entry {name!r} is not a .npy array")
    return arr


_SEPARATORS = (",", ";", "\t", "|")


def _shown(sep: str) -> str:
    """A separator as --sep takes it (a tab as ``\\t``)."""
    return "\\t" if sep == "\t" else sep


def _splits_alike(pd: Any, path: Path, sep: str, other: str) -> bool:
    """Whether the first two rows of ``path`` (a header and a data row, or two data rows) are
    each one column at ``sep`` that splits into the same number (at least 2) of cells at
    ``other``: a file separated by ``other`` read at a wrong, explicit ``--sep`` (which
    then read as one column that "cannot be split into X and Y", fourth tryout)."""
    try:
        rows = pd.read_csv(path, sep=sep, header=None, nrows=2, dtype=str,
                           keep_default_na=False)
    except (ValueError, OSError):  # rows of different widths at sep: not one column
        return False
    if rows.shape[1] != 1:
        return False
    widths = {len(str(v).split(other)) for v in rows.iloc[:, 0]}
    return len(widths) == 1 and widths.pop() > 1


def _check_first_row(pd: Any, path: Path, sep: str, header: bool | None,
                     sep_given: bool, default: str = ",") -> None:
    """Refuse a first row that is one column holding another separator (a ``;``-separated
    file read at ``,``), and a header row of numbers only (most likely the first data row).
    ``default``: the separator the file's suffix gives, without ``--sep``."""
    from mitools.inputs import parses_as_number

    first = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False)
    cells = [str(c).strip() for c in first.iloc[0]] if len(first) else []
    other = next((c for c in _SEPARATORS if c != sep and len(cells) == 1 and c in cells[0]),
                 None)
    if other and sep_given and not _splits_alike(pd, path, sep, other):
        other = None  # an explicit --sep is taken at its word: one column holding a comma
    if other:
        advice = f"pass --sep '{_shown(other)}'" + (
            f" (or --sep {sep!r} if it is one column)" if not sep_given else
            " (or leave out --sep)" if other == default else "")
        raise DataError(
            f"the first row of {path} is one column when split at "
            f"{'--sep ' if sep_given else ''}{sep!r} ({cells[0][:40]!r}) but holds "
            f"{other!r}: the file looks separated by {other!r}; {advice}"
        )
    if header is None and any(cells) and all(parses_as_number(c) for c in cells if c):
        raise DataError(
            f"the header row of {path} holds only numbers ({_names(cells, 4)}): it looks like "
            "a data row, which would be lost. If the file has no header row, pass --no-header "
            "(columns are then 0, 1, ...); if its header really is numbers, pass --header"
        )


def _flags_with_gaps(frame: Any) -> Any:
    """Columns of True / False with missing cells, which pandas reads as Python objects,
    as its nullable ``boolean`` (missing cells then become NaN, which --dropna drops)."""
    for j in range(frame.shape[1]):
        col = frame.iloc[:, j]
        present = col.dropna()
        if col.dtype == object and len(present) and all(
                isinstance(v, (bool, np.bool_)) for v in present):
            frame[frame.columns[j]] = col.astype("boolean")
    return frame


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
        heading = (f" (only a header row: {_names(table.names)})"
                   if file_kind(path) in _TEXT_TABLES else "")
        raise DataError(f"{table.source} has no data rows{heading}")
    return table


def _existing(path: Path) -> None:
    """A missing path or a directory said as such (not as an unknown format)."""
    if not path.exists():
        raise DataError(f"no such file: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a file: give a file inside it")


def _read(path: Path, key: str | None, default_key: str | None, header: bool | None,
          sep: str | None) -> Table:
    _existing(path)
    kind = file_kind(path)
    if path.stat().st_size == 0:
        raise DataError(f"cannot read {path}: empty file")
    resolved = str(path.resolve())
    try:
        if kind == ".npy":
            return _from_array(path.name, (resolved, None), _load_npy(path))
        if kind == ".npz":
            with _open_npz(path) as archive:
                keys = list(archive.keys())
                name = key or (default_key if default_key in keys else None)
                if name is None and len(keys) == 1:
                    name = keys[0]
                if name not in keys:
                    raise DataError(
                        f"{path.name} has no array {key or default_key!r} (it has: "
                        f"{_names(keys)}); choose with --x-key / --y-key"
                    )
                return _from_array(f"{path.name}[{name}]", (resolved, name),
                                   _npz_array(archive, name, path))
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
            default = "\t" if kind == ".tsv" else ","
            given, sep = sep is not None, sep or default
            _check_first_row(pd, path, sep, header, given, default)
            frame = pd.read_csv(path, sep=sep, header=0 if header is not False else None)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if type(exc).__name__ == "EmptyDataError":  # pandas: not even a header row
            raise DataError(f"cannot read {path}: empty file (no header, no rows)") from exc
        raise DataError(f"cannot read {path}: {exc}") from exc
    frame = _flags_with_gaps(frame)
    names = [str(c) for c in frame.columns]
    unnamed = tuple(j for j, c in enumerate(names) if kind in _TEXT_TABLES and header is not False
                    and re.fullmatch(r"Unnamed: \d+", c))
    return Table(path.name, (resolved, None), names,
                 [frame.iloc[:, j] for j in range(frame.shape[1])], unnamed)


def _numeric(table: Table, idx: list[int], role: str,
             discrete: bool = False) -> tuple[list[np.ndarray], str | None]:
    """The chosen columns as numpy arrays (NaN kept), and the non-numeric ones described.
    With ``discrete`` (``--discrete-x`` / ``--discrete-y``), a column of text is read as
    labels: integer codes (:func:`mitools.inputs.label_codes`), NaN where a cell is empty."""
    from mitools.inputs import column_values, describe_column, label_codes

    if not idx:
        raise DataError(f"no columns left for {role} in {table.source}")
    bad, out = [], []
    for j in idx:
        col = table.columns[j]
        if discrete and getattr(col.dtype, "kind", "O") in "OU":
            try:
                col = label_codes(col, f"{role} column {table.names[j]!r} of {table.source}",
                                  missing="nan").values
            except (TypeError, ValueError) as exc:
                raise DataError(str(exc)) from exc
            col = np.asarray(col)
        if getattr(col.dtype, "kind", "O") not in "biuf":
            bad.append(describe_column(col, table.names[j], row_label="data row"))
            continue
        out.append(col if isinstance(col, np.ndarray) else column_values(col, role))
    problem = f"{role} has non-numeric columns in {table.source}: {', '.join(bad)}" if bad else None
    return out, problem


def _check_options_apply(args: argparse.Namespace, kx: str, ky: str | None) -> None:
    """``--x-key`` / ``--y-key`` need an ``.npz``, ``--no-header`` / ``--header`` a text
    table: given with other files, they are usage errors (they would do nothing)."""
    for option, value, kind, role in (("--x-key", args.x_key, kx, "X"),
                                      ("--y-key", args.y_key, ky or kx, "Y")):
        if value is not None and kind != ".npz":
            raise UsageError(f"{option} applies to .npz files only; {role}'s file is {kind}")
    header = "--no-header" if args.no_header else "--header" if args.header else None
    for option in (header, "--sep" if args.sep is not None else None):
        if option and not {kx, ky} & set(_TEXT_TABLES):
            raise UsageError(f"{option} applies to .csv / .tsv files only")


def _overlap(tx: Table, ix: list[int], iy: list[int], same_file: bool = False) -> None:
    both = [tx.names[j] for j in ix if j in iy]
    if both:
        raise UsageError(
            f"{'column' if len(both) == 1 else 'columns'} {_names(both)} "
            f"{'is' if len(both) == 1 else 'are'} in both X and Y"
            + (f": X and Y name the same file, {tx.source}; give it once, with --x-cols and "
               "--y-cols that do not overlap" if same_file else
               " (--x-cols and --y-cols must not overlap)")
        )


def _split(t: Table, args: argparse.Namespace) -> tuple[list[int], list[int]]:
    """X's and Y's columns of one table holding both: the variable left out gets the
    remaining columns, a table of two columns needs neither; the two must not overlap."""
    if len(t.names) == 1:  # nothing to choose: X and Y cannot share the one column
        other = (" or as another array of the archive (--y-key)" if t.origin[1] is not None
                 else "")
        raise DataError(
            f"{t.source} has 1 column ({t.names[0]}), which cannot be split into X and Y: "
            f"give Y in a second file, row by row with X (mitools estimate X_FILE Y_FILE){other}"
        )
    if args.x_cols is None and args.y_cols is None:
        if len(t.names) != 2:
            raise DataError(
                f"{t.source} has {count(len(t.names), 'column')} ({_names(t.names)}): say "
                "which are X and which Y with --x-cols and/or --y-cols"
            )
        return [0], [1]
    if args.y_cols is None:
        ix = t.select(args.x_cols, "--x-cols")
        iy = t.select(None, "--y-cols", exclude=ix)
    else:
        iy = t.select(args.y_cols, "--y-cols")
        ix = t.select(args.x_cols, "--x-cols", exclude=iy)
    _overlap(t, ix, iy)
    return ix, iy


def _archive_keys(path: Path) -> list[str]:
    if path.stat().st_size == 0:
        raise DataError(f"cannot read {path}: empty file")
    with _open_npz(path) as archive:
        return list(archive.keys())


def _one_archive(path: Path, args: argparse.Namespace,
                 header: bool | None) -> tuple[Table, Table, list[int], list[int]]:
    """X and Y from one ``.npz``: its arrays ``x`` and ``y`` (or ``--x-key`` / ``--y-key``).
    No lone array stands in for a missing one (it would be X and Y at once); one array
    named for both is split by ``--x-cols`` / ``--y-cols`` like a table."""
    keys = _archive_keys(path)
    given = {"X": args.x_key, "Y": args.y_key}
    names = {role: key or role.lower() for role, key in given.items()}
    for role, name in names.items():
        if name not in keys:
            advice = (f"choose with --{role.lower()}-key" if given[role] else
                      "with one .npz, X and Y are its arrays x and y: choose them with --x-key "
                      "/ --y-key (one key for both, with --x-cols / --y-cols, splits an array)")
            raise DataError(f"{path.name} has no array {name!r} (it has: {_names(keys)}); "
                            f"{advice}")
    tx = read(path, names["X"], None, header)
    if names["X"] != names["Y"]:
        ty = read(path, names["Y"], None, header)
        return tx, ty, tx.select(args.x_cols, "--x-cols"), ty.select(args.y_cols, "--y-cols")
    if args.x_cols is None and args.y_cols is None:
        raise UsageError(
            f"X and Y are both the array {names['X']!r} of {path.name} (it has: {_names(keys)}): "
            "give them different arrays with --x-key / --y-key, or split its columns with "
            "--x-cols / --y-cols"
        )
    ix, iy = _split(tx, args)
    return tx, tx, ix, iy


def _no_index(t: Table, idx: list[int], spec: str | None, role: str) -> None:
    """Refuse a column without a name in the header row that no option named: most likely
    the row index pandas writes with a table, which would be taken as a feature."""
    unnamed = [j for j in idx if j in t.unnamed]
    if unnamed and spec is None:
        j = unnamed[0]
        raise DataError(
            f"column {j} of {t.source} has no name in its header row (read as {t.names[j]!r}): "
            "most likely a row index saved with the table (pandas' to_csv without "
            f"index=False), not a feature. Name {role}'s columns with "
            f"--{role.lower()}-cols (or save the table with index=False)"
        )


def _identity(table: Table) -> tuple[object, str | None]:
    """What a table is, whatever the path that named it (a symlink, a hard link, ``./``)."""
    path, key = table.origin
    try:
        stat = Path(path).stat()
    except OSError:
        return path, key
    return (stat.st_dev, stat.st_ino), key


def load(args: argparse.Namespace) -> tuple[list[tuple[str, str, str, np.ndarray]], str]:
    """X's and Y's columns as ``(role, name, source, values)`` (numeric, NaN kept), and a
    description of where they came from. X and Y never share a column, whichever files,
    keys and columns name them."""
    header = False if args.no_header else True if args.header else None
    px = Path(args.x)
    for path in (px,) if args.y is None else (px, Path(args.y)):
        _existing(path)
    kx = file_kind(px)
    ky = None if args.y is None else file_kind(Path(args.y))
    _check_options_apply(args, kx, ky)
    if args.y is None and kx == ".npz":
        tx, ty, ix, iy = _one_archive(px, args, header)
    elif args.y is None:
        tx = ty = read(px, None, None, header, args.sep)
        ix, iy = _split(tx, args)
    else:
        tx = read(px, args.x_key, "x", header, args.sep)
        ty = read(Path(args.y), args.y_key, "y", header, args.sep)
        ix, iy = tx.select(args.x_cols, "--x-cols"), ty.select(args.y_cols, "--y-cols")
        if _identity(tx) == _identity(ty):  # two names of one file: its columns must not overlap
            _overlap(tx, ix, iy, same_file=True)
    _no_index(tx, ix, args.x_cols, "X")
    _no_index(ty, iy, args.y_cols, "Y")
    xs, x_problem = _numeric(tx, ix, "X", getattr(args, "discrete_x", False))
    ys, y_problem = _numeric(ty, iy, "Y", getattr(args, "discrete_y", False))
    problems = [p for p in (x_problem, y_problem) if p]
    if problems:
        raise DataError(
            f"{'; '.join(problems)}; choose numeric columns with --x-cols / --y-cols; a column "
            "of labels (text included) is read as such with --discrete-x / --discrete-y "
            "(--method mixed or neural)"
        )
    nx, ny = len(xs[0]), len(ys[0])
    if nx != ny:
        raise DataError(
            f"X has {count(nx, 'row')} ({tx.source}) but Y has {ny} ({ty.source}); "
            "the rows must be paired samples"
        )
    columns = ([("X", tx.names[j], tx.source, c) for j, c in zip(ix, xs, strict=True)]
               + [("Y", ty.names[j], ty.source, c) for j, c in zip(iy, ys, strict=True)])
    describe = (f"X: {_names([tx.names[j] for j in ix])} of {tx.source}; "
                f"Y: {_names([ty.names[j] for j in iy])} of {ty.source}")
    return columns, describe
