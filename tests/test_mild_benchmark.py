"""The true MI of benchmarks/mild_non_gaussian.py's task, by quadrature, against closed forms."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from mild_non_gaussian import sample, true_mi


def test_without_the_quadratic_term_it_is_the_gaussian_channel() -> None:
    """a = 0: y = x + s e, I = log(1 + 1 / s^2) / 2."""
    assert true_mi(0.0, 0.7, points=1201) == pytest.approx(0.5 * math.log(1 + 1 / 0.49),
                                                           abs=1e-4)


def test_the_regression_tests_truth() -> None:
    """0.5547 nats, the value the estimate_mi regression tests quote for a = 0.35, s = 0.7;
    the quadratic term adds dependence a Gaussian fit of the same data cannot see."""
    value = true_mi(0.35, 0.7, points=2401)
    assert value == pytest.approx(0.5547, abs=1e-4)
    x, y = sample(20000, 0.35, 0.7, seed=0)
    rho = float(((x - x.mean()) * (y - y.mean())).mean() / (x.std() * y.std()))
    assert -0.5 * math.log(1 - rho**2) < value - 0.05
