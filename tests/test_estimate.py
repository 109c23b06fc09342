"""Tests of mitools.estimate: splits, validation, determinism, and a quick end-to-end run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mitools import CorrelatedGaussian, bounds
from mitools.critics import MarginalPotentials, QuadraticCritic, SeparableCritic
from mitools.estimate import (
    MIEstimate,
    estimate_mi,
    fold_indices,
    gaussianize_margins,
)
from mitools.estimate.stats import t_quantile

FAST = dict(max_steps=60, eval_every=20, batch_size=64, folds=3)


def _gaussian(n: int = 300, dim: int = 2, mi: float = 0.5, seed: int = 0):
    return CorrelatedGaussian(dim, mi).sample(n, generator=seed)


# --- split logic ---------------------------------------------------------------------------


@settings(deadline=None, max_examples=50)
@given(n=st.integers(60, 500), folds=st.integers(2, 6), val=st.floats(0.1, 0.5),
       seed=st.integers(0, 2**31 - 1))
def test_folds_are_disjoint_covers(n: int, folds: int, val: float, seed: int) -> None:
    splits = fold_indices(n, folds, val, torch.Generator().manual_seed(seed))
    assert len(splits) == folds
    # every sample is tested exactly once
    tests = torch.cat([s.test for s in splits])
    assert sorted(tests.tolist()) == list(range(n))
    for s in splits:
        # within a fold, train / val / test are disjoint and cover everything
        assert sorted(torch.cat([s.train, s.val, s.test]).tolist()) == list(range(n))
        assert len(s.val) == round(val * (n - len(s.test)))
        assert abs(len(s.test) - n / folds) < 1


@settings(deadline=None, max_examples=50)
@given(n=st.integers(30, 2000), folds=st.integers(2, 6), val=st.floats(0.01, 0.5),
       seed=st.integers(0, 2**31 - 1))
def test_folds_validate_on_disjoint_samples(n: int, folds: int, val: float, seed: int) -> None:
    """Where a validation part fits in one part, no two folds validate on the same samples
    (with the parts joined in the same order for every fold, folds 1 and 2 of 3 used to share
    theirs: the head of part 0)."""
    try:
        splits = fold_indices(n, folds, val, torch.Generator().manual_seed(seed))
    except ValueError:  # parts too small for these options
        return
    parts = [s.test for s in splits]
    for k, s in enumerate(splits):
        # fold k validates on the head of part k + 1, or of the parts after it when it is longer
        start = parts[(k + 1) % folds][: len(s.val)]
        assert torch.equal(s.val[: len(start)], start)
    if all(len(s.val) <= min(len(p) for p in parts) for s in splits):
        seen = torch.cat([s.val for s in splits])
        assert len(seen.unique()) == len(seen)


def test_folds_of_the_default_options_validate_on_disjoint_samples() -> None:
    """estimate_mi's defaults (3 folds, val_fraction 0.1): the three validation sets are
    disjoint, and each is cut from the part that the next fold tests on."""
    splits = fold_indices(1000, 3, 0.1, torch.Generator().manual_seed(0))
    vals = [set(s.val.tolist()) for s in splits]
    assert [len(v) for v in vals] == [67, 67, 67]
    assert not (vals[0] & vals[1] or vals[0] & vals[2] or vals[1] & vals[2])
    assert all(vals[k] <= set(splits[(k + 1) % 3].test.tolist()) for k in range(3))


def test_folds_depend_on_seed_only() -> None:
    a = fold_indices(100, generator=torch.Generator().manual_seed(1))
    b = fold_indices(100, generator=torch.Generator().manual_seed(1))
    c = fold_indices(100, generator=torch.Generator().manual_seed(2))
    assert all(torch.equal(p, q) for sa, sb in zip(a, b, strict=True)
               for p, q in zip(sa, sb, strict=True))
    assert not torch.equal(a[0].test, c[0].test)


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(folds=1), "folds must be an int >= 2"), (dict(folds=2.0), "folds"),
     (dict(val_fraction=0.0), "val_fraction"), (dict(val_fraction=1.0), "val_fraction"),
     (dict(folds=True), "folds must be an int >= 2, got True"),
     (dict(val_fraction=float("nan")), "val_fraction must be a finite number in \\(0, 1\\)")],
)
def test_folds_reject_bad_options(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        fold_indices(100, **kwargs)


def test_folds_take_numpy_scalars() -> None:
    """Review: fold_indices, public, kept hand-written checks that refused numpy scalars."""
    gen = torch.Generator().manual_seed(0)
    splits = fold_indices(np.int64(10), folds=np.int64(5), val_fraction=np.float32(0.25),
                          generator=gen)
    assert [len(s.test) for s in splits] == [2] * 5


def test_folds_reject_tiny_parts() -> None:
    with pytest.raises(ValueError, match="at least 2 samples"):
        fold_indices(9, folds=5)


def test_estimate_uses_the_folds_of_its_seed() -> None:
    x, y = _gaussian(200)
    r = estimate_mi(x, y, val_fraction=0.25, seed=3, **{**FAST, "folds": 4})
    expected = fold_indices(200, 4, 0.25, torch.Generator().manual_seed(3))
    assert len(r.folds) == 4
    for fold, split in zip(r.folds, expected, strict=True):
        assert all(torch.equal(p, q) for p, q in zip(fold.split, split, strict=True))
        assert (len(fold.split.train), len(fold.split.val), len(fold.split.test)) == (112, 38, 50)


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
    with pytest.raises(TypeError, match=r"x must be array-like"):
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
        (dict(folds=1), "folds"),
        (dict(report="max"), "report must be 'corrected' or 'held_out'"),
        (dict(init="zeros"), "init must be"),
        (dict(critic="separable", init="gaussian"), "init='gaussian' needs the quadratic"),
        # third tryout: ignored, and recorded in settings as if it had been used
        (dict(critic="separable", residual="joint"), "residual='joint' chooses what "
         "critic='quadratic' adds to its Gaussian form; critic='separable' has no residual"),
        (dict(critic="concat", residual="separable"), "critic='concat' has no residual"),
        (dict(critic=SeparableCritic(2, 2, hidden=(4,)), init="random", residual="joint"),
         "a critic given as a module keeps its own: leave residual='auto'"),
        (dict(weight_decay=-1.0), "weight_decay"),
        (dict(bound="jsd"), "but it is not in nats"),
        (dict(bound="no-such-bound"), "no-such-bound"),
        (dict(bound="infonse"), "Did you mean 'infonce'"),
    ],
)
def test_bad_options_are_rejected(kwargs, match) -> None:
    x, y = _gaussian(100)
    with pytest.raises(ValueError, match=match):
        estimate_mi(x, y, **{**FAST, **kwargs})


@pytest.mark.parametrize("bound", ["club", "vclub", "l1out", "ba", "doe", "CLUB-instance"])
def test_upper_and_generative_bounds_are_refused(bound) -> None:
    # found by a new user: bound="club" printed "I(X; Y) >= 4261 nats (95 % lower confidence
    # bound)" for data of 0.5 nats, an upper bound's training objective reported as a lower bound
    from mitools.estimate.options import estimate_bounds
    from mitools.estimators import CLUB

    x, y = _gaussian(100)
    arg = CLUB() if bound == "CLUB-instance" else bound
    match = "an upper bound" if bound == "CLUB-instance" else "not one estimate_mi can fit"
    with pytest.raises(ValueError, match=match) as info:
        estimate_mi(x, y, bound=arg, **FAST)
    listed = str(info.value).split("takes: ")[1]
    assert "'dv'" in listed and "'infonce'" in listed and "club" not in listed
    assert set(estimate_bounds()) == {"infonce", "nwj", "dv", "mine", "tuba", "js", "smile",
                                      "alpha_infonce", "flo"}


# --- determinism and the result ------------------------------------------------------------


def test_same_seed_same_result_and_global_rng_untouched() -> None:
    x, y = _gaussian(200)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = estimate_mi(x, y, seed=7, **FAST)
    assert torch.equal(before, torch.random.get_rng_state())
    b = estimate_mi(x, y, seed=7, **FAST)
    c = estimate_mi(x, y, seed=8, **FAST)
    assert a.value == b.value and a.stderr == b.stderr
    assert [h.val for h in a.history] == [h.val for h in b.history]
    assert a.value != c.value


def test_numpy_and_tensor_inputs_agree() -> None:
    x, y = _gaussian(200)
    a = estimate_mi(x, y, **FAST)
    b = estimate_mi(x.numpy(), y.numpy(), **FAST)
    assert a.value == pytest.approx(b.value, abs=1e-6)


@pytest.mark.parametrize("report", ["corrected", "held_out"])
def test_reported_values_are_the_fold_critics_bounds(report: str) -> None:
    x, y = _gaussian(300)
    r = estimate_mi(x, y, report=report, **FAST)
    assert isinstance(r, MIEstimate) and r.report == report
    # margins="ranks", the default, in float64; the critics compute in float32
    x, y = gaussianize_margins(x.double()), gaussianize_margins(y.double())
    for fold in r.folds:
        s = fold.standardization
        xs = ((x - s.x_mean) / s.x_scale).float()
        ys = ((y - s.y_mean) / s.y_scale).float()
        own = fold.split.train[: len(fold.split.test)]
        with torch.no_grad():
            held = bounds.dv(fold.critic(xs[fold.split.test], ys[fold.split.test]))
            ins = bounds.dv(fold.critic(xs[own], ys[own]))
        assert fold.held_out == pytest.approx(float(held), abs=1e-5)
        assert fold.in_sample == pytest.approx(float(ins), abs=1e-5)
        expected = (fold.held_out + fold.in_sample) / 2 if report == "corrected" else fold.held_out
        assert fold.value == pytest.approx(expected)
        # never the maximum over evaluations: the history holds validation values only
        assert fold.best_step in [h.step for h in fold.history]
        assert fold.history[0].step == 0  # the initial (Gaussian-fit) critic is a candidate
        # the standardisation uses the fold's training and validation samples only
        fit = torch.cat([fold.split.train, fold.split.val])
        torch.testing.assert_close(s.x_mean, x[fit].mean(0))
    values = [f.value for f in r.folds]
    assert r.value == pytest.approx(sum(values) / len(values))
    assert r.held_out == pytest.approx(sum(f.held_out for f in r.folds) / len(r.folds))
    assert r.optimism == pytest.approx((r.in_sample - r.held_out) / 2)
    assert r.stderr > 0
    # a one-sided lower confidence bound (20 jackknife groups)
    assert r.sided == "lower"
    assert r.interval[0] == pytest.approx(r.value - t_quantile(0.95, 20 - 1) * r.stderr)
    assert r.interval[1] == math.inf


def test_stderr_is_the_sampling_noise_of_the_whole_data_set() -> None:
    # the jackknife over samples shrinks like 1 / sqrt(n) (critics held fixed)
    small = [estimate_mi(*_gaussian(400, mi=1.0, seed=s), seed=s, **FAST).stderr
             for s in range(3)]
    large = [estimate_mi(*_gaussian(1600, mi=1.0, seed=s), seed=s, **FAST).stderr
             for s in range(3)]
    ratio = sum(small) / sum(large)
    assert 1.4 < ratio < 2.9


def test_early_stopping_stops_after_patience() -> None:
    x, y = _gaussian(150)
    r = estimate_mi(x, y, critic="separable", max_steps=10_000, eval_every=10, patience=2,
                    batch_size=32, folds=2)
    for fold in r.folds:
        assert fold.steps < 10_000
        assert fold.steps == fold.history[-1].step
        assert fold.steps >= fold.best_step + 2 * 10


def test_a_custom_critic_module_and_bound_kwargs() -> None:
    x, y = _gaussian(300)
    critic = SeparableCritic(2, 2, hidden=(16,), embed_dim=8)
    before = {k: v.clone() for k, v in critic.state_dict().items()}
    r = estimate_mi(x, y, bound="smile", critic=critic, clip=5.0, **FAST)
    # each fold trains its own copy; the given module is left as it was
    assert all(type(f.critic) is SeparableCritic and f.critic is not critic for f in r.folds)
    assert all(torch.equal(v, critic.state_dict()[k]) for k, v in before.items())
    assert r.bound == "smile" and r.folds[0].estimator.clip == 5.0


@pytest.mark.filterwarnings("ignore:estimate_mi. the estimate:RuntimeWarning")
def test_a_quadratic_critic_module_gets_the_gaussian_start() -> None:
    x, y = _gaussian(600, dim=2, mi=1.0)
    r = estimate_mi(x, y, critic=QuadraticCritic(2, 2), max_steps=1, eval_every=1, folds=2)
    # at step 0, the Gaussian fit already reaches most of the 1 nat
    assert r.folds[0].history[0].val > 0.8
    r_random = estimate_mi(x, y, critic="quadratic", init="random", max_steps=1, eval_every=1,
                           folds=2)
    assert r_random.folds[0].history[0].val < 0.5


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
    assert t_quantile(0.975, 1) == pytest.approx(12.706, abs=1e-3)
    assert t_quantile(0.975, 4) == pytest.approx(2.776, abs=1e-3)
    assert t_quantile(0.975, 19) == pytest.approx(2.093, abs=1e-3)
    assert t_quantile(0.995, 2) == pytest.approx(9.925, abs=1e-3)
    assert t_quantile(0.95, 1000) == pytest.approx(1.646, abs=1e-3)
    assert t_quantile(0.05, 19) == pytest.approx(-1.729, abs=1e-3)
    with pytest.raises(ValueError, match="p must lie"):
        t_quantile(1.2, 3)


# --- accuracy ------------------------------------------------------------------------------


def test_quick_run_recovers_low_dimensional_mi() -> None:
    x, y = _gaussian(1000, dim=2, mi=1.0, seed=3)
    r = estimate_mi(x, y, max_steps=400, batch_size=256, eval_every=50)
    assert 0.9 < r.value < 1.1 and r.interval[0] < 1.0 < r.interval[1]
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
    assert r.interval[0] < mi < r.interval[1]


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason=(
    "known shortfall (issue 11): since the defaults of 2811c93 (patience 2, max_steps 3000) "
    "this sample's estimate was 1.613, 5.6 % low, on the AMD EPYC machines: the first fold "
    "runs to max_steps and the second stops early, at 1.519. On the AVX-512 Xeon of "
    "2026-12-03, whose float32 roundings differ, it is 1.645, 3.8 % low (folds 1.657, 1.608, "
    "1.669), so the outcome depends on the CPU and the xfail is not strict. bmi's three "
    "samples of the task are 2.4-4.5 % low (docs/benchmarks.rst)"))
def test_additive_uniform_noise_within_five_percent() -> None:
    # Beyond Normal's additive-noise task: x ~ U(0, 1), y = x + U(-0.1, 0.1); I = log 5 + 0.1
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5000, 1, generator=g, dtype=torch.float64)
    y = x + (torch.rand(5000, 1, generator=g, dtype=torch.float64) - 0.5) * 0.2
    truth = math.log(5.0) + 0.1
    r = estimate_mi(x, y)
    assert abs(r.value - truth) < 0.05 * truth
    assert r.interval[0] < truth


def test_a_significantly_negative_estimate_warns() -> None:
    # a critic that cannot fit (lr ~ 0) and scores with a large random spread: DV well below 0
    x, y = _gaussian(400, dim=3, mi=0.1)
    critic = SeparableCritic(3, 3, hidden=(16,), embed_dim=8, temperature=0.05)
    with pytest.warns(RuntimeWarning, match="significantly below zero"):
        estimate_mi(x, y, critic=critic, lr=1e-12, max_steps=1, eval_every=1, folds=2)


def test_gaussianize_margins_is_an_increasing_map_to_normal_scores() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 3, generator=g, dtype=torch.float64) ** 3 * 100  # skewed, heavy
    z = gaussianize_margins(x)
    for j in range(3):  # same order in every column
        assert torch.equal(torch.argsort(z[:, j]), torch.argsort(x[:, j]))
    assert z.mean(0).abs().max() < 1e-9 and (z.std(0) - 1).abs().max() < 0.02
    # ties share their average rank
    t = gaussianize_margins(torch.tensor([[1.0], [1.0], [2.0]]))
    assert t[0, 0] == t[1, 0] < t[2, 0]


def test_ranks_make_heavy_tails_harmless() -> None:
    # Cauchy margins of correlated Gaussians: the MI is the Gaussian's
    x, y = _gaussian(1000, dim=2, mi=0.5, seed=4)
    xc = torch.tan(torch.special.ndtr(x) * math.pi - math.pi / 2)
    r = estimate_mi(xc, y, max_steps=200, eval_every=50, folds=3)
    assert 0.35 < r.value < 0.65
    plain = estimate_mi(xc, y, margins="standardize", max_steps=200, eval_every=50, folds=3)
    assert abs(plain.value - 0.5) > abs(r.value - 0.5)


def test_bad_margins_are_rejected() -> None:
    x, y = _gaussian(100)
    with pytest.raises(ValueError, match="margins must be 'ranks' or 'standardize'"):
        estimate_mi(x, y, margins="copula", **FAST)


def test_listing_the_bounds_leaves_the_global_rng_alone() -> None:
    # estimate_mi checks a bound's name against estimate_bounds() before it forks the RNG, and
    # estimate_bounds() builds every registered estimator once: none may draw random numbers
    from mitools.estimate.options import estimate_bounds

    estimate_bounds.cache_clear()
    before = torch.random.get_rng_state()
    estimate_bounds()
    assert torch.equal(torch.random.get_rng_state(), before)
