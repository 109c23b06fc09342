"""What a file named on the command line is: its format, read from its name
(:func:`file_kind`), and that it exists (:func:`check_exists`)."""

from __future__ import annotations

from pathlib import Path

from mitools.cli.errors import DataError

__all__ = ["COMPRESSION", "TEXT_TABLES", "check_exists", "file_kind"]

#: compression suffixes looked through (``.csv.gz`` is a ``.csv``)
COMPRESSION = (".gz", ".bz2", ".zip", ".xz", ".zst")
#: the formats pandas reads as text, with a header row and a separator
TEXT_TABLES = (".csv", ".tsv")


def file_kind(path: Path) -> str:
    """``.npy``, ``.npz``, ``.csv``, ``.tsv``, ``.parquet`` or ``.pq`` (a compression suffix
    is looked through); anything else is a :class:`DataError`."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSION:
        suffixes = suffixes[:-1]
    kind = suffixes[-1] if suffixes else ""
    if kind in (".npy", ".npz", *TEXT_TABLES, ".parquet", ".pq"):
        return kind
    raise DataError(
        f"cannot tell the format of {path} from its name (expected .npy, .npz, .csv, .tsv or "
        ".parquet)"
    )


def check_exists(path: Path) -> None:
    """A missing path or a directory said as such (not as an unknown format)."""
    if not path.exists():
        raise DataError(f"no such file: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a file: give a file inside it")
