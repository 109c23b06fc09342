"""Equality of what :func:`~mitools.estimate.estimate_mi` returns, by content.

``==`` on :class:`~mitools.estimate.MIEstimate`, :class:`~mitools.estimate.FoldResult`,
:class:`~mitools.estimate.Diagnostics` and the margins transforms compares what they hold:
tensors element by element (on the CPU, dtype and shape included), critics and estimators by
class and ``state_dict``, and NaN equal to NaN (a constant variable's ``stderr``, a check not
run), so an estimate equals the same estimate loaded back from a file or made again with the
same seed. The dataclass default compared tensors with ``==`` and failed ("Boolean value of
Tensor with more than one value is ambiguous").
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import nn

__all__ = ["EqualByContent", "same_content"]


def _same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    a, b = a.detach().cpu(), b.detach().cpu()
    equal = a == b
    if a.is_floating_point() or a.is_complex():
        equal |= a.isnan() & b.isnan()
    return bool(equal.all())


def same_content(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` hold the same values: dataclasses field by field, tuples
    (NamedTuples too) and lists item by item (a list equals a tuple of the same items, as a
    file gives them back), dicts key by key, tensors element by
    element, modules by class and ``state_dict``, floats with NaN equal to NaN, anything else
    by ``==``.

    Example:
        >>> same_content((1.0, math.nan, torch.tensor([1.0, math.nan])),
        ...              (1.0, float("nan"), torch.tensor([1.0, math.nan])))
        True
        >>> same_content(torch.zeros(2), torch.zeros(2, dtype=torch.float64))
        False
    """
    if a is b:
        return True
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and _same_tensor(a, b)
    if isinstance(a, nn.Module) or isinstance(b, nn.Module):
        return type(a) is type(b) and same_content(dict(a.state_dict()), dict(b.state_dict()))
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and all(
            same_content(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, (tuple, list)):  # a list read back from a file equals the tuple saved
        return (isinstance(b, (tuple, list)) and len(a) == len(b)
                and all(same_content(u, v) for u, v in zip(a, b, strict=True)))
    if isinstance(a, dict):
        return (isinstance(b, dict) and a.keys() == b.keys()
                and all(same_content(a[k], b[k]) for k in a))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


class EqualByContent:
    """A base whose ``==`` is :func:`same_content` (tensors and critics by value, NaN equal to
    NaN) between two objects of the same class, and which is unhashable, its content being
    mutable tensors. The dataclasses that use it are declared with ``eq=False``, so that the
    decorator does not write a field-wise ``__eq__`` over this one."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return same_content(self, other)

    __hash__ = None  # type: ignore[assignment]  # equal by content, which can change
