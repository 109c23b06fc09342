"""Tests of mitools.estimate: splits, validation, determinism, and a quick end-to-end run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mitools import CorrelatedGaussian, bounds
from mitools.critics import SeparableCritic
from mitools.estimate import (
    MarginalPotentials,
    MIEstimate,
    _t_quantile,
    estimate_mi,
    split_indices,
)

FAST = dict(max_steps=60, eval_every=20, batch_size=64, jackknife_groups=5)


def _gaussian(n: int = 300, dim: int = 2, mi: float = 0.5, seed: int = 0):
    return CorrelatedGaussian(dim, mi).sample(n, generator=seed)


# --- split logic ---------------------------------------------------------------------------


@settings(deadline=None, max_examples=50)
@given(n=st.integers(10, 500), seed=st.integers(0, 2**31 - 1))
def test_split_is_a_disjoint_cover(n: int, seed: int) -> None:
    s = split_indices(n, (0.6, 0.2, 0.2), torch.Generator().manual_seed(seed))
    allidx = torch.cat([s.train, s.val, s.test])
    assert sorted(allidx.tolist()) == list(range(n))  # disjoint and covering
    assert len(s.val) == round(0.2 * n) and len(s.test) == round(0.2 * n)


def test_split_depends_on_seed_only() -> None:
    a = split_indices(100, generator=torch.Generator().manual_seed(1))
    b = split_indices(100, generator=torch.Generator().manual_seed(1))
    c = split_indices(100, generator=torch.Generator().manual_seed(2))
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    assert not torch.equal(a.train, c.train)


@pytest.mark.parametrize(
    "fractions", [(0.5, 0.5), (0.6, 0.3, 0.3), (1.0, 0.0, 0.0), (-0.2, 0.6, 0.6)]
)
def test_split_rejects_bad_fractions(fractions) -> None:
    with pytest.raises(ValueError, match="split must be three positive fractions"):
        split_indices(100, fractions)


def test_split_rejects_tiny_parts() -> None:
    with pytest.raises(ValueError, match="at least 2 samples"):
        split_indices(6, (0.6, 0.2, 0.2))


def test_estimate_uses_disjoint_parts_of_the_requested_sizes() -> None:
    x, y = _gaussian(200)
    r = estimate_mi(x, y, split=(0.5, 0.25, 0.25), **FAST)
    assert (r.n_train, r.n_val, r.n_test) == (100, 50, 50)


# --- input validation ----------------------------------------------------------------------


def test_different_n_is_rejected_with_both_shapes() -> None:
    x, y = _gaussian(100)
    with pytest.raises(ValueError, match=r"same number of samples.*\(100, 2\).*\(99, 2\)"):
        estimate_mi(x, y[:99], **FAST)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_and_inf_are_rejected(bad: float) -> None:
    x, y = _gaussian(100)
    y = y.clone()
    y[3, 1] = bad
    with pytest.raises(ValueError, match="y contains NaN or infinite values in 1 of 100 rows"):
        estimate_mi(x, y, **FAST)


def test_one_dimensional_inputs_are_reshaped() -> None:
    x, y = _gaussian(200, dim=1, mi=0.5)
    r = estimate_mi(x[:, 0].numpy(), y[:, 0].numpy(), **FAST)
    assert math.isfinite(r.value)
    assert r.critic.dim_x == 1 and r.critic.dim_y == 1


def test_three_dimensional_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"x must have shape \(n, d\).*\(10, 2, 3\)"):
        estimate_mi(torch.randn(10, 2, 3), torch.randn(10, 2), **FAST)


def test_non_arrays_and_non_numbers_are_rejected() -> None:
    with pytest.raises(TypeError, match=r"x must be a numpy array or a torch\.Tensor"):
        estimate_mi("abc", torch.randn(10, 2), **FAST)
    with pytest.raises(TypeError, match="real numbers"):
        estimate_mi(np.array([["a"], ["b"]]), np.zeros((2, 1)), **FAST)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(batch_size=0), "batch_size"),
        (dict(max_steps=-1), "max_steps"),
        (dict(lr=0.0), "lr"),
        (dict(level=1.5), "level"),
        (dict(jackknife_groups=1), "jackknife_groups"),
        (dict(bound="jsd"), "not an MI estimate in nats"),
        (dict(bound="no-such-bound"), "no-such-bound"),
    ],
)
def test_bad_options_are_rejected(kwargs, match) -> None:
    x, y = _gaussian(100)
    with pytest.raises(ValueError, match=match):
        estimate_mi(x, y, **{**FAST, **kwargs})


# --- determinism and the result ------------------------------------------------------------


def test_same_seed_same_result_and_global_rng_untouched() -> None:
    x, y = _gaussian(200)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = estimate_mi(x, y, seed=7, **FAST)
    assert torch.equal(before, torch.random.get_rng_state())
    b = estimate_mi(x, y, seed=7, **FAST)
    c = estimate_mi(x, y, seed=8, **FAST)
    assert a.value == b.value and a.stderr == b.stderr and a.history == b.history
    assert a.value != c.value


def test_numpy_and_tensor_inputs_agree() -> None:
    x, y = _gaussian(200)
    a = estimate_mi(x, y, **FAST)
    b = estimate_mi(x.numpy(), y.numpy(), **FAST)
    assert a.value == pytest.approx(b.value, abs=1e-6)


def test_reported_value_is_the_test_split_bound_of_the_returned_critic() -> None:
    x, y = _gaussian(300)
    r = estimate_mi(x, y, **FAST)
    assert isinstance(r, MIEstimate)
    split = split_indices(300, (0.6, 0.2, 0.2), torch.Generator().manual_seed(0))
    s = r.standardization
    xs = (x - s.x_mean) / s.x_scale
    ys = (y - s.y_mean) / s.y_scale
    with torch.no_grad():
        again = bounds.dv(r.critic(xs[split.test], ys[split.test]))
    assert r.value == pytest.approx(float(again), abs=1e-5)
    # never the maximum over evaluations: the history holds validation values only
    assert r.best_step in [h.step for h in r.history]
    assert r.interval[0] < r.value < r.interval[1]
    assert r.shortfall >= 0
    assert r.interval[1] - r.value == pytest.approx(r.value - r.interval[0] + r.shortfall)


def test_early_stopping_stops_after_patience() -> None:
    x, y = _gaussian(150)
    r = estimate_mi(x, y, max_steps=10_000, eval_every=10, patience=2, batch_size=32,
                    jackknife_groups=5)
    assert r.steps < 10_000
    assert r.steps == r.history[-1].step
    assert r.steps >= r.best_step + 2 * 10


def test_a_custom_critic_module_and_bound_kwargs() -> None:
    x, y = _gaussian(300)
    critic = SeparableCritic(2, 2, hidden=(16,), embed_dim=8)
    r = estimate_mi(x, y, bound="smile", critic=critic, clip=5.0, **FAST)
    assert r.critic is critic and r.bound == "smile"
    assert r.estimator.clip == 5.0


def test_progress_bar_runs() -> None:
    x, y = _gaussian(200)
    r = estimate_mi(x, y, progress=True, **FAST)
    assert math.isfinite(r.value)


def test_marginal_potentials_add_row_and_column_terms() -> None:
    torch.manual_seed(0)
    f = MarginalPotentials(SeparableCritic(3, 2, hidden=()), 3, 2)
    x, y = torch.randn(5, 3), torch.randn(4, 2)
    a, b = f.potentials(x, y)
    expected = f.critic(x, y) + a[:, None] + b[None, :]
    assert torch.allclose(f(x, y), expected)
    # brute-force pair loop
    for i in range(5):
        for j in range(4):
            single = f(x[i : i + 1], y[j : j + 1])[0, 0]
            assert torch.allclose(f(x, y)[i, j], single, atol=1e-6)


def test_t_quantile_matches_tables() -> None:
    assert _t_quantile(0.975, 19) == pytest.approx(2.093, abs=2e-3)
    assert _t_quantile(0.975, 9) == pytest.approx(2.262, abs=5e-3)
    assert _t_quantile(0.95, 1000) == pytest.approx(1.646, abs=1e-3)


# --- accuracy ------------------------------------------------------------------------------


def test_quick_run_recovers_low_dimensional_mi() -> None:
    x, y = _gaussian(1000, dim=2, mi=1.0, seed=3)
    r = estimate_mi(x, y, max_steps=400, batch_size=256, eval_every=50)
    assert 0.8 < r.value < 1.15
    assert r.stderr > 0


def test_independent_variables_give_about_zero() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(600, 3, generator=g), torch.randn(600, 3, generator=g)
    r = estimate_mi(x, y, max_steps=200, batch_size=128, eval_every=50)
    assert abs(r.value) < 0.1
    assert r.interval[0] < 0.05


@pytest.mark.slow
@pytest.mark.parametrize("mi", [2.0, 4.0])
def test_within_five_percent_on_the_issue_task(mi: float) -> None:
    x, y = CorrelatedGaussian(20, mi).sample(5000, generator=1)
    r = estimate_mi(x, y, seed=1)
    assert abs(r.value - mi) < 0.05 * mi
