"""mitools.tasks: sampling, the closed-form MI and the optimal critic."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal

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
