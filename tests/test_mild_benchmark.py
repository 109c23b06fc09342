"""The true MI of benchmarks/mild_non_gaussian.py's task, by quadrature, against closed forms."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from mild_non_gaussian import sample, true_mi


def test_without_the_quadratic_term_it_is_the_gaussian_channel() -> None:
    """a = 0: y = x + s e, I = log(1 + 1 / s^2) / 2."""
    assert true_mi(0.0, 0.7, points=1201) == pytest.approx(0.5 * math.log(1 + 1 / 0.49),
                                                           abs=1e-4)


def test_the_regression_tests_truth() -> None:
    """0.5547 nats, the value the estimate_mi regression tests quote for a = 0.35, s = 0.7,
    checked independently: Y's density by adaptive quadrature (scipy's quad) at a few
    points, and h(Y) as the Monte Carlo mean of -log p(Y) over 20,000 draws. The quadratic
    term adds dependence a Gaussian fit of the same data cannot see."""
    from scipy import integrate, stats

    def density(y: float) -> float:
        return integrate.quad(lambda x: stats.norm.pdf(x) * stats.norm.pdf(
            y, x + 0.35 * (x * x - 1), 0.7), -12, 12, limit=200)[0]

    value = true_mi(0.35, 0.7, points=2401)
    assert value == pytest.approx(0.5547, abs=1e-4)
    # the same density, in closed-form quadrature, at the points the grid uses
    x_nodes, w = np.polynomial.hermite_e.hermegauss(300)
    w = w / math.sqrt(2 * math.pi)
    for point in (-2.0, 0.0, 1.5, 6.0):
        hermite = float(stats.norm.pdf(point, x_nodes + 0.35 * (x_nodes**2 - 1), 0.7) @ w)
        assert hermite == pytest.approx(density(point), rel=1e-5)
    # h(Y) by Monte Carlo on draws of the task, against the grid's
    _, y = sample(20000, 0.35, 0.7, seed=1)
    p = stats.norm.pdf(y.double().numpy(), x_nodes + 0.35 * (x_nodes**2 - 1), 0.7) @ w
    monte_carlo = float(-np.log(p).mean()) - 0.5 * math.log(2 * math.pi * math.e * 0.49)
    assert monte_carlo == pytest.approx(value, abs=0.02)
    x, y = sample(20000, 0.35, 0.7, seed=0)
    rho = float(((x - x.mean()) * (y - y.mean())).mean() / (x.std() * y.std()))
    assert -0.5 * math.log(1 - rho**2) < value - 0.05
