"""X's and Y's columns from the command line's files (:func:`load`): which file, array and
columns each variable takes, that they never share a column, and that they are numbers.

Layout: :mod:`mitools.cli.files` reads one file as a table (:mod:`mitools.cli.formats`,
:mod:`mitools.cli.numpy_files`, :mod:`mitools.cli.text_tables`); every problem is a
:class:`DataError` (exit code 1) or a :class:`UsageError` (exit code 2) whose message names the
file, the column and the option concerned (:mod:`mitools.cli.errors`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mitools.cli.errors import DataError, UsageError, count, name_list
from mitools.cli.files import Table, read
from mitools.cli.formats import TEXT_TABLES, check_exists, file_kind
from mitools.cli.numpy_files import open_npz

__all__ = ["DataError", "UsageError", "count", "load"]


def _numeric(table: Table, idx: list[int], role: str,
             discrete: bool = False) -> tuple[list[np.ndarray], str | None]:
    """The chosen columns as numpy arrays (NaN kept), and the non-numeric ones described.
    With ``discrete`` (``--discrete-x`` / ``--discrete-y``), a column of text is read as
    labels: integer codes (:func:`mitools.inputs.label_codes`), NaN where a cell is empty."""
    from mitools.inputs import column_values, describe_column, label_codes, object_numbers

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
        if isinstance(col.dtype, np.dtype) and col.dtype.kind == "O":
            numbers = object_numbers(col)  # integers beyond int64, which pandas keeps as int
            if numbers is not None:
                col = numbers
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
    for text_option in (header, "--sep" if args.sep is not None else None):
        if text_option and not {kx, ky} & set(TEXT_TABLES):
            raise UsageError(f"{text_option} applies to .csv / .tsv files only")


def _overlap(tx: Table, ix: list[int], iy: list[int], same_file: bool = False) -> None:
    both = [tx.names[j] for j in ix if j in iy]
    if both:
        raise UsageError(
            f"{'column' if len(both) == 1 else 'columns'} {name_list(both)} "
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
                f"{t.source} has {count(len(t.names), 'column')} ({name_list(t.names)}): say "
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
    with open_npz(path) as archive:
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
            raise DataError(f"{path.name} has no array {name!r} (it has: {name_list(keys)}); "
                            f"{advice}")
    tx = read(path, names["X"], None, header)
    if names["X"] != names["Y"]:
        ty = read(path, names["Y"], None, header)
        return tx, ty, tx.select(args.x_cols, "--x-cols"), ty.select(args.y_cols, "--y-cols")
    if args.x_cols is None and args.y_cols is None:
        raise UsageError(
            f"X and Y are both the array {names['X']!r} of {path.name} (it has: "
            f"{name_list(keys)}): give them different arrays with --x-key / --y-key, or split "
            "its columns with --x-cols / --y-cols"
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
        check_exists(path)
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
    describe = (f"X: {name_list([tx.names[j] for j in ix])} of {tx.source}; "
                f"Y: {name_list([ty.names[j] for j in iy])} of {ty.source}")
    return columns, describe
