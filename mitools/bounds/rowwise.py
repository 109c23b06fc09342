r"""Row-wise bounds as per-row statistics and a finisher: the update/compute split of a bound.

Most bounds need only a few reductions of each row of the score tensor: the positive score,
a log-sum-exp of the scores over the row's valid columns (InfoNCE's log-partition) or over its
valid negatives (DV, NWJ, TUBA, MINE), a sum of ``softplus`` over the negatives (the
Jensen-Shannon objective), a log-sum-exp of clipped scores (SMILE). Such a bound is a
:class:`RowwiseBound`:

* its :class:`RowStatistic`\ s say what to accumulate per row: a reduction (``"logsumexp"`` or
  ``"sum"``) of an elementwise :class:`Transform` of the scores (identity, softplus, clip) over
  the row's valid ``"columns"`` or its valid ``"negatives"``. A statistic knows how to reduce
  a block of columns, how to merge two partial results, and the gradient of its result with
  respect to a block of scores;
* its ``finish`` turns the accumulated :class:`RowStatistics` into the value, and autograd
  through ``finish`` gives the gradient with respect to every statistic.

:func:`~mitools.bounds.row_statistics` accumulates the statistics from a whole score tensor:
that is how every public bound of :mod:`mitools.bounds` is computed (``infonce(scores)`` is
``finish(row_statistics(scores))``). The execution paths of :mod:`mitools.local` (column blocks
with a running log-sum-exp; fused attention kernels) accumulate the same statistics without
ever storing the scores and call the same finisher, so each bound's formula is written once,
here and in :mod:`mitools.bounds.lower` and :mod:`mitools.bounds.jensen_shannon`, in the
spirit of torchmetrics' ``update``/``compute``.

A new row-wise bound is one :class:`RowwiseBound`: the statistics it needs and a function of
them. Every execution path then takes it.

Example:
    >>> import torch
    >>> from mitools import bounds
    >>> spec = bounds.rowwise_bound(bounds.infonce)
    >>> spec.statistics
    (RowStatistic(reduce='logsumexp', over='columns', transform=None),)
    >>> s = torch.randn(5, 5, dtype=torch.float64)
    >>> stats = bounds.row_statistics(s, spec.statistics)
    >>> bool(torch.isclose(spec.finish(stats), bounds.infonce(s)))
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mitools.bounds._scores import _prepare, _row_mean
from mitools.option_checks import check_number

__all__ = [
    "RowStatistic",
    "RowStatistics",
    "RowwiseBound",
    "Transform",
    "row_statistics",
    "rows_logsumexp",
    "rows_mean",
    "rows_sum",
    "rowwise_bound",
]

REDUCES = ("logsumexp", "sum")
OVER = ("columns", "negatives")


@dataclass(frozen=True)
class Transform:
    """An elementwise map applied to the scores before a :class:`RowStatistic` reduces them.

    Args:
        name: ``"softplus"`` or ``"clip"`` (to :math:`[-\\tau, \\tau]`).
        param: :math:`\\tau` for ``"clip"``, a finite number > 0 (stored as a Python float).

    Example:
        >>> import torch
        >>> Transform("clip", 1.0)(torch.tensor([-3.0, 0.5, 2.0]))
        tensor([-1.0000,  0.5000,  1.0000])
    """

    name: str
    param: float | None = None

    def __post_init__(self) -> None:
        if self.name not in ("softplus", "clip"):
            raise ValueError(f"Transform: name must be 'softplus' or 'clip', got {self.name!r}")
        if self.name == "clip":
            try:  # frozen: the checked value replaces the given one
                object.__setattr__(self, "param", check_number("param", self.param, 0))
            except ValueError:
                raise ValueError(f"Transform('clip'): param must be a finite positive number, "
                                 f"got {self.param!r}") from None

    def __str__(self) -> str:
        """``"softplus"`` or ``"clip(5.0)"``: the transform in messages."""
        return self.name if self.param is None else f"{self.name}({self.param:g})"

    def __call__(self, scores: Tensor) -> Tensor:
        if self.name == "softplus":
            return F.softplus(scores)
        assert self.param is not None
        return scores.clamp(-self.param, self.param)

    def derivative(self, scores: Tensor) -> Tensor:
        """The elementwise derivative at ``scores`` (as :mod:`torch.autograd` defines it)."""
        if self.name == "softplus":  # linear above F.softplus's threshold (20), as autograd has it
            return torch.where(scores > 20.0, torch.ones_like(scores), torch.sigmoid(scores))
        assert self.param is not None
        return ((scores >= -self.param) & (scores <= self.param)).to(scores.dtype)


def _masked_logsumexp(t: Tensor, valid: Tensor | None, dim: int = -1) -> Tensor:
    """``logsumexp`` over the ``valid`` entries along ``dim``; ``-inf`` where none is valid.

    Safe for autograd: a slice without a valid entry gets a zero gradient, not NaN.
    """
    if valid is None:
        return torch.logsumexp(t, dim)
    valid = valid.expand_as(t)
    some = valid.any(dim, keepdim=True)
    filled = t.masked_fill(~valid, -math.inf).masked_fill(~some, 0.0)
    return torch.logsumexp(filled, dim).masked_fill(~some.squeeze(dim), -math.inf)


@dataclass(frozen=True)
class RowStatistic:
    """One per-row reduction a row-wise bound needs.

    Args:
        reduce: ``"logsumexp"`` or ``"sum"``.
        over: ``"columns"`` (every valid column of the row, the positive included) or
            ``"negatives"`` (the valid columns but the row's positive).
        transform: an elementwise :class:`Transform` applied first, ``None`` for the scores
            themselves.

    Example:
        >>> import torch
        >>> stat = RowStatistic("logsumexp", "negatives")
        >>> s = torch.zeros(1, 2, 3)
        >>> stat.reduce_block(s, None)  # log(3): no mask given, every entry counts
        tensor([[1.0986, 1.0986]])
    """

    reduce: str
    over: str
    transform: Transform | None = None

    def __post_init__(self) -> None:
        if self.reduce not in REDUCES:
            raise ValueError(f"RowStatistic: reduce must be one of {REDUCES}, got {self.reduce!r}")
        if self.over not in OVER:
            raise ValueError(f"RowStatistic: over must be one of {OVER}, got {self.over!r}")

    @property
    def name(self) -> str:
        """The statistic in words, as messages name it (``str(statistic)`` is the same, ``repr``
        gives the fields), e.g. ``"logsumexp over negatives"``, ``"sum of softplus over
        negatives"`` or ``"logsumexp of clip(5) over negatives"``."""
        of = "" if self.transform is None else f" of {self.transform}"
        return f"{self.reduce}{of} over {self.over}"

    def __str__(self) -> str:
        return self.name

    def empty(self, shape: tuple[int, ...], like: Tensor) -> Tensor:
        """The statistic of rows without any entry yet: the start of an accumulation.

        Args:
            shape: the rows' shape, ``(..., N)``.
            like: a tensor whose dtype and device the result takes.

        Returns:
            ``shape`` filled with ``-inf`` (a log-sum-exp of nothing) or ``0`` (a sum).
        """
        fill = -math.inf if self.reduce == "logsumexp" else 0.0
        return like.new_full(shape, fill)

    def reduce_block(self, scores: Tensor, valid: Tensor | None) -> Tensor:
        """Reduce a block of columns ``(..., N, c)`` to ``(..., N)`` over its ``valid`` entries.

        The result of a whole row is the :meth:`merge` of its blocks' results.

        Args:
            scores: a block of the score tensor, ``(..., N, c)``.
            valid: bool, broadcastable to ``scores``: the entries that count (``None``: all);
                for ``over="negatives"`` the caller leaves each row's positive out here.

        Returns:
            ``(..., N)``: the ``transform`` of the valid entries, reduced (``-inf`` for a
            log-sum-exp, ``0`` for a sum, where a row has none).
        """
        t = scores if self.transform is None else self.transform(scores)
        if self.reduce == "logsumexp":
            return _masked_logsumexp(t, valid)
        if valid is not None:
            t = torch.where(valid, t, torch.zeros((), dtype=t.dtype, device=t.device))
        return t.sum(-1)

    def merge(self, a: Tensor, b: Tensor) -> Tensor:
        """Combine the results of two disjoint sets of columns.

        Args:
            a: the statistic over one set of columns, ``(..., N)``.
            b: the statistic over another, disjoint set, same shape.

        Returns:
            ``(..., N)``, the statistic over both: ``logaddexp(a, b)`` or ``a + b``.
        """
        return torch.logaddexp(a, b) if self.reduce == "logsumexp" else a + b

    def part_gradient(self, part: Tensor, total: Tensor, grad: Tensor) -> Tensor:
        """The gradient with respect to one merged part, given ``grad`` for the ``total``.

        Args:
            part: the statistic of one part of the columns (one rank's, one block's),
                ``(..., N)``.
            total: the :meth:`merge` of every part, same shape.
            grad: the gradient of the objective with respect to ``total``, same shape.

        Returns:
            ``(..., N)``: for a log-sum-exp, ``grad`` times the part's share of its row,
            ``exp(part - total)`` (0 for an empty part); for a sum, ``grad`` itself.
        """
        if self.reduce == "sum":
            return grad
        share = grad * torch.exp(part - total)
        return torch.where(torch.isfinite(part), share, torch.zeros_like(share))

    def block_gradient(
        self, scores: Tensor, valid: Tensor | None, result: Tensor, grad: Tensor
    ) -> Tensor:
        """``grad (..., N)`` times the derivative of the row result with respect to a block.

        Args:
            scores: the block ``(..., N, c)``.
            valid: its valid entries, broadcastable to ``scores`` (``None``: all).
            result: the statistic of the whole rows, ``(..., N)``.
            grad: the gradient of the objective with respect to ``result``, ``(..., N)``.

        Returns:
            ``(..., N, c)``: the gradient with respect to the block of scores.
        """
        # In place on one fresh buffer: a block's gradient costs one more block of memory.
        if self.reduce == "logsumexp":  # d lse_i / d t_ij = exp(t_ij - lse_i)
            t = scores.clone() if self.transform is None else self.transform(scores)
            out = t.sub_(result[..., None]).exp_().mul_(grad[..., None])
        else:
            out = grad[..., None].expand_as(scores).clone()
        if self.transform is not None:
            out.mul_(self.transform.derivative(scores))
        if valid is not None:
            out.masked_fill_(~valid, 0.0)
        return out


class RowStatistics(NamedTuple):
    """The accumulated statistics of a batch of estimation problems, one entry per row."""

    #: ``(..., N)`` the positive score of every row.
    positive: Tensor
    #: each requested :class:`RowStatistic`'s result, ``(..., N)``.
    values: Mapping[RowStatistic, Tensor]
    #: ``(..., N)`` bool, the valid rows (``None``: all).
    row_valid: Tensor | None
    #: ``(...)`` the number of valid rows.
    n_rows: Tensor
    #: the number of valid columns of each row, broadcastable to ``(..., N)``.
    n_cols: Tensor
    #: ``(...)`` the number of valid negatives (valid rows times their negatives).
    n_neg: Tensor

    def of(self, statistic: RowStatistic) -> Tensor:
        """The result of one statistic, ``(..., N)``."""
        try:
            return self.values[statistic]
        except KeyError:
            raise KeyError(
                f"the statistic {statistic} was not accumulated; a finisher may only read the "
                f"statistics its RowwiseBound declares (got "
                f"{', '.join(str(s) for s in self.values) or 'none'})"
            ) from None


def rows_logsumexp(values: Tensor, stats: RowStatistics) -> Tensor:
    """``logsumexp`` of a per-row quantity ``(..., N)`` over the valid rows, ``(...)``.

    Example:
        >>> import torch
        >>> st = row_statistics(torch.zeros(2, 2), ())
        >>> rows_logsumexp(torch.zeros(2), st)  # log 2
        tensor(0.6931)
    """
    return _masked_logsumexp(values, stats.row_valid)


def rows_sum(values: Tensor, stats: RowStatistics) -> Tensor:
    """Sum of a per-row quantity ``(..., N)`` over the valid rows, ``(...)``.

    Example:
        >>> import torch
        >>> st = row_statistics(torch.zeros(3, 3), (), row_mask=torch.tensor([True, True, False]))
        >>> rows_sum(torch.ones(3), st)
        tensor(2.)
    """
    if stats.row_valid is not None:
        values = torch.where(stats.row_valid, values, torch.zeros_like(values))
    return values.sum(-1)


def rows_mean(values: Tensor, stats: RowStatistics) -> Tensor:
    """Mean of a per-row quantity ``(..., N)`` over the valid rows, ``(...)``.

    Example:
        >>> import torch
        >>> st = row_statistics(torch.zeros(3, 3), (), row_mask=torch.tensor([True, True, False]))
        >>> rows_mean(torch.tensor([1.0, 3.0, 100.0]), st)
        tensor(2.)
    """
    return _row_mean(values, stats)


def row_bookkeeping(
    row_valid: Tensor | None, col_valid: Tensor | None, n: int, m: int, like: Tensor
) -> tuple[Tensor | None, Tensor, Tensor, Tensor]:
    """``(row_valid, n_rows, n_cols, n_neg)`` of :class:`RowStatistics` from the masks.

    ``row_valid (..., N)``, ``col_valid (..., M)``, either ``None`` for all valid; the positive
    of every valid row must be a valid column. ``like`` gives the dtype and device.
    """
    if row_valid is None and col_valid is None:
        one = like.new_ones(())
        return None, one * n, one * m, one * (n * (m - 1))
    n_rows = row_valid.sum(-1).to(like.dtype) if row_valid is not None else like.new_tensor(n)
    n_cols = col_valid.sum(-1).to(like.dtype) if col_valid is not None else like.new_tensor(m)
    return row_valid, n_rows, n_cols[..., None], n_rows * (n_cols - 1.0)


def row_statistics(
    scores: Tensor,
    statistics: tuple[RowStatistic, ...],
    *,
    offset: int = 0,
    row_mask: Tensor | None = None,
    col_mask: Tensor | None = None,
    name: str = "row_statistics",
) -> RowStatistics:
    """Accumulate per-row statistics from a whole score tensor (the dense path).

    Args:
        scores: critic scores ``(..., N, M)``, checked as every bound checks them (shapes,
            masks, finiteness).
        statistics: what to accumulate.
        offset: column of the positive of row 0.
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.
        name: the caller's name in error messages.

    Returns:
        :class:`RowStatistics` with one ``(..., N)`` tensor per statistic.

    Raises:
        ValueError: as every bound; with no ``statistics`` (a bound of the positives alone:
            :func:`~mitools.bounds.log_likelihood`, :func:`~mitools.bounds.ba`,
            :func:`~mitools.bounds.doe`) one column is enough, so a batch of one sample,
            ``(..., 1, 1)``, is scored; every other bound needs a negative per row, 2 columns.
    """
    p = _prepare(scores, offset, row_mask, col_mask, name, min_cols=2 if statistics else 1)
    values = {}
    for stat in statistics:
        valid = p.neg_valid if stat.over == "negatives" else p.col_valid
        values[stat] = stat.reduce_block(p.scores, valid)
    return RowStatistics(p.positive, values, p.row_valid, p.n_rows, p.n_cols, p.n_neg)


@dataclass(frozen=True)
class RowwiseBound:
    """A bound given by the per-row statistics it needs and the function that finishes it.

    Args:
        name: the bound's name (in error messages).
        statistics: the :class:`RowStatistic`\\ s to accumulate.
        finish: ``finish(stats, **params) -> Tensor (...)``, the value (to maximise) of every
            estimation problem; autograd through it gives the gradient.

    Raises:
        TypeError: ``statistics`` is not a tuple (or list) of :class:`RowStatistic` (a single
            one is taken as a tuple of one), or ``finish`` is not callable.

    Calling it on a score tensor is the dense path: ``bound(scores, offset=..., row_mask=...,
    col_mask=..., **params)``. An estimator that declares it as ``rowwise``
    (:class:`~mitools.estimators.Estimator`) takes every execution path of the local losses.

    Example:
        A new bound is its statistics and a finisher, e.g. the mean positive score minus the
        mean negative score (the form of CLUB's upper bound on log-density scores):

        >>> import torch
        >>> from mitools.bounds import RowStatistic, RowwiseBound, rows_mean, rows_sum
        >>> NEGATIVE_SUM = RowStatistic("sum", "negatives")
        >>> def gap(st):
        ...     return rows_mean(st.positive, st) - rows_sum(st.of(NEGATIVE_SUM), st) / st.n_neg
        >>> GAP = RowwiseBound("gap", (NEGATIVE_SUM,), gap)
        >>> GAP(torch.eye(4))  # 1 on the diagonal, 0 elsewhere
        tensor(1.)
    """

    name: str
    statistics: tuple[RowStatistic, ...]
    finish: Callable[..., Tensor]

    def __post_init__(self) -> None:
        stats = self.statistics
        if isinstance(stats, RowStatistic):  # RowwiseBound(name, STAT, fn): a missing comma
            stats = (stats,)
        if not isinstance(stats, (tuple, list)) or not all(
            isinstance(s, RowStatistic) for s in stats
        ):
            raise TypeError(
                f"RowwiseBound {self.name!r}: statistics must be a tuple of RowStatistic, got "
                f"{stats!r}"
            )
        object.__setattr__(self, "statistics", tuple(stats))  # frozen: the checked value
        if not callable(self.finish):
            raise TypeError(
                f"RowwiseBound {self.name!r}: finish must be a function of the RowStatistics, "
                f"got {type(self.finish).__name__}"
            )

    def __call__(
        self,
        scores: Tensor,
        *,
        offset: int = 0,
        row_mask: Tensor | None = None,
        col_mask: Tensor | None = None,
        **params: Any,
    ) -> Tensor:
        """The bound on a whole score tensor: ``finish(row_statistics(scores, ...), **params)``.

        Args:
            scores: critic scores ``(..., N, M)``, the positive of row ``i`` at column
                ``i + offset``.
            offset: column of the positive of row 0.
            row_mask: optional ``(..., N)`` bool, valid anchors.
            col_mask: optional ``(..., M)`` bool, valid columns.
            **params: passed on to ``finish``.

        Returns:
            ``finish``'s value, ``scores.shape[:-2]`` for a well-formed finisher.

        Raises:
            TypeError, ValueError: bad scores or masks, as every bound
                (:func:`row_statistics`).
        """
        stats = row_statistics(
            scores, self.statistics, offset=offset, row_mask=row_mask, col_mask=col_mask,
            name=self.name,
        )  # fmt: skip
        return self.finish(stats, **params)


_ROWWISE: dict[Callable[..., Tensor], RowwiseBound] = {}


def _registers(bound: RowwiseBound) -> Callable[[Callable[..., Tensor]], Callable[..., Tensor]]:
    """Decorator: record that the public function it decorates is ``bound`` on a score tensor."""

    def register(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
        _ROWWISE[fn] = bound
        return fn

    return register


def rowwise_bound(fn: Callable[..., Tensor]) -> RowwiseBound | None:
    """The :class:`RowwiseBound` behind a public bound function, ``None`` if it has none.

    Example:
        >>> from mitools import bounds
        >>> bounds.rowwise_bound(bounds.dv).name, bounds.rowwise_bound(bounds.alpha_infonce)
        ('dv', None)
    """
    return _ROWWISE.get(fn)
