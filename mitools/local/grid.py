"""Grids: einops patterns, packing to ``(B, P, C)``, padding masks, pooling.

The first step of the data flow: any grid (``"b c h w"``, ``"b l c"``, ``"b c t h w"``,
``"b c"``) is flattened to ``(B, P, C)`` with positions in row-major order of the grid axes,
its mask to ``(B, P)``. Shapes are checked here, in the user's terms: the pattern, the tensor's
shape and, when the critic declares them, the channels it expects.
"""

from __future__ import annotations

import math
from typing import Any

import einops
import torch
from torch import Tensor

__all__ = [
    "channel_hint", "check_pair", "describe", "pack", "pack_mask", "parse_pattern", "pool", "take",
]

#: names of the grid axes of patterns suggested in errors, by the number of grid axes
_GRID_NAMES = {0: (), 1: ("l",), 2: ("h", "w"), 3: ("t", "h", "w")}


def parse_pattern(pattern: Any, name: str) -> tuple[str, ...]:
    """The axes of an einops pattern naming ``b``, ``c`` and grid axes once each."""
    if not isinstance(pattern, str):
        raise TypeError(f"{name} must be an einops pattern string, got {type(pattern).__name__}")
    axes = tuple(pattern.split())
    bad = [a for a in axes if not a.isidentifier()]
    if bad:
        raise ValueError(
            f"{name}={pattern!r}: axes must be plain names separated by spaces (got {bad}); "
            "e.g. 'b c h w', 'b l c', 'b c t h w' or 'b c'"
        )
    if axes.count("b") != 1 or axes.count("c") != 1 or len(set(axes)) != len(axes):
        raise ValueError(
            f"{name}={pattern!r} must name the batch axis 'b' and the channel axis 'c' once each "
            "and every other (grid) axis once, e.g. " + _pattern_hint(axes)
        )
    return axes


def _pattern_hint(axes: tuple[str, ...]) -> str:
    """A pattern close to ``axes`` that names ``b`` and ``c``: ``('b', 's', 'd')`` (sentences
    ``(B, S, D)``) -> ``"'b s c' (channels last)"``; ``'b c h w'`` when none is."""
    fixed = list(axes)
    if len(set(fixed)) == len(fixed) and len(fixed) >= 2:
        if "b" not in fixed and "c" != fixed[0]:
            fixed[0] = "b"
        if "c" not in fixed and fixed[-1] != "b":
            fixed[-1] = "c"
        if fixed.count("b") == 1 and fixed.count("c") == 1 and len(set(fixed)) == len(fixed):
            last = " (channels last)" if len(fixed) > 2 and fixed[-1] != axes[-1] else ""
            return f"{' '.join(fixed)!r}{last}"
    return "'b c h w'"


def channel_hint(shape: tuple[int, ...], axes: tuple[str, ...], expected: int) -> str:
    """Suggest the pattern that puts ``c`` on the dimension of size ``expected``, if one is
    (``""`` otherwise): ``"; the size 64 sits at dimension 3: for channels-last input use
    pattern 'b h w c'"``.

    Example:
        >>> channel_hint((32, 8, 8, 64), ("b", "c", "h", "w"), 64)
        "; the size 64 sits at dimension 3: for channels-last input use pattern 'b h w c'"
    """
    c_at = axes.index("c")
    others = [d for d, size in enumerate(shape) if size == expected and axes[d] not in ("b", "c")]
    if not others:
        return ""
    moved = [a for a in axes if a != "c"]
    moved.insert(others[-1], "c")
    layout = "channels-last" if others[-1] > c_at else "channels-first"
    return f"; the size {expected} sits at dimension {others[-1]}: for {layout} input use " + (
        f"pattern {' '.join(moved)!r}"
    )


def _rank_hint(shape: tuple[int, ...], channels: int | None) -> str:
    """Patterns of the tensor's rank, channels first and last; the one that puts ``c`` on a
    dimension of size ``channels`` when the critic declares it."""
    rank = len(shape)
    if rank < 2:
        return "; a pattern names at least the batch 'b' and the channels 'c'"
    grid = _GRID_NAMES.get(rank - 2, tuple(f"d{i}" for i in range(rank - 2)))
    first, last = " ".join(("b", "c", *grid)), " ".join(("b", *grid, "c"))
    if rank == 2:
        return f"; for {rank} dims use {first!r}"
    if channels is not None and shape[-1] == channels != shape[1]:
        return (f"; for {rank} dims with the critic's {channels} channels last use {last!r}")
    if channels is not None and shape[1] == channels != shape[-1]:
        return (f"; for {rank} dims with the critic's {channels} channels first use "
                f"{first!r}")
    return f"; for {rank} dims use e.g. {last!r} (channels last) or {first!r} (channels first)"


def pack(
    t: Any,
    axes: tuple[str, ...],
    name: str,
    pattern: str,
    channels: int | None = None,
    critic: str = "the critic",
) -> tuple[Tensor, tuple[int, ...]]:
    """``t`` laid out as ``pattern`` -> ``(B, P, C)`` and the grid shape.

    Args:
        t: the tensor.
        axes: the parsed ``pattern``.
        name: ``"x"`` or ``"y"``, for messages.
        pattern: the einops pattern.
        channels: the channels the critic declares for this side (``None``: not checked).
        critic: the critic's name, for messages.

    Raises:
        TypeError: not a floating-point tensor.
        ValueError: a rank that does not match the pattern, channels that do not match the
            critic's, an empty grid axis or an empty channel axis.
    """
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(
            f"{name} must be floating point, got {name} of {describe(t)}; standardise the features "
            "first (in float64), then convert: a float32 cast of large integers rounds them"
        )
    if t.dim() != len(axes):
        raise ValueError(
            f"{name} has shape {tuple(t.shape)} ({t.dim()} dims) but {name}_pattern {pattern!r} "
            f"names {len(axes)} axes" + _rank_hint(tuple(t.shape), channels)
        )
    c_at = axes.index("c")
    if channels is not None and t.shape[c_at] != channels:
        raise ValueError(
            f"{name} has shape {tuple(t.shape)}; {name}_pattern {pattern!r} puts its channel "
            f"axis 'c' at dimension {c_at}, of size {t.shape[c_at]}, but {critic} expects "
            f"dim_{name}={channels} channels"
            + channel_hint(tuple(t.shape), axes, channels)
        )
    grid_axes = [a for a in axes if a not in ("b", "c")]
    grid = tuple(int(t.shape[axes.index(a)]) for a in grid_axes)
    empty = [f"{a} = 0" for a in grid_axes if t.shape[axes.index(a)] == 0]
    if empty:
        raise ValueError(
            f"{name} has shape {tuple(t.shape)}: {name}_pattern {pattern!r} gives it an empty "
            f"grid axis ({', '.join(empty)}); every grid axis needs at least one position "
            f"(pad to one position and mask it out with {name}_mask, or drop the input)"
        )
    if t.shape[c_at] == 0:
        raise ValueError(
            f"{name} has shape {tuple(t.shape)}: {name}_pattern {pattern!r} puts its channel "
            f"axis 'c' at dimension {c_at}, of size 0; features need at least one channel (an "
            "empty feature scores a constant and estimates 0 nats whatever the data)"
        )
    target = f"b ({' '.join(grid_axes)}) c" if grid_axes else "b 1 c"
    return einops.rearrange(t, f"{pattern} -> {target}"), grid


def pack_mask(
    mask: Any,
    name: str,
    batch: int,
    grid: tuple[int, ...],
    device: torch.device,
    other: tuple[str, tuple[int, ...]] | None = None,
) -> Tensor | None:
    """A padding mask ``(B, *grid)`` or ``(B, P)`` -> ``(B, P)`` bool on ``device``.

    ``other``: the other mask's name and grid (``("y_mask", (6,))``); a mask of the wrong shape
    that fits that grid is pointed there (``loss(x, y, mask)`` passes a token mask as
    ``x_mask``).
    """
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of booleans (True for valid positions), got "
            f"{type(mask).__name__}; convert it with torch.as_tensor({name}, dtype=torch.bool)"
        )
    n = math.prod(grid)
    if mask.dtype != torch.bool:
        raise TypeError(
            f"{name} must have dtype torch.bool (True for valid positions), got {name} of "
            f"{describe(mask)}, for (B, *grid) = {(batch, *grid)}; cast it with "
            f"{name}.bool() (nonzero is valid) or compare, e.g. {name} > 0.5"
        )
    if tuple(mask.shape) not in ((batch, *grid), (batch, n)):
        hint = ""
        if other is not None and tuple(mask.shape) in (
            (batch, *other[1]), (batch, math.prod(other[1]))
        ):
            hint = (f"; its shape fits the grid of {other[0][0]}: pass it as {other[0]}= "
                    "(the masks follow x and y in that order: loss(x, y, x_mask, y_mask))")
        raise ValueError(
            f"{name} has shape {tuple(mask.shape)}; expected (B, *grid) = {(batch, *grid)} or "
            f"(B, P) = {(batch, n)}" + hint
        )
    mask = mask.reshape(batch, n).to(device)
    empty = ~mask.any(-1)
    if bool(empty.any()):
        idx = int(empty.nonzero()[0, 0])
        raise ValueError(
            f"{name} (shape {tuple(mask.shape)}) masks out every position of sample {idx}; "
            "drop such samples from the batch"
        )
    return mask


def describe(t: Tensor) -> str:
    """``"shape (4, 6), dtype torch.float16, device cpu"``: a tensor in an error message.

    Example:
        >>> describe(torch.zeros(4, 6, dtype=torch.float16))
        'shape (4, 6), dtype torch.float16, device cpu'
    """
    return f"shape {tuple(t.shape)}, dtype {t.dtype}, device {t.device}"


def check_pair(x: Tensor, y: Tensor, x_given: Tensor | None = None,
               y_given: Tensor | None = None) -> None:  # fmt: skip
    """Packed ``x (B, P, Cx)`` and ``y (B, Q, Cy)`` hold the same samples, dtype and device.

    ``x_given`` and ``y_given`` are the tensors as passed (before packing), whose shapes the
    messages give; the packed ones by default.

    Raises:
        ValueError: different batch sizes or devices.
        TypeError: different dtypes: the message gives each argument's shape and dtype and
            asks for a cast (features of mixed precision are not promoted silently).
    """
    xg = x if x_given is None else x_given
    yg = y if y_given is None else y_given
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must hold the same samples: x has batch size {x.shape[0]} (packed shape "
            f"(B, P, Cx) = {tuple(x.shape)}) but y has {y.shape[0]} ({tuple(y.shape)})"
        )
    if x.dtype != y.dtype:
        common = torch.promote_types(x.dtype, y.dtype)
        raise TypeError(
            f"x and y must share a dtype: got x of {describe(xg)} and y of {describe(yg)}; "
            f"cast one of them, e.g. y.to(x.dtype), or both to {common} "
            f"(x.to({common}), y.to({common}))"
        )
    if x.device != y.device:
        raise ValueError(
            f"x and y must be on one device: got x of {describe(xg)} and y of {describe(yg)}; "
            "move one of them, e.g. y.to(x.device)"
        )


def take(t: Tensor, index: Tensor) -> Tensor:
    """``t[index]`` along dim 0; a broadcastable view when ``t`` has a single position."""
    return t[:1] if t.shape[0] == 1 else t.index_select(0, index)


def pool(t: Tensor, mask: Tensor | None, how: str) -> Tensor:
    """``(B, P, C)`` -> ``(B, C)``, the mean or max over the valid positions.

    Computed in float32 or higher (a half-precision sum over many positions can overflow) and
    returned in ``t``'s dtype.
    """
    dtype = torch.promote_types(t.dtype, torch.float32)
    w = t.to(dtype)
    if how == "mean":
        if mask is None:
            out = w.mean(1)
        else:
            out = w.masked_fill(~mask[..., None], 0.0).sum(1) / mask.sum(1, keepdim=True).to(dtype)
    elif mask is None:
        out = w.amax(1)
    else:
        out = w.masked_fill(~mask[..., None], -math.inf).amax(1)
    return out.to(t.dtype)
