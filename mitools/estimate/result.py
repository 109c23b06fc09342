"""What :func:`~mitools.estimate.estimate_mi` returns: per-fold results and the estimate."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

from torch import nn

from mitools.estimate.data import Standardization
from mitools.estimate.folds import Split
from mitools.estimators import Estimator

__all__ = ["FoldResult", "HistoryPoint", "MIEstimate"]


class HistoryPoint(NamedTuple):
    """One evaluation during training: ``step`` (training steps done; 0 is the initial
    critic), ``train`` (mean of the minibatch bound values since the previous evaluation,
    nats; NaN at step 0) and ``val`` (the bound on the whole validation split, nats)."""

    step: int
    train: float
    val: float


@dataclass(frozen=True)
class FoldResult:
    """One fold of :func:`estimate_mi`.

    Attributes:
        held_out: the bound of the kept critic on this fold's test part, in nats.
        in_sample: its bound on as many of its own training samples, in nats.
        value: what this fold reports: ``held_out``, or the midpoint of ``held_out`` and
            ``in_sample`` with ``report="corrected"``.
        history: evaluations during training (validation values, not the estimate).
        best_step: the step whose critic was kept (best validation value; 0: the initial one).
        steps: training steps run (early stopping may end before ``max_steps``).
        split: the fold's train / validation / test indices into the samples.
        critic: the trained critic (on standardised inputs, in evaluation mode).
        estimator: the trained estimator module (holds learned baselines, if any).
        standardization: the location/scale applied before the critic (after the rank
            transform with ``margins="ranks"``).
    """

    held_out: float
    in_sample: float
    value: float
    history: list[HistoryPoint] = field(repr=False)
    best_step: int
    steps: int
    split: Split = field(repr=False)
    critic: nn.Module = field(repr=False)
    estimator: Estimator = field(repr=False)
    standardization: Standardization = field(repr=False)


@dataclass(frozen=True)
class MIEstimate:
    """An estimate of the mutual information of two arrays, with its uncertainty.

    Returned by :func:`estimate_mi` (``method="neural"``) and by the classical estimators
    (KSG, Gaussian, mixed discrete-continuous), so that results from every method can be
    compared and tabulated alike. Fields that only a neural estimate has are ``None``
    (``bound``, ``report``) or NaN (``held_out``, ``in_sample``, ``optimism``) otherwise, and
    ``folds`` is empty.

    Attributes:
        value: the estimate in nats.
        stderr: its standard error, in nats (how: ``uncertainty``). For
            :func:`estimate_mi`, a delete-a-group jackknife over the samples, with the fold
            critics held fixed.
        interval: ``(low, high)`` in nats, at confidence ``level`` (how: ``uncertainty``).
        level: confidence level of ``interval``.
        method: which estimator produced it: ``"neural"`` for :func:`estimate_mi`, or the
            name of a classical estimator.
        uncertainty: how ``stderr`` and ``interval`` were obtained, in words.
        bound: name of the bound trained and reported (neural only).
        held_out: mean over folds of the bound on held-out test samples (conservative).
        in_sample: mean over folds of the bound on the critics' own training samples.
        optimism: ``(in_sample - held_out) / 2``, the estimated gap between a fitted critic
            and the best critic of its family on either side; ``value - held_out`` when
            ``report="corrected"``.
        report: ``"corrected"`` or ``"held_out"`` (neural only).
        folds: one :class:`FoldResult` per fold (neural only).
    """

    value: float
    stderr: float
    interval: tuple[float, float]
    level: float
    method: str = "neural"
    uncertainty: str = ""
    bound: str | None = None
    held_out: float = math.nan
    in_sample: float = math.nan
    optimism: float = math.nan
    report: str | None = None
    folds: tuple[FoldResult, ...] = field(default=(), repr=False)

    @property
    def critic(self) -> nn.Module:
        """The first fold's trained critic (apply its ``standardization`` first)."""
        return self.folds[0].critic

    @property
    def standardization(self) -> Standardization:
        """The first fold's standardisation."""
        return self.folds[0].standardization

    @property
    def history(self) -> list[HistoryPoint]:
        """The first fold's training history."""
        return self.folds[0].history
