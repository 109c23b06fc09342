r"""Samplers for local mutual information: which position pairs are compared.

A local MI loss compares the features of two *grids*: ``x`` with ``P`` positions (e.g. the
``H x W`` cells of a CNN feature map) and ``y`` with ``Q`` positions (e.g. ``L`` tokens, or a
single sentence vector). Two independent choices make the loss:

* **Position pairs** ``(p, q)``: each pair is one estimation problem, scored over the batch.
  :class:`LocalToGlobal` (every position of one side against the single vector of the other:
  Deep InfoMax's local-global objective and the cells-vs-sentence objective of Liao et al.),
  :class:`AllPairs`, :class:`Matched` (same position on same-shaped grids),
  :class:`RandomPairs` (``k`` pairs drawn per call) and :class:`Neighbourhood` (spatially
  close positions of one grid).
* **Negatives** for an anchor ``x_i[p]``: see :mod:`mitools.negatives` (every other sample
  of the batch, a random derangement, a queue of past features). ``random_derangement`` and
  ``NegativeQueue`` are still importable from here.

Padding masks ``(B, P)`` / ``(B, Q)`` mark valid positions: a padded position is never a
positive nor a negative (see :class:`mitools.local.LocalMILoss`).

Every sampler maps the grid shapes to :class:`PositionPairs`: flat position indices
``x_index``/``y_index`` of shape ``(K,)`` plus where each pair's estimate goes in the
per-position map that the loss returns (``shape``, ``where``).

Example:
    >>> from mitools.samplers import LocalToGlobal, Neighbourhood
    >>> pairs = LocalToGlobal()((2, 3), ())  # 2x3 cells against one sentence vector
    >>> pairs.x_index.tolist(), pairs.y_index.tolist(), pairs.shape
    ([0, 1, 2, 3, 4, 5], [0, 0, 0, 0, 0, 0], (2, 3))
    >>> len(Neighbourhood(radius=1)((3, 3), (3, 3)))  # 9 cells, each with its in-grid neighbours
    49
"""

from __future__ import annotations

import itertools
import math
import numbers
from typing import Any, NamedTuple

import torch
from torch import Tensor

from mitools.negatives import NegativeQueue, random_derangement  # noqa: F401  (moved there)
from mitools.option_checks import check_flag, check_int
from mitools.tasks.seeding import _generator, _PicklesGenerators

__all__ = [
    "AllPairs",
    "LocalToGlobal",
    "Matched",
    "Neighbourhood",
    "PairSampler",
    "PositionPairs",
    "RandomPairs",
    "check_pairs",
]

Grid = tuple[int, ...]


class PositionPairs(NamedTuple):
    """The position pairs of one call, in flat (row-major) position indices."""

    #: ``(K,)`` long, the ``x`` position of each pair, in ``[0, P)``.
    x_index: Tensor
    #: ``(K,)`` long, the ``y`` position of each pair, in ``[0, Q)``.
    y_index: Tensor
    #: shape of the per-position map of estimates (e.g. the ``x`` grid for
    #: :class:`LocalToGlobal`, ``grid_x + grid_y`` for :class:`AllPairs`).
    shape: tuple[int, ...]
    #: ``(K,)`` long, flat index of each pair in a map of that shape.
    where: Tensor

    def __len__(self) -> int:  # the number of pairs, not of fields
        return int(self.x_index.numel())


def _make_position_pairs(cls: type[PositionPairs], fields: Any) -> PositionPairs:
    """``PositionPairs._make``: the namedtuple's own checks its field count with ``len()``,
    which :meth:`PositionPairs.__len__` answers with the number of pairs, so it refused every
    call of ``K != 4`` pairs ("Expected 4 arguments, got 6"): ``_replace``, and
    ``torch.compile``, which rebuilds a namedtuple with ``_make`` at each graph break (a
    compiled :class:`~mitools.local.LocalMILoss` failed so on any grid of other than 4 pairs).
    """
    result = tuple.__new__(cls, fields)
    if tuple.__len__(result) != len(cls._fields):
        raise TypeError(f"Expected {len(cls._fields)} arguments, got {tuple.__len__(result)}")
    return result


# typing.NamedTuple refuses _make in the class body
PositionPairs._make = classmethod(_make_position_pairs)  # type: ignore[assignment,method-assign]


def _numel(grid: Grid) -> int:
    return math.prod(grid)


def _positive_ints(sizes: Any) -> bool:
    """Whether every entry of ``sizes`` is an int >= 1 (numpy ints count, bools do not): a
    grid's shape, or the shape of a map of estimates."""
    return all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and int(s) >= 1
               for s in sizes)


def _check_grid(grid: Grid, name: str) -> Grid:
    if not isinstance(grid, (tuple, list)) or not _positive_ints(grid):
        raise ValueError(f"{name} must be a tuple of positive ints, got {grid!r}")
    return tuple(int(s) for s in grid)  # numpy ints count


class PairSampler:
    """Base class: ``sampler(grid_x, grid_y, device=None) -> PositionPairs``.

    ``grid_x`` and ``grid_y`` are the grid shapes without batch and channel axes (``()`` for a
    single vector per sample). ``device`` is anything ``torch.device`` takes (``"cuda"``,
    ``0`` for ``cuda:0``, a ``torch.device``); ``None`` is the CPU.

    A sampler of one's own subclasses it and implements ``_pairs(grid_x, grid_y, device)``
    (the call checks the grids and the device first), returning :class:`PositionPairs` of
    ``K >= 1`` pairs: ``x_index`` and ``y_index``, long ``(K,)`` flat positions in
    ``[0, P)`` and ``[0, Q)`` on ``device``; the ``shape`` of the map of estimates the loss
    returns as ``local``; ``where``, long ``(K,)``, distinct flat indices into that map.
    :class:`~mitools.local.LocalMILoss` checks what a sampler of one's own returns
    (:func:`check_pairs`) before it scores anything.

    Raises:
        ValueError: at the call, a grid that is not a tuple of ints >= 1 (every sampler), or
            grids the sampler cannot pair (each sampler says which).
        RuntimeError: at the call, a ``device`` that ``torch.device`` refuses.

    Example:
        Each ``x`` position against the ``y`` position of the same flat index modulo ``Q``
        (a sampler that is not in this module):

        >>> import math, torch
        >>> class Modulo(PairSampler):
        ...     def _pairs(self, grid_x, grid_y, device):
        ...         x_index = torch.arange(math.prod(grid_x), device=device)
        ...         y_index = x_index % math.prod(grid_y)
        ...         return PositionPairs(x_index, y_index, grid_x, x_index)
        >>> Modulo()((2, 3), (4,)).y_index.tolist()
        [0, 1, 2, 3, 0, 1]
    """

    def __call__(
        self,
        grid_x: tuple[int, ...],
        grid_y: tuple[int, ...],
        device: torch.device | str | None = None,
    ) -> PositionPairs:
        grid_x = _check_grid(grid_x, "grid_x")
        grid_y = _check_grid(grid_y, "grid_y")
        # "is None", not falsiness: device=0 is cuda:0, and it gave CPU indices, silently
        where = torch.device("cpu") if device is None else torch.device(device)
        return self._pairs(grid_x, grid_y, where)

    def _pairs(self, grid_x: Grid, grid_y: Grid, device: torch.device) -> PositionPairs:
        """The position pairs of grids ``grid_x`` and ``grid_y``: what a sampler implements.

        Args:
            grid_x: the ``x`` grid's shape, a tuple of ints >= 1 (``()``: one vector).
            grid_y: the ``y`` grid's shape.
            device: where the index tensors go.

        Returns:
            :class:`PositionPairs` of ``K >= 1`` pairs: ``x_index`` and ``y_index`` long
            ``(K,)`` flat positions in ``[0, P)`` and ``[0, Q)``, a map ``shape``, and
            ``where`` long ``(K,)``, distinct flat indices in that map.

        Raises:
            NotImplementedError: a subclass that does not implement it.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement _pairs(grid_x, grid_y, device) -> "
            "PositionPairs (see mitools.samplers.PairSampler)"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def check_pairs(
    pairs: object, grid_x: Grid, grid_y: Grid, sampler: str, values: bool = True
) -> PositionPairs:
    """What a sampler returned for ``grid_x`` and ``grid_y``, checked to be position pairs.

    A sampler of one's own that returned indices past a grid failed in an ``index_select``,
    and one whose ``where`` repeated an index wrote several pairs' estimates to one entry of
    the map ``local`` (the others read NaN) while the reduction took them all.

    Args:
        pairs: what the sampler returned.
        grid_x: the ``x`` grid's shape.
        grid_y: the ``y`` grid's shape.
        sampler: the sampler's name in the message.
        values: also check the indices' values (ranges, distinct ``where``), which reads them
            (one synchronisation on a GPU); shapes and dtypes are always checked.

    Returns:
        ``pairs``.

    Raises:
        TypeError: not a :class:`PositionPairs`, an index that is not an integer tensor, or a
            ``shape`` that is not a tuple of ints.
        ValueError: ``values`` not ``True`` or ``False``; indices that are not ``(K,)`` of
            one ``K >= 1``, an ``x_index`` outside
            ``[0, P)``, a ``y_index`` outside ``[0, Q)``, a ``where`` outside the map
            ``shape`` or with repeats.

    Example:
        >>> pairs = AllPairs()((2,), (3,))
        >>> len(check_pairs(pairs, (2,), (3,), "AllPairs"))
        6
    """
    values = check_flag("check_pairs: values", values)
    head = f"the sampler {sampler} returned"
    if not isinstance(pairs, PositionPairs):
        raise TypeError(f"{head} a {type(pairs).__name__}; a sampler returns "
                        "mitools.samplers.PositionPairs(x_index, y_index, shape, where)")
    shape = pairs.shape
    if not isinstance(shape, tuple) or not _positive_ints(shape):
        raise TypeError(f"{head} shape={shape!r}; it must be a tuple of ints >= 1, the map "
                        "of per-pair estimates")
    fields = {"x_index": pairs.x_index, "y_index": pairs.y_index, "where": pairs.where}
    for name, t in fields.items():
        if not isinstance(t, Tensor) or t.is_floating_point() or t.is_complex() or \
                t.dtype == torch.bool:
            got = f"dtype {t.dtype}" if isinstance(t, Tensor) else f"a {type(t).__name__}"
            raise TypeError(f"{head} {name} of {got}; it must be a long tensor (K,)")
    k = pairs.x_index.shape
    if any(t.dim() != 1 for t in fields.values()) or len(set(t.shape for t in fields.values())
                                                          ) != 1 or k[0] < 1:
        shapes = ", ".join(f"{n} {tuple(t.shape)}" for n, t in fields.items())
        raise ValueError(f"{head} {shapes}; they must all be (K,) for one K >= 1")
    if not values:
        return pairs
    bounds = {"x_index": (_numel(grid_x), f"the x grid {grid_x}"),
              "y_index": (_numel(grid_y), f"the y grid {grid_y}"),
              "where": (_numel(shape), f"the map shape {shape}")}
    for name, (size, of) in bounds.items():
        t = fields[name]
        low, high = int(t.min()), int(t.max())
        if low < 0 or high >= size:
            raise ValueError(f"{head} {name} from {low} to {high}; it must lie in [0, {size}), "
                             f"the flat positions of {of}")
    if int(torch.unique(pairs.where).numel()) != k[0]:
        raise ValueError(f"{head} where with repeated entries; each of the {k[0]} pairs needs "
                         f"its own entry of the map shape {shape}")
    return pairs


def _outer(grid_x: Grid, grid_y: Grid, device: torch.device) -> PositionPairs:
    p, q = _numel(grid_x), _numel(grid_y)
    flat = torch.arange(p * q, device=device)
    return PositionPairs(flat // q, flat % q, grid_x + grid_y, flat)


class LocalToGlobal(PairSampler):
    """Every position of the local side against the single vector of the global side.

    The cells-vs-sentence objective of Liao et al. (2021) and Deep InfoMax's local-global
    objective (Hjelm et al. 2019). The per-position map has the local grid's shape.

    Args:
        global_side: ``"y"`` (default: ``x`` is the grid, ``y`` one vector per sample) or
            ``"x"``. The global side must have exactly one position.

    Raises:
        ValueError: a ``global_side`` other than ``"x"`` or ``"y"``; at the call, a global
            side of more than one position (and, as every sampler, a bad grid).

    Example:
        >>> LocalToGlobal()((4, 4), ()).shape
        (4, 4)
        >>> LocalToGlobal(global_side="x")((), (5,)).y_index.tolist()
        [0, 1, 2, 3, 4]
    """

    def __init__(self, global_side: str = "y"):
        if global_side not in ("x", "y"):
            raise ValueError(f"global_side must be 'x' or 'y', got {global_side!r}")
        self.global_side = global_side

    def _pairs(self, grid_x: Grid, grid_y: Grid, device: torch.device) -> PositionPairs:
        glob, loc = (grid_y, grid_x) if self.global_side == "y" else (grid_x, grid_y)
        if _numel(glob) != 1:
            other = "x" if self.global_side == "y" else "y"
            hint = (f"; the {other} side has one position: use "
                    f"LocalToGlobal(global_side={other!r})") if _numel(loc) == 1 else ""
            raise ValueError(
                f"LocalToGlobal(global_side={self.global_side!r}) needs one position on the "
                f"{self.global_side} side, but its grid has shape {glob} "
                f"({_numel(glob)} positions); pool it first, or use AllPairs" + hint
            )
        n = _numel(loc)
        idx = torch.arange(n, device=device)
        zeros = torch.zeros(n, dtype=torch.long, device=device)
        if self.global_side == "y":
            return PositionPairs(idx, zeros, loc, idx)
        return PositionPairs(zeros, idx, loc, idx)

    def __repr__(self) -> str:
        return f"LocalToGlobal(global_side={self.global_side!r})"


class AllPairs(PairSampler):
    """Every ``x`` position against every ``y`` position: ``P * Q`` pairs.

    The per-position map has shape ``grid_x + grid_y`` (e.g. ``(H, W, L)`` for cells against
    tokens).

    Example:
        >>> AllPairs()((2,), (3,)).y_index.tolist()
        [0, 1, 2, 0, 1, 2]
    """

    def _pairs(self, grid_x: Grid, grid_y: Grid, device: torch.device) -> PositionPairs:
        return _outer(grid_x, grid_y, device)


class Matched(PairSampler):
    """The same position on two grids of the same shape (e.g. two views of one image).

    Raises:
        ValueError: at the call, grids of different shapes (and, as every sampler, a bad
            grid).

    Example:
        >>> Matched()((2, 2), (2, 2)).x_index.tolist()
        [0, 1, 2, 3]
    """

    def _pairs(self, grid_x: Grid, grid_y: Grid, device: torch.device) -> PositionPairs:
        if grid_x != grid_y:
            raise ValueError(
                f"Matched needs grids of the same shape, got grid_x {grid_x} and grid_y {grid_y}"
            )
        idx = torch.arange(_numel(grid_x), device=device)
        return PositionPairs(idx, idx, grid_x, idx)


class RandomPairs(_PicklesGenerators, PairSampler):
    """``k`` distinct position pairs drawn uniformly per call from all ``P * Q`` pairs.

    The per-position map has shape ``grid_x + grid_y`` and is NaN at the pairs not drawn.

    Args:
        k: pairs per call (at most ``P * Q``; fewer pairs exist: all are used).
        generator: a :class:`torch.Generator` (on any device: the draw is made there) or an
            int seed in :math:`[-2^{63}, 2^{64})`, for reproducible draws; ``None``: torch's
            global RNG (which each call then advances). A seed makes one CPU generator at
            construction, which advances with each call (as
            :class:`~mitools.local.LocalMILoss`'s ``generator``): ``generator=5`` draws what
            ``generator=torch.Generator().manual_seed(5)`` draws.

    **In other processes.** The sampler pickles with its generator's state, so it reaches
    DataLoader workers and spawned processes (``spawn`` too) and draws there what it would
    have drawn here. Each worker holds its own copy in that state, so every worker draws the
    *same* pairs: reseed it per worker (``worker_init_fn``: ``sampler.generator.manual_seed(
    seed + worker_id)``), or pass ``generator=None``, whose global RNG the DataLoader seeds
    per worker.

    Raises:
        ValueError: ``k`` not an int >= 1, an int seed out of range (and, at the call, as
            every sampler, a bad grid).
        TypeError: a ``generator`` that is neither a ``torch.Generator``, an int nor ``None``
            (a bool, a float, a numpy ``Generator``).

    Example:
        >>> import torch
        >>> sampler = RandomPairs(3, generator=torch.Generator().manual_seed(0))
        >>> len(sampler((4, 4), (2,)))
        3
    """

    def __init__(self, k: int, generator: torch.Generator | int | None = None):
        k = check_int("RandomPairs: k", k)
        # an int seed was refused, where random_derangement, fold_indices, LocalMILoss and
        # the tasks take one; one generator made here, so each call draws new pairs
        self.k = k
        self.generator = _generator(generator, name="RandomPairs: generator")

    def _pairs(self, grid_x: Grid, grid_y: Grid, device: torch.device) -> PositionPairs:
        p, q = _numel(grid_x), _numel(grid_y)
        gen_device = self.generator.device if self.generator is not None else "cpu"
        chosen = torch.randperm(p * q, generator=self.generator, device=gen_device)
        flat = chosen[: min(self.k, p * q)].sort().values.to(device)
        return PositionPairs(flat // q, flat % q, grid_x + grid_y, flat)

    def __repr__(self) -> str:
        return f"RandomPairs(k={self.k})"


class Neighbourhood(PairSampler):
    r"""Pairs of positions of one grid within a Chebyshev distance ``radius``.

    Both sides share the grid shape (e.g. two encoders of one image, or a feature map against
    itself one layer up). Position ``p`` is paired with every ``q`` whose coordinates differ
    from ``p``'s by at most ``radius`` along every axis (``radius=0`` is :class:`Matched`).
    The per-position map has shape ``grid + grid`` (NaN outside the neighbourhood).

    Args:
        radius: a non-negative int.

    Raises:
        ValueError: ``radius`` not an int >= 0; at the call, grids of different shapes (and,
            as every sampler, a bad grid).

    Example:
        >>> pairs = Neighbourhood(radius=1)((1, 3), (1, 3))
        >>> list(zip(pairs.x_index.tolist(), pairs.y_index.tolist()))
        [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 1), (2, 2)]
    """

    def __init__(self, radius: int = 1):
        self.radius = check_int("Neighbourhood: radius", radius, 0)

    def _pairs(self, grid_x: Grid, grid_y: Grid, device: torch.device) -> PositionPairs:
        if grid_x != grid_y:
            raise ValueError(
                f"Neighbourhood needs grids of the same shape, got grid_x {grid_x} and "
                f"grid_y {grid_y}"
            )
        grid = grid_x
        n = _numel(grid)
        if len(grid) == 0:
            idx = torch.zeros(1, dtype=torch.long, device=device)
            return PositionPairs(idx, idx, grid + grid, idx)
        sizes = torch.tensor(grid, device=device)
        flat = torch.arange(n, device=device)
        strides = torch.tensor([math.prod(grid[d + 1 :]) for d in range(len(grid))], device=device)
        coords = (flat[:, None] // strides) % sizes  # (P, d)
        r = self.radius
        offsets = torch.tensor(
            list(itertools.product(range(-r, r + 1), repeat=len(grid))), device=device
        ).reshape(-1, len(grid))  # (W, d), lexicographic: keeps q sorted within each p
        neighbour = coords[:, None, :] + offsets[None, :, :]  # (P, W, d)
        inside = ((neighbour >= 0) & (neighbour < sizes)).all(-1)  # (P, W)
        q = (neighbour * strides).sum(-1)  # (P, W)
        p = flat[:, None].expand_as(q)
        x_index, y_index = p[inside], q[inside]
        return PositionPairs(x_index, y_index, grid + grid, x_index * n + y_index)

    def __repr__(self) -> str:
        return f"Neighbourhood(radius={self.radius})"
