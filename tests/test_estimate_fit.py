"""estimate_mi's fitting machinery against brute-force references: the joint critic, training
on sampled negatives, the jackknife's fast path, and the log-partition."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from mitools import pair_blocks
from mitools.estimate.critic import JointResidual, QuadraticJointCritic
from mitools.estimate.fit import _batch_value, _evaluate_leaving_groups_out
from mitools.estimate.pointwise import log_partition
from mitools.estimators import get_estimator


def _critic(dx: int = 3, dy: int = 2, seed: int = 0, dtype=torch.float32) -> QuadraticJointCritic:
    torch.manual_seed(seed)
    c = QuadraticJointCritic(dx, dy, (8,), 5).to(dtype)
    with torch.no_grad():
        c.residual.v.normal_()  # a non-zero residual
    return c


def test_joint_residual_matches_a_loop_over_pairs() -> None:
    c = _critic()
    x, y = torch.randn(7, 3), torch.randn(6, 2)
    r = c.residual
    with torch.no_grad():
        loop = torch.tensor([[float(torch.relu(r.g(x[i]) + r.h(y[j])) @ r.v) for j in range(6)]
                             for i in range(7)])
    torch.testing.assert_close(r(x, y), loop, atol=1e-5, rtol=1e-5)
    # the whole critic is the quadratic critic plus the residual
    torch.testing.assert_close(c(x, y), c.quadratic(x, y) + loop, atol=1e-5, rtol=1e-5)


def test_joint_residual_chunks_agree_with_one_block(monkeypatch) -> None:
    c = _critic()
    x, y = torch.randn(50, 3), torch.randn(40, 2)
    whole = c(x, y)
    monkeypatch.setattr(pair_blocks, "PAIR_BLOCK_ELEMENTS", 5 * 40)  # blocks of one row
    torch.testing.assert_close(c(x, y), whole)
    # leading batch dimensions
    xb, yb = torch.randn(2, 4, 3), torch.randn(2, 5, 2)
    assert c(xb, yb).shape == (2, 4, 5)
    torch.testing.assert_close(c(xb, yb)[1], c(xb[1], yb[1]))


def test_joint_residual_gradients() -> None:
    torch.manual_seed(0)
    r = JointResidual(2, 2, (4,), 3).double()
    with torch.no_grad():
        r.v.normal_()
    x = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    y = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: r(a, b), (x, y))


def test_the_residual_starts_at_zero_after_the_gaussian_fit() -> None:
    c = _critic()
    x, y = torch.randn(200, 3), torch.randn(200, 2)
    c.init_gaussian_(x, y)
    torch.testing.assert_close(c.residual(x, y), torch.zeros(200, 200))
    torch.testing.assert_close(c(x, y), c.quadratic(x, y))


def test_a_zero_residual_is_skipped_only_without_gradients(monkeypatch) -> None:
    """With v = 0 and gradients off (evaluation), the residual is zeros of the right shape and
    dtype without scoring the pairs; with gradients on (training from the start), it is
    scored, so that v gets its gradient."""
    c = _critic(dtype=torch.float64)
    with torch.no_grad():
        c.residual.v.zero_()
    x, y = torch.randn(2, 6, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    calls = []
    pairs = c.residual.pairs
    monkeypatch.setattr(c.residual, "pairs", lambda *a: calls.append(1) or pairs(*a))
    with torch.no_grad():
        zero = c.residual(x, y)
    assert zero.shape == (2, 6, 5) and zero.dtype == torch.float64 and not calls
    assert not zero.any()
    scored = c.residual(x, y)
    assert calls and scored.requires_grad
    torch.testing.assert_close(scored.detach(), zero)
    scored.sum().backward()
    assert c.residual.v.grad is not None and c.residual.v.grad.abs().sum() > 0


def test_score_shifted_are_entries_of_the_score_matrix() -> None:
    c = _critic(dtype=torch.float64)  # its residual is not zero, so its pairing is checked
    x, y = torch.randn(10, 3, dtype=torch.float64), torch.randn(10, 2, dtype=torch.float64)
    shifts = torch.tensor([3, 1, 9])
    rows = torch.arange(10)
    expected = torch.stack([c(x, y)[rows, (rows + s) % 10] for s in [0, 3, 1, 9]])
    torch.testing.assert_close(c.score_shifted(x, y, shifts), expected, rtol=0, atol=1e-12)


def test_score_shifted_gradients_match_the_score_matrix() -> None:
    c = _critic(dtype=torch.float64)
    x, y = torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    shifts, rows = torch.tensor([2, 5]), torch.arange(8)
    weights = torch.randn(3, 8, dtype=torch.float64)
    grads = []
    for fn in (lambda: c.score_shifted(x, y, shifts),
               lambda: torch.stack([c(x, y)[rows, (rows + s) % 8] for s in [0, 2, 5]])):
        c.zero_grad()
        (fn() * weights).sum().backward()
        grads.append([p.grad.clone() for p in c.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_score_shifted_gradients_are_the_same_on_every_run_with_two_threads() -> None:
    """The gather's backward must not accumulate in a thread-dependent order (``t[index]``
    did: two threads gave different gradients from run to run, so estimates varied)."""
    c = _critic(dx=3, dy=3)
    x, y = torch.randn(512, 3), torch.randn(512, 3)
    shifts = torch.randperm(511)[:16] + 1
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        runs = []
        for _ in range(5):
            c.zero_grad()
            scores = c.score_shifted(x, y, shifts)
            (scores[0].mean() - torch.logsumexp(scores[1:].reshape(-1), 0)).backward()
            runs.append([p.grad.clone() for p in c.parameters()])
    finally:
        torch.set_num_threads(before)
    for run in runs[1:]:
        for a, b in zip(runs[0], run, strict=True):
            assert torch.equal(a, b)


@pytest.mark.parametrize("critic_dtype, input_dtype", [
    (torch.float64, torch.float32), (torch.float32, torch.float64),
    (torch.float32, torch.bfloat16)])
def test_score_shifted_has_the_dtype_and_values_of_the_score_matrix(critic_dtype,
                                                                    input_dtype) -> None:
    c = _critic(dtype=critic_dtype)
    x, y = torch.randn(6, 3).to(input_dtype), torch.randn(6, 2).to(input_dtype)
    scores, rows = c(x, y), torch.arange(6)
    expected = torch.stack([scores[rows, (rows + s) % 6] for s in [0, 1, 4]])
    shifted = c.score_shifted(x, y, torch.tensor([1, 4]))
    assert shifted.dtype == scores.dtype
    torch.testing.assert_close(shifted, expected, rtol=1e-5, atol=1e-5)


def test_score_shifted_names_unpaired_inputs() -> None:
    with pytest.raises(ValueError, match=r"score_shifted needs paired samples"):
        _critic().score_shifted(torch.randn(10, 3), torch.randn(9, 2), torch.tensor([1]))


@pytest.mark.parametrize("name", ["dv", "mine", "nwj"])
def test_sampled_negatives_with_every_shift_give_the_bound_on_all_pairs(name: str) -> None:
    c = _critic()
    x, y = torch.randn(12, 3), torch.randn(12, 2)
    estimator = get_estimator(name).eval()
    gen = torch.Generator().manual_seed(0)
    sampled = _batch_value(estimator, c, x, y, negatives=11, gen=gen)
    torch.testing.assert_close(sampled, estimator(c(x, y)), atol=1e-5, rtol=1e-5)


def test_sampled_negatives_are_the_bound_on_the_chosen_pairs() -> None:
    c = _critic()
    b, m = 16, 4
    x, y = torch.randn(b, 3), torch.randn(b, 2)
    gen = torch.Generator().manual_seed(3)
    value = _batch_value(get_estimator("dv"), c, x, y, negatives=m, gen=gen)
    # the same shifts, drawn again, and DV written out on those pairs
    shifts = torch.randperm(b - 1, generator=torch.Generator().manual_seed(3))[:m] + 1
    full = c(x, y)
    neg = torch.stack([full[i, (i + s) % b] for s in shifts.tolist() for i in range(b)])
    expected = full.diagonal().mean() - (torch.logsumexp(neg, 0) - math.log(neg.numel()))
    torch.testing.assert_close(value, expected, atol=1e-5, rtol=1e-5)
    assert not any(((i + s) % b) == i for s in shifts.tolist() for i in range(b))


def test_other_bounds_and_critics_train_on_all_pairs() -> None:
    c = _critic()
    x, y = torch.randn(12, 3), torch.randn(12, 2)
    estimator = get_estimator("infonce")
    gen = torch.Generator().manual_seed(0)
    torch.testing.assert_close(_batch_value(estimator, c, x, y, 4, gen), estimator(c(x, y)))


def _masked_values(estimator, scores, group_of, groups: int) -> torch.Tensor:
    """The reference: the bound with each group's rows and columns masked out, one by one."""
    return torch.tensor([float(estimator(scores, row_mask=group_of != g, col_mask=group_of != g))
                         for g in range(groups)], dtype=torch.float64)


@pytest.mark.parametrize("name", ["dv", "nwj", "mine", "infonce", "smile"])
def test_jackknife_values_equal_masked_evaluations(name: str) -> None:
    torch.manual_seed(0)
    n, groups = 120, 7
    scores = torch.randn(n, n, dtype=torch.float64) * 2 + 3 * torch.eye(n, dtype=torch.float64)
    group_of = torch.randint(0, groups, (n,))
    estimator = get_estimator(name).eval()
    value, loo, log_z = _evaluate_leaving_groups_out(
        estimator, lambda a, b: scores, torch.zeros(n, 1), torch.zeros(n, 1), group_of, groups)
    torch.testing.assert_close(loo, _masked_values(estimator, scores, group_of, groups),
                               atol=1e-9, rtol=1e-9)
    assert value == pytest.approx(float(estimator(scores)))
    off = scores[~torch.eye(n, dtype=torch.bool)]
    assert log_z == pytest.approx(float(torch.logsumexp(off, 0) - math.log(off.numel())))
    assert log_partition(scores) == pytest.approx(log_z, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("case", ["positive far above", "one dominant negative",
                                  "negatives of one group far above"])
def test_jackknife_values_of_extreme_scores_match_masked_evaluations(case: str) -> None:
    """Regressions (review): a positive score ~1000 nats above every negative underflowed
    the shifted negatives to zero (the bound failed as non-finite); one negative ~60 nats
    above the others made the left-out sums cancel to a rest of rounding error (NaN, or a
    wrong value: 7.38 for 4.49); negatives ~1000 nats above the others, all within one
    group's rows and columns, left the other sets' sums to underflow when that group was
    left out (the bound failed as -inf: estimate_mi(X, X) with X of 2 columns)."""
    torch.manual_seed(0)
    n, groups = 60, 6
    scores = torch.randn(n, n, dtype=torch.float64) + 5 * torch.eye(n, dtype=torch.float64)
    group_of = torch.arange(n) % groups
    if case == "positive far above":
        scores.diagonal().add_(1000.0)
    elif case == "one dominant negative":
        scores[0, 1] = 60.0
    else:  # rows 0 and 6 are in group 0: their negative pairs only
        scores[0, 6] = scores[6, 0] = 1000.0
        scores[0, 12] = 990.0
    estimator = get_estimator("dv").eval()
    value, loo, _ = _evaluate_leaving_groups_out(
        estimator, lambda a, b: scores, torch.zeros(n, 1), torch.zeros(n, 1), group_of, groups)
    torch.testing.assert_close(loo, _masked_values(estimator, scores, group_of, groups),
                               atol=1e-9, rtol=1e-9)
    assert value == pytest.approx(float(estimator(scores)), rel=1e-12)


def test_the_bound_without_groups_is_the_bound_on_all_pairs() -> None:
    """groups=0 (the in-sample bound with report="held_out"): the value and log-partition
    alone, the same as with groups."""
    torch.manual_seed(0)
    n = 50
    scores = torch.randn(n, n, dtype=torch.float64) + 2 * torch.eye(n, dtype=torch.float64)
    estimator = get_estimator("dv").eval()
    group_of = torch.randint(0, 5, (n,))
    value, loo, log_z = _evaluate_leaving_groups_out(
        estimator, lambda a, b: scores, torch.zeros(n, 1), torch.zeros(n, 1), group_of, 0)
    assert loo.shape == (0,)
    assert value == pytest.approx(float(estimator(scores)), rel=1e-12)
    assert log_z == pytest.approx(log_partition(scores), rel=1e-12)


def test_adamw_is_fused_where_torch_has_the_kernel_and_foreach_elsewhere(monkeypatch) -> None:
    from mitools.estimate import fit

    p = torch.nn.Parameter(torch.zeros(3))
    assert fit._adamw([{"params": [p]}], 0.1).defaults["fused"]  # CPU, torch >= 2.4
    # a complex parameter has no fused kernel, which torch would only say at the first step:
    # foreach is chosen up front, and a step runs
    z = torch.nn.Parameter(torch.zeros(2, dtype=torch.complex64))
    opt = fit._adamw([{"params": [p]}, {"params": [z]}], 0.1)
    assert opt.defaults["foreach"] and not opt.defaults["fused"]
    (p.sum() + z.abs().sum()).backward()
    opt.step()
    real = torch.optim.AdamW

    def no_fused(params, **kwargs):  # torch < 2.4: no fused kernel on the CPU
        if kwargs.get("fused"):
            raise RuntimeError("`fused=True` requires all the params to be on a supported device")
        return real(params, **kwargs)

    monkeypatch.setattr(torch.optim, "AdamW", no_fused)
    opt = fit._adamw([{"params": [p]}], 0.1)
    assert opt.defaults["foreach"] and not opt.defaults["fused"]


def test_a_kept_start_counts_as_converged_even_if_training_gained_late(monkeypatch) -> None:
    """Training that improves up to the last step without beating the start by the
    replacement margin keeps the start, and is not flagged: noise-level gains late in
    training would otherwise flag runs on Gaussian data. With the replacement allowed, the
    same run keeps a trained critic from the last evaluation and is flagged."""
    from mitools.estimate import estimate_mi, fit

    g = torch.Generator().manual_seed(0)
    x = torch.rand(1500, 1, generator=g) * 6 - 3
    y = torch.sin(3 * x) + 0.1 * torch.randn(1500, 1, generator=g)  # no Gaussian start fits
    options = dict(max_steps=60, eval_every=20, patience=5, threads=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        trained = estimate_mi(x, y, **options)
        # a gain below the replacement margin; every fold trains (no screening)
        monkeypatch.setattr(fit, "_gain_over_start", lambda *a, **k: 0.0)
        kept = estimate_mi(x, y, screen=False, **options)
    assert any(f.best_step == 60 and not f.converged for f in trained.folds)
    assert all(f.best_step == 0 and f.converged and f.steps == 60 for f in kept.folds)
    assert kept.diagnostics.unconverged_folds == 0


@pytest.mark.parametrize("n", [2, 3, 4, 5, 7, 333])
def test_validation_jackknife_groups_keep_a_negative_pair(n) -> None:
    """A validation part of 2-7 samples (small n) or of 333 (n = 5,000): leaving any group out
    keeps at least 2 samples and the bound is finite; below 4 samples there are no groups."""
    from mitools.estimate.fit import _validation_groups

    jackknife = _validation_groups(n, torch.Generator().manual_seed(0))
    if n < 4:
        assert jackknife is None
        return
    group_of, groups = jackknife
    sizes = torch.bincount(group_of, minlength=groups)
    assert 2 <= groups <= 20 and sizes.min() >= 2 and n - sizes.max() >= 2
    x, y = torch.randn(n, 3), torch.randn(n, 2)
    _, loo, _ = _evaluate_leaving_groups_out(get_estimator("dv"), _critic(), x, y, group_of,
                                             groups)
    assert torch.isfinite(loo).all()


def test_a_trained_critic_replaces_the_start_by_more_than_two_paired_standard_errors() -> None:
    """The rule on the validation pairs: the trained critic's bound must beat the start's by
    more than REPLACE_START_SE (2) standard errors of the difference, a jackknife over the same
    groups (the start's own noise does not enter); _gain_over_start gives that difference in
    standard errors."""
    from mitools.estimate.fit import REPLACE_START_SE, _gain_over_start, _validation_groups
    from mitools.estimate.stats import jackknife_stderr

    assert REPLACE_START_SE == 2.0
    dv, c = get_estimator("dv"), _critic()
    x, y = torch.randn(200, 3), torch.randn(200, 2)
    jackknife = _validation_groups(200, torch.Generator().manual_seed(0))
    value, loo, _ = _evaluate_leaving_groups_out(dv, c, x, y, *jackknife)
    shift = torch.linspace(-1.0, 1.0, jackknife[1], dtype=loo.dtype) * 0.05
    se = jackknife_stderr(shift)  # of the difference, trained_loo - start_loo = shift
    start_loo = loo - shift
    trained = (c.state_dict(), dv.state_dict())
    for margin, expected in ((1.9, False), (2.1, True)):
        gain = _gain_over_start(dv, value - margin * se, start_loo, value, trained, c, x, y,
                                jackknife)
        assert gain == pytest.approx(margin, rel=1e-9)
        assert (gain > REPLACE_START_SE) is expected
    # no gain, nothing trained
    assert _gain_over_start(dv, value, start_loo, value, trained, c, x, y, jackknife) == -math.inf
    assert _gain_over_start(dv, value, start_loo, -math.inf, trained, c, x, y,
                            jackknife) == -math.inf
    # no jackknife (a validation part too small for groups): any gain
    assert _gain_over_start(dv, value - 1e-6, None, value, trained, c, x, y, None) == math.inf


def test_a_noisy_validation_gain_at_10_nats_keeps_the_gaussian_start() -> None:
    """Regression: d = 20 Gaussian, 10 nats, n = 5,000 (benchmarks/estimate_accuracy.py's seed
    4). Two folds' critics trained to a validation bound 0.25 and 1.4 nats above the start's,
    1.6 and 1.8 paired standard errors, were 1.5 and 4.8 nats worse held out: the estimate was
    8.68. Judged against the start's own standard error they replaced it."""
    from mitools.estimate import estimate_mi
    from mitools.tasks import CorrelatedGaussian

    x, y = CorrelatedGaussian(20, 10.0).sample(5000, generator=10_004)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = estimate_mi(x.numpy(), y.numpy(), seed=4, threads=1)
    assert abs(r.value - 10.0) < 0.5, r.value
    assert all(f.held_out > 8.5 for f in r.folds)


def test_estimate_mi_with_a_validation_part_of_three_samples() -> None:
    """n = 40 in 3 folds: 27 non-test samples, of which round(0.1 * 27) = 3 validate."""
    from mitools.estimate import estimate_mi, fold_indices

    split = fold_indices(40, 3, 0.1, torch.Generator().manual_seed(0))[0]
    assert len(split.val) == 3
    x = torch.randn(40, 1, generator=torch.Generator().manual_seed(1))
    y = x + 0.5 * torch.randn(40, 1, generator=torch.Generator().manual_seed(2))
    with warnings.catch_warnings():  # the diagnostics may flag a fit this uncertain
        warnings.simplefilter("ignore", RuntimeWarning)
        r = estimate_mi(x, y, max_steps=20, eval_every=10)
    assert math.isfinite(r.value) and math.isfinite(r.stderr)


def test_infonce_on_independent_data_keeps_the_start() -> None:
    """Regression: the consistency benchmark's independent pair (d = 10, n = 4,000, seed 0).
    With InfoNCE a fold kept a critic fitted to noise (held out -0.048, in sample +0.141 nats)
    because bounds other than DV, MINE and NWJ replaced the start on any validation gain: the
    estimate was +0.014 for independent variables. The paired two-standard-error rule now
    applies to every bound."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from consistency import datasets

    from mitools.estimate import estimate_mi

    x, y = datasets(10, 2.0, 4000, 0)["independence"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = estimate_mi(x, y, bound="infonce", seed=0, threads=1)
    assert all(f.best_step == 0 for f in r.folds)
    assert abs(r.value) < 2 * r.stderr + 1e-3, (r.value, r.stderr)


# --- screening: the first fold decides whether the others train --------------------------------

SCREEN_FAST = dict(max_steps=60, eval_every=20, batch_size=128, threads=1)


def _gaussian_pairs(n: int = 1500, seed: int = 0):
    from mitools.tasks import CorrelatedGaussian

    return CorrelatedGaussian(2, 0.5).sample(n, generator=seed)


def test_screened_folds_are_the_start_an_unscreened_run_keeps() -> None:
    """On Gaussian data the first fold's critic does not beat the start held out: the other
    folds keep it untrained (0 steps, one history point). Each such fold is, bit for bit,
    the fold that training and then keeping the start gives, and the first fold is the same
    either way."""
    from mitools.estimate import estimate_mi

    x, y = _gaussian_pairs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        screened = estimate_mi(x, y, **SCREEN_FAST)
        trained = estimate_mi(x, y, screen=False, **SCREEN_FAST)
    first = screened.folds[0]
    assert first.steps > 0 and first.held_out_gain <= 2.0
    assert [f.steps for f in screened.folds[1:]] == [0, 0]
    assert all(len(f.history) == 1 and f.best_step == 0 and f.converged
               and f.gain_over_start == -math.inf for f in screened.folds[1:])
    assert screened.diagnostics.untrained_folds == 2 and trained.diagnostics.untrained_folds == 0
    assert screened.settings["screen"] is True and trained.settings["screen"] is False
    assert all(f.steps > 0 for f in trained.folds)
    compared = 0
    for a, b in zip(screened.folds, trained.folds, strict=True):
        if b.best_step == 0:  # the unscreened fold kept its start too
            compared += 1
            assert (a.held_out, a.in_sample, a.value, a.start_held_out, a.log_partition) == (
                b.held_out, b.in_sample, b.value, b.start_held_out, b.log_partition)
            assert a.held_out == a.start_held_out
    assert compared >= 2  # the first fold and at least one other


def test_screening_trains_every_fold_where_the_first_gains() -> None:
    """y = sin(3x) + noise: no Gaussian start fits, the first fold's critic beats it by many
    standard errors, and every fold trains: the estimate is the unscreened one, bit for bit."""
    from mitools.estimate import estimate_mi

    g = torch.Generator().manual_seed(0)
    x = torch.rand(1500, 1, generator=g) * 6 - 3
    y = torch.sin(3 * x) + 0.1 * torch.randn(1500, 1, generator=g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        screened = estimate_mi(x, y, **SCREEN_FAST)
        trained = estimate_mi(x, y, screen=False, **SCREEN_FAST)
    assert screened.folds[0].held_out_gain > 2.0
    assert screened.diagnostics.untrained_folds == 0
    # every fold's validation gain clears the usual margin, so the margin after the screen's
    # gain (any gain) chooses as it does
    assert all(f.gain_over_start > 2.0 for f in trained.folds)
    assert screened.value == trained.value and screened.stderr == trained.stderr


@pytest.mark.parametrize(("gain", "untrained"), [(-math.inf, 2), (2.0, 2), (2.01, 0),
                                                 (math.nan, 0), (math.inf, 0)])
def test_the_screen_keeps_the_start_up_to_two_standard_errors(monkeypatch, gain,
                                                              untrained) -> None:
    """The other folds go untrained when the first fold's held-out gain is at most SCREEN_SE
    (2) standard errors, and train above it, or when the gain is unknown (NaN) or has no
    spread (inf)."""
    from mitools.estimate import estimate_mi, fit

    assert fit.SCREEN_SE == 2.0
    monkeypatch.setattr(fit, "_paired_gain", lambda *a, **k: gain)
    x, y = _gaussian_pairs(600)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = estimate_mi(x, y, **SCREEN_FAST)
    assert r.folds[0].held_out_gain == gain or math.isnan(gain)
    assert r.diagnostics.untrained_folds == untrained
    assert [f.steps == 0 for f in r.folds] == [False] + [untrained > 0] * 2


def test_the_held_out_gain_decides_the_screen_not_the_validation_gain(monkeypatch) -> None:
    """A first fold whose trained critic replaced the start on validation (gain 5) but is
    no better on the test part (gain 0) screens the others; the reverse trains them."""
    from mitools.estimate import estimate_mi, fit

    x, y = _gaussian_pairs(600)
    for val_gain, held_out_gain, untrained in ((5.0, 0.0, 2), (-math.inf, 5.0, 0)):
        monkeypatch.setattr(fit, "_gain_over_start", lambda *a, g=val_gain, **k: g)
        monkeypatch.setattr(fit, "_paired_gain", lambda *a, g=held_out_gain, **k: g)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            r = estimate_mi(x, y, **SCREEN_FAST)
        assert (r.folds[0].best_step > 0) is (val_gain > 2)
        assert r.diagnostics.untrained_folds == untrained


def test_paired_gain_is_the_difference_in_jackknife_standard_errors() -> None:
    from mitools.estimate.fit import _paired_gain
    from mitools.estimate.stats import jackknife_stderr

    base_loo = torch.linspace(0.0, 1.0, 20, dtype=torch.float64)
    shift = torch.linspace(-1.0, 1.0, 20, dtype=torch.float64) * 0.01
    se = jackknife_stderr(shift)
    assert _paired_gain(0.5, base_loo, 0.5 + 3 * se, base_loo + shift) == pytest.approx(3.0)
    assert _paired_gain(0.5, base_loo, 0.5 - se, base_loo + shift) == pytest.approx(-1.0)
    assert _paired_gain(0.5, base_loo, 0.6, base_loo) == math.inf  # no spread
    assert _paired_gain(0.5, base_loo, 0.4, base_loo) == -math.inf
    assert _paired_gain(0.5, base_loo, 0.5, base_loo) == 0.0
    assert math.isnan(_paired_gain(math.nan, base_loo, 0.5, base_loo))


def test_random_starts_are_never_screened(monkeypatch) -> None:
    """Without the Gaussian start (init="random", or a critic that has none) there is no
    closed-form fit to keep: every fold trains whatever the first one gained."""
    from mitools.estimate import estimate_mi, fit

    monkeypatch.setattr(fit, "_paired_gain", lambda *a, **k: -math.inf)
    x, y = _gaussian_pairs(600)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for kwargs in (dict(init="random"), dict(critic="separable")):
            r = estimate_mi(x, y, **SCREEN_FAST, **kwargs)
            assert r.diagnostics.untrained_folds == 0
            assert all(f.steps > 0 for f in r.folds)


def test_screen_must_be_a_bool() -> None:
    from mitools.estimate import estimate_mi

    x, y = _gaussian_pairs(300)
    with pytest.raises(ValueError, match="screen must be True or False, got 'yes'"):
        estimate_mi(x, y, screen="yes")


def test_a_replaced_start_is_still_scored_held_out_and_the_kept_critic_returned() -> None:
    """Where a trained critic replaces the start, start_held_out is the start's test bound
    (the same start, bit for bit, as a run that keeps it) and the fold returns the trained
    critic, whose test bound is held_out."""
    from mitools import bounds
    from mitools.estimate import estimate_mi, gaussianize_margins

    g = torch.Generator().manual_seed(0)
    x = torch.rand(1500, 1, generator=g) * 6 - 3
    y = torch.sin(3 * x) + 0.1 * torch.randn(1500, 1, generator=g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        trained = estimate_mi(x, y, screen=False, **SCREEN_FAST)
        start = estimate_mi(x, y, screen=False, **{**SCREEN_FAST, "max_steps": 1})
    xr, yr = gaussianize_margins(x.double()), gaussianize_margins(y.double())
    replaced = 0
    for a, b in zip(trained.folds, start.folds, strict=True):
        assert b.best_step == 0
        assert a.start_held_out == b.held_out
        if a.best_step == 0:
            continue
        replaced += 1
        assert a.held_out > a.start_held_out
        s, test = a.standardization, a.split.test
        with torch.no_grad():
            held = bounds.dv(a.critic(((xr[test] - s.x_mean) / s.x_scale).float(),
                                      ((yr[test] - s.y_mean) / s.y_scale).float()))
        assert float(held) == pytest.approx(a.held_out, abs=1e-5)
    assert replaced >= 2


def test_a_bound_that_needs_anchors_is_never_summarised(monkeypatch) -> None:
    """A DV subclass with row-side inputs (needs_anchors) cannot be reduced to summary rows:
    training scores all pairs of the batch and evaluation uses the masked path, both with the
    anchors passed."""
    from mitools.estimate import fit
    from mitools.estimators import DV

    seen: list[bool] = []

    class AnchoredDV(DV):
        @property
        def needs_anchors(self) -> bool:
            return True

        def forward(self, scores, *args, anchors=None, **kwargs):
            seen.append(anchors is not None and scores.shape[-1] == scores.shape[-2])
            return super().forward(scores, *args, **kwargs)

    est, c = AnchoredDV().eval(), _critic()
    x, y = torch.randn(40, 3), torch.randn(40, 2)
    assert not fit._summarisable(est) and fit._summarisable(DV())
    fit._batch_value(est, c, x, y, 4, torch.Generator().manual_seed(0))
    group_of = torch.arange(40) % 4
    fit._evaluate_leaving_groups_out(est, c, x, y, group_of, 4)
    assert len(seen) == 6 and all(seen)  # the batch, all pairs, then 4 groups left out


def test_the_gaussian_start_is_tight_for_nwj_too() -> None:
    """Regression: the start was the Gaussian pointwise MI for every bound, which NWJ scores
    1/e = 0.37 nats low (its optimum is the pointwise MI plus one), so on Gaussian data the
    screen always found a 'gain' and every fold trained just to learn the constant."""
    import numpy as np

    from mitools import estimate_mi
    from mitools.tasks import CorrelatedGaussian

    x, y = CorrelatedGaussian(dim=2, mi=1.0, dtype=torch.float64).sample(3000, generator=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dv = estimate_mi(x.numpy(), y.numpy(), bound="dv", threads=1, max_steps=200)
        nwj = estimate_mi(np.asarray(x), np.asarray(y), bound="nwj", threads=1, max_steps=200)
    for a, b in zip(dv.folds, nwj.folds, strict=True):
        assert abs(a.start_held_out - b.start_held_out) < 0.01
    assert nwj.diagnostics.untrained_folds == 2


def test_finite_gradients_are_told_by_their_entries_not_a_norm() -> None:
    """Review: a sum of squares overflowed at finite entries of 1e20, and training stopped
    as if it had diverged."""
    from mitools.estimate.fit import _finite

    def param(*grad: float) -> torch.nn.Parameter:
        p = torch.nn.Parameter(torch.zeros(len(grad)))
        p.grad = torch.tensor(grad)
        return p

    assert _finite([param(1e20, 1.0), param(3e38)])
    assert not _finite([param(1.0), param(1.0, math.nan)])
    assert not _finite([param(-math.inf, 0.0)])
    assert _finite([torch.nn.Parameter(torch.zeros(2))])  # no gradient yet
