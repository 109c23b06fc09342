"""The first rows of a ``.csv`` / ``.tsv`` checked before pandas reads it (another separator,
a header row of numbers only), and columns that pandas reads as objects made numbers: flags
with gaps, integers beyond ``int64``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mitools.cli.errors import DataError, name_list

__all__ = ["check_first_row", "flags_with_gaps", "integers_beyond_int64"]

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


def check_first_row(pd: Any, path: Path, sep: str, header: bool | None,
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
            f"the header row of {path} holds only numbers ({name_list(cells, 4)}): it looks like "
            "a data row, which would be lost. If the file has no header row, pass --no-header "
            "(columns are then 0, 1, ...); if its header really is numbers, pass --header"
        )


def flags_with_gaps(frame: Any) -> Any:
    """Columns of True / False with missing cells, which pandas reads as Python objects,
    as its nullable ``boolean`` (missing cells then become NaN, which --dropna drops)."""
    for j in range(frame.shape[1]):
        col = frame.iloc[:, j]
        present = col.dropna()
        if col.dtype == object and len(present) and all(
                isinstance(v, (bool, np.bool_)) for v in present):
            frame[frame.columns[j]] = col.astype("boolean")
    return frame


def integers_beyond_int64(frame: Any) -> Any:
    """Columns of integers beyond ``int64`` (``2**70 + i``), which pandas before 3.0 reads as
    text (``'1180591620717411303424'``), as Python ints, as pandas 3 reads them; missing cells
    stay NaN. Other columns are left as they are (text with any other value stays text)."""
    for j in range(frame.shape[1]):
        col = frame.iloc[:, j]
        present = col.dropna()
        if (col.dtype == object and len(present) and isinstance(present.iloc[0], str)
                and present.str.fullmatch(r"\s*[+-]?[0-9]+\s*").eq(True).all()):
            frame[frame.columns[j]] = col.map(int, na_action="ignore")
    return frame
