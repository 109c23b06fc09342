"""Fitting one fold's critic: build it, train it with early stopping, evaluate it held out."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Protocol, cast

import torch
from torch import Tensor, nn

from mitools.bounds import check_finite
from mitools.critics.base import checked_scores
from mitools.estimate.averaging import WeightAverage
from mitools.estimate.data import Standardization, _standardize
from mitools.estimate.evaluation import (
    _evaluate,
    _evaluate_leaving_groups_out,
    _summarisable,
    _validation_groups,
)
from mitools.estimate.folds import Split
from mitools.estimate.result import FoldResult, HistoryPoint
from mitools.estimate.stats import jackknife_stderr
from mitools.estimators import Estimator


# The critics' optional methods, found by duck typing: nn.Module's stub types every attribute
# it does not declare as ``Tensor | Module`` (its __getattr__), so a call needs these casts.
class _ShiftedScores(Protocol):
    def score_shifted(self, x: Tensor, y: Tensor, shifts: Tensor) -> Tensor: ...


class _GaussianStart(Protocol):
    def init_gaussian_(self, x: Tensor, y: Tensor, ridge: float = ...,
                       offset: float = ...) -> nn.Module: ...

#: a trained critic replaces the initial one only when its validation bound is higher by more
#: than this many standard errors of the difference between the two bounds (a paired
#: delete-a-group jackknife over the validation samples)
REPLACE_START_SE = 2.0
#: with ``screen=True``, the other folds keep the Gaussian start untrained when the first
#: fold's best trained critic beats it on that fold's test part by at most this many standard
#: errors of the difference (a paired jackknife): the replacement margin, on 5 times the
#: samples (the test part, on which the other folds train but never test)
SCREEN_SE = 2.0
#: with ``screen=True``, the first fold's training is checked at every validation evaluation
#: from this step on, until the check is passed: the gain of its best trained critic over
#: the Gaussian start on the fold's test part, in standard errors of the difference (the
#: screen's paired jackknife). Training stops there, and the other folds keep the start
#: untrained, when the gain is at most 0, or at most :data:`SCREEN_CHECK_SE` at an
#: evaluation that did not improve the best validation bound (one that early stopping
#: counts); above :data:`SCREEN_CHECK_SE` the check is passed, and the screen decides at the
#: end as before (:data:`SCREEN_SE`). Training that goes on is unchanged (the check scores
#: copies of the critics and draws no random numbers). Where the dependence is Gaussian
#: after the margins' transform, the first fold trained 200 to 400 steps before early
#: stopping and rarely beat the start; where training helps but is slow to show it held out
#: (one-hot labels against a mixture: a gain of 2.5 at step 100, 10 at the end, with
#: validation still improving), the check waits
SCREEN_CHECK_STEP = 100
#: see :data:`SCREEN_CHECK_STEP`. Where training helps, the gain at the first check was
#: mostly larger than at the end (the critics chosen later on validation gain less on the
#: test part), so the check can ask for more than :data:`SCREEN_SE`, which stops more of the
#: chance gains that would train every fold. ``benchmarks/screen_check.py``, with the checks
#: never stopping: on the 120 Beyond Normal samples (n = 5,000), at least 3.9 at step 100 on
#: all 54 of the non-Gaussian families (additive noise, Student-t, Swiss roll, 3 x 3 and 5 x 5
#: spirals; median 18.6), which pass the first check; of the 60 with Gaussian dependence,
#: the checks stop 57 (52 at step 100), 4 of which the screen at the end would have trained
#: on a chance gain of 2.3; they stop all six 25 x 25 spirals, where training helped little
#: (at most 2.1). On y = x + 0.35 (x^2 - 1) + 0.7 noise (16 seeds): at least 4.7 at n =
#: 1,000 and 9.4 at n = 3,000; at n = 300 they stop 4 seeds, one of which (2.8, with
#: validation stalled at step 100) the screen at the end would have let train
SCREEN_CHECK_SE = 3.0
#: once the screen's held-out gain (above :data:`SCREEN_SE`, on the first fold's test part,
#: which the other folds train and validate on) has shown that training beats the start,
#: the other folds replace the start with their best trained critic whenever its validation
#: bound is higher, where the start's validation bound is at most
#: :data:`AFTER_GAIN_MAX_NATS`: the margin of :data:`REPLACE_START_SE` guards against chance
#: gains where training has not been shown to help, and validation parts of a few dozen
#: samples kept the start in folds whose trained critic was 3 to 8 standard errors better
#: held out
REPLACE_AFTER_GAIN_SE = 0.0
#: above this validation bound of the start (nats) every fold keeps the margin of
#: :data:`REPLACE_START_SE`: the best of several noisy validation values exceeds the start's
#: by chance, and the more so at high MI, where the DV bound's noise grows. With the screen's
#: gain forced on the d = 20 Gaussian (n = 5,000, 6 seeds each), folds replacing the start on
#: any validation gain lost at most 0.014 nats held out at 1 nat, none replaced it at 2,
#: they lost 0.08 and 0.14 at 4 and up to 3.6 at 10
AFTER_GAIN_MAX_NATS = 2.0

def _paired_gain(base: float, base_loo: Tensor, other: float, other_loo: Tensor) -> float:
    """``other - base`` in standard errors of that difference: a paired delete-a-group
    jackknife over the leave-a-group-out values of both, computed with the same groups.
    ``inf`` for a gain with no spread (identical leave-a-group-out differences); NaN when
    either value is NaN."""
    if math.isnan(base) or math.isnan(other):
        return math.nan
    stderr = jackknife_stderr(other_loo - base_loo)
    if stderr == 0:
        return math.inf if other > base else (-math.inf if other < base else 0.0)
    return (other - base) / stderr


def _gain_over_start(estimator: Estimator, start_val: float, start_loo: Tensor | None,
                     trained_val: float, trained_state: tuple[dict, dict], model: nn.Module,
                     x: Tensor, y: Tensor, jackknife: tuple[Tensor, int] | None) -> float:
    """How much the best trained critic (validation bound ``trained_val``, its state and the
    estimator's in ``trained_state``) beats the initial one (``start_val``) on the validation
    pairs ``x, y``: the difference of the two bounds in standard errors of that difference
    (:func:`_paired_gain`, with the groups the start's values ``start_loo`` were computed
    with). ``-inf``: no gain (or nothing trained); ``inf``: a gain on a validation part too
    small for groups, or with no spread; NaN: a NaN bound.

    The trained critic replaces the start above :data:`REPLACE_START_SE` (at low MI, once
    the screen has shown that training helps, :data:`REPLACE_AFTER_GAIN_SE`): at high MI
    the validation bound is noisy enough to prefer, by chance, critics much worse held out,
    and on independent data a critic fitted to noise. Only when the jackknife is needed is
    ``trained_state`` loaded into ``model`` and ``estimator`` (both in evaluation mode) to
    score the validation pairs."""
    if math.isnan(start_val) or math.isnan(trained_val):
        return math.nan
    if not trained_val > start_val:
        return -math.inf
    if start_loo is None or jackknife is None:
        return math.inf
    model.load_state_dict(trained_state[0])
    estimator.load_state_dict(trained_state[1])
    _, trained_loo, _ = _evaluate_leaving_groups_out(estimator, model, x, y, *jackknife)
    return _paired_gain(start_val, start_loo, trained_val, trained_loo)


def _screen_check_gain(start: tuple[float, Tensor], trained: tuple[float, Tensor]) -> float:
    """The screen's check (:data:`SCREEN_CHECK_STEP`): the gain of the best trained critic so
    far over the start on the first fold's test part, each given as its bound and
    leave-a-group-out values there, in standard errors of the difference."""
    return _paired_gain(start[0], start[1], trained[0], trained[1])


def _screen_stops(gain: float, stalled: bool) -> bool:
    """Whether the screen's check ends the first fold's training: no gain held out at all,
    or at most :data:`SCREEN_CHECK_SE` where the evaluation did not improve the best
    validation bound (``stalled``). A NaN gain never stops it."""
    return gain <= 0.0 or (stalled and gain <= SCREEN_CHECK_SE)


def _batch_value(estimator: Estimator, model: nn.Module, x: Tensor, y: Tensor, negatives: int,
                 gen: torch.Generator) -> Tensor:
    """The bound on one training batch ``x, y (B, d)``.

    All ``B * B`` pairs in general. A critic with ``score_shifted`` and a bound of
    ``SAMPLED_NEGATIVES_BOUNDS`` (in ``mitools.estimate.evaluation``) score only the ``B``
    positives and ``negatives`` shifted partners per sample (``y[(i + s) % B]`` for
    ``negatives`` distinct shifts ``s``, never the positive): the bound is then the
    estimator on a single row holding the mean positive score and the ``B * negatives``
    negative scores, which is exactly its value with the positive term averaged over the
    batch and the partition term over the sampled negatives (the same formula, on fewer
    pairs)."""
    b = x.shape[0]
    m = min(negatives, b - 1)
    if not (hasattr(model, "score_shifted") and _summarisable(estimator)):
        return estimator(checked_scores(model, x, y), anchors=x)
    shifts = torch.randperm(b - 1, generator=gen)[:m] + 1
    # (1 + m, B): positives, then each shift
    scores = cast(_ShiftedScores, model).score_shifted(x, y, shifts)
    row = torch.cat([scores[0].mean()[None], scores[1:].reshape(-1)])[None, :]  # (1, 1 + B m)
    return estimator(row)


def _finite(params: Sequence[Tensor]) -> bool:
    """Whether every gradient of ``params`` is finite: the largest magnitude of each (a sum
    of squares would overflow at entries of ~1e19, which are finite), one host sync, about
    0.06 ms a step for the default critic on a CPU, 2 % of the step."""
    grads = [p.grad for p in params if p.grad is not None]
    return not grads or bool(torch.isfinite(torch.stack(
        torch._foreach_norm(grads, math.inf)).max()))


#: devices with a fused AdamW kernel for floating-point parameters (CPU from torch 2.4)
FUSED_ADAMW_DEVICES = ("cpu", "cuda")


def _adamw(groups: list[dict], lr: float) -> torch.optim.AdamW:
    """AdamW with its fused kernel, one call per step for all parameters (on a CPU, 0.2 ms
    against 0.5 ms for the default ``foreach`` path with the default critic), where every
    parameter is a real floating-point tensor on a device of :data:`FUSED_ADAMW_DEVICES` and
    this torch has the kernel there; else ``foreach``. The update is the same. (torch checks
    parameters for the fused kernel only at the first step, too late to fall back, so they
    are checked here.)"""
    params = [p for g in groups for p in g["params"]]
    if all(p.is_floating_point() and p.device.type in FUSED_ADAMW_DEVICES for p in params):
        try:
            return torch.optim.AdamW(groups, lr=lr, fused=True)
        except RuntimeError:  # torch < 2.4 has no fused kernel on the CPU (checked here)
            pass
    return torch.optim.AdamW(groups, lr=lr, foreach=True)


def _fit_fold(xt: Tensor, yt: Tensor, split: Split, model: nn.Module, estimator: Estimator, *,
              init: str, report: str, dtype: torch.dtype, device: torch.device,
              batch_size: int, negatives: int, max_steps: int, lr: float, weight_decay: float,
              ema: float, eval_every: int, patience: int, gen: torch.Generator,
              on_eval: Callable[[int, float], None] | None,
              group_of: Tensor, groups: int, screen_on_test: bool = False,
              shown_gain: bool = False
              ) -> tuple[FoldResult, Tensor]:
    """Train one fold's critic with early stopping; evaluate it held out and in sample, also
    with each jackknife group left out (``(groups,)``, the fold's value without group g).

    ``xt``, ``yt`` are float64 (after the margins transform); the fold standardises them in
    float64 and casts to ``dtype``. With ``ema > 0`` an exponential moving average of the
    critic's weights (decay ``ema`` per step) is what is evaluated and kept: it averages out
    the minibatch noise of the last ~1 / (1 - ema) steps. ``on_eval(steps_done, val)`` is
    called after every validation evaluation (for progress reports). The best trained
    critic replaces the start when its validation gain (:func:`_gain_over_start`) exceeds
    :data:`REPLACE_START_SE` standard errors, or, with ``shown_gain`` (the screen found a
    gain) where the start's validation bound is at most :data:`AFTER_GAIN_MAX_NATS`,
    :data:`REPLACE_AFTER_GAIN_SE`. With ``screen_on_test``, the best trained critic is also
    scored on the test part against the start (``FoldResult.held_out_gain``, which decides
    the screen)."""
    fit = torch.cat([split.train, split.val])
    x_mean, x_scale = _standardize(xt, fit)
    y_mean, y_scale = _standardize(yt, fit)
    xs = ((xt - x_mean) / x_scale).to(device=device, dtype=dtype)
    ys = ((yt - y_mean) / y_scale).to(device=device, dtype=dtype)
    train, val, test = (p.to(device) for p in split)
    model = model.to(device=device, dtype=dtype)
    estimator = estimator.to(device=device, dtype=dtype)
    if init == "gaussian":
        # tight for the bound: the Gaussian pointwise MI plus its offset (1 for NWJ)
        cast(_GaussianStart, model).init_gaussian_(xs[train], ys[train],
                                                   offset=estimator.optimal_offset)
    optimizer = _adamw([
        {"params": list(model.parameters()), "weight_decay": float(weight_decay)},
        {"params": list(estimator.parameters()), "weight_decay": 0.0},
    ], lr)
    trainable = [p for g in optimizer.param_groups for p in g["params"]]
    batch = min(batch_size, len(train))
    # the critic that is evaluated and kept: the trained one, or the average of its weights
    average = WeightAverage(model, ema) if ema > 0 else None
    kept = model if average is None else average.module

    def snapshot() -> tuple[dict, dict]:
        return copy.deepcopy(kept.state_dict()), copy.deepcopy(estimator.state_dict())

    model.eval()
    estimator.eval()
    # the start's validation bound, with each jackknife group left out for the replacement
    # test (one pass for DV, MINE and NWJ; one masked evaluation per group for the other
    # bounds, affordable on the validation part)
    jackknife = _validation_groups(len(val), gen, device) if max_steps > 0 else None
    if jackknife is not None:
        start_val, start_loo, _ = _evaluate_leaving_groups_out(
            estimator, model, xs[val], ys[val], *jackknife)
    else:
        start_val, start_loo = _evaluate(estimator, model, xs[val], ys[val]), None
    history = [HistoryPoint(0, math.nan, start_val)]
    if on_eval is not None:
        on_eval(0, start_val)
    start_state = snapshot()
    # the screen compares critics on the test part with the jackknife groups; otherwise
    # only the kept critic's bound is needed there (no per-group evaluations: 20 masked
    # passes with bounds other than DV, MINE and NWJ)
    test_groups = groups if screen_on_test else 0
    # critics other than the live ones are scored on the test part by a copy of each module,
    # so that training goes on untouched; by step (0: the start), each scored once
    scratch: list[tuple[nn.Module, Estimator]] = []
    on_test: dict[int, tuple[float, Tensor, float]] = {}

    def held_out_of(at: int, state: tuple[dict, dict]) -> tuple[float, Tensor]:
        """The bound on the test part of the critic of step ``at`` (its state and the
        estimator's in ``state``), and its leave-a-group-out values (none without the
        screen)."""
        if at not in on_test:
            if not scratch:
                scratch.append((copy.deepcopy(kept), copy.deepcopy(estimator)))
            other, other_estimator = scratch[0]
            other.load_state_dict(state[0])
            other_estimator.load_state_dict(state[1])
            other.eval()
            other_estimator.eval()
            on_test[at] = _evaluate_leaving_groups_out(
                other_estimator, other, xs[test], ys[test], group_of[test], test_groups)
        return on_test[at][:2]

    best_val, since_best = start_val, 0  # early stopping: any improvement
    passed = not screen_on_test  # the screen's check found a gain above SCREEN_CHECK_SE
    screened_out = False  # it stopped training
    trained_val, trained_step, trained_state = -math.inf, 0, start_state  # best trained critic
    running, running_n, step = 0.0, 0, 0
    order, at = torch.randperm(len(train), generator=gen), 0  # epochs of shuffled batches
    for step in range(1, max_steps + 1):
        model.train()
        estimator.train()
        if at + batch > len(train):
            order, at = torch.randperm(len(train), generator=gen), 0
        idx = train[order[at : at + batch].to(device)]
        at += batch
        xb, yb = xs[idx], ys[idx]
        # non-finite scores (a learning rate of 1e9) are a diverged fit, handled below, not
        # the bounds' error about masks and features
        with check_finite(False):
            objective = _batch_value(estimator, model, xb, yb, negatives, gen)
        batch_value = float(objective.detach())
        if math.isfinite(batch_value):
            optimizer.zero_grad(set_to_none=True)
            (-objective).backward()
        if not (math.isfinite(batch_value) and _finite(trainable)):
            # the bound or its gradient left the finite range (NWJ's, TUBA's or FLO's exp
            # overflowed): one step would make every parameter NaN. Training has diverged: it
            # stops here, before the step, with the validation bound recorded as -inf, so
            # that the fold keeps its best critic so far and a kept start is flagged
            history.append(HistoryPoint(step, batch_value, -math.inf))
            if on_eval is not None:
                on_eval(step, -math.inf)
            break
        optimizer.step()
        if average is not None:
            average.update()
        running += batch_value
        running_n += 1
        if step % eval_every == 0 or step == max_steps:
            kept.eval()
            estimator.eval()
            with check_finite(False):  # likewise (an average of diverging weights)
                val_value = _evaluate(estimator, kept, xs[val], ys[val])
            if val_value == math.inf:  # infinite positive scores: diverged, never the best
                val_value = -math.inf
            history.append(HistoryPoint(step, running / running_n, val_value))
            running, running_n = 0.0, 0
            if on_eval is not None:
                on_eval(step, val_value)
            if val_value > trained_val:
                trained_val, trained_step, trained_state = val_value, step, snapshot()
            if not passed and step >= SCREEN_CHECK_STEP and trained_val > -math.inf:
                # the screen's check: is training ahead of the start held out?
                gain = _screen_check_gain(held_out_of(0, start_state),
                                          held_out_of(trained_step, trained_state))
                if _screen_stops(gain, stalled=not val_value > best_val):
                    screened_out = True
                    break
                passed = gain > SCREEN_CHECK_SE  # (NaN: checked again)
            if val_value > best_val:
                best_val, since_best = val_value, 0
            else:
                since_best += 1
                if since_best >= patience:
                    break
    # the best trained critic replaces the start only when its validation bound is higher by
    # more than the margin, in standard errors of that comparison (see _gain_over_start)
    model.eval()
    estimator.eval()
    gain = _gain_over_start(estimator, start_val, start_loo, trained_val, trained_state, model,
                            xs[val], ys[val], jackknife)
    margin = (REPLACE_AFTER_GAIN_SE if shown_gain and start_val <= AFTER_GAIN_MAX_NATS
              else REPLACE_START_SE)
    if gain > margin:
        best_step, best_state = trained_step, trained_state
    else:
        best_step, best_state = 0, start_state
    # not converged: the steps ran out while training was still improving the critic that is
    # kept (a trained one, from one of the last two evaluations). A kept start counts as
    # converged: training never beat it by the replacement margin, so nothing says more steps
    # would (on Gaussian data, noise-level gains late in training would flag every run)
    converged = (since_best >= patience or best_step == 0 or screened_out
                 or best_step < history[max(0, len(history) - 2)].step)
    model.load_state_dict(best_state[0])  # the same architecture as the average's module
    estimator.load_state_dict(best_state[1])
    model.eval()
    estimator.eval()
    # the bounds, and the fold's value with each jackknife group left out of its evaluations
    if best_step in on_test and test_groups == groups:  # scored by the screen's check
        held_out, test_loo, log_z = on_test[best_step]
    else:
        held_out, test_loo, log_z = _evaluate_leaving_groups_out(
            estimator, model, xs[test], ys[test], group_of[test], groups)
    own = train[: len(test)]
    corrected = report == "corrected"
    in_sample, own_loo, _ = _evaluate_leaving_groups_out(
        estimator, model, xs[own], ys[own], group_of[own], groups if corrected else 0)
    value = (held_out + in_sample) / 2 if corrected else held_out
    loo = (test_loo + own_loo) / 2 if corrected else test_loo

    # the start's held-out bound; for the screen, the best trained critic's gain over it on
    # the test part (samples the other folds train and validate on, never test on)
    start = (held_out, test_loo) if best_step == 0 else held_out_of(0, start_state)
    held_out_gain = math.nan
    if screen_on_test and trained_val > -math.inf:
        trained = ((held_out, test_loo) if best_step != 0
                   else held_out_of(trained_step, trained_state))
        held_out_gain = _paired_gain(start[0], start[1], trained[0], trained[1])
    return FoldResult(
        held_out=held_out,
        in_sample=in_sample,
        value=value,
        history=history,
        best_step=best_step,
        steps=step,
        split=split,
        critic=model,
        estimator=estimator,
        standardization=Standardization(x_mean, x_scale, y_mean, y_scale),
        start_held_out=start[0],
        log_partition=log_z,
        converged=converged,
        gain_over_start=gain,
        held_out_gain=held_out_gain,
        stopped_at_check=screened_out,
    ), loo

