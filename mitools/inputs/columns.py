"""Columns of a user's table as numbers, and columns that are not numbers described for an
error message: the one wording every entry point of mitools uses for a non-numeric column.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["column_values", "describe_column", "label_advice", "parses_as_number"]


def parses_as_number(cell: Any) -> bool:
    """Whether ``float(cell)`` succeeds: numbers, and text such as ``'0.352'``, ``'1e3'`` or
    ``'nan'``.

    Example:
        >>> parses_as_number("0.352"), parses_as_number("abc")
        (True, False)
    """
    try:
        float(cell)
    except (TypeError, ValueError):
        return False
    return True


def _first_non_number(values: np.ndarray) -> int | None:
    """The position of the first value that does not parse as a real number, or ``None``.

    Missing values (``None``, NaN) parse; pandas does the parsing when it is installed
    (vectorised), else each value is tried in turn (this runs only to word an error).
    """
    try:
        import pandas as pd
    except ImportError:
        return next((i for i, v in enumerate(values)
                     if v is not None and not parses_as_number(v)), None)
    parsed = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
    suspects = np.flatnonzero(parsed.isna().to_numpy() & ~pd.isna(values))
    # pandas' parser refuses some text float() reads ('nan', '1_000'): the one rule decides
    return next((int(i) for i in suspects if not parses_as_number(values[i])), None)


def describe_column(values: Any, name: str | None, row_label: str = "row") -> str:
    """A column for an error message: its name, dtype and the first value that is not a number.

    Text that parses as a number (``'0.352'``) is not shown as the culprit: the message names
    the first value that does not parse, with its position (``row_label`` and a 0-based row),
    or says that the column holds numbers stored as text. ``name=None`` (an unnamed pandas
    Series, a variable's only column) reads ``column 0``, not ``'None'``.

    Example:
        >>> import numpy as np
        >>> describe_column(np.array(["0.5", "a"], dtype=object), "city")
        "'city' (dtype object; row 1 holds 'a', not a number)"
        >>> describe_column(np.array(["0.5", "a"], dtype=object), None)
        "column 0 (dtype object; row 1 holds 'a', not a number)"
    """
    label = "column 0" if name is None else repr(name)
    dtype = getattr(values, "dtype", None)
    arr = np.asarray(values, dtype=object).ravel()
    if dtype is None:
        dtype = np.asarray(values).dtype
    kind = getattr(dtype, "kind", "O")
    if kind in "mM":
        return (f"{label} (dtype {dtype}: dates and times are not numbers; convert them, "
                "e.g. to seconds)")
    if kind == "c":
        return f"{label} (dtype {dtype}: complex numbers are not real numbers)"
    row = _first_non_number(arr)
    if row is None:
        return f"{label} (dtype {dtype}: numbers stored as text; store them as numbers)"
    return f"{label} (dtype {dtype}; {row_label} {row} holds {arr[row]!r}, not a number)"


def _series_name(s: Any) -> str | None:
    """A pandas Series' name as text, ``None`` for an unnamed one (not ``'None'``)."""
    label = getattr(s, "name", None)
    return None if label is None else str(label)


def column_values(s: Any, name: str) -> np.ndarray:
    """A pandas Series' values as numpy; pandas' nullable dtypes' missing values become NaN.

    Args:
        s: a pandas Series (or anything with ``dtype`` and ``to_numpy``).
        name: the argument's name, for error messages.

    Raises:
        TypeError: a column that does not hold real numbers.

    Example:
        >>> import pandas as pd
        >>> column_values(pd.Series([1, None, 3], dtype="Int64"), "x")
        array([ 1., nan,  3.])
    """
    kind = getattr(s.dtype, "kind", "O")
    if kind not in "biuf":
        # dates and durations are told how to become numbers, not to be read as labels
        raise TypeError(
            f"{name} must hold real numbers, got a column of dtype {s.dtype}: "
            f"{describe_column(s, _series_name(s))}"
            f"{'' if kind in 'mM' else label_advice(name)}"
        )
    if isinstance(s.dtype, np.dtype):
        return s.to_numpy()
    if bool(s.isna().any()):  # pandas' nullable dtypes (Int64, Float64, boolean)
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    return s.to_numpy(dtype=s.dtype.numpy_dtype)


def label_advice(name: str) -> str:
    """Where text is refused: how to pass it as labels (for the arguments ``x`` and ``y``)."""
    if name not in ("x", "y"):
        return ""
    return (f"; if it holds labels, pass discrete_{name}=True (estimate_mi, mixed_ksg), which "
            "reads text as labels")
