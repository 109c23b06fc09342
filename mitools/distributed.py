r"""Negatives from the global batch: all-gather with autograd across ``torch.distributed`` ranks.

With data-parallel training each process holds ``N`` samples. Contrastive bounds get better
with more negatives (InfoNCE never exceeds :math:`\log M` for ``M`` columns), so each rank
scores its *local rows* against the *global columns* gathered from every rank; the positive
of local row ``i`` then sits at column ``rank * N + i`` (the ``offset`` of
:mod:`mitools.bounds`). Ranks may hold batches of different sizes (a short last batch, an
empty one): :func:`all_gather_with_offset` gathers them and returns the offset, the rows of the
earlier ranks; :func:`all_gather_with_grad` refuses them, so that ``rank * N`` stays right. The
losses of :mod:`mitools.local` then combine the ranks' per-pair
estimates, weighted by their numbers of valid anchors (:func:`all_reduce_sum_with_grad`),
before reducing over position pairs, so every rank holds the global-batch estimate.

The gather must carry gradients: the columns of rank ``r`` enter the loss of every rank, and
dropping those paths silently loses part of the gradient (the warning of open_clip's
``loss.py``). :func:`all_gather_with_grad` concatenates the tensors of all ranks in its
forward pass and, in its backward pass, sums the gradients of every rank's loss with respect
to the gathered tensor (an all-reduce) and returns this rank's slice. Together with the
gradient averaging of ``DistributedDataParallel``, a training step on ``W`` processes then
equals one process on the concatenated batch, with padding masks, every reduction and
batches of different sizes on the ranks, for
every bound whose value is a mean over anchors and negatives (InfoNCE, NWJ, TUBA, JS, JSD).
DV, MINE and SMILE take the log of a mean over each rank's negatives, which differs from the
log of the global mean (by Jensen's inequality); their gathered estimate is the weighted mean
of the ranks' estimates (MINE's moving averages follow the global batch's log-partition, so
its gradient is the single-process one). L1Out's mixture takes the other anchors of the rank
only (each rank's value is the L1Out bound of its own batch; a rank with fewer than two
anchors weighs 0).

Every function here is a no-op without an initialised process group (or with one process).

Example:
    >>> import torch
    >>> from mitools.distributed import all_gather_with_grad, world_size
    >>> world_size()  # no process group: one process
    1
    >>> t = torch.randn(4, 3)
    >>> all_gather_with_grad(t) is t
    True
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from mitools.option_checks import check_flag

__all__ = [
    "all_gather_with_grad",
    "all_gather_with_offset",
    "all_reduce_sum_with_grad",
    "broadcast_from_first",
    "check_same_on_every_rank",
    "is_distributed",
    "rank",
    "world_size",
]


def is_distributed() -> bool:
    """Whether a process group with more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """The number of processes (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


class _AllGather(torch.autograd.Function):
    """Concatenate every rank's rows (``sizes[r]`` on rank ``r``); backward: this rank's slice
    of the sum of every rank's gradient."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor, sizes: tuple[int, ...]) -> Tensor:
        ctx.start = sum(sizes[: dist.get_rank()])
        ctx.n = tensor.shape[0]
        return _gather(tensor, sizes)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)  # every rank's loss uses every slice
        return grad[ctx.start : ctx.start + ctx.n], None


def _gather(tensor: Tensor, sizes: tuple[int, ...]) -> Tensor:
    """Every rank's rows, concatenated (no autograd): ranks of fewer rows are padded to the most
    rows for the collective, and the padding is dropped."""
    most = max(sizes)
    if most == 0:
        return tensor.detach().clone()
    sent = tensor.detach().contiguous()
    if sent.shape[0] < most:
        sent = torch.cat([sent, sent.new_zeros((most - sent.shape[0], *sent.shape[1:]))])
    parts = [torch.empty_like(sent) for _ in sizes]
    dist.all_gather(parts, sent)
    return torch.cat([part[:n] for part, n in zip(parts, sizes, strict=True)], dim=0)


class _AllReduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        out = tensor.contiguous().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)  # every rank's loss uses the sum
        return grad


def all_reduce_sum_with_grad(tensor: Tensor) -> Tensor:
    """Sum ``tensor`` over the ranks (same shape everywhere), with gradients flowing back.

    The backward pass sums the gradients of every rank's loss, so the gradient each rank
    receives is that of the sum of all ranks' losses (the convention of
    :func:`all_gather_with_grad`). The input itself without a process group.

    Example:
        >>> import torch
        >>> t = torch.ones(3)
        >>> all_reduce_sum_with_grad(t) is t  # no process group
        True
    """
    if not is_distributed():
        return tensor
    if not tensor.requires_grad:
        out = tensor.contiguous().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out
    return _AllReduceSum.apply(tensor)


def check_same_on_every_rank(value: Any, what: str) -> None:
    """Raise unless every rank holds an equal ``value`` (a small picklable object).

    Raises:
        ValueError: the ranks hold different values; the message names ``what`` and lists
            each rank's value.
    """
    if not is_distributed():
        return
    seen: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(seen, value)
    if any(v != seen[0] for v in seen):
        raise ValueError(
            f"{what} must be the same on every rank, got {seen} on ranks 0..{len(seen) - 1}"
        )


def broadcast_from_first(tensor: Tensor) -> Tensor:
    """Rank 0's ``tensor`` on every rank (no gradient; the same shape on every rank).

    Example:
        >>> import torch
        >>> t = torch.arange(3)
        >>> broadcast_from_first(t) is t  # no process group
        True
    """
    if not is_distributed():
        return tensor
    out = tensor.detach().contiguous().clone()
    dist.broadcast(out, src=0)
    return out


def _refuse_scalar(tensor: Tensor, name: str) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name}: tensor must be a torch.Tensor (N, ...), got "
                        f"{type(tensor).__name__}")
    if tensor.dim() == 0:
        raise ValueError(f"{name}: a 0-dim tensor has no dimension 0 to gather along; "
                         "reshape it to (1,)")


def _shapes(tensor: Tensor, name: str) -> list[tuple[int, ...]]:
    """Every rank's shape of ``tensor`` (two small collectives); ``ValueError`` when the ranks'
    tensors have different numbers of dimensions or no dimension to gather along."""
    if not isinstance(tensor, Tensor):
        _refuse_scalar(tensor, name)  # the TypeError: nothing to take part in a collective with
    shape = torch.tensor(tensor.shape, dtype=torch.long, device=tensor.device)
    dims = torch.tensor([tensor.dim()], dtype=torch.long, device=tensor.device)
    all_dims = [torch.empty_like(dims) for _ in range(dist.get_world_size())]
    dist.all_gather(all_dims, dims)
    if len({int(d) for d in all_dims}) != 1:
        raise ValueError(
            f"{name}: the ranks hold tensors of different ranks (dims {[int(d) for d in all_dims]})"
        )
    _refuse_scalar(tensor, name)
    shapes = [torch.empty_like(shape) for _ in range(dist.get_world_size())]
    dist.all_gather(shapes, shape)
    return [tuple(int(v) for v in s.tolist()) for s in shapes]


def all_gather_with_grad(tensor: Tensor, *, check_shapes: bool = True) -> Tensor:
    """Concatenate ``tensor`` from every rank along dim 0, with gradients flowing back.

    Args:
        tensor: ``(N, ...)``, the same shape on every rank (for batches of different sizes,
            :func:`all_gather_with_offset`).
        check_shapes: first compare the shapes across ranks and raise a clear error (one small
            extra collective). ``False`` trusts the shapes to be equal: ranks of different
            batch sizes then abort the processes (gloo's ``EnforceNotMet``, SIGABRT) or gather
            garbage, with no message naming the shapes.

    Returns:
        ``(world_size * N, ...)``, rank ``r``'s rows at ``r * N : (r + 1) * N``; the input
        itself without a process group.

    Raises:
        TypeError: ``tensor`` not a tensor (with or without a process group).
        ValueError: the ranks hold different shapes, ``tensor`` is 0-dim (with or without a
            process group), or ``check_shapes`` is not ``True`` or ``False``.
    """
    check_shapes = check_flag("all_gather_with_grad: check_shapes", check_shapes)
    if not is_distributed():
        # the errors of several processes on one too (with a process group the shapes are
        # gathered first, so that every rank raises, none waits in a collective)
        _refuse_scalar(tensor, "all_gather_with_grad")
        return tensor
    if check_shapes:
        seen = _shapes(tensor, "all_gather_with_grad")
        if len(set(seen)) != 1:
            raise ValueError(
                f"all_gather_with_grad: every rank must hold the same shape to be gathered "
                f"(equal per-rank batch sizes; for batches of different sizes use "
                f"all_gather_with_offset, which also returns the offset of this rank's rows), "
                f"got shapes {seen} on ranks 0..{len(seen) - 1}"
            )
    else:
        _refuse_scalar(tensor, "all_gather_with_grad")
    return _gather_rows(tensor, (int(tensor.shape[0]),) * dist.get_world_size())


def all_gather_with_offset(tensor: Tensor) -> tuple[Tensor, int]:
    """Concatenate ``tensor`` from every rank along dim 0, with gradients flowing back, and say
    where this rank's rows landed: batches of different sizes (an empty one too).

    The positive of local row ``i`` is then column ``offset + i`` (the ``offset`` of
    :mod:`mitools.bounds`); ``rank() * N`` is right only for equal batches.

    Args:
        tensor: ``(N_r, ...)`` on rank ``r``: ``N_r`` may differ between ranks (``0`` too), the
            other dimensions may not.

    Returns:
        ``(gathered, offset)``: ``gathered`` ``(N_0 + ... + N_{W-1}, ...)`` with rank ``r``'s
        rows at ``offset_r : offset_r + N_r``, ``offset_r = N_0 + ... + N_{r-1}``; ``(tensor,
        0)`` without a process group.

    Raises:
        TypeError: ``tensor`` not a tensor (with or without a process group).
        ValueError: the ranks' tensors differ beyond dim 0, or ``tensor`` is 0-dim (with or
            without a process group).

    Example:
        >>> import torch
        >>> t = torch.randn(3, 2)
        >>> gathered, offset = all_gather_with_offset(t)  # no process group
        >>> gathered is t, offset
        (True, 0)
    """
    if not is_distributed():
        _refuse_scalar(tensor, "all_gather_with_offset")  # as with a process group
        return tensor, 0
    seen = _shapes(tensor, "all_gather_with_offset")
    if len({s[1:] for s in seen}) != 1:
        raise ValueError(
            f"all_gather_with_offset: every rank must hold the same shape beyond dim 0 (the "
            f"batch), got shapes {seen} on ranks 0..{len(seen) - 1}"
        )
    sizes = tuple(s[0] for s in seen)
    return _gather_rows(tensor, sizes), sum(sizes[: dist.get_rank()])


def _gather_rows(tensor: Tensor, sizes: tuple[int, ...]) -> Tensor:
    if tensor.dtype == torch.bool:  # not every backend gathers bool tensors
        return _gather(tensor.to(torch.uint8), sizes).bool()
    if not tensor.requires_grad:
        return _gather(tensor, sizes)
    return _AllGather.apply(tensor, sizes)
