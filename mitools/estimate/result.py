"""What :func:`~mitools.estimate.estimate_mi` returns: per-fold results and the estimate."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from torch import Tensor, nn

from mitools.estimate.compare import EqualByContent
from mitools.estimate.data import MarginTransform, Standardization
from mitools.estimate.diagnostics import Diagnostics
from mitools.estimate.folds import Split
from mitools.estimators import Estimator

__all__ = ["FoldResult", "HistoryPoint", "MIEstimate"]


class HistoryPoint(NamedTuple):
    """One evaluation during training: ``step`` (training steps done; 0 is the initial
    critic), ``train`` (mean of the minibatch bound values since the previous evaluation,
    nats; NaN at step 0) and ``val`` (the bound on the whole validation split, nats: the
    training criterion on held-back samples, used to choose the critic; not the estimate)."""

    step: int
    train: float
    val: float


@dataclass(frozen=True, eq=False)  # == by content: EqualByContent
class FoldResult(EqualByContent):
    """One fold of :func:`estimate_mi`.

    Attributes:
        held_out: the bound of the kept critic on this fold's test part, in nats.
        in_sample: its bound on as many of its own training samples, in nats.
        value: what this fold reports: ``held_out``, or the midpoint of ``held_out`` and
            ``in_sample`` with ``report="corrected"``.
        history: evaluations during training (validation values, not the estimate).
        best_step: the step whose critic was kept (the best validation value of training,
            if it beat the initial critic's by the replacement margin: 2 standard errors, or
            any gain in the folds after a screen's held-out gain above 2 where the initial
            critic's validation bound is at most 2 nats; 0: the initial one).
        steps: training steps run (early stopping may end before ``max_steps``).
        split: the fold's train / validation / test indices into the samples.
        critic: the trained critic (on standardised inputs, in evaluation mode).
        estimator: the trained estimator module (holds learned baselines, if any).
        standardization: the location/scale applied before the critic (after the margins
            transform).
        start_held_out: the bound of the initial critic (the Gaussian fit with
            ``init="gaussian"``) on the test part, in nats; NaN if not evaluated.
        log_partition: :math:`\\log` of the mean of :math:`e^{f}` over the test part's
            negative pairs, in nats; :meth:`MIEstimate.pointwise` subtracts it.
        converged: False when training ran to ``max_steps`` while still improving the kept
            critic (a trained one, from one of the last two evaluations); a kept initial
            critic counts as converged (training never beat it by the replacement margin).
        gain_over_start: how much the best trained critic beat the initial one on the
            validation part, in standard errors of the difference (a paired jackknife); above
            the replacement margin (see ``best_step``) it replaced the initial critic.
            ``-inf``: no gain, or no training (a fold left untrained by ``screen``); ``inf``:
            a gain on a validation part too small for a standard error, or with none; NaN: a
            NaN bound, or not recorded (a file saved by an older mitools).
        held_out_gain: the first fold's, with ``screen`` and the Gaussian start: how much
            the best trained critic beat the initial one on the test part, in standard
            errors of the difference (a paired jackknife over the test part's groups); at
            most 2 leaves the other folds untrained, NaN (a NaN bound) never does, and above
            2 the other folds replace the start on any validation gain (at low MI; see
            ``best_step``). It never changes the first fold's own choice. NaN in the other
            folds, and without the screen.
        stopped_at_check: the first fold's, with ``screen`` and the Gaussian start: its
            training stopped at the screen's early check (at an evaluation from step 100 on),
            where its best trained critic so far was no better than the initial one on the
            test part, or at most 3 standard errors better while validation had stopped
            improving; the other folds then keep the initial critic untrained, whatever
            ``held_out_gain`` (the same comparison) reads. False in the other folds, without
            the screen, and in files saved by an older mitools.
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
    start_held_out: float = math.nan
    log_partition: float = math.nan
    converged: bool = True
    gain_over_start: float = math.nan
    held_out_gain: float = math.nan
    stopped_at_check: bool = False


def estimate_text(value: float, stderr: float, interval: tuple[float, float], sided: str,
                  level: str) -> str:
    """An estimate and its interval in words, for :func:`estimate_line` (``level`` as
    :func:`level_text` writes it). A one-sided lower bound (``sided="lower"``) reads
    ``I(X; Y) >= low``, not ``I(X; Y) = value``.

    Example:
        >>> text = estimate_text(0.20433, 0.01254, (0.17931, math.inf), "lower", "95 %")
        >>> text.partition("bound); ")
        ('I(X; Y) >= 0.1793 nats (95 % lower confidence ', 'bound); ',
         'estimate 0.2043 ± 0.0125 (sampling noise)')
        >>> estimate_text(0.3196, 0.0269, (0.2587, 0.3805), "two-sided", "95 %")
        'I(X; Y) = 0.3196 ± 0.0269 nats, 95 % interval [0.2587, 0.3805]'
        >>> estimate_text(math.inf, math.nan, (math.nan, math.nan), "two-sided", "95 %")
        'I(X; Y) = inf nats (no interval: the estimate is infinite)'
    """
    if value == math.inf:
        return "I(X; Y) = inf nats (no interval: the estimate is infinite)"
    if math.isnan(stderr):  # groups=0, or a jackknife without spread
        return f"I(X; Y) = {value:.4f} nats (no interval)"
    low, high = interval
    if sided == "lower":
        return (f"I(X; Y) >= {low:.4f} nats ({level} lower confidence bound); "
                f"estimate {value:.4f} ± {stderr:.4f} (sampling noise)")
    return f"I(X; Y) = {value:.4f} ± {stderr:.4f} nats, {level} interval [{low:.4f}, {high:.4f}]"


def level_text(level: float) -> str:
    """A confidence level as the percentage it was given, unrounded (not ``:.0%``), with the
    space of ``95 %``.

    Example:
        >>> level_text(0.95), level_text(0.975), level_text(0.999), level_text(0.9999999)
        ('95 %', '97.5 %', '99.9 %', '99.99999 %')
    """
    return f"{100 * level:.12g} %"  # 12 digits: 97.49999999999999 (0.975 * 100) is 97.5


def estimate_line(result: MIEstimate) -> str:
    """The first line of ``print(result)`` and of the command line's text report, one text
    for both: the estimate and its interval (``estimate_text``), then the method in
    brackets. ``print(result)`` adds the diagnostics' flags below it, one a line, as the
    command line does further down (in its own terms).

    Example:
        >>> estimate_line(MIEstimate(0.3196, 0.0269, (0.2587, 0.3805), 0.95, "ksg1"))
        'I(X; Y) = 0.3196 ± 0.0269 nats, 95 % interval [0.2587, 0.3805] [ksg1]'
    """
    text = estimate_text(result.value, result.stderr, result.interval, result.sided,
                         level_text(result.level))
    return f"{text} [{result.method}]"


def constant_uncertainty(constant: list[str]) -> str:
    """The ``uncertainty`` of an estimate where the variables named in ``constant`` (``x``,
    ``y`` or both) hold one value: the MI is exactly 0 and there is no interval. One text for
    :func:`~mitools.estimate.estimate_mi` and the classical estimators.

    Example:
        >>> constant_uncertainty(["y"])
        'none: y is constant, and the mutual information of a constant with anything is exactly 0'
    """
    return (f"none: {' and '.join(constant)} {'is' if len(constant) == 1 else 'are'} constant, "
            "and the mutual information of a constant with anything is exactly 0")


@dataclass(frozen=True, eq=False)  # == by content: EqualByContent
class MIEstimate(EqualByContent):
    """An estimate of the mutual information of two arrays, with its uncertainty.

    Returned by :func:`estimate_mi` (``method="neural"``) and by the classical estimators
    (KSG, Gaussian, mixed discrete-continuous), so that results from every method can be
    compared and tabulated alike. Fields that only a neural estimate has are ``None``
    (``bound``, ``report``, ``diagnostics``) or NaN (``held_out``, ``in_sample``,
    ``optimism``) otherwise, and ``folds`` is empty.

    **What the interval means** is in ``sided``:

    * ``"two-sided"``: ``interval = (low, high)`` is a confidence interval at ``level`` for
      what the estimator estimates at this sample size: it covers the sampling noise of
      ``value``, not the estimator's bias. The classical estimators report this (their
      ``uncertainty`` says "sampling noise only"); it is a confidence interval for the MI
      only where that bias is small against ``stderr``: KSG is biased low at high MI and in
      high dimension (2.62, interval (2.52, 2.71), for 4.15 nats over 5 + 5 dimensions at
      n = 1,000), the Gaussian estimate is blind to non-linear dependence
      (:mod:`mitools.classical`) and biased upwards by
      :func:`~mitools.classical.gaussian.gaussian_bias` (5.46 nats for independent 20 + 20
      dimensions on 60 samples, whose interval excludes 0; a warning says so).
      :func:`estimate_mi` with ``sided="two-sided"`` is the same: an interval for the critic
      family's bound.
    * ``"lower"``: ``interval = (low, inf)``: with confidence ``level``, the MI is at least
      ``low``. :func:`estimate_mi` reports this: a critic family can miss part of the
      dependence, and nothing in the data bounds what it missed, so no upper limit is
      claimed; ``low`` is a lower confidence bound for the best bound of the critic family,
      itself at most the MI. ``stderr`` is the sampling noise of ``value`` alone.

    Attributes:
        value: the estimate in nats.
        stderr: its standard error, in nats (how: ``uncertainty``). For
            :func:`estimate_mi`, a delete-a-group jackknife over the samples, with the fold
            critics held fixed.
        interval: ``(low, high)`` in nats, at confidence ``level`` (``high = inf`` when
            ``sided == "lower"``).
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
        sided: ``"two-sided"`` or ``"lower"``: see above.
        diagnostics: signs of a critic family that misses the dependence, or of training
            that did not finish (:class:`~mitools.estimate.Diagnostics`; neural only).
        margins: the fitted margins transforms of ``x`` and ``y`` (neural only), used by
            :meth:`pointwise` on new samples.
        settings: the options the estimate was made with (plain values; every option of
            :func:`estimate_mi` that shapes the value but ``device`` and ``threads``, and
            those kept as fields above), used by :meth:`load` to rebuild the critics;
            ``x_columns`` / ``y_columns`` hold the column names of pandas inputs (``None``
            for arrays), by which :meth:`pointwise` matches new DataFrames' columns.
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
    sided: str = "two-sided"
    diagnostics: Diagnostics | None = field(default=None, repr=False)
    margins: tuple[MarginTransform, MarginTransform] | None = field(default=None, repr=False)
    settings: dict[str, Any] = field(default_factory=dict, repr=False)

    def __str__(self) -> str:
        """:func:`estimate_line` (the command line's first line too), then one line
        ``diagnostics: ...`` per flag of ``diagnostics``."""
        flags = self.diagnostics.flags if self.diagnostics is not None else ()
        return "\n".join([estimate_line(self), *(f"diagnostics: {flag}" for flag in flags)])

    def _neural(self, what: str) -> None:
        if self.folds:
            return
        if self.method == "neural":  # estimate_mi on a constant variable trains no critic
            raise ValueError(f"{what} needs the fitted critics, and this estimate has none: "
                             f"{self.uncertainty.removeprefix('none: ')}")
        raise ValueError(f"{what} needs a neural estimate (from estimate_mi); this one was "
                         f"made by method={self.method!r}")

    @property
    def critic(self) -> nn.Module:
        """The first fold's trained critic (apply its ``standardization`` first)."""
        self._neural("critic")
        return self.folds[0].critic

    @property
    def standardization(self) -> Standardization:
        """The first fold's standardisation."""
        self._neural("standardization")
        return self.folds[0].standardization

    @property
    def history(self) -> list[HistoryPoint]:
        """The first fold's training history."""
        self._neural("history")
        return self.folds[0].history

    def pointwise(self, x: Any, y: Any, fold: int | None = None) -> Tensor:
        """The fitted critics' pointwise MI of new pairs; see
        :func:`mitools.estimate.pointwise_mi` (``fold``: one fold's critic; default: the
        mean over folds)."""
        from mitools.estimate.pointwise import pointwise_mi

        return pointwise_mi(self, x, y, fold=fold)

    def save(self, path: str | Path) -> None:
        """Write the estimate, critics included, to ``path``; see
        :func:`mitools.estimate.save_estimate`."""
        from mitools.estimate.persist import save_estimate

        save_estimate(self, path)

    @classmethod
    def load(cls, path: str | Path, critic: nn.Module | None = None,
             bound: Estimator | None = None) -> MIEstimate:
        """Read an estimate written by :meth:`save`; see
        :func:`mitools.estimate.load_estimate`."""
        from mitools.estimate.persist import load_estimate

        return load_estimate(path, critic=critic, bound=bound)

    def plot_history(self, ax: Any = None) -> Any:
        """Plot every fold's training history; see :func:`mitools.estimate.plot_history`."""
        from mitools.estimate.plot import plot_history

        return plot_history(self, ax=ax)
