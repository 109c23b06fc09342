"""Inputs of the classical estimators: arrays in float64 without losing precision.

Everything the neural :func:`~mitools.estimate.estimate_mi` accepts is accepted here too
(numpy arrays, tensors, lists, pandas Series and DataFrames), and converted to float64 numpy
columns. Integer columns are shifted by their minimum *before* the conversion, so that
timestamps near 1.7e9 s (or 1.7e18 ns) keep every unit: the nearest-neighbour estimators
compare differences of values, and mutual information does not change under a shift.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = [
    "as_float64_columns",
    "column_values",
    "paired_columns",
    "standardize_columns",
    "tied_fraction",
]


def _exact_float64(arr: np.ndarray) -> np.ndarray:
    """float64 copy; integer columns are shifted by their minimum first (exact below 2**53)."""
    if arr.dtype.kind in "iu" and arr.shape[0] > 0:
        # wrap-around subtraction, read as unsigned: exact for any range below 2**64
        shifted = arr - arr.min(axis=0)
        return shifted.astype(arr.dtype.str.replace("i", "u"), copy=False).astype(np.float64)
    return arr.astype(np.float64)


def column_values(s: Any, name: str) -> np.ndarray:
    """A pandas Series' values as a numpy array; nullable dtypes' missing values become NaN.

    Raises:
        TypeError: a column that does not hold numbers.
    """
    if getattr(s.dtype, "kind", "O") not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got a column of dtype {s.dtype}")
    if isinstance(s.dtype, np.dtype):
        return s.to_numpy()
    # pandas' nullable dtypes (Int64, Float64, boolean): missing values become NaN
    if bool(s.isna().any()):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    return s.to_numpy(dtype=s.dtype.numpy_dtype)


def _to_numpy(a: Any, name: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        t = a.detach().cpu()
        if t.is_complex():
            raise TypeError(f"{name} must hold real numbers, got a tensor of dtype {t.dtype}")
        if t.is_floating_point():
            t = t.to(torch.float64)  # float16 / bfloat16 have no numpy twin; exact upcast
        return t.numpy()
    if hasattr(a, "columns") and hasattr(a, "dtypes"):  # a pandas DataFrame
        bad = [str(c) for c, dt in a.dtypes.items() if getattr(dt, "kind", "O") not in "biuf"]
        if bad:
            raise TypeError(f"{name} has non-numeric columns {bad}; select numeric columns")
        if a.shape[1] == 0:
            raise ValueError(f"{name} must have at least one feature, got shape {a.shape}")
        # column by column, so that an integer column is shifted before any float conversion
        return np.column_stack(
            [_exact_float64(column_values(a.iloc[:, j], name)) for j in range(a.shape[1])]
        )
    if hasattr(a, "dtype") and hasattr(a, "to_numpy"):  # a pandas Series
        return column_values(a, name)
    if isinstance(a, (np.ndarray, list, tuple)) or np.isscalar(a):
        return np.asarray(a)
    raise TypeError(
        f"{name} must be array-like (numpy array, torch tensor, list, pandas Series or "
        f"DataFrame), got {type(a).__name__}"
    )


def as_float64_columns(a: Any, name: str) -> np.ndarray:
    """Convert samples to an ``(n, d)`` float64 array, shifting integer columns first.

    Args:
        a: ``(n, d)`` or ``(n,)`` array-like of real numbers (booleans count as 0 and 1).
        name: the argument's name, for error messages.

    Returns:
        ``(n, d)`` float64 array. An integer column is shifted by its minimum before the
        conversion, so values up to :math:`2^{53}` apart stay exact however large they are.

    Raises:
        TypeError: not array-like, or not real numbers (strings, complex, objects).
        ValueError: more than two dimensions, no features, or NaN / infinite values.

    Example:
        >>> import numpy as np
        >>> t = np.array([1_700_000_000_000_000_000, 1_700_000_000_000_000_001])
        >>> as_float64_columns(t, "x").ravel()  # nanosecond timestamps one unit apart
        array([0., 1.])
    """
    arr = _to_numpy(a, name)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got values of dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[:, None]  # n scalar samples: (n,) -> (n, 1)
    elif arr.ndim != 2:
        raise ValueError(
            f"{name} must have shape (n, d) (or (n,) for scalars), got shape {arr.shape}"
        )
    if arr.shape[1] < 1:
        raise ValueError(f"{name} must have at least one feature, got shape {arr.shape}")
    out = _exact_float64(arr)
    finite = np.isfinite(out)
    if not finite.all():
        rows = np.flatnonzero(~finite.all(axis=1))
        raise ValueError(
            f"{name} contains NaN or infinite values in {rows.size} of {out.shape[0]} rows "
            f"(first: row {rows[0]}); drop or impute them"
        )
    return out


def standardize_columns(a: np.ndarray) -> np.ndarray:
    """Centre every column and divide it by its standard deviation (constant columns by 1).

    Equal values stay exactly equal, so ties (discrete columns) are kept.

    Example:
        >>> import numpy as np
        >>> standardize_columns(np.array([[1.0, 5.0], [3.0, 5.0]]))
        array([[-1.,  0.],
               [ 1.,  0.]])
    """
    centred = a - a.mean(axis=0)
    scale = centred.std(axis=0)
    return centred / np.where(scale > 0, scale, 1.0)


def tied_fraction(a: np.ndarray) -> np.ndarray:
    """Per column, the fraction of samples whose value repeats an earlier sample's.

    0 for continuous data; close to 1 for a label with few classes.

    Example:
        >>> import numpy as np
        >>> tied_fraction(np.array([[0.0, 0.1], [1.0, 0.2], [1.0, 0.3], [1.0, 0.4]]))
        array([0.5, 0. ])
    """
    n = a.shape[0]
    ordered = np.sort(a, axis=0)
    repeats = (ordered[1:] == ordered[:-1]).sum(axis=0)
    return repeats / max(n, 1)


def paired_columns(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both variables as float64 columns (:func:`as_float64_columns`), with equal row counts.

    Raises:
        TypeError, ValueError: as :func:`as_float64_columns`, or different numbers of rows.

    Example:
        >>> paired_columns([1, 2, 3], [[0.5], [0.25], [0.0]])[0].shape
        (3, 1)
    """
    xa, ya = as_float64_columns(x, "x"), as_float64_columns(y, "y")
    if xa.shape[0] != ya.shape[0]:
        raise ValueError(
            f"x and y must hold the same number of samples (paired rows): got x of shape "
            f"{xa.shape} and y of shape {ya.shape}"
        )
    return xa, ya
