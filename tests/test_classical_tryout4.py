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
