"""mitools.tasks: sampling, the closed-form MI and the optimal critic."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from torch.distributions import Normal

from mitools import bounds
from mitools.tasks import CorrelatedGaussian, Staircase, gaussian_mutual_information, rho_for_mi


def test_mi_formula_round_trips():
    for mi in (0.0, 0.5, 2.0, 10.0):
        rho = rho_for_mi(mi, 20)
        assert math.isclose(-10 * math.log(1 - rho**2), mi, abs_tol=1e-12)


def test_sampling_is_deterministic_and_correlated():
    task = CorrelatedGaussian(dim=5, mi=2.0)
    a = task.sample(10_000, generator=torch.Generator().manual_seed(0))
    b = task.sample(10_000, generator=0)
    torch.testing.assert_close(a, b)
    x, y = a
    corr = ((x - x.mean(0)) * (y - y.mean(0))).mean(0) / (x.std(0) * y.std(0))
    assert torch.allclose(corr, torch.full((5,), task.rho), atol=0.03)
    assert task.dim_x == task.dim_y == 5 and task.mutual_information() == 2.0


@pytest.mark.parametrize("transform", [None, "cubic"])
def test_optimal_critic_is_log_density_ratio(transform):
    task = CorrelatedGaussian(dim=3, mi=1.5, transform=transform, dtype=torch.float64)
    x, y = task.sample(6, generator=1)
    got = task.optimal_critic(x, y)
    # Independent reference with torch.distributions, in the latent (un-cubed) space; the
    # Jacobian of the cube cancels in the ratio.
    y_lat = torch.sign(y) * y.abs() ** (1 / 3) if transform == "cubic" else y
    rho = task.rho
    cond = Normal(rho * x[:, None, :], math.sqrt(1 - rho**2))
    marg = Normal(torch.zeros(()), torch.ones(()))
    want = (cond.log_prob(y_lat[None, :, :]) - marg.log_prob(y_lat[None, :, :])).sum(-1)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("transform", [None, "cubic"])
def test_pmi_of_joint_samples_averages_to_the_mi(transform):
    task = CorrelatedGaussian(dim=20, mi=4.0, transform=transform, dtype=torch.float64)
    x, y = task.sample(4000, generator=2)
    pmi = task.optimal_critic(x[:, None, :], y[:, None, :]).reshape(-1)
    mean, se = float(pmi.mean()), float(pmi.std() / math.sqrt(pmi.numel()))
    assert abs(mean - 4.0) < 3 * se


def test_task_errors():
    with pytest.raises(ValueError, match="mi"):
        CorrelatedGaussian(dim=2, mi=-1.0)
    with pytest.raises(ValueError, match="dim"):
        CorrelatedGaussian(dim=0, mi=1.0)
    with pytest.raises(ValueError, match="transform"):
        CorrelatedGaussian(dim=2, mi=1.0, transform="square")
    task = CorrelatedGaussian(dim=2, mi=1.0)
    with pytest.raises(ValueError, match="n must be"):
        task.sample(0)
    with pytest.raises(TypeError, match="generator"):
        task.sample(3, generator="seed")
    with pytest.raises(ValueError, match=r"\(\.\.\., n, 2\)"):
        task.optimal_critic(torch.zeros(3, 3), torch.zeros(3, 2))


def test_staircase():
    s = Staircase(levels=(1, 2), steps_per_level=3)
    assert list(s) == [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]
    assert s.total_steps == 6 and s.level_of(3) == 1
    assert s.task_at(5, dim=4, transform="cubic").transform == "cubic"
    with pytest.raises(ValueError, match="step"):
        s.mi_at(6)
    with pytest.raises(ValueError, match="levels"):
        Staircase(levels=())
    with pytest.raises(ValueError, match="steps_per_level"):
        Staircase(steps_per_level=0)


def test_gaussian_mutual_information_matches_correlated_gaussian():
    from mitools.tasks import gaussian_mutual_information

    d, mi = 3, 2.0
    rho = rho_for_mi(mi, d)
    cov = torch.eye(2 * d, dtype=torch.float64)
    for k in range(d):
        cov[k, d + k] = cov[d + k, k] = rho
    got = gaussian_mutual_information(cov, range(d), range(d, 2 * d))
    assert math.isclose(got, mi, rel_tol=1e-12)
    with pytest.raises(ValueError, match="disjoint"):
        gaussian_mutual_information(cov, [0, 1], [1, 2])
    with pytest.raises(ValueError, match="square"):
        gaussian_mutual_information(torch.zeros(2, 3), [0], [1])
    with pytest.raises(ValueError, match="positive definite"):
        gaussian_mutual_information(torch.ones(2, 2), [0], [1])


@pytest.mark.parametrize("transform", [None, "cubic"])
def test_conditional_and_marginal_densities_match_torch_distributions(transform):
    task = CorrelatedGaussian(dim=3, mi=1.5, transform=transform, dtype=torch.float64)
    x, y = task.sample(6, generator=3)
    z = torch.sign(y) * y.abs() ** (1 / 3) if transform == "cubic" else y
    # density of y = z^3 carries |dz/dy| = 1 / (3 z^2) per component
    log_jac = -torch.log(3 * z**2).sum(-1) if transform == "cubic" else torch.zeros(6)
    cond = Normal(task.rho * x[:, None, :], math.sqrt(1 - task.rho**2))
    want = cond.log_prob(z[None, :, :]).sum(-1) + log_jac[None, :]
    torch.testing.assert_close(task.conditional_log_prob(x, y), want)
    marg = Normal(0.0, 1.0).log_prob(z).sum(-1) + log_jac
    torch.testing.assert_close(task.marginal_log_prob(y), marg)
    torch.testing.assert_close(
        task.conditional_log_prob(x, y) - task.marginal_log_prob(y)[None, :],
        task.optimal_critic(x, y),
    )


@pytest.mark.parametrize("transform", [None, "cubic"])
def test_entropy_and_lautum_information_match_monte_carlo(transform):
    task = CorrelatedGaussian(dim=4, mi=2.0, transform=transform, dtype=torch.float64)
    x, y = task.sample(200_000, generator=4)
    neg_log_p = -task.marginal_log_prob(y)
    se = float(neg_log_p.std()) / math.sqrt(len(y))
    assert abs(float(neg_log_p.mean()) - task.entropy_y()) < 4 * se
    # lautum = -E_{p(x)p(y)} PMI, on independent pairs (x_i, y_{i+1})
    pmi = task.optimal_critic(x[:, None, :], y.roll(1, 0)[:, None, :]).reshape(-1)
    se = float(pmi.std()) / math.sqrt(len(pmi))
    assert abs(float(-pmi.mean()) - task.lautum_information()) < 4 * se
    rho2 = task.rho**2
    assert math.isclose(task.mutual_information() + task.lautum_information(),
                        4 * rho2 / (1 - rho2), rel_tol=1e-12)


def test_density_errors():
    task = CorrelatedGaussian(dim=2, mi=1.0)
    with pytest.raises(ValueError, match=r"\(\.\.\., n, 2\)"):
        task.conditional_log_prob(torch.zeros(3, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        task.marginal_log_prob(torch.zeros(3, 3))


def test_tasks_check_their_samples_and_widen_half_precision() -> None:
    task = CorrelatedGaussian(2, 1.0)
    x, y = task.sample(4, generator=0)
    with pytest.raises(TypeError, match=r"x must be floating point \(samples of "
                                        r"CorrelatedGaussian\(dim=2, mi=1.0\)\), got dtype "
                                        r"torch.int64"):
        task.optimal_critic(x.long(), y)
    with pytest.raises(TypeError, match=r"y must be a torch.Tensor of samples, got list"):
        task.marginal_log_prob(y.tolist())
    with pytest.raises(ValueError, match=r"x is on cpu but y is on meta"):
        task.conditional_log_prob(x, y.to("meta"))
    s = task.conditional_log_prob(x.half(), y.half())
    assert s.dtype == torch.float32
    assert torch.equal(s, task.conditional_log_prob(x.half().float(), y.half().float()))
    cov = [[1.0, 0.8], [0.8, 1.0]]
    assert gaussian_mutual_information(np.array(cov), [0], [1]) == pytest.approx(
        gaussian_mutual_information(torch.tensor(cov, dtype=torch.float64), [0], [1]), abs=0)
    with pytest.raises(TypeError, match="cov must be a matrix of real numbers"):
        gaussian_mutual_information([["a", "b"], ["c", "d"]], [0], [1])


@pytest.mark.parametrize("mi", [18.0, 20.0, 30.0])
def test_samples_keep_their_noise_at_high_mi_per_dimension(mi) -> None:
    """Regression (review): the noise scale was sqrt(1 - rho**2), which cancels once rho
    rounds to 1 (above ~17 nats per dimension): at 20 nats y was exactly rho * x. Its scale
    is e^{-I/d}."""
    t = CorrelatedGaussian(dim=1, mi=mi, dtype=torch.float64)
    x, y = t.sample(20_000, generator=0)
    noise = (y - t.rho * x) / math.exp(-mi)
    assert abs(float(noise.std()) - 1.0) < 0.03
    assert abs(float(noise.mean())) < 0.03


def _exact_positive_scores(task: CorrelatedGaussian, x, y) -> tuple[torch.Tensor, torch.Tensor]:
    """The optimal critic and the conditional log-density of the matched pairs ``(x_i, y_i)``,
    in 60-digit arithmetic (mpmath) on the samples as given, with the exact ``rho``: an
    independent reference."""
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(60):
        d = task.dim
        one_minus = mpmath.exp(-2 * mpmath.mpf(task.mi) / d)
        rho = mpmath.sqrt(1 - one_minus)
        critic, cond = [], []
        for xi, yi in zip(x.double().tolist(), y.double().tolist(), strict=True):
            pairs = zip(map(mpmath.mpf, xi), map(mpmath.mpf, yi), strict=True)
            quad = mpmath.fsum((b - rho * a) ** 2 for a, b in pairs)
            yy = mpmath.fsum(mpmath.mpf(b) ** 2 for b in yi)
            critic.append(float(-d / 2 * mpmath.log(one_minus) - quad / (2 * one_minus) + yy / 2))
            cond.append(float(-d / 2 * mpmath.log(2 * mpmath.pi * one_minus)
                              - quad / (2 * one_minus)))
    return torch.tensor(critic, dtype=torch.float64), torch.tensor(cond, dtype=torch.float64)


@pytest.mark.parametrize(("per_dim", "dtype"), [(20.0, torch.float64), (40.0, torch.float64),
                                                (8.0, torch.float32)])
def test_positive_scores_keep_their_precision_at_high_mi(per_dim, dtype) -> None:
    """Regression: the squared distance ||y_j - rho x_i||^2 was the expanded square
    yy - 2 rho xy + rho^2 xx, which cancels for the positive pairs, and its error
    eps ||y||^2 was then divided by 1 - rho^2: off by 420 nats at 20 nats per dimension in
    float64, by 1e20 at 40, by 9 at 8 nats per dimension in float32. From differences the
    error is a few rounding errors of the score (1e-14 in float64, 2e-6 in float32)."""
    if per_dim > 34.0:  # the samples no longer resolve the noise (tenth tryout)
        with pytest.warns(RuntimeWarning, match="nats per component"):
            task = CorrelatedGaussian(dim=4, mi=4 * per_dim, dtype=dtype)
    else:
        task = CorrelatedGaussian(dim=4, mi=4 * per_dim, dtype=dtype)
    x, y = task.sample(32, generator=0)
    want_critic, want_cond = _exact_positive_scores(task, x, y)
    eps = torch.finfo(dtype).eps
    for got, want in ((task.optimal_critic(x, y), want_critic),
                      (task.conditional_log_prob(x, y), want_cond)):
        assert got.dtype == dtype and got.shape == (32, 32)
        err = (got.diagonal().double() - want).abs()
        assert bool((err <= 64 * eps * (1.0 + want.abs())).all()), float(err.max())


@pytest.mark.parametrize("chunk", [None, 40, 63, 250])
@pytest.mark.parametrize("transform", [None, "cubic"])
def test_all_pairs_match_each_pair_with_broadcast_batches(monkeypatch, chunk, transform) -> None:
    """Every entry of the all-pairs scores is the score of its own pair, for broadcast batch
    dimensions and N != M, whatever the blocks: chunk 40 takes one row per block, 63 three
    (the last block ragged), 250 two whole batch entries, the default all six."""
    import mitools.pair_blocks as pair_blocks

    if chunk is not None:
        monkeypatch.setattr(pair_blocks, "PAIR_BLOCK_ELEMENTS", chunk)
    task = CorrelatedGaussian(dim=3, mi=2.0, transform=transform, dtype=torch.float64)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 1, 5, 3, generator=g, dtype=torch.float64)
    y = torch.randn(3, 7, 3, generator=g, dtype=torch.float64)
    if transform == "cubic":
        y = y**3
    critic, cond = task.optimal_critic(x, y), task.conditional_log_prob(x, y)
    assert critic.shape == cond.shape == (2, 3, 5, 7)
    for b, c, i, j in np.ndindex(2, 3, 5, 7):
        xi, yj = x[b, 0, i][None, None], y[c, j][None, None]  # one pair, (1, 1, 3)
        assert float(task.optimal_critic(xi, yj)) == pytest.approx(float(critic[b, c, i, j]),
                                                                   rel=1e-12, abs=1e-12)
        assert float(task.conditional_log_prob(xi, yj)) == pytest.approx(
            float(cond[b, c, i, j]), rel=1e-12, abs=1e-12)
    # and against the closed form in torch.distributions, on the broadcast pairs
    z = torch.sign(y) * y.abs() ** (1 / 3) if transform == "cubic" else y
    normal = Normal(task.rho * x[..., :, None, :], math.sqrt(1 - task.rho**2))
    want = (normal.log_prob(z[..., None, :, :]) - Normal(0.0, 1.0).log_prob(z[..., None, :, :]))
    torch.testing.assert_close(critic, want.sum(-1))


def test_pair_scores_are_exact_at_zero_mi_and_differentiable_at_zero_distance() -> None:
    task = CorrelatedGaussian(dim=3, mi=0.0, dtype=torch.float64)
    x, y = task.sample(6, generator=0)
    assert torch.equal(task.optimal_critic(x, y), torch.zeros(6, 6, dtype=torch.float64))
    task = CorrelatedGaussian(dim=3, mi=6.0, dtype=torch.float64)
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    y = (task.rho * x).detach().requires_grad_()  # the positive pairs at (nearly) zero distance
    task.conditional_log_prob(x, y).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all()
    assert task.optimal_critic(torch.zeros(0, 3), torch.zeros(5, 3)).shape == (0, 5)


def test_dtype_that_is_not_a_torch_dtype_is_refused_by_name() -> None:
    """tryout: dtype="float64" (a string) crashed with AttributeError "'str' object has no
    attribute 'is_floating_point'"; it is a TypeError naming dtype."""
    for bad in ("float64", float, torch.int64):
        with pytest.raises(TypeError, match=r"dtype must be a floating-point torch\.dtype"):
            CorrelatedGaussian(2, 1.0, dtype=bad)


def test_repr_shows_a_dtype_other_than_the_default() -> None:
    """tryout: a float64 task printed as CorrelatedGaussian(dim=2, mi=1.0), the float32 one's
    repr, so a log could not tell which samples a run drew."""
    assert repr(CorrelatedGaussian(2, 1.0, dtype=torch.float64)) == (
        "CorrelatedGaussian(dim=2, mi=1.0, dtype=torch.float64)")
    assert repr(CorrelatedGaussian(2, 1.0)) == "CorrelatedGaussian(dim=2, mi=1.0)"


def test_gaussian_mi_refuses_a_matrix_that_is_not_a_covariance() -> None:
    """tryout: cov=[[1, 0.9], [0, 1]] (not symmetric) gave 0.0 nats silently, and
    -I_3 with a=[0, 1], b=[2] (two negative eigenvalues in a's block, whose determinant is
    positive) gave a number; duplicate indices a=[0, 0] were reported as "not positive
    definite". Each is now a ValueError that says what is wrong."""
    with pytest.raises(ValueError, match="must be symmetric"):
        gaussian_mutual_information(torch.tensor([[1.0, 0.9], [0.0, 1.0]]), [0], [1])
    with pytest.raises(ValueError, match=r"restricted to \[0, 1\] is not positive definite"):
        gaussian_mutual_information(-torch.eye(3), [0, 1], [2])
    with pytest.raises(ValueError, match="a must not repeat an index"):
        gaussian_mutual_information(torch.eye(3), [0, 0], [1])
    with pytest.raises(ValueError, match="non-finite"):
        gaussian_mutual_information(torch.tensor([[1.0, float("nan")], [float("nan"), 1.0]]),
                                    [0], [1])
    # a valid covariance still gives the closed form, -1/2 log(1 - rho^2)
    value = gaussian_mutual_information([[2.0, 1.0], [1.0, 2.0]], [0], [1])
    assert value == pytest.approx(-0.5 * math.log(1.0 - 0.25), rel=1e-12)


def test_upper_bounds_page_states_club_expectation_as_the_closed_form() -> None:
    """tryout: docs/guide/upper_bounds.rst listed CLUB's expectation I + L on the d = 20
    staircase as 4.4, 9.8, 16.4, 24.5 and 34.3 nats, but at 10 nats it is 20 (e - 1) = 34.37,
    34.4 (as the table above it says); each number is checked against the closed form."""
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "guide" / "upper_bounds.rst")
    pattern = r"I \+ L = d\\rho\^2/\(1-\\rho\^2\)`: ([\d., and]+) nats at"
    found = re.search(pattern, page.read_text())
    assert found is not None
    stated = [float(v) for v in re.split(r", | and ", found.group(1))]
    closed = [round(t.mutual_information() + t.lautum_information(), 1)
              for t in (CorrelatedGaussian(20, mi) for mi in (2.0, 4.0, 6.0, 8.0, 10.0))]
    assert stated == closed


def test_staircase_levels_that_are_not_a_sequence_are_refused_by_name() -> None:
    """tryout: Staircase(levels=5.0) crashed with "'float' object is not iterable", and
    levels="24" was read character by character; both are a TypeError naming levels."""
    for bad in (5.0, "24"):
        with pytest.raises(TypeError, match="Staircase: levels must be a sequence"):
            Staircase(levels=bad)
    assert Staircase(levels=[1.0, 2.0], steps_per_level=3).levels == (1.0, 2.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_cubic_densities_are_infinite_at_y_zero(dtype):
    """Regression (documented, not a bug): the density of y = z^3 is p(z) / (3 z^2),
    unbounded at y = 0, so the cubic task's conditional and marginal log-densities are +inf
    there (their difference nan), finite everywhere else down to the smallest subnormal; the
    pointwise MI (optimal_critic) is finite at y = 0 and equals the Gaussian task's at z = 0;
    a bound given the +inf scores refuses them by name."""
    cubic = CorrelatedGaussian(dim=2, mi=1.0, transform="cubic", dtype=dtype)
    plain = CorrelatedGaussian(dim=2, mi=1.0, dtype=dtype)
    x = torch.tensor([[0.5, -1.0], [1.5, 0.2]], dtype=dtype)
    y = torch.tensor([[0.0, 8.0], [-1.0, 1.0]], dtype=dtype)  # row 0: one component at 0
    z = torch.tensor([[0.0, 2.0], [-1.0, 1.0]], dtype=dtype)
    assert torch.isposinf(cubic.marginal_log_prob(y)[0])
    assert torch.isfinite(cubic.marginal_log_prob(y)[1])
    cond = cubic.conditional_log_prob(x, y)
    assert torch.isposinf(cond[:, 0]).all() and torch.isfinite(cond[:, 1]).all()
    assert torch.isnan(cond - cubic.marginal_log_prob(y)[None, :])[:, 0].all()
    critic = cubic.optimal_critic(x, y)
    assert torch.isfinite(critic).all()
    torch.testing.assert_close(critic, plain.optimal_critic(x, z))
    tiny = torch.tensor([[torch.finfo(dtype).smallest_normal * 2**-20, 1.0]], dtype=dtype)
    assert torch.isfinite(cubic.marginal_log_prob(tiny)).all()  # only y = 0 itself
    with pytest.raises(ValueError, match=r"ba: scores hold a non-finite value \(inf\)"):
        bounds.ba(cond, cubic.entropy_y())


def test_gaussian_mi_takes_one_index_as_a_group_of_one():
    """Regression (a sixth new user's tryout): ``gaussian_mutual_information(cov, 0, 1)``
    raised "'int' object is not iterable"; anything else that is no index is named."""
    cov = [[1.0, 0.5], [0.5, 1.0]]
    expected = -0.5 * math.log(1 - 0.25)
    assert gaussian_mutual_information(cov, 0, 1) == pytest.approx(expected)
    assert gaussian_mutual_information(cov, np.int64(0), [1]) == pytest.approx(expected)
    with pytest.raises(TypeError, match=r"a must be a sequence of coordinate indices.*float"):
        gaussian_mutual_information(cov, 0.5, [1])


@pytest.mark.parametrize("seed", [2**64, -(2**63) - 1])
def test_an_int_seed_out_of_torch_range_is_named(seed):
    """Regression: ``sample(n, generator=2**64)`` raised torch's "Overflow when unpacking
    long long"."""
    task = CorrelatedGaussian(dim=2, mi=1.0)
    with pytest.raises(ValueError, match=re.escape("an int seed must be in [-2**63, 2**64)")):
        task.sample(3, generator=seed)
    assert task.sample(3, generator=2**64 - 1)[0].shape == (3, 2)  # the largest one works


# ---------------------------------------------------------------------------------------------
# The tenth tryout: the limits of MI per component.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mi", [373.0, 500.0, 1e6])
def test_mi_per_component_beyond_float64_is_refused_by_name(mi) -> None:
    """Regression: CorrelatedGaussian(1, 500.0) was built, then optimal_critic and
    conditional_log_prob failed with "math domain error" and lautum_information with
    "float division by zero" (1 - rho^2 = exp(-1000) is 0 in float64)."""
    with pytest.raises(ValueError, match=r"mi / dim must be at most 354 nats per component"):
        CorrelatedGaussian(dim=1, mi=mi, dtype=torch.float64)
    # the same MI over enough components is fine
    task = CorrelatedGaussian(dim=20, mi=min(mi, 600.0), dtype=torch.float64)
    assert math.isfinite(task.lautum_information())


def test_the_largest_mi_per_component_has_finite_densities() -> None:
    """At 354 nats per component the closed forms are finite (lautum about 3.0e307)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the samples' resolution, below
        task = CorrelatedGaussian(dim=1, mi=354.0, dtype=torch.float64)
    x, y = task.sample(3, generator=0)
    # the positive pairs (far pairs reach -1e308 and round to -inf, as they must)
    assert bool(torch.isfinite(task.optimal_critic(x, y).diagonal()).all())
    assert bool(torch.isfinite(task.conditional_log_prob(x, y).diagonal()).all())
    assert task.lautum_information() == pytest.approx(math.expm1(708.0) - 354.0, rel=1e-12)


@pytest.mark.parametrize(("mi", "dtype", "warns"), [
    (13.0, torch.float32, False), (16.0, torch.float32, True), (20.0, torch.float32, True),
    (30.0, torch.float64, False), (40.0, torch.float64, True)])
def test_samples_that_cannot_resolve_their_noise_warn(mi, dtype, warns) -> None:
    """Regression: at 20 nats on one component in float32 the samples were rho * x rounded
    (97 % of them exactly), so their mean pointwise MI was 20.45, 0.45 nats above the stated
    MI (200 standard errors), silently; 40 nats in float64 alike (40.44). Below the warning's
    threshold (13.9 nats in float32, 34.0 in float64) the samples carry the stated MI."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task = CorrelatedGaussian(dim=1, mi=mi, dtype=dtype)
    ours = [w for w in caught if "nats per component" in str(w.message)]
    assert bool(ours) == warns, [str(w.message) for w in caught]
    if warns:
        assert ours[0].category is RuntimeWarning and str(dtype) in str(ours[0].message)
        return
    x, y = task.sample(20_000, generator=0)
    pmi = task.optimal_critic(x[:, None, :], y[:, None, :]).double().flatten()
    se = float(pmi.std()) / math.sqrt(pmi.numel())
    assert abs(float(pmi.mean()) - mi) < 4 * se


@pytest.mark.parametrize(("dim", "mi", "transform"), [(1, 0.5, None), (5, 3.0, None),
                                                       (2, 2.0, "cubic")])
def test_closed_forms_against_monte_carlo(dim, mi, transform) -> None:
    """MI, H(Y) and the lautum information against their Monte-Carlo means on 50,000
    samples, within 4 standard errors (the tenth tryout's check at 200,000 agreed too)."""
    task = CorrelatedGaussian(dim=dim, mi=mi, transform=transform, dtype=torch.float64)
    x, y = task.sample(50_000, generator=0)
    y_other = y.roll(1, dims=0)  # a draw of p(y), independent of x's row
    pairs = (x[:, None, :], y[:, None, :])
    pmi = (task.conditional_log_prob(*pairs).flatten() - task.marginal_log_prob(y))
    lautum = (task.marginal_log_prob(y_other)
              - task.conditional_log_prob(x[:, None, :], y_other[:, None, :]).flatten())
    for values, want in ((pmi, mi), (-task.marginal_log_prob(y), task.entropy_y()),
                         (lautum, task.lautum_information())):
        se = float(values.std()) / math.sqrt(values.numel())
        assert abs(float(values.mean()) - want) < 4 * se, (float(values.mean()), want, se)


def test_sample_draws_on_the_device_asked_for_or_the_generators() -> None:
    # sample had no device: a CUDA generator failed in torch.randn, and GPU samples needed
    # a copy from the CPU
    task = CorrelatedGaussian(2, 1.0)
    x, y = task.sample(5, generator=0)
    x2, y2 = task.sample(5, generator=0, device="cpu")
    assert x.device.type == "cpu" and torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = task.sample(5, generator=torch.Generator().manual_seed(0), device=torch.device("cpu"))
    assert torch.equal(x, x3)
    with pytest.raises(ValueError, match=r"the generator is on cpu but device='meta'"):
        task.sample(5, generator=torch.Generator(), device="meta")
    with pytest.raises(ValueError, match=r"the generator is on cpu but device='cuda:0'"):
        task.sample(5, generator=torch.Generator(), device=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_sample_on_cuda_from_an_int_seed_or_a_cuda_generator() -> None:
    task = CorrelatedGaussian(2, 1.0)
    x, y = task.sample(5, generator=0, device="cuda")
    g = torch.Generator(device="cuda").manual_seed(0)
    x2, y2 = task.sample(5, generator=g)
    assert x.is_cuda and torch.equal(x, x2) and torch.equal(y, y2)


def test_staircase_task_at_passes_the_dtype() -> None:
    # task_at took no dtype, so a float64 staircase was not possible
    task = Staircase(levels=(2.0, 4.0), steps_per_level=3).task_at(4, dim=2, dtype=torch.float64)
    assert task.dtype == torch.float64 and task.mi == 4.0
    assert task.sample(4, generator=0)[0].dtype == torch.float64
