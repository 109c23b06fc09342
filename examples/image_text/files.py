"""Files of tensors (checkpoints, the data cache): written atomically, read weights-only; and
the text files of the results (``results.md``/``.json``), written atomically too.

A file is refused with a ``ValueError`` that names it and says which of two things is wrong:
it is *damaged* (truncated by an interrupted write or a full disk, or not a torch file at all:
delete it and rerun), or it holds *objects other than tensors and plain values*, which
unpickling could run code from (load only files you trust).
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["load_tensor_file", "save_atomic", "write_text_atomic"]


def save_atomic(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file, then rename: an interrupted write leaves the old
    file (or none), never a truncated one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename: an interrupted write
    (Ctrl-C, a full disk) leaves the old file, never a truncated one that ``evaluate`` and
    ``table`` would refuse as damaged."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_tensor_file(path: Path, what: str, remedy: str,
                     device: torch.device | str | None = None) -> Any:
    """Read ``path`` (a ``what``, e.g. ``"checkpoint"``) with ``weights_only=True``.

    Raises:
        ValueError: the file is damaged (the message names it and gives ``remedy``), or holds
            objects other than tensors and plain Python values.

    Example:
        >>> import tempfile
        >>> bad = Path(tempfile.mkdtemp()) / "x.pt"
        >>> _ = bad.write_bytes(b"not a torch file")
        >>> load_tensor_file(bad, "cache file", "delete it")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: cache file .../x.pt is damaged (truncated, or not a file torch wrote): delete it
    """
    empty = path.stat().st_size == 0  # e.g. a full disk, or a copy that never finished
    damaged = (f"{what} {path} is damaged ("
               + ("truncated: it is empty, 0 bytes" if empty else
                  "truncated, or not a file torch wrote") + f"): {remedy}")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive
        raise ValueError(damaged)
    try:
        return torch.load(path, map_location=device or "cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        lines = [line.strip() for line in str(err).splitlines()]
        detail = next((line for line in lines if "GLOBAL" in line or "global" in line), None)
        if detail is None:  # an unknown opcode, a broken stream: damage, not a foreign object
            raise ValueError(damaged) from None
        raise ValueError(
            f"refusing to load {what} {path}: it holds objects other than tensors and plain "
            "Python values, and unpickling them could run arbitrary code. Files written by "
            f"this example never do; load only files you trust. ({detail})"
        ) from None
    except (RuntimeError, EOFError, KeyError, IndexError, ValueError, zipfile.BadZipFile):
        raise ValueError(damaged) from None
