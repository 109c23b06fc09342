"""One rule for scalar options at every entry point (mitools.option_checks): a bool is not a
number, numpy scalars are numbers, reals are finite; each error names the option."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mitools.classical import gaussian_mi, ksg, mixed_ksg
from mitools.estimate import estimate_mi
from mitools.option_checks import check_flag, check_int, check_number

FAST = dict(max_steps=20, eval_every=10, hidden=(8,), folds=2, threads=1)


def _xy(n: int = 120):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n)
    return x, 0.8 * x + 0.6 * rng.standard_normal(n)


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 3.0, "3", None, 0])
def test_check_int_refuses_what_is_not_an_int_of_the_range(value) -> None:
    with pytest.raises(ValueError, match=r"k must be an int >= 1, got"):
        check_int("k", value)


@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3), np.uint8(3)])
def test_check_int_takes_python_and_numpy_ints(value) -> None:
    check_int("k", value)


@pytest.mark.parametrize("value", [True, float("inf"), float("nan"), -np.inf, "0.1", None,
                                   0.0, 1.0, np.float32(1.5)])
def test_check_number_refuses_bools_non_finite_and_out_of_range(value) -> None:
    with pytest.raises(ValueError, match=r"val_fraction must be a finite number in \(0, 1\)"):
        check_number("val_fraction", value, 0, high=1)


@pytest.mark.parametrize("value", [0.5, np.float32(0.5), np.float64(0.5)])
def test_check_number_takes_python_and_numpy_reals(value) -> None:
    check_number("level", value, 0, high=1)


def test_check_flag_takes_only_booleans() -> None:
    check_flag("screen", np.bool_(False))
    with pytest.raises(ValueError, match="screen must be True or False, got 0"):
        check_flag("screen", 0)


# --- the classical estimators -------------------------------------------------------------


@pytest.mark.parametrize("kwargs, match", [
    (dict(noise=True), "noise must be a finite number >= 0, got True"),  # was noise = 1.0
    (dict(noise=float("inf")), "noise must be a finite number"),
    (dict(estimator=2.0), "estimator must be 1 or 2, got 2.0"),  # was a KeyError 'ksg2.0'
    (dict(estimator=True), "estimator must be 1 or 2, got True"),
    (dict(estimator=3), "estimator must be 1 or 2, got 3"),
    # seed=None was a TypeError from numpy
    (dict(seed=None), r"seed must be an int in \[0, 4294967295\], got None"),
    (dict(seed=-1), r"seed must be an int in \[0, 4294967295\], got -1"),
    (dict(k=True), "k must be an int >= 1, got True"),
    (dict(groups=True), "groups must be 0 .* got True"),
    (dict(level=True), "level must be a finite number"),
])
def test_ksg_names_each_bad_option(kwargs, match) -> None:
    x, y = _xy()
    with pytest.raises(ValueError, match=match):
        ksg(x, y, **kwargs)


def test_classical_estimators_take_numpy_scalars_as_their_python_values() -> None:
    x, y = _xy()
    plain = ksg(x, y, k=3, groups=5, level=0.9, seed=1)
    numpy_ = ksg(x, y, k=np.int64(3), groups=np.int64(5), level=np.float32(0.9),
                 seed=np.int64(1))
    assert numpy_.value == plain.value and numpy_.interval[0] == pytest.approx(
        plain.interval[0], rel=1e-6)
    assert mixed_ksg(x, y, k=np.int32(3), groups=0).value == mixed_ksg(x, y, groups=0).value
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, "):
        gaussian_mi(x, y, seed=-3)


def test_ksg_on_k_plus_one_samples_is_refused() -> None:
    """Regression (review): with n = k + 1, each sample's k-th neighbour is the farthest
    sample and estimator 1 gives 0 whatever the data."""
    x, _ = _xy(4)
    with pytest.raises(ValueError, match=r"needs at least 5 samples .*a sample beyond them"):
        ksg(x, 2 * x, k=3, groups=0)
    assert ksg(np.r_[x, 1.5], np.r_[2 * x, 3.0], k=3, groups=0).value != 0.0


# --- estimate_mi ---------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, match", [
    (dict(val_fraction="0.1"), "val_fraction must be a finite number in"),  # a TypeError
    (dict(val_fraction=1.5), "val_fraction must be a finite number in"),  # "-101 samples"
    (dict(val_fraction=True), "val_fraction must be a finite number in"),
    (dict(lr=float("inf")), "lr must be a finite number > 0"),  # a non-finite score later
    (dict(ema=False), "ema must be a finite number"),
    (dict(level=1), "level must be a finite number"),
    (dict(hidden=5), r"hidden must be a sequence of positive ints .* got 5"),
    (dict(hidden="64"), r"hidden must be a sequence of positive ints .* got '64'"),
    (dict(hidden=(64, True)), "hidden must be a sequence of positive ints"),
    (dict(seed=True), r"seed must be an int in \[0, "),
    (dict(seed=2**62), r"seed must be an int in \[0, 4294967295\]"),  # overflowed in torch
])
def test_estimate_mi_names_each_bad_option(kwargs, match) -> None:
    x, y = _xy()
    with pytest.raises(ValueError, match=match):
        estimate_mi(x, y, **{**FAST, **kwargs})


def test_estimate_mi_takes_numpy_scalars() -> None:
    x, y = _xy()
    plain = estimate_mi(x, y, seed=2, lr=1e-3, **FAST)
    numpy_ = estimate_mi(x, y, seed=np.int64(2), lr=np.float64(1e-3),
                         **{**FAST, "max_steps": np.int64(20)})
    assert numpy_.value == plain.value


@pytest.mark.parametrize("typo, suggestion", [("max_step", "max_steps"), ("levell", "level")])
def test_a_misspelled_option_names_itself_and_the_closest_option(typo, suggestion) -> None:
    """It failed inside the bound's constructor: "DV.__init__() got an unexpected keyword
    argument 'max_step'" (estimate_mi passes keywords it does not know to the bound)."""
    x, y = _xy()
    with pytest.raises(TypeError, match=rf"estimate_mi got '{typo}', not one of its options"
                                        rf".*did you mean '{suggestion}'"):
        estimate_mi(x, y, **{typo: 1}, **FAST)


def test_a_misspelled_option_beside_a_bound_object_names_itself() -> None:
    from mitools.estimators import DV

    x, y = _xy()
    with pytest.raises(TypeError, match=r"estimate_mi got 'max_setps', not one of its options: "
                                        r"with the bound given as an object \(DV\).*did you "
                                        r"mean 'max_steps'"):
        estimate_mi(x, y, bound=DV(), max_setps=3, **FAST)


def test_hidden_takes_any_sequence_of_widths() -> None:
    x, y = _xy()
    assert estimate_mi(x, y, **{**FAST, "hidden": range(8, 9)}).value == estimate_mi(
        x, y, **FAST).value  # FAST's hidden is (8,)


def test_a_bound_option_still_reaches_the_bound() -> None:
    x, y = _xy()
    r = estimate_mi(x, y, bound="smile", clip=5.0, **FAST)
    assert r.settings["bound_kwargs"] == {"clip": 5.0} and torch.isfinite(
        torch.tensor(r.value))
