r"""Samples a user has (arrays, tensors, tables, lists) as numbers, without losing precision.

:func:`~mitools.estimate.estimate_mi`, :func:`~mitools.estimate.pointwise_mi`, the classical
estimators (:mod:`mitools.classical`) and the command line (:mod:`mitools.cli`) all read their
samples here, so they accept the same inputs and fail with the same messages:

* **Inputs**: numpy arrays, torch tensors (any device), pandas DataFrames and Series (pandas'
  nullable dtypes included: a missing value becomes NaN), lists and tuples, and anything with
  ``__array__``. ``(n,)`` is ``n`` scalar samples, ``(n, d)`` is ``n`` samples of ``d``
  features. Booleans count as 0 and 1.
* **Errors** name the argument, the dtype or shape seen (for a DataFrame, the offending
  columns) and what to do: a ``TypeError`` for what is not real numbers (strings, complex,
  dates, objects), a ``ValueError`` for a shape that is not ``(n, d)``, no features, NaN or
  infinite values (with the first bad row), or two variables of different lengths.
* **Labels**: a variable declared discrete (``discrete_x=True`` / ``discrete_y=True``, the
  command line's ``--discrete-x`` / ``--discrete-y``) may hold text: :func:`label_codes`
  numbers each text column's distinct labels ``0, 1, ...`` in sorted order, and every entry
  point reads those codes. A discrete variable is compared by equality only, so the estimate
  is the one of any integer coding (value for value). A missing label (``None``, NaN) is a
  ``ValueError`` naming its row, like NaN in numbers; a column mixing text and numbers
  (``1`` and ``'1'``) is a ``TypeError``, since ``1 != '1'`` would make them two classes
  silently. Continuous variables refuse text, as before.
* **Pairing**: rows are paired by position. Two pandas objects whose indexes differ (one of
  them shuffled, or filtered) are paired by position all the same, with a warning
  (:func:`warn_if_unaligned`); the estimators also warn when ``(x, y)`` rows repeat exactly
  (:func:`repeated_rows`), which continuous estimators read as structure.
* **Precision**: nothing is rounded before the location is removed. :func:`as_sample_tensor`
  keeps every dtype that loses nothing (integers as ``int64``, float32 and float64 as given,
  half precision widened to float32) and leaves centring and scaling to its caller (in
  float64); :func:`as_float64_columns` shifts every integer column by its minimum *before* the
  conversion to float64. Either way ``1_700_000_000 + i`` as ``int64`` (timestamps, where
  float32's spacing is 128) gives the same numbers to an estimator as ``i``, and so the same
  estimate: mutual information does not change under a shift.

See :doc:`/guide/inputs` for every entry point of mitools and what it does with dtypes.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from mitools.option_checks import check_flag

__all__ = [
    "LabelCodes",
    "as_float64_columns",
    "as_sample_tensor",
    "check_paired",
    "column_values",
    "describe_column",
    "label_codes",
    "parses_as_number",
    "repeated_rows",
    "warn_if_constant",
    "warn_if_unaligned",
    "warn_repeated_rows",
]

#: fewest distinct values of a column that :func:`repeated_rows` takes as continuous
CONTINUOUS_MIN_VALUES = 20
#: rows hashed at a time by :func:`repeated_rows` (bounds its float64 working memory)
HASH_BLOCK_ROWS = 65536
_ARRAY_LIKE = "numpy array, torch.Tensor, pandas DataFrame or Series, list"


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
            f"{'' if kind in 'mM' else _label_advice(name)}"
        )
    if isinstance(s.dtype, np.dtype):
        return s.to_numpy()
    if bool(s.isna().any()):  # pandas' nullable dtypes (Int64, Float64, boolean)
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    return s.to_numpy(dtype=s.dtype.numpy_dtype)


class LabelCodes(NamedTuple):
    """What :func:`label_codes` returns: the samples with text labels as integer codes."""

    #: the input itself when no column holds text; otherwise the same kind of object (a
    #: DataFrame, a Series, else a numpy array) with every text column replaced by its codes
    #: (``int64``; float64 with NaN at a missing label when ``missing="nan"``)
    values: Any
    #: ``None`` when no column holds text; otherwise one entry per column, the column's
    #: labels in the order of their codes (code ``i`` is ``categories[j][i]``), or ``None``
    #: for a numeric column
    categories: list[list[str] | None] | None


def _missing(values: np.ndarray) -> np.ndarray:
    """Missing entries of an object array: ``None``, NaN, and pandas' ``NA`` / ``NaT``."""
    try:
        import pandas as pd
    except ImportError:
        return np.array([v is None or (isinstance(v, float) and v != v) for v in values],
                        dtype=bool)
    return np.asarray(pd.isna(values), dtype=bool)


def _numbers(col: np.ndarray) -> np.ndarray:
    """A column of numbers (and missing values, as NaN) as float64."""
    if col.dtype.kind != "O":
        return col.astype(np.float64)
    absent = _missing(col)
    out = np.full(len(col), np.nan)
    out[~absent] = col[~absent].astype(np.float64)
    return out


def _categories_as_values(a: Any) -> Any:
    """A pandas ``category`` Series, or a DataFrame's category columns, as the values they
    stand for (numbers stay numbers, text stays text); anything else as it is."""
    def values(col: Any) -> Any:
        if str(getattr(col, "dtype", "")) != "category":
            return col
        kind = col.cat.categories.dtype.kind
        if col.isna().any():  # an integer dtype holds no NaN: numbers as floats, text as is
            return col.astype(np.float64 if kind in "biuf" else object)
        return col.astype(col.cat.categories.dtype)

    if hasattr(a, "columns") and hasattr(a, "iloc") and getattr(a, "ndim", 2) == 2:
        if any(str(dt) == "category" for dt in a.dtypes):
            a = a.copy()
            for j in range(a.shape[1]):
                a.isetitem(j, values(a.iloc[:, j]))
        return a
    return values(a) if hasattr(a, "to_numpy") and hasattr(a, "isna") else a


def _code_column(col: np.ndarray, name: str, where: str, known: list[str] | None,
                 missing: str) -> tuple[np.ndarray | None, list[str] | None]:
    """One column's codes and labels, or ``(None, None)`` for a column of numbers (left to
    the numeric path); ``known``: the labels of a fit, which fix the codes."""
    if col.dtype.kind == "U":
        absent = np.zeros(col.shape, dtype=bool)
        text = col
    else:
        col = col.astype(object, copy=False)
        absent = _missing(col)
        present = col[~absent]
        is_text = np.array([isinstance(v, str) for v in present], dtype=bool)
        if not is_text.any():
            other = next((i for i, v in enumerate(present) if not isinstance(v, numbers.Number)
                          and not isinstance(v, np.bool_)), None)
            if other is None:  # numbers (or nothing): the numeric path reads them (numbers
                return None, None  # where a fit had text are refused by label_codes)
            row = int(np.flatnonzero(~absent)[other])
            raise TypeError(
                f"{name}{where} holds {type(col[row]).__name__} values (row {row}: "
                f"{col[row]!r}); labels must be numbers or text: convert them first, e.g. "
                "with .astype(str)")
        if not is_text.all():
            rows = np.flatnonzero(~absent)
            a, b = int(rows[np.argmax(is_text)]), int(rows[np.argmin(is_text)])
            first, second = sorted((a, b))
            raise TypeError(
                f"{name}{where} mixes text with {type(col[b]).__name__} values (row {first} "
                f"holds {col[first]!r}, row {second} holds {col[second]!r}): labels are "
                "compared by equality, where 1 and '1' are two classes; give every label one "
                "type first, e.g. with .astype(str)")
        text = present.astype(str)
    if known is None:
        labels, codes = np.unique(text, return_inverse=True)
        found: list[str] = [str(v) for v in labels]
    else:
        lookup = {label: i for i, label in enumerate(known)}
        codes = np.array([lookup.get(str(v), -1) for v in text], dtype=np.int64)
        if (codes < 0).any():
            row = int(np.flatnonzero(~absent)[np.argmax(codes < 0)])
            raise ValueError(
                f"{name}{where} row {row} holds {str(col[row])!r}, not one of the "
                f"{len(known)} labels seen when fitting")
        found = known
    codes = codes.reshape(-1).astype(np.int64)
    if not absent.any():
        return codes, found
    if missing == "raise":
        rows = np.flatnonzero(absent)
        raise ValueError(
            f"{name}{where} has missing labels (None or NaN) in {rows.size} of {len(col)} rows "
            f"(first: row {rows[0]}); drop those rows first, from both variables at once so "
            "the pairs stay aligned (e.g. frame.dropna() before selecting the columns)")
    out = np.full(len(col), np.nan)
    out[~absent] = codes
    return out, found


def label_codes(a: Any, name: str, categories: list[list[str] | None] | None = None, *,
                missing: str = "raise") -> LabelCodes:
    """Text labels of a discrete variable as integer codes: the one place where every entry
    point (``estimate_mi``, ``pointwise_mi``, ``mixed_ksg``, the command line) reads them.

    Each column holding text (numpy ``str`` or ``object`` arrays, lists of ``str``, pandas
    ``object``, ``string`` or ``category`` columns) gets its distinct labels numbered
    ``0, 1, ...`` in sorted order; every other column is left as it is. Columns are coded
    one by one, so two rows are equal exactly when their labels are: the classes (distinct
    rows) are those of the labels, and as a discrete variable is compared by equality only,
    the estimate is the one of any integer coding. Text is compared as text: ``'1'`` and
    ``'1.0'`` are two labels.

    Args:
        a: ``(n, d)`` or ``(n,)`` array-like (see the module's list); tensors hold no text
            and are returned as they are.
        name: the argument's name, for error messages.
        categories: the labels of a fit (:attr:`LabelCodes.categories`), which fix the codes
            (new samples of a fitted variable); ``None``: the labels found here.
        missing: ``"raise"``: a missing label (``None``, NaN, pandas' ``NA``) is an error;
            ``"nan"``: its code is NaN, for the caller to drop (the command line's
            ``--dropna``).

    Returns:
        :class:`LabelCodes`.

    Raises:
        TypeError: a column mixing text with numbers or other values, or holding values that
            are neither numbers nor text (dates, bytes, tuples), or numbers where the fit
            had text.
        ValueError: a missing label (``missing="raise"``), or a label not in ``categories``.

    Example:
        >>> codes = label_codes(["cat", "dog", "cat", "bird"], "y")
        >>> codes.values, codes.categories
        (array([1, 2, 1, 0]), [['bird', 'cat', 'dog']])
        >>> label_codes(["dog", "bird"], "y", codes.categories).values
        array([2, 0])
    """
    if missing not in ("raise", "nan"):
        raise ValueError(f"missing must be 'raise' or 'nan', got {missing!r}")

    def no_text() -> LabelCodes:
        """``a`` holds no text: as it is, unless the fit had text (then its codes would be
        read as labels of their own: refused)."""
        if categories is not None and any(c is not None for c in categories):
            raise TypeError(f"{name} was fitted on text labels; pass the same labels, not "
                            "numbers")
        return LabelCodes(a, None)

    if isinstance(a, Tensor) or isinstance(a, (str, bytes, dict, set)) or a is None or (
            np.isscalar(a)):
        return no_text()  # no text in a tensor; the rest is refused downstream
    a = _categories_as_values(a)
    frame = hasattr(a, "columns") and hasattr(a, "iloc") and getattr(a, "ndim", 2) == 2
    series = not frame and hasattr(a, "to_numpy") and hasattr(a, "isna")
    arrays: list[Any]  # per column: its values (None: a numeric column of a frame)
    if frame:
        cols = [a.iloc[:, j] for j in range(a.shape[1])]
        text = [j for j, c in enumerate(cols) if getattr(c.dtype, "kind", "O") not in "biufcmM"]
        wheres = [f" column {str(c)!r}" for c in a.columns]
        arrays = [np.asarray(c, dtype=object) if j in text else None for j, c in enumerate(cols)]
    else:
        if series:
            arr = np.asarray(a, dtype=object) if getattr(a.dtype, "kind", "O") not in (
                "biufcmM") else np.asarray(a)
        else:
            try:
                arr = np.asarray(a)
                if arr.dtype.kind == "U" and not isinstance(a, np.ndarray):
                    # numpy turns [1, '1'] into ['1', '1']: look at the entries as given
                    arr = np.array(a, dtype=object)
            except (TypeError, ValueError):
                return no_text()  # the numeric path words the error
        if arr.dtype.kind not in "OU" or arr.ndim not in (1, 2):
            return no_text()
        arrays = list(arr.T) if arr.ndim == 2 else [arr]
        text = list(range(len(arrays)))
        wheres = [f" column {j}" for j in range(len(arrays))] if arr.ndim == 2 else [""]
    if categories is not None and len(categories) != len(arrays):
        raise ValueError(f"{name} must have {len(categories)} columns like the fitted samples, "
                         f"got {len(arrays)}")
    coded: dict[int, np.ndarray] = {}
    found: list[list[str] | None] = [None] * len(arrays)
    for j in text:  # a loop over columns
        known = None if categories is None else categories[j]
        codes, labels = _code_column(arrays[j], name, wheres[j], known, missing)
        if codes is not None:
            coded[j], found[j] = codes, labels
    if categories is not None:
        unread = [j for j, c in enumerate(categories) if c is not None and j not in coded]
        if unread:
            raise TypeError(f"{name}{wheres[unread[0]]} was fitted on text labels; pass the "
                            "same labels, not numbers")
    if not coded:
        return LabelCodes(a, None)
    if frame:
        out = a.copy()
        for j, codes in coded.items():
            out.isetitem(j, codes)
        return LabelCodes(out, found)
    if series:
        import pandas as pd

        return LabelCodes(pd.Series(coded[0], index=a.index, name=a.name), found)
    columns = [coded[j] if j in coded else _numbers(arrays[j]) for j in range(len(arrays))]
    values = np.column_stack(columns) if arr.ndim == 2 else columns[0]
    return LabelCodes(values, found)


def _shifted(arr: np.ndarray) -> np.ndarray:
    """Integer columns minus their minimum, as unsigned (exact for any range below 2**64)."""
    shifted = arr - arr.min(axis=0)  # wraps around; read as unsigned, exact
    return shifted.astype(arr.dtype.str.replace("i", "u"), copy=False)


def _exact_float64(arr: np.ndarray) -> np.ndarray:
    """float64; integer columns are shifted by their minimum first (exact below 2**53)."""
    if arr.dtype.kind in "iu" and arr.shape[0] > 0:
        return _shifted(arr).astype(np.float64)
    return arr.astype(np.float64)


def _label_advice(name: str) -> str:
    """Where text is refused: how to pass it as labels (for the arguments ``x`` and ``y``)."""
    if name not in ("x", "y"):
        return ""
    return (f"; if it holds labels, pass discrete_{name}=True (estimate_mi, mixed_ksg), which "
            "reads text as labels")


def _frame(a: Any, name: str) -> tuple[np.ndarray, list[str]]:
    """A DataFrame's columns checked and stacked in one dtype that loses nothing."""
    names = [str(c) for c in a.columns]
    bad = [describe_column(a.iloc[:, j], names[j]) for j, dt in enumerate(a.dtypes)
           if getattr(dt, "kind", "O") not in "biuf"]
    if bad:
        raise TypeError(
            f"{name} must have numeric columns only; non-numeric: {', '.join(bad[:5])}"
            + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            + ". Select the numeric columns"
            + (_label_advice(name) or ", or encode categories as integer codes (e.g. "
               "frame[col].astype('category').cat.codes)")
        )
    if a.shape[1] == 0:
        raise ValueError(f"{name} must have at least one feature, got shape {a.shape}")
    cols = [column_values(a.iloc[:, j], name) for j in range(a.shape[1])]
    if len({c.dtype for c in cols}) > 1:  # mixed: integers shifted before they meet floats
        cols = [_exact_float64(c[:, None])[:, 0] for c in cols]
    return np.column_stack(cols), names


def _numpy(a: Any, name: str) -> tuple[np.ndarray, list[str] | None]:
    """Anything array-like but a tensor as numpy real numbers (column names of a DataFrame)."""
    dtypes = getattr(a, "dtypes", None)
    if dtypes is not None and hasattr(a, "columns") and hasattr(a, "iloc"):
        return _frame(a, name)
    if hasattr(a, "dtype") and hasattr(a, "to_numpy") and hasattr(a, "isna"):  # a Series
        return column_values(a, name), None
    if isinstance(a, (str, bytes, dict, set)) or a is None or np.isscalar(a):
        raise TypeError(
            f"{name} must be array-like with one row per sample ({_ARRAY_LIKE}), got "
            f"{type(a).__name__}"
        )
    try:
        arr = np.asarray(a)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be array-like with numeric entries, got {type(a).__name__} that numpy "
            f"cannot convert ({exc})"
        ) from None
    kind = arr.dtype.kind
    if kind == "O":  # mixed lists, None entries
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} must hold real numbers, got {type(a).__name__} with numpy dtype object "
                f"(mixed or non-numeric entries){_label_advice(name)}"
            ) from None
    elif kind == "c":
        raise TypeError(f"{name} must hold real numbers, got numpy dtype {arr.dtype} (complex)")
    elif kind in "mM":
        raise TypeError(
            f"{name} must hold real numbers, got numpy dtype {arr.dtype} (dates/durations): "
            "convert to numbers first, e.g. .astype('int64')"
        )
    elif kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got numpy dtype {arr.dtype}"
                        + (_label_advice(name) if kind == "U" else ""))
    return arr, None


def _raw(a: Any, name: str) -> tuple[np.ndarray | Tensor, list[str] | None]:
    if isinstance(a, Tensor):
        t = a.detach()
        if t.is_complex():
            raise TypeError(f"{name} must hold real numbers, got a tensor of dtype {t.dtype}")
        return t, None
    return _numpy(a, name)


def _two_dims(a: Any, name: str) -> Any:
    """``(n,)`` -> ``(n, 1)``; refuse anything but ``(n, d)`` with ``d >= 1``."""
    if a.ndim == 1:
        a = a[:, None]  # n scalar samples: (n,) -> (n, 1)
    elif a.ndim != 2:
        raise ValueError(
            f"{name} must have shape (n, d) (or (n,) for scalars), got shape {tuple(a.shape)}"
        )
    if a.shape[1] < 1:
        raise ValueError(f"{name} must have at least one feature, got shape {tuple(a.shape)}")
    return a


def _check_finite(a: np.ndarray | Tensor, name: str, columns: Sequence[str] | None) -> None:
    if isinstance(a, Tensor):
        if not a.is_floating_point():
            return
        ok = torch.isfinite(a)
        if bool(ok.all()):  # on the tensor's device: one number comes back
            return
        finite = ok.cpu().numpy()
    else:
        if a.dtype.kind != "f":
            return
        finite = np.isfinite(a)
    if finite.all():
        return
    rows = np.flatnonzero(~finite.all(axis=1))
    where = ""
    if columns is not None:
        bad = [columns[j] for j in np.flatnonzero(~finite.all(axis=0))]
        where = f"; columns {', '.join(repr(c) for c in bad[:5])}"
    raise ValueError(
        f"{name} contains NaN or infinite values in {rows.size} of {finite.shape[0]} rows "
        f"(first: row {rows[0]}{where}); drop or impute those rows first, from both variables "
        "at once so the pairs stay aligned (e.g. frame.dropna() before selecting the columns)"
    )


def as_sample_tensor(a: Any, name: str) -> Tensor:
    """Samples as an ``(n, d)`` tensor in a dtype that loses nothing, for ranks or centring.

    float32 and float64 stay as they are, float16 and bfloat16 become float32 (exactly),
    booleans and integers ``int64`` (``uint64`` shifted by its minimum first). A tensor keeps
    its device. The caller removes location and scale (in float64) before any narrower cast.

    Args:
        a: ``(n, d)`` or ``(n,)`` array-like of real numbers (see the module's list).
        name: the argument's name, for error messages.

    Returns:
        ``(n, d)`` tensor, ``int64``, ``float32`` or ``float64``.

    Raises:
        TypeError: not array-like, or not real numbers (the dtype or columns are named).
        ValueError: not ``(n, d)`` or ``(n,)``, no features, or NaN / infinite values.

    Example:
        >>> import numpy as np
        >>> as_sample_tensor(np.array([1_700_000_000, 1_700_000_001]), "x")
        tensor([[1700000000],
                [1700000001]])
    """
    raw, columns = _raw(a, name)
    if isinstance(raw, Tensor):
        t = raw
    else:
        arr = raw
        if arr.dtype.kind == "u" and arr.dtype.itemsize == 8 and arr.size:
            arr = _shifted(arr.reshape(arr.shape[0], -1)).reshape(arr.shape)
            arr = arr.astype(np.int64) if arr.max() < 2**63 else arr.astype(np.float64)
        elif arr.dtype == np.float16:
            arr = arr.astype(np.float32)  # exact
        arr = np.ascontiguousarray(arr)
        t = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
    if not t.is_floating_point():
        t = t.to(torch.int64)  # booleans as 0 / 1
    elif t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float32)  # float16 / bfloat16: exact in float32
    t = _two_dims(t, name)
    _check_finite(t, name, columns)
    return t


def as_float64_columns(a: Any, name: str, discrete: bool = False) -> np.ndarray:
    """Samples as an ``(n, d)`` float64 numpy array, integer columns shifted first.

    Args:
        a: ``(n, d)`` or ``(n,)`` array-like of real numbers (see the module's list).
        name: the argument's name, for error messages.
        discrete: ``a`` is a discrete variable: text columns are read as labels, as
            integer codes (:func:`~mitools.inputs.label_codes`).

    Returns:
        ``(n, d)`` float64 array. An integer column is shifted by its minimum before the
        conversion, so values up to :math:`2^{53}` apart stay exact however large they are.

    Raises:
        TypeError: not array-like, or not real numbers (strings, complex, dates, objects;
            with ``discrete``, text is read as labels, and mixed types are refused).
        ValueError: more than two dimensions, no features, NaN / infinite values or
            (``discrete``) missing labels.

    Example:
        >>> import numpy as np
        >>> t = np.array([1_700_000_000_000_000_000, 1_700_000_000_000_000_001])
        >>> as_float64_columns(t, "x").ravel()  # nanosecond timestamps one unit apart
        array([0., 1.])
    """
    if check_flag("discrete", discrete):
        a = label_codes(a, name).values
    raw, columns = _raw(a, name)
    if isinstance(raw, Tensor):
        t = raw.cpu()
        raw = (t.to(torch.float64) if t.is_floating_point() else t).numpy()
    out = _exact_float64(_two_dims(raw, name))
    _check_finite(out, name, columns)
    return out


def check_paired(x: Any, y: Any, what: str = "samples") -> None:
    """Refuse two variables with different numbers of rows (they are paired row by row).

    Raises:
        ValueError: ``x.shape[0] != y.shape[0]``, with both shapes.

    Example:
        >>> import numpy as np
        >>> check_paired(np.zeros((3, 1)), np.zeros((4, 2)))
        Traceback (most recent call last):
        ...
        ValueError: x and y must hold the same number of samples (paired rows): got x of ...
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must hold the same number of {what} (paired rows): got x of shape "
            f"{tuple(x.shape)} and y of shape {tuple(y.shape)}"
        )


def warn_if_unaligned(x: Any, y: Any, who: str, stacklevel: int = 3) -> None:
    """Warn when ``x`` and ``y`` are both pandas objects whose indexes differ: the estimators
    pair rows by position, and a shuffled or filtered frame paired with another gives the MI
    of unrelated rows (0.0009 nats for 1.01) without an error.

    Example:
        >>> import pandas as pd, warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_if_unaligned(pd.Series([1.0, 2.0], index=[1, 0]),
        ...                       pd.Series([3.0, 4.0]), "f")
        >>> "pairs rows by position" in str(caught[0].message)
        True
    """
    ix, iy = getattr(x, "index", None), getattr(y, "index", None)
    if ix is None or iy is None or not hasattr(ix, "equals") or not hasattr(iy, "equals"):
        return
    if len(ix) == len(iy) and not ix.equals(iy):
        import warnings

        warnings.warn(
            f"{who}: x and y are pandas objects with different indexes; {who} pairs rows by "
            "position, not by index. If the rows belong together by index, align them first "
            "(e.g. y = y.loc[x.index]); if by position, drop the indexes "
            "(.reset_index(drop=True)) to silence this warning",
            UserWarning, stacklevel=stacklevel)


def _row_hashes(a: Tensor, multipliers: Tensor) -> Tensor:
    """``(n,)`` int64 hashes of the rows of ``a``: the float64 bit patterns of each row times
    odd ``multipliers``, summed with wrap-around. Integer arithmetic is exact and does not
    depend on where a row sits, so equal rows always hash equal; computed in blocks of rows
    (no float64 copy of all of ``a``)."""
    out = torch.empty(a.shape[0], dtype=torch.int64, device=a.device)
    for start in range(0, a.shape[0], HASH_BLOCK_ROWS):  # a loop over blocks of rows
        block = a[start:start + HASH_BLOCK_ROWS]
        bits = (block.reshape(len(block), -1).double() + 0.0).view(torch.int64)  # -0.0 is 0.0
        out[start:start + HASH_BLOCK_ROWS] = (bits * multipliers).sum(dim=1)
    return out


def repeated_rows(x: np.ndarray | Tensor, y: np.ndarray | Tensor) -> int:
    """How many of the ``(x, y)`` rows repeat an earlier row exactly, where the data look
    continuous: every column holds more distinct values than half the number of distinct
    rows, and more than ``CONTINUOUS_MIN_VALUES`` (20; 0 otherwise: with a column of a few
    values, a label or a count, repeated rows are the data).

    Continuous estimators read a repeated row as a sample at distance 0 from another (KSG) or
    as a pair seen in training and in testing (a fitted critic): rows repeated by
    oversampling or a join inflated the MI of a 1.02-nat sample to 2.9 (neural) and 5.7 (KSG).

    Rows are first compared by a hash of their bits (equal rows hash equal; distinct rows
    rarely do), so that only rows sharing a hash are compared exactly: a pass over the data
    and a sort of ``n`` numbers in the common case of no repeats.

    Example:
        >>> import numpy as np
        >>> x = np.arange(30.0)[:, None]  # 30 distinct values: continuous-looking
        >>> rows = list(range(30)) + [0]  # row 0 twice
        >>> repeated_rows(x[rows], 2 * x[rows])
        1
    """
    xt, yt = (torch.as_tensor(a) for a in (x, y))
    n = len(xt)
    if n < 2 or xt.numel() == 0 or yt.numel() == 0:
        return 0
    yt = yt.to(xt.device)
    dx, dy = xt.numel() // n, yt.numel() // n
    multipliers = (torch.randint(0, 2**62, (dx + dy,), generator=torch.Generator().manual_seed(0))
                   * 2 + 1).to(xt.device)  # odd
    hashes = _row_hashes(xt, multipliers[:dx]) + _row_hashes(yt, multipliers[dx:])
    ordered, order = hashes.sort()
    same = ordered[1:] == ordered[:-1]
    if not bool(same.any()):
        return 0
    # rows whose hash another row shares: only these can repeat one another
    shared = torch.zeros(n, dtype=torch.bool, device=xt.device)
    shared[order[1:][same]] = True
    shared[order[:-1][same]] = True
    candidates = torch.cat([xt[shared].reshape(-1, dx).double(),
                            yt[shared].reshape(-1, dy).double()], dim=1)
    repeats = int(candidates.shape[0] - torch.unique(candidates, dim=0).shape[0])
    if repeats == 0:
        return 0
    rows = n - repeats
    joint = torch.cat([xt.reshape(n, dx), yt.reshape(n, dy)], dim=1)
    ordered_columns = joint.sort(dim=0).values
    distinct = 1 + (ordered_columns[1:] != ordered_columns[:-1]).sum(dim=0)  # per column
    # a column of few values (a label, a count) makes repeated rows part of the data
    if bool((distinct <= max(rows / 2, CONTINUOUS_MIN_VALUES)).any()):
        return 0
    return repeats


def warn_repeated_rows(x: np.ndarray | Tensor, y: np.ndarray | Tensor, who: str,
                       advice: str, stacklevel: int = 3) -> int:
    """Warn when :func:`repeated_rows` finds repeated rows, ending with ``advice``; return
    their number (0: none, or none that look like copies)."""
    repeats = repeated_rows(x, y)
    if repeats:
        import warnings

        warnings.warn(
            f"{who}: {repeats} of {len(x)} (x, y) rows repeat an earlier row exactly, in data "
            "whose columns otherwise look continuous. Repeated samples (oversampling, a join, "
            "copies) are read as structure, and the estimate can be far too high. Remove them "
            "(e.g. np.unique(np.hstack([x, y]), axis=0)) unless they are part of the data; "
            f"{advice}",
            UserWarning, stacklevel=stacklevel)
    return repeats


def warn_if_constant(a: np.ndarray | Tensor, name: str, caller: str, stacklevel: int = 3) -> bool:
    """Warn when every column of ``a`` ``(n, d)`` holds a single value: its MI with anything
    is 0, and an interval of zero width (or none) says nothing more (a constant y read as
    "0.0000 +- 0.0000", with advice to raise max_steps; the classical estimators blamed an
    exact function of x). Returns whether it warned.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     warn_if_constant(np.ones((5, 1)), "x", "ksg")
        True
        >>> "x is constant" in str(seen[0].message)
        True
    """
    constant = a.shape[0] > 1 and bool((a == a[:1]).all())
    if constant:
        warnings.warn(
            f"{caller}: {name} is constant (every column holds one value): its mutual "
            "information with anything is 0, which is the estimate; its interval and "
            "diagnostics say nothing more", RuntimeWarning, stacklevel=stacklevel)
    return constant
