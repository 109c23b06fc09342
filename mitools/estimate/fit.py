"""Fitting one fold's critic: build it, train it with early stopping, evaluate it held out."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from mitools.critics import MarginalPotentials, QuadraticCritic, get_critic
from mitools.estimate.critic import QuadraticJointCritic
from mitools.estimate.data import Standardization, _standardize
from mitools.estimate.folds import Split
from mitools.estimate.pointwise import log_partition
from mitools.estimate.result import FoldResult, HistoryPoint
from mitools.estimate.stats import JACKKNIFE_GROUPS, jackknife_stderr
from mitools.estimators import DV, MINE, NWJ, Estimator

#: bounds whose positive term is the mean of the positive scores, so that a batch's value is
#: the bound on one row holding that mean and the sampled negatives (see _batch_value)
SAMPLED_NEGATIVES_BOUNDS = (DV, MINE, NWJ)
#: a trained critic replaces the initial one only when its validation bound is higher by more
#: than this many standard errors of the difference between the two bounds (a paired
#: delete-a-group jackknife over the validation samples)
REPLACE_START_SE = 2.0
#: with ``screen=True``, the other folds keep the Gaussian start untrained when the first
#: fold's best trained critic beats it on that fold's test part by at most this many standard
#: errors of the difference (a paired jackknife): the replacement margin, on 5 times the
#: samples (the test part, on which the other folds train but never test)
SCREEN_SE = 2.0
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
#: a set's sum of negatives' ``exp``, shifted by the largest negative of all samples, below
#: this is recomputed shifted by its own largest: entries more than ~708 nats below the shift
#: underflow to 0 in float64, and above it their share of the sum is below e^-100 n^2
UNDERFLOW_GUARD = math.exp(-600.0)


def _summarisable(estimator: Estimator) -> bool:
    """Whether the bound is a function of the mean positive score and the mean exponentiated
    negative score alone (:data:`SAMPLED_NEGATIVES_BOUNDS`, without row-side inputs such as a
    learned baseline), so that a row of those two summaries stands for any set of pairs."""
    return isinstance(estimator, SAMPLED_NEGATIVES_BOUNDS) and not estimator.needs_anchors


@torch.no_grad()
def _evaluate(estimator: Estimator, critic: nn.Module, x: Tensor, y: Tensor) -> float:
    """The bound on all pairs of ``(x, y)``."""
    return float(estimator(critic(x, y), anchors=x))


@torch.no_grad()
def _evaluate_leaving_groups_out(estimator: Estimator, critic: nn.Module, x: Tensor, y: Tensor,
                                 group_of: Tensor, groups: int
                                 ) -> tuple[float, Tensor, float]:
    """The bound on all pairs of ``(x, y)``, ``(groups,)`` values of it without the samples
    of group ``g`` for each ``g < groups`` (``group_of`` gives each sample's group), and the
    log-partition of the scores; the scores are computed once for all of them.

    For the bounds of :data:`SAMPLED_NEGATIVES_BOUNDS` (functions of the mean positive score
    and the mean exponentiated negative score) all of them come from one pass over the
    scores (:func:`_summaries_leaving_groups_out`): each set of samples is passed to the
    estimator as a row of two entries, the mean positive score and the log-mean-exp of the
    negatives, and the latter over all samples is the log-partition. Other bounds are
    evaluated once on all pairs, then once per group with masks."""
    scores = critic(x, y)
    if _summarisable(estimator):
        rows = _summaries_leaving_groups_out(scores, group_of, groups)  # (1 + groups, 1, 2)
        values = estimator(rows.to(scores.dtype)).double().cpu()
        return float(values[0]), values[1:], float(rows[0, 0, 1])
    value = float(estimator(scores, anchors=x))
    out = []
    for g in range(groups):  # a loop over groups (20), each a full vectorised evaluation
        keep = group_of != g
        out.append(float(estimator(scores, row_mask=keep, col_mask=keep, anchors=x)))
    return value, torch.tensor(out, dtype=torch.float64), log_partition(scores)


def _summaries_leaving_groups_out(scores: Tensor, group_of: Tensor, groups: int) -> Tensor:
    """``(1 + groups, 1, 2)``: for all samples (row 0) and for the samples outside each
    group g (row 1 + g), the mean of the positive (diagonal) scores and the log of the mean
    of ``exp`` over the negative (off-diagonal) scores, from one pass over the scores
    (group-by-group block sums, float64)."""
    # one float64 copy of the scores, turned in place into the negatives' exponentials
    negatives = scores.to(torch.float64, copy=True)
    n = negatives.shape[0]
    diagonal = negatives.diagonal().clone()
    # the negatives alone, shifted by their largest (the positives may exceed them by more
    # than exp can span; they get no exp here)
    negatives.diagonal().fill_(-math.inf)
    peak = negatives.max()
    e = negatives.sub_(peak).exp_()
    total = e.sum()
    one_hot = (torch.nn.functional.one_hot(group_of, groups).to(e.dtype) if groups
               else e.new_zeros(n, 0))  # (n, groups)
    blocks = one_hot.T @ e @ one_hot  # (groups, groups): sums of exp over group pairs
    # without group g: the blocks of the other groups, summed as they are (all >= 0; taking
    # g's row and column from the total cancels away a small rest when one pair dominates)
    others = 1.0 - torch.eye(groups, dtype=e.dtype, device=e.device)
    kept = torch.cat([total[None], (others @ blocks @ others).diagonal()])
    size = torch.cat([e.new_full((1,), n), n - one_hot.sum(0)])  # samples in each set
    pos = torch.cat([diagonal.sum()[None], diagonal.sum() - one_hot.T @ diagonal]) / size
    log_kept = torch.log(kept) + peak
    # a set whose largest negative lies far below the peak (the group left out holds the
    # largest negatives, at very high MI) lost its sum to underflow: its log-sum-exp again,
    # from the scores, shifted by its own largest (rare: a loop over such groups only)
    for g in (torch.nonzero(kept[1:] < UNDERFLOW_GUARD).flatten() + 1).tolist():
        keep = group_of != g - 1
        rest = scores[keep][:, keep].to(torch.float64)
        rest.diagonal().fill_(-math.inf)
        log_kept[g] = torch.logsumexp(rest.flatten(), dim=0)
    log_mean_exp = log_kept - torch.log(size * (size - 1))
    return torch.stack([pos, log_mean_exp], dim=-1)[:, None, :]


def _validation_groups(n: int, gen: torch.Generator,
                       device: torch.device | None = None) -> tuple[Tensor, int] | None:
    """Random delete-a-group jackknife groups for ``n`` validation samples: ``(group_of,
    groups)`` (``group_of`` on ``device``) with :data:`~mitools.estimate.stats.JACKKNIFE_GROUPS`
    groups or fewer, of at least 2 samples each, so that leaving one out keeps a negative
    pair; ``None`` below 4 samples."""
    if n < 4:
        return None
    groups = min(JACKKNIFE_GROUPS, n // 2)
    return (torch.randperm(n, generator=gen) % groups).to(device), groups


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


def _build_critic(critic: str | nn.Module, dim_x: int, dim_y: int, hidden: Sequence[int],
                  embed_dim: int, potentials: bool, residual: str | None = "joint"
                  ) -> nn.Module:
    """The critic named by ``critic`` (a module is deep-copied); for ``"quadratic"``,
    ``residual`` chooses the joint (:class:`~mitools.estimate.critic.QuadraticJointCritic`)
    or separable (:class:`~mitools.critics.QuadraticCritic`) residual, or none."""
    if isinstance(critic, nn.Module):
        return copy.deepcopy(critic)
    name = critic.lower()
    kwargs: dict[str, Any] = {}
    if name == "quadratic":
        if not len(hidden) or residual is None:
            return QuadraticCritic(dim_x, dim_y)
        if residual == "joint":
            return QuadraticJointCritic(dim_x, dim_y, tuple(hidden), embed_dim)
        kwargs["hidden"] = tuple(hidden)
    if name in ("separable", "concat"):
        kwargs["hidden"] = tuple(hidden)
    if name in ("separable", "quadratic"):
        kwargs["embed_dim"] = embed_dim
    model = get_critic(critic, dim_x, dim_y, **kwargs)
    if potentials and not isinstance(model, QuadraticCritic):
        model = MarginalPotentials(model, dim_x, dim_y)
    return model


def _batch_value(estimator: Estimator, model: nn.Module, x: Tensor, y: Tensor, negatives: int,
                 gen: torch.Generator) -> Tensor:
    """The bound on one training batch ``x, y (B, d)``.

    All ``B * B`` pairs in general. A critic with ``score_shifted`` and a bound of
    :data:`SAMPLED_NEGATIVES_BOUNDS` score only the ``B`` positives and ``negatives``
    shifted partners per sample (``y[(i + s) % B]`` for ``negatives`` distinct shifts
    ``s``, never the positive): the bound is then the estimator on a single row holding the
    mean positive score and the ``B * negatives`` negative scores, which is exactly its value
    with the positive term averaged over the batch and the partition term over the sampled
    negatives (the same formula, on fewer pairs)."""
    b = x.shape[0]
    m = min(negatives, b - 1)
    if not (hasattr(model, "score_shifted") and _summarisable(estimator)):
        return estimator(model(x, y), anchors=x)
    shifts = torch.randperm(b - 1, generator=gen)[:m] + 1
    scores = model.score_shifted(x, y, shifts)  # (1 + m, B): positives, then each shift
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
        model.init_gaussian_(xs[train], ys[train], offset=estimator.optimal_offset)
    optimizer = _adamw([
        {"params": list(model.parameters()), "weight_decay": float(weight_decay)},
        {"params": list(estimator.parameters()), "weight_decay": 0.0},
    ], lr)
    trainable = [p for g in optimizer.param_groups for p in g["params"]]
    batch = min(batch_size, len(train))
    # the critic that is evaluated and kept: the trained one, or the average of its weights
    average = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema),
                            use_buffers=True) if ema > 0 else None
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
    best_val, since_best = start_val, 0  # early stopping: any improvement
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
        value = _batch_value(estimator, model, xb, yb, negatives, gen)
        batch_value = float(value.detach())
        if math.isfinite(batch_value):
            optimizer.zero_grad(set_to_none=True)
            (-value).backward()
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
            average.update_parameters(model)
        running += batch_value
        running_n += 1
        if step % eval_every == 0 or step == max_steps:
            kept.eval()
            estimator.eval()
            val_value = _evaluate(estimator, kept, xs[val], ys[val])
            history.append(HistoryPoint(step, running / running_n, val_value))
            running, running_n = 0.0, 0
            if on_eval is not None:
                on_eval(step, val_value)
            if val_value > trained_val:
                trained_val, trained_step, trained_state = val_value, step, snapshot()
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
    converged = (since_best >= patience or best_step == 0
                 or best_step < history[max(0, len(history) - 2)].step)
    model.load_state_dict(best_state[0])  # the same architecture as the average's module
    estimator.load_state_dict(best_state[1])
    model.eval()
    estimator.eval()
    # the bounds, and the fold's value with each jackknife group left out of its evaluations
    held_out, test_loo, log_z = _evaluate_leaving_groups_out(
        estimator, model, xs[test], ys[test], group_of[test], groups)
    own = train[: len(test)]
    corrected = report == "corrected"
    in_sample, own_loo, _ = _evaluate_leaving_groups_out(
        estimator, model, xs[own], ys[own], group_of[own], groups if corrected else 0)
    value = (held_out + in_sample) / 2 if corrected else held_out
    loo = (test_loo + own_loo) / 2 if corrected else test_loo

    # the screen compares critics on the test part with the jackknife groups; otherwise
    # only the start's bound is needed (no per-group evaluations: 20 masked passes with
    # bounds other than DV, MINE and NWJ)
    test_groups = groups if screen_on_test else 0

    def held_out_of(state: tuple[dict, dict]) -> tuple[float, Tensor]:
        """Another critic's bound on the test part, and its leave-a-group-out values (none
        without the screen)."""
        model.load_state_dict(state[0])
        estimator.load_state_dict(state[1])
        other, other_loo, _ = _evaluate_leaving_groups_out(
            estimator, model, xs[test], ys[test], group_of[test], test_groups)
        model.load_state_dict(best_state[0])  # the kept critic again
        estimator.load_state_dict(best_state[1])
        return other, other_loo

    # the start's held-out bound; for the screen, the best trained critic's gain over it on
    # the test part (samples the other folds train and validate on, never test on)
    start = (held_out, test_loo) if best_step == 0 else held_out_of(start_state)
    held_out_gain = math.nan
    if screen_on_test and trained_val > -math.inf:
        trained = (held_out, test_loo) if best_step != 0 else held_out_of(trained_state)
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
    ), loo

