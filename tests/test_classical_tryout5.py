"""Regressions from the fifth new user's tryout of the classical estimators."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mitools.classical import gaussian_mi, ksg, mixed_ksg


def _with_constant_column(n: int = 300, seed: int = 3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    return x, np.c_[x, np.full(n, 7.0)]


@pytest.mark.parametrize("estimator", [ksg, mixed_ksg, gaussian_mi])
def test_a_constant_column_beside_x_keeps_the_infinite_mi_warning(estimator) -> None:
    """Regression: y = x**3 warns that the MI is infinite (the estimate a lower figure), but
    with a constant column beside x, which changes no distance, rank or estimate, every
    estimator was silent (its tie rule read the constant column as a discrete one), and KSG
    warned instead that x column 1 "repeats values in 100% of the samples"."""
    x, x_and_constant = _with_constant_column()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        plain = estimator(x, x**3, groups=0).value
        with_constant = estimator(x_and_constant, x**3, groups=0).value
    assert with_constant == plain
    lower = [w for w in seen if "is a lower figure" in str(w.message)]
    assert len(lower) == 2, [str(w.message)[:80] for w in seen]
    assert not [w for w in seen if "repeats values" in str(w.message)]


@pytest.mark.parametrize("estimator", [ksg, mixed_ksg, gaussian_mi])
def test_a_constant_column_draws_no_tie_warning(estimator) -> None:
    """Regression: ksg(np.c_[x, 7.0], y) warned that ties bias the estimate and to use
    mixed_ksg, for an estimate equal to ksg(x, y) (0.3528 nats on this sample)."""
    x, x_and_constant = _with_constant_column()
    y = x + np.random.default_rng(4).standard_normal(len(x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = estimator(x_and_constant, y).value
    assert value == pytest.approx(estimator(x, y).value, rel=1e-12)


def test_a_column_of_a_few_values_still_counts_as_tied() -> None:
    """The constant column is the one exception: a column of two values still draws KSG's
    tie warning."""
    x, _ = _with_constant_column()
    two_values = np.c_[x, (x > 0).astype(float)]
    with pytest.warns(UserWarning, match="x column 1 repeats values"):
        ksg(two_values, x + 1.0, groups=0)
