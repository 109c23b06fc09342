"""Inputs of the classical estimators: paired float64 columns, standardised, ties counted.

The samples are read by :func:`mitools.inputs.as_float64_columns`, the conversion every entry
point of mitools shares (numpy arrays, tensors, lists, pandas Series and DataFrames). Integer
columns are shifted by their minimum *before* the conversion to float64, so that timestamps
near 1.7e9 s (or 1.7e18 ns) keep every unit: the nearest-neighbour estimators compare
differences of values, and mutual information does not change under a shift.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mitools.estimate.data import SAFE_MAGNITUDE
from mitools.inputs import as_float64_columns, check_paired

__all__ = [
    "TIED_WARNING",
    "any_tied",
    "as_float64_columns",  # re-exported from mitools.inputs, where it lives
    "paired_columns",
    "standardize_columns",
    "tied_fraction",
]

#: a column that repeats values in more than this fraction of the samples counts as tied
#: (discrete): :func:`~mitools.classical.ksg` warns about it, and the rules that hold for
#: continuous data only (the ceiling and monotone-relation warnings) skip tied data. A constant
#: column beside others does not count (:func:`tied_fraction` with ``constant=False``)
TIED_WARNING = 0.01


def standardize_columns(a: np.ndarray) -> np.ndarray:
    """Centre every column and divide it by its standard deviation (constant columns by 1).

    Equal values stay exactly equal, so ties (discrete columns) are kept. Any magnitude
    works: a column of values near 1e-300 or 1e300 is divided by its largest magnitude first
    (``mitools.estimate.data.SAFE_MAGNITUDE``, 1e150).

    Example:
        >>> import numpy as np
        >>> standardize_columns(np.array([[1.0, 5.0], [3.0, 5.0]]))
        array([[-1.,  0.],
               [ 1.,  0.]])
    """
    # columns of very large or very small magnitude are divided by it first: squares of
    # values below ~1e-162 underflow and above ~1e154 overflow in float64 (a column of
    # 1e-300 became constant and MI 0); elsewhere the unit is 1 and changes no bit
    if a.shape[0] == 0:  # nothing to standardise: the estimator's sample-size error follows
        return a.copy()
    magnitude = np.abs(a).max(axis=0, initial=0.0)
    unit = np.where((magnitude > SAFE_MAGNITUDE) | (magnitude < 1 / SAFE_MAGNITUDE),
                    magnitude, 1.0)
    u = a / np.where(unit > 0, unit, 1.0)
    centred = u - u.mean(axis=0)
    scale = centred.std(axis=0)
    return centred / np.where(scale > 0, scale, 1.0)


def tied_fraction(a: np.ndarray, *, constant: bool = True) -> np.ndarray:
    """Per column, the fraction of samples whose value repeats an earlier sample's.

    0 for continuous data; close to 1 for a label with few classes. ``constant=False`` gives
    a constant column 0 instead of ``(n - 1) / n``: beside other columns it moves no distance
    and no rank, so it carries no information and is no sign of discrete data (the k-NN and
    Gaussian estimators read it so; a constant column beside ``x`` silenced their warning
    that ``y = x**3`` has an infinite MI, and drew KSG's tie warning).

    Example:
        >>> import numpy as np
        >>> a = np.array([[0.0, 0.1, 2.0], [1.0, 0.2, 2.0], [1.0, 0.3, 2.0], [1.0, 0.4, 2.0]])
        >>> tied_fraction(a)
        array([0.5 , 0.  , 0.75])
        >>> tied_fraction(a, constant=False)
        array([0.5, 0. , 0. ])
    """
    n = a.shape[0]
    ordered = np.sort(a, axis=0)
    repeats = (ordered[1:] == ordered[:-1]).sum(axis=0)
    if not constant and n > 1:
        repeats = np.where(repeats == n - 1, 0, repeats)
    return repeats / max(n, 1)


def any_tied(fractions: list[np.ndarray]) -> bool:
    """Whether any column's :func:`tied_fraction` (one array per variable, as
    ``[tied_fraction(x), tied_fraction(y)]``) exceeds :data:`TIED_WARNING`.

    Example:
        >>> import numpy as np
        >>> any_tied([tied_fraction(np.arange(10.0)[:, None]), np.array([0.0])])
        False
        >>> any_tied([tied_fraction(np.array([[0.0], [1.0], [1.0]]))])
        True
    """
    return any(bool((f > TIED_WARNING).any()) for f in fractions)


def paired_columns(x: Any, y: Any, discrete: tuple[bool, bool] = (False, False)
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Both variables as float64 columns (:func:`as_float64_columns`), with equal row counts.

    ``discrete``: which of ``x`` and ``y`` are discrete, whose text is read as labels (integer
    codes, :func:`mitools.inputs.label_codes`).

    Raises:
        TypeError, ValueError: as :func:`as_float64_columns`, or different numbers of rows.

    Example:
        >>> paired_columns([1, 2, 3], [[0.5], [0.25], [0.0]])[0].shape
        (3, 1)
    """
    xa, ya = as_float64_columns(x, "x", discrete[0]), as_float64_columns(y, "y", discrete[1])
    check_paired(xa, ya)
    return xa, ya
