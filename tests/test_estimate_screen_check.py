"""The screen's early check (``SCREEN_CHECK_STEP``): the first fold stops at its first
evaluation at or after that step when its best trained critic beats the Gaussian start on the
test part by at most ``SCREEN_SE`` standard errors; otherwise training goes on exactly as
without the check. And the lean weight average that replaced ``AveragedModel``."""

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


@pytest.mark.parametrize(("gain", "stops"), [(-math.inf, True), (0.0, True), (2.5, True),
                                             (3.0, True), (3.01, False), (math.inf, False),
                                             (math.nan, False)])
def test_the_check_stops_at_three_standard_errors_or_less(monkeypatch, gain, stops) -> None:
    """At most SCREEN_CHECK_SE (3) stops the first fold at the check, and the other folds
    keep the start untrained, even where the gain is above the screen's usual margin (2.5);
    above it, an unknown (NaN) or spreadless (inf) gain, training goes on to max_steps
    (patience is out of reach here)."""
    monkeypatch.setattr(fit, "SCREEN_CHECK_STEP", 40)
    monkeypatch.setattr(fit, "_screen_check_gain", lambda *a: gain)
    r = _run(*_gaussian())
    first = r.folds[0]
    assert first.steps == (40 if stops else 120)
    assert first.stopped_at_check is stops
    assert [h.step for h in first.history][-1] == first.steps
    assert first.converged  # a stop at the check is not a run out of steps
    assert not any(f.stopped_at_check for f in r.folds[1:])
    if stops:
        assert r.diagnostics.untrained_folds == 2
        assert "max_steps" not in " ".join(r.diagnostics.flags)


def test_the_check_reads_the_first_evaluation_at_or_after_its_step(monkeypatch) -> None:
    monkeypatch.setattr(fit, "SCREEN_CHECK_STEP", 50)
    monkeypatch.setattr(fit, "_screen_check_gain", lambda *a: -math.inf)
    assert _run(*_gaussian()).folds[0].steps == 60  # evaluations at 20, 40, 60


def test_a_stop_at_the_check_reports_the_gain_it_read(monkeypatch) -> None:
    """The first fold's held_out_gain is the gain the check read (the best trained critic is
    the same), and the other folds stay untrained."""
    monkeypatch.setattr(fit, "SCREEN_CHECK_STEP", 40)
    seen = []
    check = fit._screen_check_gain

    def spy(*args):
        seen.append(check(*args))
        return seen[-1]

    monkeypatch.setattr(fit, "_screen_check_gain", spy)
    r = _run(*_gaussian())
    assert len(seen) == 1 and seen[0] <= 3.0
    assert r.folds[0].steps == 40 and r.folds[0].held_out_gain == seen[0]
    assert r.folds[0].stopped_at_check
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
