"""Samples (arrays, tensors, tables, lists) as ``(n, d)`` numbers that lose nothing:
:func:`as_sample_tensor` for ranks and centring in the input's own dtype,
:func:`as_float64_columns` for float64 with integer columns shifted first.

Both refuse what is not real numbers (a ``TypeError`` naming the dtype or the columns), a shape
that is not ``(n, d)`` or ``(n,)``, no features, and NaN or infinite values (a ``ValueError``
naming the first bad row).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mitools.inputs.columns import (
    column_values,
    describe_column,
    label_advice,
    number_objects,
    object_numbers,
    unmasked,
)
from mitools.inputs.labels import label_codes
from mitools.option_checks import check_flag

__all__ = ["as_float64_columns", "as_sample_tensor"]

_ARRAY_LIKE = "numpy array, torch.Tensor, pandas DataFrame or Series, list"


def _shifted(arr: np.ndarray) -> np.ndarray:
    """Integer columns minus their minimum, as unsigned (exact for any range below 2**64)."""
    shifted = arr - arr.min(axis=0)  # wraps around; read as unsigned, exact
    return shifted.astype(arr.dtype.str.replace("i", "u"), copy=False)


def _exact_float64(arr: np.ndarray) -> np.ndarray:
    """float64; integer columns are shifted by their minimum first (exact below 2**53)."""
    if arr.dtype.kind in "iu" and arr.shape[0] > 0:
        return _shifted(arr).astype(np.float64)
    return arr.astype(np.float64)


def _frame(a: Any, name: str) -> tuple[np.ndarray, list[str]]:
    """A DataFrame's columns checked and stacked in one dtype that loses nothing."""
    names = [str(c) for c in a.columns]
    bad = [describe_column(a.iloc[:, j], names[j]) for j, dt in enumerate(a.dtypes)
           if getattr(dt, "kind", "O") not in "biuf"
           and not (number_objects(dt) and object_numbers(a.iloc[:, j]) is not None)]
    if bad:
        raise TypeError(
            f"{name} must have numeric columns only; non-numeric: {', '.join(bad[:5])}"
            + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            + ". Select the numeric columns"
            + (label_advice(name) or ", or encode categories as integer codes (e.g. "
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
    if isinstance(a, np.ma.MaskedArray):
        a = unmasked(a, name)
    try:
        arr = np.asarray(a)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be array-like with numeric entries, got {type(a).__name__} that numpy "
            f"cannot convert ({exc})"
        ) from None
    kind = arr.dtype.kind
    if kind == "O":  # mixed lists, None entries, integers beyond int64
        return _object_columns(arr, type(a).__name__, name), None
    elif kind == "f" and arr.dtype.itemsize > 8:
        arr = arr.astype(np.float64)  # long double: the precision every estimator computes in
    elif kind == "c":
        raise TypeError(f"{name} must hold real numbers, got numpy dtype {arr.dtype} (complex)")
    elif kind in "mM":
        raise TypeError(
            f"{name} must hold real numbers, got numpy dtype {arr.dtype} (dates/durations): "
            "convert to numbers first, e.g. .astype('int64')"
        )
    elif kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got numpy dtype {arr.dtype}"
                        + (label_advice(name) if kind == "U" else ""))
    return arr, None


def _object_columns(arr: np.ndarray, container: str, name: str) -> np.ndarray:
    """An object array as numbers, column by column (:func:`~mitools.inputs.object_numbers`:
    Python integers beyond float64's exact range, such as ``2**70 + i``, shifted exactly).
    Text is refused as in a pandas ``object`` column, also text that parses as a number
    (``'0.5'``: numpy's ``astype(float)`` read it silently), and so is any other object; the
    ``TypeError`` names the column and its first value that is not a number."""
    if arr.ndim not in (1, 2) or arr.size == 0:  # refused or emptied by the shape checks
        try:
            return arr.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must hold real numbers, got {container} with numpy dtype "
                            f"object (non-numeric entries){label_advice(name)}") from None
    cols = [arr] if arr.ndim == 1 else list(arr.T)
    found = [object_numbers(c) for c in cols]
    for j, (col, numbers_) in enumerate(zip(cols, found, strict=True)):
        if numbers_ is None:
            detail = describe_column(col, None).removeprefix("column 0 ")
            raise TypeError(f"{name} must hold real numbers, got {container} with numpy dtype "
                            f"object: column {j} {detail}{label_advice(name)}")
    out = [f for f in found if f is not None]
    if len({f.dtype for f in out}) > 1:  # exact integers start at 0; floats as given
        out = [f.astype(np.float64) for f in out]
    return out[0] if arr.ndim == 1 else np.column_stack(out)


def _raw(a: Any, name: str) -> tuple[np.ndarray | Tensor, list[str] | None]:
    if isinstance(a, Tensor):
        t = a.detach()
        if t.is_meta:
            raise ValueError(
                f"{name} is a tensor on the 'meta' device, which has a shape "
                f"{tuple(t.shape)} but no values; pass the samples themselves"
            )
        if t.is_complex():
            raise TypeError(f"{name} must hold real numbers, got a tensor of dtype {t.dtype}")
        if t.layout != torch.strided:  # sparse: the same numbers, every entry stored
            t = t.to_dense()
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


def _check_finite(a: np.ndarray | Tensor, name: str, columns: Sequence[str] | None,
                  discrete: bool = False) -> None:
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
        bad = [columns[j] for j in np.flatnonzero(~finite.all(axis=0)).tolist()]
        where = f"; columns {', '.join(repr(c) for c in bad[:5])}"
    what = ("missing labels (NaN, None or pandas' NA) or infinite values" if discrete
            else "NaN or infinite values")
    raise ValueError(
        f"{name} contains {what} in {rows.size} of {finite.shape[0]} rows "
        f"(first: row {rows[0]}{where}); drop or impute those rows first, from both variables "
        "at once so the pairs stay aligned (e.g. frame.dropna() before selecting the columns)"
    )


def as_sample_tensor(a: Any, name: str, discrete: bool = False) -> Tensor:
    """Samples as an ``(n, d)`` tensor in a dtype that loses nothing, for ranks or centring.

    float32 and float64 stay as they are, float16 and bfloat16 become float32 (exactly),
    long double float64, booleans and integers ``int64`` (``uint64``, and Python integers
    beyond ``int64``, shifted by their minimum first). A tensor keeps its device; a sparse
    one is densified. The caller removes location and scale (in float64) before any narrower cast.

    Args:
        a: ``(n, d)`` or ``(n,)`` array-like of real numbers (see the module's list).
        name: the argument's name, for error messages.
        discrete: ``a`` holds the labels of a discrete variable (codes of
            :func:`~mitools.inputs.label_codes`, or numbers): a NaN is called a missing
            label in the error.

    Returns:
        ``(n, d)`` tensor, ``int64``, ``float32`` or ``float64``.

    Raises:
        TypeError: not array-like, or not real numbers (the dtype or columns are named).
        ValueError: not ``(n, d)`` or ``(n,)``, no features, NaN / infinite values (missing
            labels, with ``discrete``), masked entries of a numpy masked array, a tensor
            on the ``meta`` device, or ``discrete`` not ``True`` or ``False``.

    Example:
        >>> import numpy as np
        >>> as_sample_tensor(np.array([1_700_000_000, 1_700_000_001]), "x")
        tensor([[1700000000],
                [1700000001]])
    """
    discrete = check_flag("discrete", discrete)
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
    _check_finite(t, name, columns, discrete)
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
        ValueError: more than two dimensions, no features, NaN / infinite values, masked
            entries of a numpy masked array, a tensor on the ``meta`` device or
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
    _check_finite(out, name, columns, discrete)
    return out
