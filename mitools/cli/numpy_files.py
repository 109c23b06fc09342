"""``.npy`` files and ``.npz`` archives read safely: a file of the other numpy format, bytes
of neither, a damaged file and an object array (which only unpickling could read) are each a
:class:`~mitools.cli.errors.DataError` naming the file and, in an archive, the key."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from mitools.cli.errors import DataError
from mitools.cli.formats import COMPRESSION

__all__ = ["load_npy", "npz_array", "open_npz"]

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
                  if path.suffixes and path.suffixes[-1].lower() in COMPRESSION else "")
    return DataError(f"cannot read {path}: not a readable {kind} file (damaged, or another "
                     f"format saved under that name{detail}){compressed}")


def _object_array(source: str, save: str) -> DataError:
    return DataError(
        f"cannot read {source}: it holds an object array (Python objects, stored as a "
        f"pickle), which mitools will not unpickle; save numbers instead, e.g. {save}"
    )


#: what each numpy format starts with, and what to call it
_KINDS: dict[str, tuple[bytes | tuple[bytes, ...], str, str]] = {
    ".npy": (_NPY_MAGIC, "a .npy file (one array)", "a .npy file"),
    ".npz": (_ZIP_MAGIC, "an .npz archive (a zip)", "an .npz archive"),
}


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


def load_npy(path: Path) -> np.ndarray:
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


def open_npz(path: Path) -> Any:
    """``path`` opened as an ``.npz`` archive (use it in a ``with``); a ``.npy`` under that
    name, bytes that are no zip and a damaged zip are :class:`DataError`."""
    _check_kind(path, ".npz")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _not_readable(path, ".npz", f": {exc}") from exc


def npz_array(archive: Any, name: str, path: Path) -> np.ndarray:
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
