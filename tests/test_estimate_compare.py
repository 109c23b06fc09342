"""Tests of mitools.estimate.compare: ``==`` on estimates compares their content."""

from __future__ import annotations

import dataclasses
import math
import warnings

import pytest
import torch

from mitools import CorrelatedGaussian
from mitools.estimate import MIEstimate, estimate_mi
from mitools.estimate.compare import same_content

FAST = dict(folds=2, max_steps=20, eval_every=10, threads=1)


def _fit(x=None, seed: int = 0, **kwargs) -> MIEstimate:
    xs, y = CorrelatedGaussian(1, 0.5).sample(300, generator=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return estimate_mi(xs if x is None else x, y, seed=seed, **{**FAST, **kwargs})


def test_two_estimates_with_the_same_seed_are_equal_and_other_seeds_are_not() -> None:
    """Regression (eleventh tryout): ``a == b`` of two estimates raised ``RuntimeError:
    Boolean value of Tensor with more than one value is ambiguous`` (the dataclass compared
    the folds' index tensors with ``==``), and the margins transforms alike."""
    a, b = _fit(screen=False), _fit(screen=False)
    assert a == b and a.margins == b.margins and a.folds[0] == b.folds[0]
    other = _fit(screen=False, seed=1)
    assert other != a and other.folds[0] != a.folds[0]
    assert dataclasses.replace(a, value=a.value + 1e-12) != a
    # a critic weight changed: the estimates differ, though every number reported is the same
    changed = dataclasses.replace(a, folds=(dataclasses.replace(
        a.folds[0], critic=_perturbed(a.folds[0].critic)), *a.folds[1:]))
    assert changed != a and changed.value == a.value


def _perturbed(critic: torch.nn.Module) -> torch.nn.Module:
    import copy

    out = copy.deepcopy(critic)
    with torch.no_grad():
        next(iter(out.parameters())).add_(1.0)
    return out


@pytest.mark.parametrize("kind", ["trained", "constant", "random start"])
def test_an_estimate_equals_itself_loaded_back(tmp_path, kind: str) -> None:
    """Regression (eleventh tryout): a loaded estimate was ``!=`` the one saved (its critics
    are other modules), a constant variable's estimate too (NaN ``stderr``, read back as
    another NaN object), and ``back.diagnostics != r.diagnostics`` where a share is NaN (the
    random start has no ``residual_share``)."""
    r = (_fit() if kind == "trained" else
         _fit(x=torch.zeros(300, 1)) if kind == "constant" else
         _fit(critic="separable", hidden=(8,), embed_dim=4))
    r.save(tmp_path / "r.pt")
    back = MIEstimate.load(tmp_path / "r.pt")
    assert back == r
    if kind == "constant":
        assert math.isnan(back.stderr)
    if kind == "random start":
        assert math.isnan(r.diagnostics.residual_share) and back.diagnostics == r.diagnostics


def test_estimates_are_not_hashable_as_they_compare_by_content() -> None:
    with pytest.raises(TypeError, match="unhashable type: 'MIEstimate'"):
        hash(_fit(x=torch.zeros(300, 1)))


def test_same_content_compares_dtypes_shapes_and_nan() -> None:
    nan = torch.tensor([1.0, math.nan])
    assert same_content(nan, nan.clone()) and not same_content(nan, nan.double())
    assert not same_content(torch.zeros(2), torch.zeros(1, 2))
    assert same_content([1.0, (2, math.nan)], (1.0, [2, float("nan")]))
    assert not same_content({"a": 1}, {"b": 1}) and not same_content([1], [1, 2])
    assert same_content(torch.nn.Linear(2, 2).requires_grad_(False), None) is False
