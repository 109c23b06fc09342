"""mitools.reductions.reduce: the values it gives and what it refuses."""

from __future__ import annotations

import pytest
import torch

from mitools.reductions import reduce

VALUES = torch.tensor([1.0, 3.0, 9.0])
ACTIVE = torch.tensor([True, True, False])


@pytest.mark.parametrize(
    ("name", "want"),
    [("mean", 2.0), ("sum", 4.0), ("max", 3.0), ("logsumexp", 3.1269280110429727)],
)
def test_named_reductions_over_the_active_values(name, want):
    torch.testing.assert_close(reduce(VALUES, ACTIVE, name), torch.tensor(want))


def test_an_unknown_name_is_refused():
    """reduce(values, active, "median") returned the logsumexp, 3.127, silently."""
    with pytest.raises(ValueError, match=r"reduction must be one of .* got 'median'"):
        reduce(VALUES, ACTIVE, "median")


@pytest.mark.parametrize("name", ["mean", "sum", "max", "logsumexp"])
def test_no_active_value_is_refused(name):
    """All inactive gave nan (mean), 0 (sum) and -inf (max, logsumexp), silently."""
    with pytest.raises(ValueError, match="no active problem among the 3 values"):
        reduce(VALUES, torch.zeros(3, dtype=torch.bool), name)


def test_shapes_and_dtypes_are_named():
    with pytest.raises(ValueError, match=r"values \(3,\) and active \(2,\)"):
        reduce(VALUES, ACTIVE[:2], "mean")
    with pytest.raises(ValueError, match=r"values \(1, 3\)"):
        reduce(VALUES[None], ACTIVE[None], "mean")
    with pytest.raises(TypeError, match=r"active must have dtype torch\.bool, got torch\.float32"):
        reduce(VALUES, ACTIVE.float(), "mean")
    with pytest.raises(TypeError, match="values and active must be tensors, got list"):
        reduce([1.0, 2.0], ACTIVE[:2], "mean")


@pytest.mark.parametrize(("name", "want"), [("mean", 30.0), ("sum", float("inf"))])
def test_half_precision_values_are_summed_in_float32(name, want) -> None:
    """tryout 7: 5000 float16 values of 30 summed to inf in float16, so their mean was inf,
    silently; the sum runs in float32 and comes back in float16 (where a sum of 150000 is
    inf, rightly)."""
    values = torch.full((5000,), 30.0, dtype=torch.float16)
    got = reduce(values, torch.ones(5000, dtype=torch.bool), name)
    assert got.dtype == torch.float16
    assert float(got) == want
