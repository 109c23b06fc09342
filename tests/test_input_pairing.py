"""Rows are paired by position: warnings for pandas objects with different indexes and for
repeated rows in continuous data, at every entry point."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from mitools.classical import gaussian_mi, ksg, mixed_ksg
from mitools.estimate import estimate_mi
from mitools.inputs import repeated_rows

FAST = dict(max_steps=20, eval_every=10, hidden=(8,), folds=2, threads=1)


def _gaussian(n: int = 400, d: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    return x, 0.8 * x + 0.6 * rng.standard_normal((n, d))


@pytest.mark.parametrize("estimator", [
    lambda x, y: gaussian_mi(x, y), lambda x, y: ksg(x, y), lambda x, y: mixed_ksg(x, y),
    lambda x, y: estimate_mi(x, y, **FAST)])
def test_frames_with_different_indexes_warn_that_rows_pair_by_position(estimator) -> None:
    """Regression (review): gaussian_mi(dx.sample(frac=1), dy) gave 0.0009 nats for 1.01,
    silently."""
    pd = pytest.importorskip("pandas")
    x, y = _gaussian()
    dx, dy = pd.DataFrame(x), pd.DataFrame(y)
    with pytest.warns(UserWarning, match="pairs rows by position, not by index"):
        estimator(dx.sample(frac=1, random_state=0), dy)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        gaussian_mi(dx, dy)  # the same index: no warning


def test_repeated_rows_are_counted_where_the_columns_look_continuous() -> None:
    x, y = _gaussian(1000)
    assert repeated_rows(x, y) == 0
    assert repeated_rows(np.repeat(x[:250], 4, 0), np.repeat(y[:250], 4, 0)) == 750
    label = np.random.default_rng(0).integers(0, 3, 1000)[:, None]
    assert repeated_rows(np.r_[label, label], np.r_[label, label]) == 0  # the data of a label


@pytest.mark.parametrize("estimator", [
    lambda x, y: ksg(x, y), lambda x, y: mixed_ksg(x, y),
    lambda x, y: estimate_mi(x, y, **FAST)])
def test_repeated_rows_of_continuous_data_warn(estimator) -> None:
    """Regression (review): every row repeated 4 times gave 5.65 nats for 1.02 (KSG and
    mixed_ksg, the latter without a warning) and 2.86 (estimate_mi)."""
    x, y = _gaussian(1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.warns(UserWarning, match="750 of 1000 .* rows repeat an earlier row"):
            estimator(np.repeat(x[:250], 4, 0), np.repeat(y[:250], 4, 0))


def test_gaussian_mi_warns_that_copies_narrow_its_interval() -> None:
    """Regression (review): every row twice left gaussian_mi's value unchanged but shrank its
    jackknife interval by about sqrt(2), silently; it warns through the shared rule."""
    x, y = _gaussian(1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a continuous sample without copies: no warning
        plain = gaussian_mi(x, y)
    with pytest.warns(UserWarning, match=r"gaussian_mi: 1000 of 2000 \(x, y\) rows repeat an "
                      r"earlier row.*interval counts copies as independent samples"):
        copied = gaussian_mi(np.repeat(x, 2, axis=0), np.repeat(y, 2, axis=0))
    assert copied.value == pytest.approx(plain.value, rel=1e-12, abs=1e-12)


def test_gaussian_mi_of_a_label_with_repeated_rows_does_not_warn() -> None:
    """Rows of few-valued columns repeat as a matter of course: the rule returns 0."""
    rng = np.random.default_rng(0)
    label = rng.integers(0, 3, 600)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        gaussian_mi(label, label + rng.integers(0, 2, 600))


def test_a_label_with_repeated_rows_does_not_warn() -> None:
    label = np.random.default_rng(0).integers(0, 3, 600)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        mixed_ksg(label, label, groups=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_repeated_rows_counts_exactly_across_hash_blocks(monkeypatch, dtype) -> None:
    """The hash only preselects: the count equals an exact comparison of all rows, for
    copies in different blocks of rows, and -0.0 equals 0.0."""
    import mitools.inputs.pairing as pairing

    monkeypatch.setattr(pairing, "HASH_BLOCK_ROWS", 7)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 3, generator=g).to(dtype)
    y = torch.randn(300, 2, generator=g).to(dtype)
    copies = torch.randint(0, 300, (40,), generator=g)
    x, y = torch.cat([x, x[copies]]), torch.cat([y, y[copies]])
    x[0, 0], x[1, 0] = 0.0, -0.0
    y[1] = y[0]
    x[1, 1:] = x[0, 1:]  # row 1 equals row 0 up to the sign of a zero
    joint = torch.cat([x, y], dim=1).double() + 0.0
    exact = len(joint) - len(torch.unique(joint, dim=0))
    assert exact >= 40
    assert pairing.repeated_rows(x, y) == exact
