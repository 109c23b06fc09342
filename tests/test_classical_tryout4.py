"""Regression tests of the classical estimators' fourth new-user tryout: a constant variable
(every method: exactly 0, no interval, as the warning says), the Gaussian estimate's
finite-sample bias (computed exactly, warned about, optionally removed)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from mitools import classical

N = 400

METHODS = {
    "ksg1": lambda x, y: classical.ksg(x, y),
    "ksg2": lambda x, y: classical.ksg(x, y, estimator=2),
    "mixed_ksg": lambda x, y: classical.mixed_ksg(x, y),
    "mixed_ksg discrete_x": lambda x, y: classical.mixed_ksg(x, y, discrete_x=True),
    "gaussian": lambda x, y: classical.gaussian_mi(x, y),
}


def _run(method: str, x, y):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = METHODS[method](x, y)
    return result, [str(w.message) for w in seen]


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("which", ["x", "y", "both"])
@pytest.mark.parametrize("columns", [1, 3])
def test_a_constant_variable_gives_exactly_zero_and_no_interval(method, which, columns) -> None:
    """Regression: with c constant, ksg estimator 2 gave -3.6e-5 ± 0.024 with an interval
    [-0.05, 0.10] (0.0270 ± 0.0339 from the command line), mixed_ksg 0.0005, ksg1 -0.0000,
    while the warning said that 0 is the estimate and that its interval says nothing."""
    varying = np.random.default_rng(0).standard_normal((N, 2))
    constant = np.full((N, columns), 7.5)
    x = constant if which in ("x", "both") else varying
    y = constant if which in ("y", "both") else varying
    if method == "mixed_ksg discrete_x" and which == "y":
        x = np.repeat([0, 1], N // 2)  # a label, with classes of more than k samples
    result, messages = _run(method, x, y)
    assert result.value == 0.0 and math.copysign(1.0, result.value) == 1.0  # not -0.0
    assert math.isnan(result.stderr) and all(math.isnan(v) for v in result.interval)
    assert result.uncertainty.startswith("none: ") and "constant" in result.uncertainty
    assert str(result).startswith("I(X; Y) = 0.0000 nats (no interval)")
    named = [m for m in messages if " is constant (every column holds one value)" in m]
    assert len(named) == (2 if which == "both" else 1), messages
    assert all("which is the estimate" in m for m in named)
    assert not any("jackknife" in m for m in messages), messages  # the one rule, no other


def test_a_column_of_one_value_beside_varying_ones_is_not_constant() -> None:
    rng = np.random.default_rng(1)
    x = np.hstack([rng.standard_normal((N, 1)), np.ones((N, 1))])
    result, messages = _run("ksg1", x, x[:, :1] + rng.standard_normal((N, 1)))
    assert result.value > 0.1 and math.isfinite(result.stderr)
    assert not any("is constant" in m for m in messages)


def _gaussian_pairs(rng, n: int, dx: int, dy: int, rho: float):
    x = rng.standard_normal((n, dx))
    y = rho * x[:, :dy] + math.sqrt(1 - rho**2) * rng.standard_normal((n, dy))
    return x, y


def _in_sample_mi(x, y) -> float:
    r = classical.canonical_correlations(x, y)
    return float(-0.5 * np.log1p(-(r**2)).sum())


@pytest.mark.parametrize("n, dx, dy, rho", [(60, 20, 20, 0.0), (40, 3, 3, 0.9),
                                            (200, 5, 2, 0.5)])
def test_the_gaussian_bias_is_the_monte_carlo_bias(n, dx, dy, rho) -> None:
    """gaussian_bias is the exact expected bias of the in-sample Gaussian MI on Gaussian data,
    whatever the correlation; dx dy / 2n, which the docs gave as the bias, is its first-order
    term only (3.33 nats for 5.46 at n = 60, 20 + 20)."""
    rng = np.random.default_rng(5)
    truth = -0.5 * min(dx, dy) * math.log(1 - rho**2)
    values = np.array([_in_sample_mi(*_gaussian_pairs(rng, n, dx, dy, rho))
                       for _ in range(600)])
    error = values.std() / math.sqrt(len(values))
    bias = classical.gaussian.gaussian_bias(n, dx, dy)
    assert abs(values.mean() - truth - bias) < 4 * error, (values.mean() - truth, bias, error)
    assert bias > dx * dy / (2 * n)  # the first-order term falls short


def test_the_gaussian_bias_of_the_reported_cases() -> None:
    from mitools.classical.gaussian import gaussian_bias

    assert gaussian_bias(60, 20, 20) == pytest.approx(5.4561, abs=1e-4)
    assert gaussian_bias(1000, 10, 10) == pytest.approx(0.05058, abs=1e-5)
    assert gaussian_bias(10**6, 2, 3) == pytest.approx(6 / 2e6, rel=1e-4)  # first order
    assert gaussian_bias(100, 0, 3) == 0.0


@pytest.mark.parametrize("n, d, bias", [(60, 20, "5.46"), (1000, 10, "0.0506")])
@pytest.mark.parametrize("seed", range(4))
def test_independent_high_dimensional_data_warn_of_the_bias(n, d, bias, seed) -> None:
    """Regression: on independent data, n = 60 and 20 + 20 dimensions read 5.43 nats, and
    n = 1,000 and 10 + 10 dimensions 0.05, with the 95 % interval excluding 0 in 20 of 20
    seeds, with no warning."""
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    for groups in (10, 0):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            classical.gaussian_mi(x, y, seed=seed, groups=groups)
        said = [str(w.message) for w in seen if "upward bias" in str(w.message)]
        assert len(said) == 1, [str(w.message) for w in seen]
        assert said[0].startswith(f"gaussian_mi: about {bias} nats of this estimate")
        assert f"dx×dy = {d}×{d} = {d * d} parameters from n = {n} samples" in said[0]
        assert all(w.filename == __file__ for w in seen)


@pytest.mark.parametrize("n, d, rho", [(20000, 3, 0.8), (1000, 1, 0.8), (300, 2, 0.8),
                                       (1000, 10, 0.5)])
def test_a_bias_within_the_interval_draws_no_warning(n, d, rho) -> None:
    rng = np.random.default_rng(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        classical.gaussian_mi(*_gaussian_pairs(rng, n, d, d, rho))
