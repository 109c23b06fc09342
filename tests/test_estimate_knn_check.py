"""estimate_mi's k-nearest-neighbour cross-check (mitools.estimate.knn_check): KSG on the same
samples flags critics that fell short of dependence that is there.

Before it, ``estimate_mi(x, x + U(-0.1, 0.1), lr=0.03)`` (or ``lr=0.1``) read 1.29 nats for a
true MI near 1.6 with no flag: training never beat the Gaussian start, every fold kept it, and
the interval, which holds the critics fixed, could not say so."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from mitools import CorrelatedGaussian
from mitools.estimate import estimate_mi, load_estimate
from mitools.estimate.diagnostics import diagnose
from mitools.estimate.knn_check import (
    KNN_CHECK_MAX_DIMS,
    KNN_CHECK_MIN_SAMPLES,
    KNN_CHECK_NATS,
    KNN_CHECK_SAMPLES,
    knn_cross_check,
    knn_shortfall,
)

FAST = dict(max_steps=200, eval_every=100, folds=3, threads=1)


def _additive(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(n, 1))
    return x, x + rng.uniform(-0.1, 0.1, size=(n, 1))


@pytest.mark.parametrize("lr", [0.03, 0.1])
def test_training_that_did_not_learn_is_flagged(lr) -> None:
    x, y = _additive(2000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = estimate_mi(x, y, lr=lr, threads=1)
    assert all(f.best_step == 0 for f in r.folds)  # every fold kept the Gaussian start
    assert r.value == pytest.approx(1.300, abs=0.01)
    assert r.diagnostics.knn_value == pytest.approx(1.631, abs=0.01)
    flags = [f for f in r.diagnostics.flags if "k-nearest-neighbour" in f]
    assert len(flags) == 1, r.diagnostics.flags
    assert "reads 1.631 ±" in flags[0] and "0.33" in flags[0] and "too high an lr" in flags[0]
    from mitools.cli.report import cli_terms  # the command line has no learning rate

    assert ("with too few --max-steps, or a critic family" in cli_terms(flags[0])
            and "lr" not in cli_terms(flags[0]))
    assert any("k-nearest-neighbour" in str(w.message) for w in caught)
    assert "k-nearest-neighbour" in str(r)


def test_a_point_mass_does_not_turn_the_check_off() -> None:
    """3 % exact zeros in x: the check had been skipped at the first repeated value, and
    lr=0.1 read 1.31 nats (the default 1.70, mixed KSG 1.63) with no flag."""
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(2000, 1))
    x[rng.random(2000) < 0.03] = 0.0
    y = x + rng.uniform(-0.1, 0.1, (2000, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = estimate_mi(x, y, lr=0.1, threads=1)
    assert r.value == pytest.approx(1.313, abs=0.01)
    assert r.diagnostics.knn_value == pytest.approx(1.633, abs=0.01)
    assert any("k-nearest-neighbour" in f for f in r.diagnostics.flags)


def test_a_constant_column_beside_others_does_not_turn_the_check_off() -> None:
    """x = np.c_[x, 7.0] changes no distance, so KSG reads what it reads without the column;
    the check had counted the column as tied in 100 % of the samples and was skipped."""
    x, y = _additive(1000)
    plain = knn_cross_check(torch.tensor(x), torch.tensor(y), 0)
    widened = knn_cross_check(torch.tensor(np.c_[x, np.full(len(x), 7.0)]), torch.tensor(y), 0)
    assert plain[0] == pytest.approx(1.62, abs=0.02)
    assert widened == pytest.approx(plain)
    rounded = np.c_[x, np.round(x, 1)]  # a rounded column still turns it off
    assert math.isnan(knn_cross_check(torch.tensor(rounded), torch.tensor(y), 0)[0])


def test_gaussian_data_are_not_flagged() -> None:
    x, y = CorrelatedGaussian(2, 1.0).sample(2000, generator=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        r = estimate_mi(x, y, **FAST)
    d = r.diagnostics
    assert math.isfinite(d.knn_value) and d.knn_stderr > 0
    assert abs(d.knn_value - 1.0) < 0.15  # KSG near the truth in 4 dimensions
    assert not any("k-nearest" in f for f in d.flags)


@pytest.mark.parametrize("case", ["labels", "ties", "dims", "few", "exact"])
def test_the_check_is_skipped_where_it_does_not_apply(case) -> None:
    rng = np.random.default_rng(1)
    n, dx = (60 if case == "few" else 400), (KNN_CHECK_MAX_DIMS if case == "dims" else 1)
    x = rng.normal(size=(n, dx))
    y = x[:, :1] + rng.normal(size=(n, 1))
    options: dict = dict(FAST, max_steps=20, eval_every=10)
    if case == "labels":
        x, options["discrete_x"] = (x > 0).astype(int), True
    elif case == "ties":
        y = np.round(y, 1)  # rounded data: ties that KSG reads as dense clusters
    elif case == "exact":
        y = x ** 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = estimate_mi(x, y, **options)
    assert math.isnan(r.diagnostics.knn_value) and math.isnan(r.diagnostics.knn_stderr)


def test_the_limits_are_the_documented_ones() -> None:
    rng = np.random.default_rng(2)
    x = torch.from_numpy(rng.normal(size=(KNN_CHECK_MIN_SAMPLES, KNN_CHECK_MAX_DIMS - 1)))
    y = x[:, :1] + torch.from_numpy(rng.normal(size=(KNN_CHECK_MIN_SAMPLES, 1)))
    assert math.isfinite(knn_cross_check(x, y, seed=0)[0])  # at both limits: run
    assert math.isnan(knn_cross_check(x[:-1], y[:-1], seed=0)[0])
    assert math.isnan(knn_cross_check(torch.cat([x, y], 1), y, seed=0)[0])


def test_large_samples_are_subsampled_by_the_seed() -> None:
    x, y = CorrelatedGaussian(1, 0.5, dtype=torch.float64).sample(3 * KNN_CHECK_SAMPLES,
                                                                   generator=0)
    first, again = knn_cross_check(x, y, seed=4), knn_cross_check(x, y, seed=4)
    other = knn_cross_check(x, y, seed=5)
    assert first == again and first != other
    from mitools.classical import mixed_ksg

    keep = np.random.default_rng([4, 2]).permutation(len(x))[:KNN_CHECK_SAMPLES]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert first[0] == mixed_ksg(x.numpy()[keep], y.numpy()[keep], k=5, seed=4).value


@pytest.mark.parametrize("knn, stderr, value, est_stderr, flagged", [
    (1.0, 0.01, 0.89, 0.01, True),     # every margin passed
    (1.0, 0.01, 0.91, 0.01, False),    # within KNN_CHECK_NATS and 10 % of KSG
    (3.0, 0.01, 2.75, 0.01, False),    # 0.25 above, but within 10 % of KSG's 3.0
    (3.0, 0.01, 2.65, 0.01, True),
    (1.0, 0.05, 0.8, 0.05, False),     # 0.2 above, within 3 standard errors (0.21)
    (1.0, 0.05, 0.7, math.nan, True),  # no standard error of the estimate: KSG's alone
    (math.nan, math.nan, 0.5, 0.01, False),
    (0.5, 0.01, 0.5 - KNN_CHECK_NATS, 0.0, False),  # exactly the margin: not above it
])
def test_the_flag_needs_every_margin(knn, stderr, value, est_stderr, flagged) -> None:
    assert knn_shortfall(knn, stderr, value, est_stderr) is flagged


def test_diagnose_names_the_numbers_and_keeps_them() -> None:
    from types import SimpleNamespace

    from mitools.estimate.result import HistoryPoint

    fold = SimpleNamespace(held_out=0.5, in_sample=0.5, start_held_out=0.5, converged=True,
                           steps=200, best_step=0,
                           history=[HistoryPoint(0, math.nan, 0.5), HistoryPoint(100, 0.5, 0.5)],
                           split=SimpleNamespace(test=range(500)))
    d = diagnose([fold] * 3, value=0.5, stderr=0.01, max_steps=2000, knn=(0.9, 0.02))
    assert (d.knn_value, d.knn_stderr) == (0.9, 0.02)
    assert len(d.flags) == 1
    assert "reads 0.900 ± 0.020 nats, 0.400 above this estimate" in d.flags[0]
    quiet = diagnose([fold] * 3, value=0.5, stderr=0.01, max_steps=2000)
    assert quiet.flags == () and math.isnan(quiet.knn_value)


def test_the_check_survives_save_and_load(tmp_path) -> None:
    x, y = _additive(2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = estimate_mi(x, y, lr=0.1, threads=1)
    r.save(tmp_path / "r.pt")
    back = load_estimate(tmp_path / "r.pt")
    assert back.diagnostics == r.diagnostics
