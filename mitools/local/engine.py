"""What both losses share: the result, the checks of a bound and a critic, and the engine.

The engine holds the patterns, the critic seen through its capabilities
(:mod:`~mitools.local.scoring`), the estimator and the backend, and computes the per-pair values
of a call on the chosen path. What it does with an estimator follows what the estimator
declares (:class:`~mitools.estimators.Estimator`: ``direction``, ``needs_log_density``,
``model_objective``, ``min_rows``, ...): it never asks for its class. For an upper bound it
scores with the critic's parameters detached and computes the model's objective in a second,
positives-only pass with the features detached (:class:`LocalMIResult`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import Tensor, nn

from mitools import distributed
from mitools.bounds import RowwiseBound
from mitools.estimators import Estimator, get_estimator
from mitools.local.backends import check_backend, choose_backend, problem_values
from mitools.local.dense import derangement_values
from mitools.local.grid import check_pair, pack, pack_mask, parse_pattern
from mitools.local.problems import PairMasks, Problems
from mitools.local.scoring import Scorer, critic_name
from mitools.negatives import NEGATIVES, NegativeColumns
from mitools.option_checks import check_int
from mitools.reductions import reduce
from mitools.samplers import PositionPairs

__all__ = ["DIRECTIONS", "LocalMIResult", "check_bound_and_critic"]

DIRECTIONS = ("lower", "upper", "neither")


class LocalMIResult(NamedTuple):
    """What :class:`LocalMILoss` and :class:`GlobalMILoss` return.

    **Sign convention.** ``loss`` is what to minimise to do what the estimator is for:
    ``-objective`` for a lower bound (and for DoE, whose gradient fits its models), so that
    minimising it maximises the bound over the critic and the features; ``+objective`` for an
    upper bound (``direction == "upper"``: CLUB, vCLUB, L1Out), so that minimising it
    minimises the MI of the features, with the critic's parameters *detached* (an upper
    bound is not minimised over its model :math:`q`). The model is trained by ``model_loss``:
    minus the reduced model objective (the log-likelihood of the positives, averaged over the
    pairs), with the *features* detached. So one optimiser over everything does both players'
    steps::

        out = loss_fn(z, s)
        (task_loss + beta * out.loss + out.model_loss).backward()
        optimiser.step()

    For every other estimator ``model_loss`` is a zero (``loss`` already trains the critic).

    **Fields**, with their shapes (``K`` position pairs; each field is described in full
    under its name below): ``loss`` ``()``, ``estimate`` ``()``, ``local`` (the sampler's
    map: ``(H, W)`` for the cells of ``"b c h w"`` against ``"b c"``, ``(H, W, L)`` for
    :class:`~mitools.samplers.AllPairs` against ``"b c l"``; ``()`` for
    :class:`GlobalMILoss`), ``pair_estimates`` ``(K,)``, ``pairs``
    (:class:`~mitools.samplers.PositionPairs` or ``None``), ``model_loss`` ``()``.

    Example:
        >>> import torch
        >>> from mitools.local import LocalMILoss
        >>> out = LocalMILoss("infonce", x_pattern="b c h w")(torch.randn(8, 4, 3, 2),
        ...                                                   torch.randn(8, 4))
        >>> out.loss.shape, out.local.shape, out.pair_estimates.shape, len(out.pairs)
        (torch.Size([]), torch.Size([3, 2]), torch.Size([6]), 6)
    """

    loss: Tensor
    estimate: Tensor
    local: Tensor
    pair_estimates: Tensor
    pairs: PositionPairs | None
    model_loss: Tensor


#: each field's documentation: what ``help(LocalMIResult)`` and the API pages show under it
_FIELD_DOCS = {
    "loss": "``()`` the scalar to minimise, ``-objective`` (lower bounds, DoE) or "
            "``+objective`` (upper bounds, whose critic parameters it does not reach); "
            "carries the gradient.",
    "estimate": "``()`` the reduced objective (detached), in nats of MI for every bound but "
                ":class:`~mitools.estimators.JSD` (for ``reduction='logsumexp'`` a soft "
                "maximum of the position pairs' estimates).",
    "local": "detached per-position estimates in nats, unpacked to the sampler's map shape "
             "(``(H, W)`` for the cells of an ``'b c h w'`` grid against a global ``'b c'``, "
             "one estimate per cell; ``(*grid_x, *grid_y)`` for all pairs of two grids); NaN "
             "for pairs not sampled or without any valid sample. ``()`` for "
             ":class:`GlobalMILoss`.",
    "pair_estimates": "``(K,)`` detached estimate of each of the ``K`` position pairs, in "
                      "nats, in the order of ``pairs`` (NaN where no valid sample); ``(1,)`` "
                      "for :class:`GlobalMILoss`.",
    "pairs": "the :class:`~mitools.samplers.PositionPairs` scored this call (``K`` pairs of an "
             "x position and a y position, and where each lands in ``local``); ``None`` for "
             ":class:`GlobalMILoss`.",
    "model_loss": "``()`` the scalar to minimise to fit the critic of an upper bound (minus "
                  "its mean log-likelihood over the active pairs, features detached); a zero "
                  "for every other estimator.",
}
for _name, _doc in _FIELD_DOCS.items():
    getattr(LocalMIResult, _name).__doc__ = _doc


class _Objective(Estimator):
    """A row-wise objective as an estimator: the model objective of an upper bound."""

    def __init__(self, rowwise: RowwiseBound):
        super().__init__()
        self.rowwise = rowwise
        self.name = rowwise.name


def check_bound_and_critic(bound: Any, critic: Any) -> tuple[Estimator, Any]:
    """The estimator of ``bound`` (:func:`~mitools.estimators.get_estimator`), checked against
    ``critic``: what every local or pooled objective runs before it trains.

    Raises:
        TypeError: ``critic`` is neither a module, a callable nor ``None``.
        ValueError: the estimator declares an unknown ``direction``, or needs log conditional
            densities (an upper or generative bound) from a critic that does not declare
            ``log_density = True``: on an unnormalised critic's scores it bounds nothing.

    Example:
        >>> check_bound_and_critic("infonce", None)[0].name
        'infonce'
    """
    estimator = get_estimator(bound)
    if critic is not None and not isinstance(critic, nn.Module) and not callable(critic):
        raise TypeError(
            f"critic must be an nn.Module, a callable or None, got {type(critic).__name__}"
        )
    if estimator.direction not in DIRECTIONS:
        raise ValueError(
            f"the estimator {estimator.name!r} declares direction={estimator.direction!r}; "
            f"expected one of {DIRECTIONS}"
        )
    if estimator.needs_log_density and not getattr(critic, "log_density", False):
        name = critic_name(critic)
        raise ValueError(
            f"the bound {estimator.name!r} needs log conditional densities log q(y_j | x_i) as "
            f"scores (needs_log_density), and {name} does not declare log_density = True: on an "
            "unnormalised critic's scores it bounds nothing. Pass a "
            "mitools.conditionals.ConditionalDensity (DiagonalGaussian, FullGaussian, "
            "MixtureOfGaussians) as the critic, or set log_density = True on a critic that "
            "returns normalised log-densities; with a critic use a discriminative bound "
            "(infonce, dv, nwj, flo, ...)"
        )
    return estimator, critic


def _check_chunk(value: Any, name: str) -> int | None:
    if value is None:
        return None
    return check_int(name, value)


class _Engine(nn.Module):
    """What both losses share: patterns, the critic's capabilities, the bound, the backend."""

    gather: bool = False

    if TYPE_CHECKING:  # nn.Module types its __call__ as returning Any; the call is forward's
        def __call__(
            self,
            x: Tensor,
            y: Tensor,
            x_mask: Tensor | None = None,
            y_mask: Tensor | None = None,
        ) -> LocalMIResult: ...

    def __init__(
        self,
        bound: Any,
        critic: Any,
        x_pattern: str,
        y_pattern: str,
        backend: str,
        chunk_size: Any,
        column_chunk_size: Any,
        negatives: str,
    ) -> None:
        super().__init__()
        self.estimator, critic = check_bound_and_critic(bound, critic)
        self.critic = critic
        upper = self.estimator.direction == "upper"
        # An upper bound reaches the features only; its model is fitted by model_loss.
        self._scorer = Scorer(critic, detach_parameters=upper)
        self._model_scorer = Scorer(critic)
        objective = self.estimator.model_objective if upper else None
        self._model_estimator = _Objective(objective) if objective is not None else None
        self.x_pattern, self.y_pattern = x_pattern, y_pattern
        self._x_axes = parse_pattern(x_pattern, "x_pattern")
        self._y_axes = parse_pattern(y_pattern, "y_pattern")
        if negatives not in NEGATIVES:
            raise ValueError(f"negatives must be one of {NEGATIVES}, got {negatives!r}")
        self.negatives = negatives
        self.chunk_size = _check_chunk(chunk_size, "chunk_size")
        self.column_chunk_size = _check_chunk(column_chunk_size, "column_chunk_size")
        self.backend = check_backend(
            backend, self.estimator, self._scorer, negatives, self.column_chunk_size
        )
        #: the path the last forward ran on (``"dense"``, ``"blocked"`` or ``"attention"``)
        self.last_backend: str | None = None

    def _pack(self, x: Any, y: Any, x_mask: Any, y_mask: Any):
        dim_x, dim_y = self._scorer.channels()
        name = self._scorer.name
        xs, grid_x = pack(x, self._x_axes, "x", self.x_pattern, dim_x, name)
        ys, grid_y = pack(y, self._y_axes, "y", self.y_pattern, dim_y, name)
        check_pair(xs, ys, x, y)
        self._scorer.check_dot_product(
            xs.shape[-1], ys.shape[-1], (self.x_pattern, self.y_pattern), (x.shape, y.shape),
            (self._x_axes, self._y_axes),
        )
        batch = xs.shape[0]
        xm = pack_mask(x_mask, "x_mask", batch, grid_x, xs.device, ("y_mask", grid_y))
        ym = pack_mask(y_mask, "y_mask", batch, grid_y, ys.device, ("x_mask", grid_x))
        return xs, ys, grid_x, grid_y, xm, ym

    def _values(
        self,
        xs: Tensor,
        xm: Tensor | None,
        cols: NegativeColumns,
        pairs: PositionPairs,
        generator: torch.Generator | None,
        model: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Per-pair values ``(K,)`` and the active pairs (``None``: all).

        ``model``: the model objective of an upper bound instead of the bound (the positives
        only, on the dense path, the critic's parameters attached).
        """
        estimator = self._model_estimator if model else self.estimator
        scorer = self._model_scorer if model else self._scorer
        assert estimator is not None
        short = max(self.estimator.min_rows, 1) - xs.shape[0]
        if self.gather and distributed.is_distributed() and short > 0:
            # Too few anchors on this rank for a problem (none; one for L1Out): masked-out
            # anchors (weight 0 when the ranks are combined) keep the rank in the collectives of
            # both passes (the gathered columns' backward, the critic's parameters under DDP),
            # where raising here alone would leave the other ranks waiting. Their positives
            # are the first columns: never used, and inside the columns whatever the offset.
            xs = torch.cat([xs, xs.new_zeros((short, *xs.shape[1:]))])
            xm = torch.zeros(xs.shape[:2], dtype=torch.bool, device=xs.device)
            cols = cols._replace(offset=0)
        xp = xs.transpose(0, 1)  # (P, N, Cx)
        yq = cols.features.transpose(0, 1)  # (Q, M, Cy)
        masks = PairMasks(
            xm.transpose(0, 1) if xm is not None else None,
            cols.mask.transpose(0, 1) if cols.mask is not None else None,
        )
        problems = Problems(pairs, masks, cols.offset, xs.shape[0], cols.features.shape[0],
                            min_rows=self.estimator.min_rows,
                            gathered=self.gather and distributed.is_distributed())  # fmt: skip
        if self.negatives == "derangement" and not model:
            self.last_backend = "dense"
            u, v = scorer.factors(xp, yq) if scorer.separable else (xp, yq)
            return derangement_values(
                problems, scorer, estimator, xp, yq, u, v, self.chunk_size, generator
            )
        if model:
            backend, kernel, chunk = "dense", None, None
        else:
            backend, kernel = choose_backend(
                self.backend, estimator, scorer, self.negatives, problems, xs.dtype,
                xs.device, self.chunk_size is not None or self.column_chunk_size is not None,
            )  # fmt: skip
            chunk = self.chunk_size
        values, ran = problem_values(
            backend, kernel, problems, scorer, estimator, xp, yq, chunk,
            self.column_chunk_size,
        )  # fmt: skip
        if not model:
            self.last_backend = ran
        if self.gather and distributed.is_distributed():
            return problems.combine_ranks(values)
        return values, problems.active

    def _finish(
        self,
        objective: Tensor,
        xs: Tensor,
        xm: Tensor | None,
        cols: NegativeColumns,
        pairs: PositionPairs,
        active: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """``(loss, model_loss)`` from the reduced objective (see :class:`LocalMIResult`)."""
        if self.estimator.direction != "upper":
            return -objective, objective.new_zeros(())
        if self._model_estimator is None:
            return objective, objective.new_zeros(())
        detached = cols._replace(features=cols.features.detach())
        model, _ = self._values(xs.detach(), xm, detached, pairs, None, model=True)
        return objective, -reduce(model, active, "mean")
