"""The screen's early check (``SCREEN_CHECK_STEP``): from that step on, the first fold stops at
an evaluation where its best trained critic is not ahead of the Gaussian start on the test
part, or by at most ``SCREEN_CHECK_SE`` standard errors where validation has stalled;
otherwise training goes on exactly as without the check. And the lean weight average that
replaced ``AveragedModel``."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from mitools.estimate import estimate_mi, fit
from mitools.estimate.averaging import WeightAverage
from mitools.tasks import CorrelatedGaussian

#: the check at step 40 of 120, evaluations every 20
FAST = dict(max_steps=120, eval_every=20, batch_size=128, threads=1, patience=100)


def _gaussian(n: int = 600, seed: int = 0):
    return CorrelatedGaussian(2, 0.5).sample(n, generator=seed)


def _sine(n: int = 800):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, generator=g) * 6 - 3
    return x, torch.sin(3 * x) + 0.1 * torch.randn(n, 1, generator=g)


def _run(x, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return estimate_mi(x, y, **{**FAST, **kwargs})


def _same(a, b) -> None:
    assert (a.value, a.stderr, a.held_out, a.in_sample) == (b.value, b.stderr, b.held_out,
                                                             b.in_sample)
    for fa, fb in zip(a.folds, b.folds, strict=True):
        assert (fa.steps, fa.best_step, fa.held_out_gain, fa.gain_over_start) == (
            fb.steps, fb.best_step, fb.held_out_gain, fb.gain_over_start)
        assert fa.history == fb.history
        for pa, pb in zip(fa.critic.parameters(), fb.critic.parameters(), strict=True):
            assert torch.equal(pa, pb)


def test_the_check_step_and_its_margin() -> None:
    assert fit.SCREEN_CHECK_STEP == 100
    assert fit.SCREEN_CHECK_SE == 3.0 > fit.SCREEN_SE == 2.0


@pytest.mark.parametrize(("gain", "stalled", "stops"), [
    (-math.inf, False, True), (0.0, False, True), (0.01, False, False), (2.5, False, False),
    (2.5, True, True), (3.0, True, True), (3.01, True, False), (math.inf, True, False),
    (math.nan, True, False), (math.nan, False, False)])
def test_the_rule_of_the_check(gain, stalled, stops) -> None:
    """No gain at all stops; a gain of at most SCREEN_CHECK_SE (3) stops where validation
    has stalled; NaN never stops."""
    assert fit._screen_stops(gain, stalled) is stops


def _first_stall(history, at: int) -> int | None:
    """The first evaluation at or after step ``at`` that does not improve the best
    validation bound so far (the start's included)."""
    best = history[0].val
    for point in history[1:]:
        if point.step >= at and not point.val > best:
            return point.step
        best = max(best, point.val)
    return None


def _unchecked(monkeypatch, x, y, **kwargs):
    monkeypatch.setattr(fit, "SCREEN_CHECK_STEP", 10**9)
    r = _run(x, y, **kwargs)
    monkeypatch.setattr(fit, "SCREEN_CHECK_STEP", 40)
    return r


@pytest.mark.parametrize(("gain", "stop"), [(-math.inf, "first"), (0.0, "first"),
                                            (2.5, "stall"), (3.0, "stall"), (3.01, None),
                                            (math.inf, None), (math.nan, None)])
def test_the_check_stops_the_first_fold_where_its_rule_says(monkeypatch, gain, stop) -> None:
    """Checks from step 40 here, at evaluations every 20: no gain stops at the first check;
    a gain of at most 3 at the first evaluation that does not improve on the best
    validation bound; above 3, NaN or inf, training goes on to max_steps (patience is out
    of reach here). A stop leaves the other folds untrained, and is no run out of steps."""
    x, y = _gaussian()
    stall = _first_stall(_unchecked(monkeypatch, x, y).folds[0].history, 40)
    assert stall is not None and stall < 120  # the data exercise the stalled case
    monkeypatch.setattr(fit, "_screen_check_gain", lambda *a: gain)
    r = _run(x, y)
    first = r.folds[0]
    steps = {"first": 40, "stall": stall, None: 120}[stop]
    assert first.steps == steps and first.stopped_at_check is (stop is not None)
    assert [h.step for h in first.history][-1] == first.steps
    assert first.converged  # a stop at the check is not a run out of steps
    assert not any(f.stopped_at_check for f in r.folds[1:])
    if stop is not None:
        assert r.diagnostics.untrained_folds == 2
        assert "max_steps" not in " ".join(r.diagnostics.flags)


def test_the_checks_start_at_the_first_evaluation_at_or_after_their_step(monkeypatch) -> None:
    monkeypatch.setattr(fit, "SCREEN_CHECK_STEP", 50)
    monkeypatch.setattr(fit, "_screen_check_gain", lambda *a: -math.inf)
    assert _run(*_gaussian()).folds[0].steps == 60  # evaluations at 20, 40, 60


def test_a_stop_at_the_check_reports_the_gain_it_read(monkeypatch) -> None:
    """The first fold's held_out_gain is the gain the last check read (the best trained
    critic is the same), and the other folds stay untrained."""
    monkeypatch.setattr(fit, "SCREEN_CHECK_STEP", 40)
    seen = []
    check = fit._screen_check_gain

    def spy(*args):
        seen.append(check(*args))
        return seen[-1]

    monkeypatch.setattr(fit, "_screen_check_gain", spy)
    r = _run(*_gaussian())
    assert seen and seen[-1] <= 3.0 and r.folds[0].stopped_at_check
    assert r.folds[0].held_out_gain == seen[-1]
    assert r.diagnostics.untrained_folds == 2


@pytest.mark.parametrize("data", [_gaussian, _sine])
def test_a_check_that_lets_training_go_on_changes_nothing(monkeypatch, data) -> None:
    """The check scores critics on copies and draws no random numbers: a run it lets go on
    is, bit for bit, the run without a check (Gaussian data: the first fold then trains all
    its steps and the others stay untrained; the sine: every fold trains)."""
    x, y = data()
    monkeypatch.setattr(fit, "SCREEN_CHECK_STEP", 10**9)
    unchecked = _run(x, y)
    monkeypatch.setattr(fit, "SCREEN_CHECK_STEP", 40)
    monkeypatch.setattr(fit, "_screen_check_gain", lambda *a: math.inf)
    _same(_run(x, y), unchecked)


def test_the_sine_passes_the_check_on_its_own() -> None:
    """y = sin(3x) + noise: by step 100 training beats the start by far more than 2 standard
    errors on the test part; the check lets it go on and every fold trains."""
    r = _run(*_sine(), max_steps=300, eval_every=50, patience=2)
    assert r.folds[0].steps > fit.SCREEN_CHECK_STEP and r.folds[0].held_out_gain > 8
    assert r.diagnostics.untrained_folds == 0


def test_one_hot_labels_still_learning_pass_the_check() -> None:
    """Regression: three classes against a Gaussian mixture (n = 1,200, true MI 0.877 nats).
    At step 100 the trained critic was only 2.5 standard errors ahead held out, while
    validation still improved; a check at step 100 alone stopped it there, the other folds
    kept the Gaussian start and the estimate read 0.753. It waits for a stalled evaluation
    (gain 9.9) and reads 0.877, the estimate without the check."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_estimate_inputs import _labels

    x, c, truth = _labels(1200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = estimate_mi(x, c, discrete_y=True, threads=1)
    assert truth == pytest.approx(0.877, abs=0.001)
    assert not r.folds[0].stopped_at_check and r.folds[0].held_out_gain > 8
    assert r.diagnostics.untrained_folds == 0
    assert r.value == pytest.approx(truth, abs=0.02)


def test_without_the_screen_there_is_no_check(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(fit, "SCREEN_CHECK_STEP", 40)
    monkeypatch.setattr(fit, "_screen_check_gain", lambda *a: calls.append(a) or -math.inf)
    r = _run(*_gaussian(), screen=False)
    assert not calls and all(f.steps == 120 and not f.stopped_at_check for f in r.folds)


# --- the weight average ------------------------------------------------------------------------


class _WithBuffers(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 4)
        self.register_buffer("scale", torch.ones(4))
        self.register_buffer("count", torch.zeros(2, dtype=torch.long))


def test_the_weight_average_is_averaged_models_ema_value_for_value() -> None:
    torch.manual_seed(0)
    model = _WithBuffers()
    ours = WeightAverage(model, 0.9)
    theirs = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True)
    for step in range(6):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
            model.scale.mul_(1.5)
            model.count.add_(7 * step)
        ours.update()
        theirs.update_parameters(model)
        for a, b in zip(ours.module.state_dict().values(),
                        theirs.module.state_dict().values(), strict=True):
            assert torch.equal(a, b)
    assert ours.updates == 6
    assert not torch.equal(ours.module.lin.weight, model.lin.weight)  # it averages


def test_the_weight_average_refuses_a_decay_outside_zero_one() -> None:
    with pytest.raises(ValueError, match=r"decay must be in \[0, 1\], got 1.5"):
        WeightAverage(nn.Linear(2, 2), 1.5)
