"""Columns of a user's table as numbers, and columns that are not numbers described for an
error message: the one wording every entry point of mitools uses for a non-numeric column.
"""

from __future__ import annotations

import decimal
import math
import numbers
from typing import Any

import numpy as np

__all__ = ["column_values", "describe_column", "label_advice", "number_objects",
           "object_numbers", "parses_as_number", "unmasked"]

_FLOAT64_EXACT = 2**53  # every integer up to this magnitude is a float64


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


def _missing(v: Any) -> bool:
    """``None``, a float NaN or pandas' ``NA``: a missing entry of an object column."""
    if v is None or type(v).__name__ == "NAType":
        return True
    return isinstance(v, (float, np.floating)) and math.isnan(v)


def _real(v: Any) -> bool:
    """A real number held as a Python or numpy object (not text, not complex)."""
    if isinstance(v, (bool, np.bool_)):
        return True
    return isinstance(v, numbers.Number) and not isinstance(v, (complex, np.complexfloating))


def exact_integers(values: Any) -> np.ndarray | None:
    """Python integers beyond float64's exact range, shifted by their minimum exactly:
    ``int64`` when the shifted range fits and nothing is missing, else float64 (exact below
    :math:`2^{53}` apart; NaN where missing). ``None`` when some entry is not an integer,
    or every one is exact in float64 already (:func:`object_numbers` then converts them)."""
    flat = np.asarray(values, dtype=object).ravel()
    # integrality first: int() of text ('0.5') or of another object raised on its own
    if not all(isinstance(v, numbers.Integral) for v in flat if not _missing(v)):
        return None
    present = [int(v) for v in flat if not _missing(v)]
    if not present:
        return None
    if max(abs(v) for v in present) <= _FLOAT64_EXACT:
        return None
    low = min(present)
    if len(present) == flat.size and max(present) - low < 2**63:
        return np.array([v - low for v in present], dtype=np.int64)
    return np.array([np.nan if _missing(v) else float(int(v) - low) for v in flat],
                    dtype=np.float64)


def object_numbers(values: Any) -> np.ndarray | None:
    """A column of Python or numpy number objects (``dtype=object``) as numbers, or ``None``
    when some entry is not a number (text, dates, complex numbers, other objects).

    Missing entries (``None``, NaN, pandas' ``NA``) become NaN. Integers beyond float64's
    exact range (:math:`2^{53}`), such as ``2**70 + i``, which ``float`` would merge, are
    shifted by the column's minimum first, exactly: ``int64`` when the shifted range fits.

    Args:
        values: a 1-D array-like, one column (a pandas ``object`` column, an ``object``
            array).

    Example:
        >>> import numpy as np
        >>> object_numbers(np.array([2**70, 2**70 + 1], dtype=object))
        array([0, 1])
        >>> object_numbers(np.array([0.5, None], dtype=object))
        array([0.5, nan])
        >>> object_numbers(np.array(["0.5"], dtype=object)) is None  # text is not a number
        True
    """
    flat = np.asarray(values, dtype=object).ravel()
    present = [v for v in flat if not _missing(v)]
    if not all(_real(v) for v in present):
        return None
    exact = exact_integers(flat)
    if exact is not None:
        return exact
    return np.array([np.nan if _missing(v) else float(v) for v in flat], dtype=np.float64)


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
    if str(dtype) == "category":
        return f"{label} (dtype category: categories are labels, not numbers)"
    if arr.size and all(_missing(v) for v in arr):  # not "numbers stored as text"
        return f"{label} (dtype {dtype}: every value is missing)"
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
    if number_objects(s.dtype):  # numbers held as objects (a concat, a transpose, decimals)
        numbers_ = object_numbers(s.to_numpy(dtype=object))
        if numbers_ is not None:
            return numbers_
    if kind not in "biuf":
        # dates and durations are told how to become numbers, not to be read as labels
        raise TypeError(
            f"{name} must hold real numbers, got the column "  # its dtype: describe_column
            f"{describe_column(s, _series_name(s))}"
            f"{'' if kind in 'mM' else label_advice(name)}"
        )
    if isinstance(s.dtype, np.dtype):
        return s.to_numpy()
    if bool(s.isna().any()):  # pandas' nullable dtypes (Int64, Float64, boolean)
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    numpy_dtype = getattr(s.dtype, "numpy_dtype", None)
    if numpy_dtype is None:  # pandas' sparse columns: their values' dtype, densified
        numpy_dtype = np.dtype(getattr(s.dtype, "subtype", np.float64))
    return s.to_numpy(dtype=numpy_dtype)


def number_objects(dtype: Any) -> bool:
    """A dtype whose entries may be numbers held as Python objects: numpy's ``object`` (not
    a pandas extension type such as ``category``), or pyarrow's decimals
    (``decimal128(10, 2)[pyarrow]``, read as :class:`decimal.Decimal`, then as float64 like
    the same numbers written as floats)."""
    if isinstance(dtype, np.dtype):
        return dtype.kind == "O"
    return getattr(dtype, "type", None) is decimal.Decimal


def unmasked(a: np.ma.MaskedArray, name: str) -> np.ndarray:
    """A masked array's values, refused where an entry is masked: the value under a mask is
    no sample, and ``np.asarray`` would read it as one, silently.

    Raises:
        ValueError: some entry is masked; the message says in how many rows, the first, and
            how to drop them from both variables.
    """
    mask = np.ma.getmaskarray(a)
    if mask.ndim == 0 or not mask.any():
        return np.ma.getdata(a)
    rows = np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1))
    raise ValueError(
        f"{name} is a masked array with masked entries in {rows.size} of {mask.shape[0]} rows "
        f"(first: row {rows[0]}): a masked value is missing, not a sample. Drop those rows "
        "from both variables at once so the pairs stay aligned (e.g. keep = "
        f"~np.ma.getmaskarray({name}).reshape(len({name}), -1).any(axis=1)), or fill them"
    )


def label_advice(name: str) -> str:
    """Where text is refused: how to pass it as labels (for the arguments ``x`` and ``y``)."""
    if name not in ("x", "y"):
        return ""
    return (f"; if it holds labels, pass discrete_{name}=True (estimate_mi, mixed_ksg), which "
            "reads text as labels")
