r"""Negatives from the global batch: all-gather with autograd across ``torch.distributed`` ranks.

With data-parallel training each process holds ``N`` samples. Contrastive bounds get better
with more negatives (InfoNCE never exceeds :math:`\log M` for ``M`` columns), so each rank
scores its *local rows* against the *global columns* gathered from every rank; the positive
of local row ``i`` then sits at column ``rank * N + i`` (the ``offset`` of
:mod:`mitools.bounds`). The losses of :mod:`mitools.local` then combine the ranks' per-pair
estimates, weighted by their numbers of valid anchors (:func:`all_reduce_sum_with_grad`),
before reducing over position pairs, so every rank holds the global-batch estimate.

The gather must carry gradients: the columns of rank ``r`` enter the loss of every rank, and
dropping those paths silently loses part of the gradient (the warning of open_clip's
``loss.py``). :func:`all_gather_with_grad` concatenates the tensors of all ranks in its
forward pass and, in its backward pass, sums the gradients of every rank's loss with respect
to the gathered tensor (an all-reduce) and returns this rank's slice. Together with the
gradient averaging of ``DistributedDataParallel``, a training step on ``W`` processes then
equals one process on the concatenated batch, with padding masks and every reduction, for
every bound whose value is a mean over anchors and negatives (InfoNCE, NWJ, TUBA, JS, JSD).
DV, MINE and SMILE take the log of a mean over each rank's negatives, which differs from the
log of the global mean (by Jensen's inequality); their gathered estimate is the weighted mean
of the ranks' estimates.

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
    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        ctx.rank, ctx.n = dist.get_rank(), tensor.shape[0]
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)  # every rank's loss uses every slice
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]


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


def _check_same_shape(tensor: Tensor, name: str) -> None:
    shape = torch.tensor(tensor.shape, dtype=torch.long, device=tensor.device)
    dims = torch.tensor([tensor.dim()], dtype=torch.long, device=tensor.device)
    all_dims = [torch.empty_like(dims) for _ in range(dist.get_world_size())]
    dist.all_gather(all_dims, dims)
    if len({int(d) for d in all_dims}) != 1:
        raise ValueError(
            f"{name}: the ranks hold tensors of different ranks (dims {[int(d) for d in all_dims]})"
        )
    shapes = [torch.empty_like(shape) for _ in range(dist.get_world_size())]
    dist.all_gather(shapes, shape)
    seen = [tuple(s.tolist()) for s in shapes]
    if len(set(seen)) != 1:
        raise ValueError(
            f"{name}: every rank must hold the same shape to be gathered (equal per-rank batch "
            f"sizes; pad and mask otherwise), got shapes {seen} on ranks 0..{len(seen) - 1}"
        )


def all_gather_with_grad(tensor: Tensor, *, check_shapes: bool = True) -> Tensor:
    """Concatenate ``tensor`` from every rank along dim 0, with gradients flowing back.

    Args:
        tensor: ``(N, ...)``, the same shape on every rank.
        check_shapes: first compare the shapes across ranks and raise a clear error (one small
            extra collective).

    Returns:
        ``(world_size * N, ...)``, rank ``r``'s rows at ``r * N : (r + 1) * N``; the input
        itself without a process group.

    Raises:
        ValueError: the ranks hold different shapes, or ``check_shapes`` is not ``True`` or
            ``False``.
    """
    check_shapes = check_flag("all_gather_with_grad: check_shapes", check_shapes)
    if not is_distributed():
        return tensor
    if check_shapes:
        _check_same_shape(tensor, "all_gather_with_grad")
    if tensor.dtype == torch.bool:  # not every backend gathers bool tensors
        with torch.no_grad():
            return _AllGather.apply(tensor.to(torch.uint8)).bool()
    if not tensor.requires_grad:
        with torch.no_grad():
            parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
            dist.all_gather(parts, tensor.contiguous())
            return torch.cat(parts, dim=0)
    return _AllGather.apply(tensor)
