r"""Negatives: which samples an anchor is contrasted with.

For an anchor :math:`x_i` (at one position of a grid), the negatives are ``y`` features drawn
from the product of marginals. :class:`~mitools.local.LocalMILoss` offers:

* ``"all"`` (default): every other sample of the batch (all off-diagonal entries of the score
  matrix), from every ``torch.distributed`` rank with ``gather=True``
  (:func:`negative_columns`, the positive of local row ``i`` at column ``offset + i``, the
  rows of the earlier ranks before it), and
  the past samples of a :class:`NegativeQueue` as extra columns;
* ``"derangement"``: one partner per anchor drawn by :func:`random_derangement`, never the
  anchor itself (unlike a random permutation, whose fixed points make estimates saturate):
  the "shuffled pairs" of MINE-style training.

Example:
    >>> import torch
    >>> cols = negative_columns(torch.randn(4, 2, 8), None, gather=False, queue=None)
    >>> cols.features.shape, cols.offset
    (torch.Size([4, 2, 8]), 0)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from mitools import distributed
from mitools.option_checks import check_flag, check_int
from mitools.tasks.seeding import _generator

__all__ = [
    "NEGATIVES",
    "NegativeColumns",
    "NegativeQueue",
    "negative_columns",
    "random_derangement",
]

NEGATIVES = ("all", "derangement")
"""The kinds of negatives :class:`~mitools.local.LocalMILoss` accepts."""


def random_derangement(valid: Tensor, generator: torch.Generator | int | None = None) -> Tensor:
    """One random partner per valid entry, among the valid entries, never the entry itself.

    Each row of ``valid`` is one problem; its valid entries are put on a random cycle, and
    every valid entry is paired with the next one on the cycle (a derangement: no fixed
    points, unlike a random permutation). Invalid entries, and rows with a single valid entry,
    are their own partner (callers leave those out).

    Args:
        valid: ``(K, B)`` bool.
        generator: optional :class:`torch.Generator` (on any device), or an int seed;
            ``None``: torch's global CPU RNG (which the draw advances).

    Returns:
        ``(K, B)`` long: the partner of each entry, on ``valid``'s device.

    Raises:
        TypeError: ``valid`` not a ``(K, B)`` bool tensor; a ``generator`` that is neither a
            ``torch.Generator``, an int nor ``None``.

    Example:
        >>> import torch
        >>> partner = random_derangement(torch.ones(1, 5, dtype=torch.bool),
        ...                              torch.Generator().manual_seed(0))
        >>> bool((partner != torch.arange(5)).all()), sorted(partner[0].tolist())
        (True, [0, 1, 2, 3, 4])
    """
    if not isinstance(valid, Tensor) or valid.dtype != torch.bool or valid.dim() != 2:
        got = (f"shape {tuple(valid.shape)}, dtype {valid.dtype}" if isinstance(valid, Tensor)
               else type(valid).__name__)  # fmt: skip
        raise TypeError(f"random_derangement: valid must be a (K, B) bool tensor, got {got}")
    # an int seed failed with "'int' object has no attribute 'device'"
    generator = _generator(generator, name="random_derangement: generator")
    gen_device = generator.device if generator is not None else torch.device("cpu")
    keys = torch.rand(valid.shape, generator=generator, device=gen_device).to(valid.device)
    keys = keys.masked_fill(~valid, 2.0)  # invalid entries sort last
    order = keys.argsort(dim=-1)  # (K, B): valid entries first, in random order
    n = valid.sum(-1, keepdim=True).clamp(min=1)  # (K, 1)
    slot = torch.arange(valid.shape[-1], device=valid.device).expand_as(order)
    nxt = torch.where(slot < n, (slot + 1) % n, slot)
    partner = torch.empty_like(order)
    partner.scatter_(-1, order, order.gather(-1, nxt))
    return partner


def _check_columns(where: str, features: Tensor, features_name: str, mask: Tensor | None,
                   mask_name: str, floating: bool) -> None:
    """Refuse column features that are not a ``(B, Q, C)`` tensor (floating with
    ``floating``) or a mask that is not a bool ``(B, Q)`` (``None`` passes unless
    ``floating``, the queue's case, which needs one); messages start with ``where``."""
    if not isinstance(features, Tensor) or (floating and not features.is_floating_point()):
        got = features.dtype if isinstance(features, Tensor) else type(features).__name__
        kind = "floating (B, Q, C)" if floating else "(B, Q, C)"
        raise TypeError(f"{where}: {features_name} must be a {kind} tensor, got {got}")
    if features.dim() != 3:
        raise ValueError(f"{where}: {features_name} must have shape (B, Q, C), got "
                         f"{tuple(features.shape)}")
    if mask is None and not floating:
        return
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        got_mask = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        optional = "" if floating else "None or "
        raise TypeError(f"{where}: {mask_name} must be {optional}a bool tensor, got {got_mask}")
    if mask.shape != features.shape[:2]:
        raise ValueError(
            f"{where}: {mask_name} must have shape (B, Q) = {tuple(features.shape[:2])} "
            f"({features_name} {tuple(features.shape)}), got {tuple(mask.shape)}")


class NegativeQueue(nn.Module):
    """A first-in first-out queue of past ``y`` features, extra negatives for every anchor.

    As in MoCo (He et al. 2020): the features of the last ``size`` samples (detached) are
    appended to the columns of every score matrix, so the number of negatives no longer
    depends on the batch size. :class:`mitools.local.LocalMILoss` reads the queue before and
    extends it after each training forward.

    **Saved with the model.** The queue is part of ``state_dict()`` (of the queue, and of a
    :class:`~mitools.local.LocalMILoss` that holds it): its features, their mask and its size,
    so a resumed training run continues with the queue it stopped with, not an empty one. On
    :meth:`~torch.nn.Module.load_state_dict` the features take this queue's device (as every
    buffer does) and keep the dtype they were saved in (the dtype of the features they came
    from, as :meth:`extend` keeps it: a float64 run resumes bit for bit in a queue built in
    float32); ``assign=True`` takes the saved tensors as they are. The queue's width
    (positions and channels) is set by the first features it holds, until :meth:`reset`.

    Args:
        size: the number of past samples kept.

    Raises:
        RuntimeError: from ``load_state_dict``, for a state saved from a queue of another
            ``size``, or holding features of other positions or channels than this queue
            holds (both shapes named), or features and mask that do not fit each other.

    Example:
        >>> import torch
        >>> queue = NegativeQueue(size=4)
        >>> queue.extend(torch.randn(3, 2, 8), torch.ones(3, 2, dtype=torch.bool))
        >>> queue.extend(torch.randn(3, 2, 8), torch.ones(3, 2, dtype=torch.bool))
        >>> queue.features().shape  # the 4 most recent samples, 2 positions, 8 channels
        torch.Size([4, 2, 8])
        >>> resumed = NegativeQueue(size=4)
        >>> _ = resumed.load_state_dict(queue.state_dict())
        >>> torch.equal(resumed.features(), queue.features())
        True
    """

    features_buffer: Tensor
    mask_buffer: Tensor
    capacity: Tensor

    def __init__(self, size: int):
        super().__init__()
        self.size = check_int("NegativeQueue: size", size)
        # all three are saved: a queue left out of state_dict resumed training empty
        self.register_buffer("features_buffer", torch.empty(0))
        self.register_buffer("mask_buffer", torch.empty(0, dtype=torch.bool))
        #: ``size``, saved so that a state of another size is refused rather than cut
        self.register_buffer("capacity", torch.tensor(self.size, dtype=torch.long))

    def __len__(self) -> int:
        return int(self.features_buffer.shape[0]) if self.features_buffer.dim() > 1 else 0

    def features(self) -> Tensor:
        """The queued features ``(S, Q, C)``, most recent last (``S <= size``); before the first
        :meth:`extend` (and after :meth:`reset`) an empty tensor of shape ``(0,)``: the width
        is not known yet (``len(queue)`` is 0)."""
        return self.features_buffer

    def mask(self) -> Tensor:
        """The validity mask ``(S, Q)`` of the queued features (``(0,)`` while empty)."""
        return self.mask_buffer

    @torch.no_grad()
    def extend(self, features: Tensor, mask: Tensor) -> None:
        """Append ``features (B, Q, C)`` with ``mask (B, Q)``, dropping the oldest beyond size.

        Raises:
            TypeError: ``features`` not a floating tensor, ``mask`` not a bool tensor.
            ValueError: ``features`` not 3-D, ``mask`` not of shape ``(B, Q)``, or features of
                other positions or channels than those queued.
        """
        _check_columns("NegativeQueue.extend", features, "features", mask, "mask",
                       floating=True)
        features = features.detach()
        if len(self) and self.features_buffer.shape[1:] != features.shape[1:]:
            raise ValueError(
                f"NegativeQueue holds features of shape (S, Q, C) = "
                f"{tuple(self.features_buffer.shape)}, got new features {tuple(features.shape)}; "
                "positions and channels must match"
            )
        if len(self):
            features = torch.cat([self.features_buffer, features.to(self.features_buffer)])
            mask = torch.cat([self.mask_buffer, mask.to(self.mask_buffer.device)])
        self.features_buffer = features[-self.size :].clone()
        self.mask_buffer = mask[-self.size :].clone()

    def reset(self) -> None:
        """Empty the queue."""
        self.features_buffer = self.features_buffer.new_empty(0)
        self.mask_buffer = self.mask_buffer.new_empty(0)

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        features = state_dict.get(prefix + "features_buffer")
        mask = state_dict.get(prefix + "mask_buffer")
        if isinstance(features, Tensor) and isinstance(mask, Tensor):
            problem = self._state_problem(features, mask, state_dict.get(prefix + "capacity"))
            if problem is not None:
                where = f" at {prefix[:-1]!r}" if prefix else ""
                error_msgs.append(f"NegativeQueue{where}: {problem}")
                return
            # the queue's length follows the state: take its shapes (and its dtype, the
            # features' own) on this queue's device; the default copy then fills them
            self.features_buffer = torch.empty_like(features, device=self.features_buffer.device)
            self.mask_buffer = torch.empty_like(mask, device=self.mask_buffer.device)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)  # fmt: skip

    def _state_problem(self, features: Tensor, mask: Tensor, capacity: Any) -> str | None:
        """Why a saved state cannot be this queue's, or ``None``."""
        held = tuple(features.shape)
        if isinstance(capacity, Tensor) and capacity.numel() == 1 and not capacity.is_meta:
            if int(capacity) != self.size:
                return (
                    f"the state was saved from a queue of size {int(capacity)} (features "
                    f"{held}) but this queue has size {self.size}; build "
                    f"NegativeQueue(size={int(capacity)}) (or queue={int(capacity)}) to resume it"
                )
        if not features.is_floating_point() or mask.dtype != torch.bool:
            return (
                f"the state's features must be floating and its mask bool, got {features.dtype} "
                f"and {mask.dtype}"
            )
        if features.numel() == 0 and features.dim() <= 1:  # an empty queue
            if mask.numel() != 0:
                return f"the state holds no features but a mask of shape {tuple(mask.shape)}"
            return None
        if features.dim() != 3 or mask.shape != features.shape[:2]:
            return (
                f"the state's features must have shape (S, Q, C) and its mask (S, Q), got "
                f"features {held} and mask {tuple(mask.shape)}"
            )
        if features.shape[0] > self.size:
            return (
                f"the state holds {features.shape[0]} samples (features {held}) but this queue "
                f"keeps {self.size}"
            )
        if len(self) and self.features_buffer.shape[1:] != features.shape[1:]:
            return (
                f"the state holds features of shape (S, Q, C) = {held} but this queue holds "
                f"{tuple(self.features_buffer.shape)}; positions and channels must match "
                "(reset() the queue first to take another width)"
            )
        return None

    def extra_repr(self) -> str:
        return f"size={self.size}"


class NegativeColumns(NamedTuple):
    """The columns every anchor is scored against, and where its positive sits."""

    #: ``(M, Q, C)`` packed ``y`` features: the (gathered) batch, then the queue.
    features: Tensor
    #: ``(M, Q)`` bool validity, or ``None`` when every column is valid.
    mask: Tensor | None
    #: column of the positive of local row 0 (the rows of the earlier ranks when gathered).
    offset: int
    #: ``(M0, Q, C)``: the batch's columns without the queue (what extends the queue).
    batch_features: Tensor
    #: ``(M0, Q)`` bool or ``None``: their validity.
    batch_mask: Tensor | None


def negative_columns(
    y: Tensor, y_mask: Tensor | None, *, gather: bool, queue: NegativeQueue | None
) -> NegativeColumns:
    """Assemble the columns of every score matrix: this batch (from every rank), then a queue.

    Args:
        y: ``(B, Q, C)`` this rank's packed ``y`` features.
        y_mask: ``(B, Q)`` bool validity or ``None``.
        gather: gather the columns of every ``torch.distributed`` rank, with gradients (a
            no-op without a process group); the ranks' batch sizes may differ.
        queue: a :class:`NegativeQueue` whose features are appended, or ``None``.

    Returns:
        :class:`NegativeColumns`.

    Raises:
        TypeError: ``y`` not a tensor, ``y_mask`` neither ``None`` nor a bool tensor.
        ValueError: ``y`` not 3-D, ``y_mask`` not of shape ``(B, Q)`` (both shapes named), the
            queue holds features of another shape, or ``gather`` is not ``True`` or ``False``.
    """
    gather = check_flag("negative_columns: gather", gather)
    _check_columns("negative_columns", y, "y", y_mask, "y_mask", floating=False)
    cols, mask, offset = y, y_mask, 0
    if gather and distributed.is_distributed():
        if mask is None:
            mask = torch.ones(y.shape[:2], dtype=torch.bool, device=y.device)
        # the ranks' batches may differ in size (an empty one too): the offset is the rows
        # of the ranks before this one, not rank * N
        cols, offset = distributed.all_gather_with_offset(y)
        mask, _ = distributed.all_gather_with_offset(mask)
    batch_cols, batch_mask = cols, mask
    if queue is not None and len(queue):
        qf, qm = queue.features(), queue.mask()
        if qf.shape[1:] != cols.shape[1:]:
            raise ValueError(
                f"the queue holds y features of shape (S, Q, Cy) = {tuple(qf.shape)} but y "
                f"packs to {tuple(cols.shape)}; reset the queue when the grid changes"
            )
        if mask is None:
            mask = torch.ones(cols.shape[:2], dtype=torch.bool, device=cols.device)
        cols = torch.cat([cols, qf.to(cols)])
        mask = torch.cat([mask, qm.to(mask.device)])
    return NegativeColumns(cols, mask, offset, batch_cols, batch_mask)
