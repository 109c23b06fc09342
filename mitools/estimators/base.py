r"""The estimator interface: a bound applied to a score tensor, as an ``nn.Module``.

An estimator also *declares what it needs*, so that the local losses can pick an execution path
without knowing its class:

* ``rowwise``: the bound's per-row statistics and finisher (a
  :class:`~mitools.bounds.RowwiseBound`), or ``None`` when the bound needs the whole score
  tensor. Row-wise estimators run on every path of :class:`~mitools.local.LocalMILoss`
  (dense, blocked, attention); the others on the dense path.
* ``needs_row_partition``: whether each anchor needs its own set of negatives (a row-wise
  log-partition, as InfoNCE), which one deranged partner per anchor cannot give.
* ``needs_anchors``: whether :meth:`Estimator.finish` / ``forward`` need the row-side inputs
  (a learned baseline :math:`a(x)`).
* ``per_problem_state``: whether the estimator keeps state per estimation problem (MINE's
  moving average), and so receives a :class:`ProblemIndex` saying which problems a batch
  holds and which of them are real.
* ``needs_targets``: whether :meth:`Estimator.finish` / ``forward`` need the column-side inputs
  (FLO's per-pair network, DoE's marginal model).
* ``direction``: what the value is for: ``"lower"`` (a lower bound, or an objective, to
  maximise), ``"upper"`` (an upper bound, minimised by a representation while the model
  producing the scores is fitted by ``model_objective``) or ``"neither"`` (an estimate whose
  gradient fits the models, as DoE).
* ``needs_log_density``: whether the scores must be log conditional densities
  :math:`\log q(y_j \mid x_i)` (a critic that declares ``log_density = True``, such as a
  :class:`~mitools.conditionals.ConditionalDensity`), not an unnormalised critic's.
* ``model_objective``: for an upper bound, the row-wise objective the model producing the
  scores maximises (the conditional log-likelihood); ``None`` when the value's own gradient
  trains the model.
* ``min_rows``: the valid anchors an estimation problem needs (2 for L1Out, whose mixture
  leaves the positive's own anchor out).
* ``stochastic``: whether ``forward`` draws random numbers (vCLUB's negatives), so that a
  block must not be recomputed in the backward pass.
* ``optimal_offset``: the constant :math:`c` at which the bound is tight for the critic
  "pointwise MI + :math:`c`" (1 for NWJ, the log-baseline for TUBA and α-InfoNCE, else 0).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

from torch import Tensor, nn

from mitools import bounds
from mitools.bounds import RowStatistics, RowwiseBound
from mitools.option_checks import check_optional_flag

__all__ = [
    "Estimator",
    "FunctionalEstimator",
    "ProblemIndex",
    "check_declarations",
    "check_value",
    "checked_finish",
    "extra_required_arguments",
]


class ProblemIndex(NamedTuple):
    """Which estimation problems a batch holds, for estimators with per-problem state.

    Example:
        >>> import torch
        >>> ProblemIndex(torch.tensor([0, 5]), (2, 3), None).shape
        (2, 3)
    """

    # The field shadows tuple.index, which mypy refuses; a NamedTuple allows it, and the name
    # is public API: renaming it, or a dataclass, would break callers.
    #: ``(K,)`` long: the flat index of each problem of the batch in a map of ``shape``.
    index: Tensor  # type: ignore[assignment]
    #: the shape of the map of every problem state can be kept for (e.g. the position pairs'
    #: map of :class:`~mitools.samplers.PositionPairs`).
    shape: tuple[int, ...]
    #: ``(K,)`` bool, the real problems (with a valid anchor and two valid columns); only
    #: they may update the state. ``None``: all.
    active: Tensor | None
    #: whether every ``torch.distributed`` rank holds the same problems, each scoring its own
    #: anchors against the gathered columns (``gather=True`` of the losses, with a process
    #: group): state must then be updated from every rank's batch, alike on every rank.
    gathered: bool = False


class Estimator(nn.Module):
    """Base class: a mutual-information bound applied to a score tensor.

    A row-wise estimator sets ``rowwise`` and, if it has parameters or state, overrides
    :meth:`finish`; :meth:`forward` then accumulates the statistics from the scores and
    finishes them. Any other estimator overrides :meth:`forward`. The attribute ``nats`` says
    whether the value is an MI estimate in nats (``False`` only for :class:`JSD`).

    Args of :meth:`forward`:
        scores: ``(..., N, M)``, ``scores[..., i, j] = f(x_i, y_j)``, positive at ``i + offset``.
        offset: column of the positive of row 0.
        row_mask: optional ``(..., N)`` bool, valid anchors.
        col_mask: optional ``(..., M)`` bool, valid columns.
        anchors: optional row-side inputs ``(..., N, D)`` (learned baselines, FLO's network).
        targets: optional column-side inputs ``(..., M, Dy)`` (``needs_targets`` only).
        problems: optional :class:`ProblemIndex` (estimators with per-problem state only).

    Returns of :meth:`forward`:
        Tensor of shape ``scores.shape[:-2]``: the value (its use: see ``direction``).
    """

    name: str = "estimator"
    nats: bool = True
    #: The bound's per-row statistics and finisher; ``None``: it needs the whole score tensor.
    rowwise: RowwiseBound | None = None
    #: Whether ``finish`` and ``forward`` take a :class:`ProblemIndex` (keeps state).
    per_problem_state: bool = False
    #: Whether ``finish`` and ``forward`` need the column-side inputs as ``targets``.
    needs_targets: bool = False
    #: ``"lower"`` (maximise the value), ``"upper"`` (minimise it) or ``"neither"``.
    direction: str = "lower"
    #: Whether the scores must be log conditional densities.
    needs_log_density: bool = False
    #: For an upper bound, what the model producing the scores maximises (row-wise).
    model_objective: RowwiseBound | None = None
    #: The valid anchors (rows) an estimation problem needs.
    min_rows: int = 1
    #: Whether ``forward`` draws random numbers.
    stochastic: bool = False

    @property
    def needs_anchors(self) -> bool:
        """Whether the row-side inputs must be passed as ``anchors``."""
        return False

    @property
    def optimal_offset(self) -> float:
        r"""The constant :math:`c` at which the bound is tight for the critic
        :math:`f^* + c`, with :math:`f^*(x, y) = \log \frac{p(x, y)}{p(x)\,p(y)}` the
        pointwise MI: 0 where a constant shift of the scores changes nothing (InfoNCE, DV,
        MINE) or the optimum is :math:`f^*` itself (JS, SMILE); 1 for NWJ; the log-baseline
        :math:`a` for TUBA (Poole et al. 2019, eq. 9: the optimum :math:`f^* + a`) and
        α-InfoNCE.
        :func:`~mitools.estimate.estimate_mi` adds it to the Gaussian start
        (:meth:`~mitools.critics.QuadraticCritic.init_gaussian_`'s ``offset``)."""
        return 0.0

    @property
    def needs_row_partition(self) -> bool:
        """Whether each anchor needs its own set of negatives (a per-row log-partition, as in
        InfoNCE); such a bound would weight one deranged partner as ``N - 1`` negatives."""
        stats = self.rowwise.statistics if self.rowwise is not None else ()
        return any(s.over == "columns" for s in stats)

    def finish(
        self,
        stats: RowStatistics,
        *,
        anchors: Tensor | None = None,
        problems: ProblemIndex | None = None,
    ) -> Tensor:
        """The value of every problem from its accumulated row statistics.

        Every execution path calls it once per call with the statistics it accumulated: the
        dense path of :meth:`forward` and of the local losses, their blocked and attention
        paths. The default returns ``self.rowwise.finish(stats)``; override it when the value
        needs parameters or state of the module (a learned baseline, a moving average), and
        read only the statistics ``rowwise`` declares. The losses also pass ``targets=`` (the
        column-side inputs of each row's *positive*, ``(..., N, Dy)``) to estimators that
        declare ``needs_targets``.

        Args:
            stats: the per-row statistics of a batch of problems, each ``(..., N)``
                (:class:`~mitools.bounds.RowStatistics`; ``stats.of(statistic)`` reads one).
            anchors: the row-side inputs ``(..., N, D)`` when ``needs_anchors``, else ``None``.
            problems: which problems the batch holds, when ``per_problem_state``, else
                ``None``.

        Returns:
            Tensor of shape ``stats.positive.shape[:-1]``, one value per problem (in nats
            unless ``nats`` is ``False``); autograd through it gives the training signal.
            Every caller checks the shape (``checked_finish``).

        Raises:
            TypeError: the estimator is not row-wise (``rowwise`` is ``None``).
        """
        if self.rowwise is None:
            raise TypeError(
                f"{type(self).__name__} is not row-wise (rowwise is None): call it on the score "
                "tensor instead"
            )
        return self.rowwise.finish(stats)

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        """``forward``, its result checked: one value per problem, ``scores.shape[:-2]``."""
        out = super().__call__(*args, **kwargs)
        scores = args[0] if args else kwargs.get("scores")
        if isinstance(scores, Tensor) and scores.dim() >= 2:
            check_value(self, out, tuple(scores.shape[:-2]), "forward",
                        f"scores of shape {tuple(scores.shape)}")
        return out

    def forward(
        self,
        scores: Tensor,
        *,
        offset: int = 0,
        row_mask: Tensor | None = None,
        col_mask: Tensor | None = None,
        anchors: Tensor | None = None,
        targets: Tensor | None = None,
        problems: ProblemIndex | None = None,
    ) -> Tensor:
        if self.rowwise is None:
            raise NotImplementedError(
                f"{type(self).__name__} must implement forward, or declare rowwise (a "
                "mitools.bounds.RowwiseBound: its per-row statistics and finisher)"
            )
        stats = bounds.row_statistics(
            scores, self.rowwise.statistics, offset=offset, row_mask=row_mask,
            col_mask=col_mask, name=self.name,
        )  # fmt: skip
        side: dict[str, Tensor | None] = {}
        if self.needs_targets and targets is not None:  # finish takes each row's positive
            side["targets"] = positive_targets(targets, scores.shape[-2], offset)
        return checked_finish(self, stats, anchors=anchors, problems=problems, **side)


def check_value(estimator: Estimator, value: Any, expected: tuple[int, ...], method: str,
                given: str) -> Tensor:
    """``value``, returned by ``estimator``'s ``method``, checked to be a tensor of shape
    ``expected``: one value per estimation problem. An estimator of one's own that reduced
    further (a mean over the problems, or none over the rows) failed deep inside the local
    losses (``reduce: values must have shape (K,)``), or was taken for the whole batch.

    Args:
        estimator: the estimator, named in the message.
        value: what it returned.
        expected: the shape of one value per problem.
        method: ``"forward"`` or ``"finish"``.
        given: what it was given, in words (e.g. ``"scores of shape (4, 8, 8)"``).

    Returns:
        ``value``.

    Raises:
        TypeError: ``value`` is not a tensor.
        ValueError: ``value`` has another shape than ``expected``.

    Example:
        >>> import torch
        >>> check_value(Estimator(), torch.zeros(3), (3,), "finish", "3 problems").shape
        torch.Size([3])
    """
    where = f"{type(estimator).__name__} ({estimator.name!r}).{method}"
    if not isinstance(value, Tensor):
        raise TypeError(
            f"{where} returned a {type(value).__name__} for {given}; it must return a tensor of "
            f"shape {expected}, one value per estimation problem"
        )
    if tuple(value.shape) != expected:
        raise ValueError(
            f"{where} returned shape {tuple(value.shape)} for {given}; it must return shape "
            f"{expected}, one value per estimation problem (the scores' leading dimensions): "
            "reduce over the rows (mitools.bounds.rows_mean, rows_sum, rows_logsumexp) and "
            "over nothing else"
        )
    return value


def checked_finish(estimator: Estimator, stats: RowStatistics, **kwargs: Any) -> Tensor:
    """``estimator.finish(stats, **kwargs)``, checked by ``check_value``: every path's
    one call of a finisher.

    Example:
        >>> import torch
        >>> from mitools import bounds
        >>> from mitools.estimators import InfoNCE
        >>> st = bounds.row_statistics(torch.zeros(2, 4, 4), InfoNCE.rowwise.statistics)
        >>> checked_finish(InfoNCE(), st)
        tensor([0., 0.])
    """
    value = estimator.finish(stats, **kwargs)
    shape = tuple(stats.positive.shape)
    return check_value(estimator, value, shape[:-1], "finish",
                       f"statistics of {shape[-1]} rows in problems of shape {shape[:-1]}")


def check_declarations(estimator: Estimator) -> Estimator:
    """An estimator of one's own, checked for what it declares before anything runs.

    Returns:
        ``estimator``.

    Raises:
        ValueError: ``direction`` is not ``"lower"``, ``"upper"`` or ``"neither"``.
        TypeError: ``rowwise`` is neither ``None`` nor a :class:`~mitools.bounds.RowwiseBound`,
            or it is ``None`` and the class does not override ``forward`` (nothing computes the
            value).

    Example:
        >>> from mitools.estimators import DV
        >>> check_declarations(DV()).name
        'dv'
    """
    name = type(estimator).__name__
    if estimator.direction not in ("lower", "upper", "neither"):
        raise ValueError(
            f"the estimator {estimator.name!r} declares direction={estimator.direction!r}; "
            "expected one of ('lower', 'upper', 'neither')"
        )
    rowwise = estimator.rowwise
    if rowwise is not None and not isinstance(rowwise, RowwiseBound):
        raise TypeError(
            f"{name}.rowwise must be None or a mitools.bounds.RowwiseBound (the statistics the "
            f"bound needs and its finisher), got {type(rowwise).__name__} {rowwise!r}"
        )
    if rowwise is None and type(estimator).forward is Estimator.forward:
        raise TypeError(
            f"{name} declares no rowwise bound and does not override forward, so nothing "
            "computes its value: set rowwise = mitools.bounds.RowwiseBound(name, statistics, "
            "finish) (every execution path then takes it), or implement forward(scores, *, "
            "offset, row_mask, col_mask, anchors, targets, problems)"
        )
    return estimator


def positive_targets(targets: Tensor, n: int, offset: int) -> Tensor:
    """The column-side inputs of each row's positive, ``(..., N, Dy)``, from ``(..., M, Dy)``.

    Raises:
        TypeError: ``targets`` is not a tensor.
        ValueError: fewer than 2 dimensions (a 1-D ``y`` of ``n`` samples of one feature is
            ``y[:, None]``), or fewer than ``N + offset`` columns.

    Example:
        >>> import torch
        >>> positive_targets(torch.arange(5.0)[:, None], 2, 3).flatten()
        tensor([3., 4.])
    """
    if not isinstance(targets, Tensor):
        raise TypeError(
            f"targets must be a torch.Tensor (..., M, Dy), got {type(targets).__name__}"
        )
    if targets.dim() < 2:
        raise ValueError(
            f"targets has shape {tuple(targets.shape)} but must be (..., M, Dy) with at least 2 "
            "dims, one row per column of the scores (a 1-D y of n samples of one feature is "
            "y[:, None])"
        )
    if targets.shape[-2] < n + offset:
        raise ValueError(
            f"targets {tuple(targets.shape)} must hold the positives of the {n} anchors at "
            f"rows offset..offset+N (offset={offset})"
        )
    return targets[..., offset : offset + n, :]


_SCORE_KEYWORDS = ("offset", "row_mask", "col_mask")


def extra_required_arguments(fn: Callable[..., Tensor]) -> list[str]:
    """The arguments ``fn`` requires after the scores, which the call
    ``fn(scores, offset=, row_mask=, col_mask=)`` of an estimator cannot give; empty when its
    signature cannot be read.

    Example:
        >>> from mitools import bounds
        >>> extra_required_arguments(bounds.tuba), extra_required_arguments(bounds.dv)
        (['log_baseline'], [])
    """
    params = _parameters(fn)
    return [p.name for p in params[1:] if p.default is p.empty and p.name not in _SCORE_KEYWORDS
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _parameters(fn: Callable[..., Tensor]) -> list[inspect.Parameter]:
    """``fn``'s parameters; none when its signature cannot be read or it takes ``*args``."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # a builtin or an extension without a signature
        return []
    return [] if params and params[0].kind is params[0].VAR_POSITIONAL else params


def _untaken_keywords(fn: Callable[..., Tensor]) -> list[str]:
    """Which of ``offset``, ``row_mask``, ``col_mask`` ``fn`` does not take."""
    params = _parameters(fn)
    if not params or any(p.kind is p.VAR_KEYWORD for p in params):
        return []
    named = {p.name for p in params if p.kind is not p.POSITIONAL_ONLY}
    return [k for k in _SCORE_KEYWORDS if k not in named]


class FunctionalEstimator(Estimator):
    """Wraps a function ``fn(scores, *, offset, row_mask, col_mask) -> Tensor`` as an estimator.

    The wrapped value is a lower bound (or objective) of critic scores, to maximise
    (``direction = "lower"``). A public bound of :mod:`mitools.bounds` brings its row-wise form
    along (:func:`mitools.bounds.rowwise_bound`), so its estimator takes every execution path;
    an upper bound or a bound on log densities (``bounds.club``, ``bounds.l1out``) is refused
    here: :func:`~mitools.estimators.get_estimator` gives its own estimator.

    Args:
        fn: a bound with the signature of :func:`mitools.bounds.infonce`.
        name: a label for ``repr`` and logs.
        nats: whether the value is an MI estimate in nats; by default ``False`` for
            ``bounds.jsd`` (as :class:`~mitools.estimators.JSD`) and ``True`` otherwise.

    Raises:
        TypeError: ``fn`` is not callable, needs arguments beyond the scores, does not take
            ``offset``, ``row_mask`` and ``col_mask``, or is a public bound that is not a
            lower bound of critic scores.
        ValueError: ``nats`` is not ``None``, ``True`` or ``False`` (``1`` included).

    Example:
        >>> import torch
        >>> from mitools import bounds
        >>> FunctionalEstimator(bounds.dv)(torch.zeros(3, 3))
        tensor(0.)
    """

    def __init__(self, fn: Callable[..., Tensor], name: str | None = None,
                 nats: bool | None = None):
        super().__init__()
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        nats = check_optional_flag("nats", nats, "the bound's own")
        from mitools.estimators.registry import estimator_for_function  # imports this module

        label = str(getattr(fn, "__name__", "custom"))
        own = estimator_for_function(fn)
        if own is not None and (own.direction != "lower" or own.needs_log_density):
            raise TypeError(
                f"bounds.{label} is {'an upper bound' if own.direction == 'upper' else 'a bound'}"
                f" on log densities (direction={own.direction!r}), which FunctionalEstimator "
                f"would maximise as a lower bound of critic scores; use "
                f"get_estimator({label!r}) or mitools.estimators.{type(own).__name__}()"
            )
        needs, untaken = extra_required_arguments(fn), _untaken_keywords(fn)
        if needs or untaken:
            what = ([f"it requires {', '.join(needs)}"] if needs else []) + (
                [f"it does not take {', '.join(untaken)}"] if untaken else [])
            raise TypeError(
                f"the bound function {label!r} is called as fn(scores, offset=, row_mask=, "
                f"col_mask=), but {' and '.join(what)}: bind required arguments first (e.g. "
                "with functools.partial), and take the keywords (or **kwargs)"
            )
        self.fn = fn
        self.name = name or label
        self.nats = (own.nats if own is not None else True) if nats is None else nats
        self.rowwise = bounds.rowwise_bound(fn)

    def forward(
        self,
        scores: Tensor,
        *,
        offset: int = 0,
        row_mask: Tensor | None = None,
        col_mask: Tensor | None = None,
        anchors: Tensor | None = None,
        targets: Tensor | None = None,  # in the Estimator signature; this bound needs none
        problems: ProblemIndex | None = None,
    ) -> Tensor:
        out = self.fn(scores, offset=offset, row_mask=row_mask, col_mask=col_mask)
        # one estimate per leading index, as every bound returns: a function that reduces
        # further (scores.mean()) was accepted, and LocalMILoss failed deep in a scatter
        expected = scores.shape[:-2]
        if not isinstance(out, Tensor) or out.shape != expected:
            got = (f"shape {tuple(out.shape)}" if isinstance(out, Tensor)
                   else f"a {type(out).__name__}")
            raise ValueError(
                f"the bound function {self.name!r} returned {got} for scores of shape "
                f"{tuple(scores.shape)}: a bound returns one estimate per leading index, a "
                f"tensor of shape {tuple(expected)} (scores.shape[:-2]); reduce over the last "
                "two dimensions only")
        return out

    def extra_repr(self) -> str:
        return f"fn={self.name}"
