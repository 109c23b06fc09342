"""Checks of scalar options, shared by every entry point: integers, real numbers and flags.

One rule everywhere: a boolean is not a number (``k=True`` is refused, not read as 1), numpy
scalars and 0-d tensors or arrays are numbers (``k=np.int64(3)`` and ``lr=torch.tensor(1e-3)``
are accepted, as ``3`` and ``0.001``), and a real option must be
finite. Each check raises a ``ValueError`` that names the option and the value seen, and
returns the value as a plain Python ``int`` / ``float`` / ``bool`` (what an object stores: a
numpy scalar in a saved module's state needs ``weights_only=False`` to load).
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

import numpy as np
import torch

__all__ = ["MAX_SEED", "check_flag", "check_int", "check_number", "check_optional_flag",
           "check_threads", "usable_cpus"]

#: the largest seed every entry point takes (torch's generators take 64-bit seeds, and
#: estimate_mi derives one per fold from it)
MAX_SEED = 2**32 - 1


def _scalar(value: Any) -> Any:
    """A 0-d tensor or array as the Python number it holds (``torch.tensor(1e-3)`` for
    ``lr``, the items of ``torch.linspace`` for levels); anything else as it is."""
    if isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim == 0:
        return value.item()
    return value


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity on Linux, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def check_threads(name: str, value: Any) -> int:
    """A thread count: an int from 1 to :func:`usable_cpus`. More threads than CPUs only make
    them wait for each other, and torch crashed (a segmentation fault) when asked for
    100,000.

    Raises:
        ValueError: anything but such an int; the message names ``name`` and the CPUs.
    """
    cpus = usable_cpus()
    try:
        return check_int(name, value, 1, cpus)
    except ValueError:
        raise ValueError(f"{name} must be an int in [1, {cpus}] (the CPUs this process may "
                         f"use), got {_scalar(value)!r}") from None


def check_int(name: str, value: Any, minimum: int = 1, maximum: int | None = None) -> int:
    """Refuse anything but an integer (Python or numpy) of at least ``minimum`` (and, with
    ``maximum``, at most ``maximum``); return it as a Python ``int``.

    Raises:
        ValueError: a bool, a float (even ``3.0``), a string, or an integer out of range;
            the message names ``name``.

    Example:
        >>> import numpy as np
        >>> check_int("k", np.int64(3))
        3
        >>> check_int("k", True)
        Traceback (most recent call last):
        ...
        ValueError: k must be an int >= 1, got True
    """
    value = _scalar(value)
    # int() of an Integral is exact: the comparisons are those of the value itself (typeshed
    # gives numbers.Integral no comparison with int)
    if (_is_bool(value) or not isinstance(value, numbers.Integral) or int(value) < minimum
            or (maximum is not None and int(value) > maximum)):
        what = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be an int {what}, got {value!r}")
    return int(value)


def check_number(name: str, value: Any, low: float | None, *, strict: bool = True,
                 high: float | None = None) -> float:
    """Refuse anything but a finite real number (Python or numpy) above ``low`` (at least
    ``low`` with ``strict=False``; ``None``: no lower limit) and, with ``high``, below
    ``high``; return it as a Python ``float``.

    Raises:
        ValueError: a bool, a string, NaN or an infinity, or a number out of range; the
            message names ``name`` and the range.

    Example:
        >>> check_number("lr", np.float32(0.5), 0)
        0.5
        >>> check_number("lr", float("inf"), 0)
        Traceback (most recent call last):
        ...
        ValueError: lr must be a finite number > 0, got inf
    """
    value = _scalar(value)
    # tested apart, so that value is not narrowed to numbers.Real, to which typeshed gives no
    # comparison with a float (float(value) would round a large int or a Fraction)
    real = isinstance(value, numbers.Real)
    ok = (not _is_bool(value) and real and math.isfinite(value)
          and (low is None or (value > low if strict else value >= low))
          and (high is None or value < high))
    if not ok:
        what = "" if low is None else f" > {low}" if strict else f" >= {low}"
        if high is not None:
            what = f" < {high}" if low is None else f" in {'(' if strict else '['}{low}, {high})"
        raise ValueError(f"{name} must be a finite number{what}, got {value!r}")
    return float(value)


def check_flag(name: str, value: Any) -> bool:
    """Refuse anything but ``True`` or ``False`` (a numpy bool counts); return a Python
    ``bool``.

    Raises:
        ValueError: any other value, ``0`` and ``1`` included; the message names ``name``.

    Example:
        >>> check_flag("screen", 1)
        Traceback (most recent call last):
        ...
        ValueError: screen must be True or False, got 1
    """
    value = _scalar(value)
    if not _is_bool(value):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_optional_flag(name: str, value: Any, none_means: str) -> bool | None:
    """:func:`check_flag`, where ``None`` is also taken (and returned): a default that
    ``none_means`` describes in the error message.

    Raises:
        ValueError: anything but ``True``, ``False`` (a numpy bool counts) or ``None``; the
            message names ``name`` and what ``None`` means.

    Example:
        >>> check_optional_flag("progress", 0, "when stderr is a terminal")
        Traceback (most recent call last):
        ...
        ValueError: progress must be True, False or None (when stderr is a terminal), got 0
    """
    if value is None:
        return None
    value = _scalar(value)
    if not _is_bool(value):
        raise ValueError(f"{name} must be True, False or None ({none_means}), got {value!r}")
    return bool(value)
