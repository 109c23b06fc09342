"""Text labels of a discrete variable as integer codes (:func:`label_codes`).

A variable declared discrete (``discrete_x=True`` / ``discrete_y=True``, the command line's
``--discrete-x`` / ``--discrete-y``) may hold text: each text column's distinct labels are
numbered ``0, 1, ...`` in sorted order, and every entry point reads those codes.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import numpy as np
from torch import Tensor

from mitools.inputs.columns import unmasked

__all__ = ["LabelCodes", "label_codes"]


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
            had text, or text where it had numbers.
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
    if isinstance(a, np.ma.MaskedArray):
        a = unmasked(a, name)
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
        if codes is not None and categories is not None and known is None:
            # coded anew, text where the fit had numbers would be classes of their own
            raise TypeError(f"{name}{wheres[j] or ' column 0'} was fitted on numbers; pass "
                            "the same numbers, not text labels")
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
