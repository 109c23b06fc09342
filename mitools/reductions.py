r"""Reductions over estimation problems: how per-pair estimates become one objective.

A local MI loss estimates MI for every position pair; a reduction turns the ``(K,)`` per-pair
values into the scalar objective, over the *active* pairs only (those with a valid anchor and
two valid columns). A reduction is a name or a function, as in einops:

.. math::

    \text{mean: } \frac{1}{K}\sum_{(p,q)} \hat I_{pq}, \quad
    \text{sum: } \sum_{(p,q)} \hat I_{pq}, \quad
    \text{max: } \max_{(p,q)} \hat I_{pq}, \quad
    \text{logsumexp: } \log \sum_{(p,q)} e^{\hat I_{pq}},

or any callable ``f(values (K,), active (K,) bool) -> 0-dim tensor``. ``"mean"`` is Deep
InfoMax's local objective; ``"max"`` that of Liao et al. (2021), whose gradient reaches only the
best pair; ``"logsumexp"`` a smooth maximum.

Example:
    >>> import torch
    >>> from mitools.reductions import reduce
    >>> values, active = torch.tensor([1.0, 3.0, 9.0]), torch.tensor([True, True, False])
    >>> reduce(values, active, "mean"), reduce(values, active, "max")
    (tensor(2.), tensor(3.))
    >>> reduce(values, active, lambda v, a: v[a].min())  # any function of (values, active)
    tensor(1.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["REDUCTIONS", "Reduction", "check_reduction", "reduce", "reduction_name"]

REDUCTIONS = ("mean", "sum", "max", "logsumexp")
"""The reductions accepted by name."""

Reduction = str | Callable[[Tensor, Tensor], Tensor]
"""The type of every ``reduction`` argument, a name from :data:`REDUCTIONS` or a function
``f(values, active) -> 0-dim tensor``."""


def check_reduction(reduction: Any) -> Reduction:
    """Validate a reduction: one of :data:`REDUCTIONS` or a callable.

    Raises:
        ValueError: an unknown name.
        TypeError: neither a string nor a callable.

    Example:
        >>> check_reduction("max")
        'max'
    """
    if isinstance(reduction, str):
        if reduction not in REDUCTIONS:
            raise ValueError(
                f"reduction must be one of {REDUCTIONS} or a callable f(values, active), got "
                f"{reduction!r}"
            )
        return reduction
    if callable(reduction):
        return reduction
    raise TypeError(
        f"reduction must be one of {REDUCTIONS} or a callable f(values, active), got "
        f"{type(reduction).__name__}"
    )


def reduction_name(reduction: Reduction) -> str:
    """The name of a reduction, for ``repr`` (a callable's ``__name__``, ``"custom"`` for a
    callable without one, such as a ``functools.partial``).

    Example:
        >>> reduction_name("sum")
        'sum'
    """
    return reduction if isinstance(reduction, str) else getattr(reduction, "__name__", "custom")


def reduce(values: Tensor, active: Tensor, reduction: Reduction) -> Tensor:
    """Reduce per-problem values ``(K,)`` over the ``active`` ones ``(K,) bool``.

    Args:
        values: the per-problem estimates (inactive entries may hold anything).
        active: which problems count; at least one must.
        reduction: a name from :data:`REDUCTIONS` or ``f(values, active) -> 0-dim tensor``.

    Returns:
        A 0-dim tensor carrying the gradient of the active values, in ``values``' dtype.
        ``"mean"``, ``"sum"`` and ``"logsumexp"`` accumulate in float32 or higher and round
        once to that dtype, so a result it cannot hold is ``inf``: the ``"sum"`` of 5000
        float16 values of 30 (150000, above float16's 65504), for instance; reduce float32
        values (the local losses' estimates are float32) to keep it.

    Raises:
        ValueError: an unknown reduction name, ``values`` not 1-D, ``active`` of another
            shape, no active problem, or a callable that does not return a 0-dim tensor.
        TypeError: ``values`` or ``active`` not a tensor, ``active`` not bool, a reduction
            neither a string nor a callable.
    """
    reduction = check_reduction(reduction)
    if not isinstance(values, Tensor) or not isinstance(active, Tensor):
        raise TypeError(
            f"reduce: values and active must be tensors, got {type(values).__name__} and "
            f"{type(active).__name__}"
        )
    if values.dim() != 1 or active.shape != values.shape:
        raise ValueError(
            f"reduce: values must have shape (K,) and active the same shape, got values "
            f"{tuple(values.shape)} and active {tuple(active.shape)}"
        )
    if active.dtype != torch.bool:
        raise TypeError(f"reduce: active must have dtype torch.bool, got {active.dtype}")
    if not bool(active.any()):
        raise ValueError(
            f"reduce: no active problem among the {values.shape[0]} values (active is all "
            "False); a reduction over none is undefined"
        )
    if callable(reduction):
        out = reduction(values, active)
        if not isinstance(out, Tensor) or out.dim() != 0:
            raise ValueError(
                "a reduction function must return a 0-dim tensor, got "
                f"{type(out).__name__} of shape {tuple(getattr(out, 'shape', ()))}"
            )
        return out
    zero = torch.zeros((), dtype=values.dtype, device=values.device)
    # summed (and log-sum-exp'd) in float32 or higher, then given back in the values' dtype
    acc = torch.promote_types(values.dtype, torch.float32) if values.is_floating_point() \
        else None
    if reduction in ("mean", "sum"):
        # 5000 float16 values of 30 summed to inf in float16, and their mean was inf, silently
        total = torch.where(active, values, zero).sum(dtype=acc)
        if reduction == "sum":
            return total.to(values.dtype) if acc is not None else total
        mean = total / active.sum()
        return mean.to(values.dtype) if acc is not None else mean
    masked = torch.where(active, values, torch.full_like(values, -math.inf))
    if reduction == "max":
        return masked.amax()
    # torch's float16 logsumexp sums the exponentials in float16: 70000 values of 0 gave inf
    # (log 70000 = 11.16) and a zero gradient, silently
    if acc is None:
        return torch.logsumexp(masked, dim=0)
    return torch.logsumexp(masked.to(acc), dim=0).to(values.dtype)
