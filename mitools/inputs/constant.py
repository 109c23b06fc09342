"""A variable that holds one value: its mutual information with anything is 0."""

from __future__ import annotations

import warnings

import numpy as np
from torch import Tensor

__all__ = ["warn_if_constant"]


def warn_if_constant(a: np.ndarray | Tensor, name: str, caller: str, stacklevel: int = 3) -> bool:
    """Warn when every column of ``a`` ``(n, d)`` holds a single value: its MI with anything
    is 0, and an interval of zero width (or none) says nothing more (a constant y read as
    "0.0000 +- 0.0000", with advice to raise max_steps; the classical estimators blamed an
    exact function of x). Returns whether it warned.

    Example:
        >>> import warnings
        >>> import numpy as np
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     warn_if_constant(np.ones((5, 1)), "x", "ksg")
        True
        >>> "x is constant" in str(seen[0].message)
        True
    """
    # Tensor.eq: mypy reads a union's ``==`` through object.__eq__, a bool
    constant = a.shape[0] > 1 and bool(
        (a.eq(a[:1]) if isinstance(a, Tensor) else a == a[:1]).all())
    if constant:
        warnings.warn(
            f"{caller}: {name} is constant (every column holds one value): its mutual "
            "information with anything is 0, which is the estimate; its interval and "
            "diagnostics say nothing more", RuntimeWarning, stacklevel=stacklevel)
    return constant
