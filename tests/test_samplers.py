"""Tests of mitools.samplers: position pairs against loops, derangements, the queue."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mitools.samplers import (
    AllPairs,
    LocalToGlobal,
    Matched,
    NegativeQueue,
    Neighbourhood,
    RandomPairs,
    random_derangement,
)

grids = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)


def as_set(pairs):
    return set(zip(pairs.x_index.tolist(), pairs.y_index.tolist(), strict=True))


@given(grid_x=grids, grid_y=grids)
def test_all_pairs_is_the_outer_product(grid_x, grid_y):
    pairs = AllPairs()(grid_x, grid_y)
    p, q = math.prod(grid_x), math.prod(grid_y)
    assert as_set(pairs) == set(itertools.product(range(p), range(q)))
    assert pairs.shape == grid_x + grid_y
    assert pairs.where.tolist() == [a * q + b for a, b in as_set_sorted(pairs)]


def as_set_sorted(pairs):
    return list(zip(pairs.x_index.tolist(), pairs.y_index.tolist(), strict=True))


@given(grid=grids)
def test_local_to_global_both_sides(grid):
    n = math.prod(grid)
    pairs = LocalToGlobal()(grid, ())
    assert as_set_sorted(pairs) == [(i, 0) for i in range(n)] and pairs.shape == grid
    pairs = LocalToGlobal(global_side="x")((1,), grid)
    assert as_set_sorted(pairs) == [(0, i) for i in range(n)] and pairs.shape == grid


def test_local_to_global_needs_one_global_position():
    with pytest.raises(ValueError, match=r"one position on the y side.*\(3,\)"):
        LocalToGlobal()((2, 2), (3,))
    with pytest.raises(ValueError, match="global_side"):
        LocalToGlobal(global_side="z")


def test_local_to_global_names_the_side_that_is_global() -> None:
    """tryout 9: a sentence vector as x against tokens as y (``x_pattern="b c"``,
    ``y_pattern="b l c"``) with the default sampler was told to pool y or use AllPairs; the
    x side is the global one."""
    with pytest.raises(ValueError, match=r"x side has one position: use "
                                         r"LocalToGlobal\(global_side='x'\)"):
        LocalToGlobal()((), (3,))
    with pytest.raises(ValueError, match=r"y side has one position: use "
                                         r"LocalToGlobal\(global_side='y'\)"):
        LocalToGlobal(global_side="x")((2, 2), ())
    with pytest.raises(ValueError, match=r"or use AllPairs$"):  # neither side is global
        LocalToGlobal()((2, 2), (3,))


@given(grid=grids)
def test_matched(grid):
    pairs = Matched()(grid, grid)
    assert as_set_sorted(pairs) == [(i, i) for i in range(math.prod(grid))]
    with pytest.raises(ValueError, match="same shape"):
        Matched()(grid, (*grid, 2))


@given(grid=grids, radius=st.integers(0, 2))
def test_neighbourhood_equals_loop(grid, radius):
    pairs = Neighbourhood(radius)(grid, grid)
    coords = list(itertools.product(*[range(s) for s in grid]))
    expected = [
        (a, b)
        for a, ca in enumerate(coords)
        for b, cb in enumerate(coords)
        if all(abs(i - j) <= radius for i, j in zip(ca, cb, strict=True))
    ]
    assert as_set_sorted(pairs) == expected
    n = len(coords)
    assert pairs.where.tolist() == [a * n + b for a, b in expected]
    assert pairs.shape == grid + grid


def test_neighbourhood_errors():
    with pytest.raises(ValueError, match="radius"):
        Neighbourhood(-1)
    with pytest.raises(ValueError, match="same shape"):
        Neighbourhood(1)((2, 2), (2, 3))


def test_random_pairs_are_distinct_reproducible_and_capped():
    a = RandomPairs(5, generator=torch.Generator().manual_seed(3))((4, 4), (3,))
    b = RandomPairs(5, generator=torch.Generator().manual_seed(3))((4, 4), (3,))
    assert len(as_set(a)) == 5 and torch.equal(a.x_index, b.x_index)
    assert all(0 <= p < 16 and 0 <= q < 3 for p, q in as_set(a))
    assert len(RandomPairs(100)((2,), (2,))) == 4
    sampler = RandomPairs(2, generator=torch.Generator().manual_seed(0))
    draws = {tuple(sampler((3, 3), (3,)).where.tolist()) for _ in range(20)}
    assert len(draws) > 1  # a fresh draw per call
    with pytest.raises(ValueError, match="RandomPairs: k must be an int >= 1, got 0"):
        RandomPairs(0)


def test_bad_grid():
    with pytest.raises(ValueError, match="grid_x"):
        AllPairs()((0, 2), ())


@given(
    valid=st.lists(st.lists(st.booleans(), min_size=1, max_size=7), min_size=1, max_size=4).filter(
        lambda rows: len({len(r) for r in rows}) == 1
    ),
    seed=st.integers(0, 1000),
)
def test_derangement_is_a_cycle_on_the_valid_entries(valid, seed):
    mask = torch.tensor(valid, dtype=torch.bool)
    partner = random_derangement(mask, torch.Generator().manual_seed(seed))
    for row, p in zip(mask.tolist(), partner.tolist(), strict=True):
        idx = [i for i, v in enumerate(row) if v]
        for i, v in enumerate(row):
            if not v or len(idx) < 2:
                assert p[i] == i
            else:
                assert p[i] != i and row[p[i]]
        if len(idx) >= 2:
            assert sorted(p[i] for i in idx) == idx  # a permutation of the valid entries
            i, seen = idx[0], set()
            while i not in seen:  # one single cycle through all valid entries
                seen.add(i)
                i = p[i]
            assert seen == set(idx)


def test_derangement_has_no_fixed_points_where_a_permutation_would():
    gen = torch.Generator().manual_seed(0)
    partner = random_derangement(torch.ones(2000, 8, dtype=torch.bool), gen)
    assert not bool((partner == torch.arange(8)).any())
    # every partner is equally likely
    counts = torch.bincount((partner[:, 0]), minlength=8)[1:].float()
    assert float(counts.std() / counts.mean()) < 0.15


def test_queue_is_fifo_and_detached():
    queue = NegativeQueue(size=5)
    assert len(queue) == 0
    f1 = torch.randn(3, 2, 4, requires_grad=True)
    queue.extend(f1, torch.ones(3, 2, dtype=torch.bool))
    f2 = torch.randn(4, 2, 4)
    m2 = torch.rand(4, 2) > 0.5
    queue.extend(f2, m2)
    assert len(queue) == 5 and not queue.features().requires_grad
    torch.testing.assert_close(queue.features(), torch.cat([f1[2:].detach(), f2]))
    assert torch.equal(queue.mask()[1:], m2)
    with pytest.raises(ValueError, match="positions and channels must match"):
        queue.extend(torch.randn(1, 3, 4), torch.ones(1, 3, dtype=torch.bool))
    queue.reset()
    assert len(queue) == 0


def test_negatives_moved_to_their_module_and_still_import_from_samplers():
    import mitools.negatives as negatives
    import mitools.samplers as samplers

    assert samplers.NegativeQueue is negatives.NegativeQueue
    assert samplers.random_derangement is negatives.random_derangement
    assert negatives.NEGATIVES == ("all", "derangement")


def test_negative_columns_append_the_queue_after_the_batch():
    from mitools.negatives import NegativeQueue, negative_columns

    queue = NegativeQueue(3)
    queue.extend(torch.zeros(3, 2, 4), torch.tensor([[True, False]] * 3))
    y = torch.ones(5, 2, 4)
    cols = negative_columns(y, None, gather=True, queue=queue)  # no process group: no gather
    assert cols.features.shape == (8, 2, 4) and cols.offset == 0
    assert cols.mask[:5].all() and cols.mask[5:, 1].logical_not().all()
    assert cols.batch_features is y and cols.batch_mask is None
    with pytest.raises(ValueError, match="reset the queue"):
        negative_columns(torch.ones(5, 3, 4), None, gather=False, queue=queue)


def test_negative_columns_refuses_features_and_masks_that_do_not_pair():
    """Fifteenth tryout: a 2-D ``y`` and a ``y_mask`` of another shape than ``(B, Q)`` were
    returned as columns, silently (a (2, 2) mask for y (2, 3, 4) masked 2 of 3 positions)."""
    from mitools.negatives import negative_columns

    y = torch.ones(2, 3, 4)
    with pytest.raises(ValueError, match=r"y must have shape \(B, Q, C\), got \(2, 3\)"):
        negative_columns(torch.ones(2, 3), None, gather=False, queue=None)
    with pytest.raises(TypeError, match="y must be a \\(B, Q, C\\) tensor, got list"):
        negative_columns([[1.0]], None, gather=False, queue=None)
    with pytest.raises(ValueError, match=r"y_mask must have shape \(B, Q\) = \(2, 3\) "
                                         r"\(y \(2, 3, 4\)\), got \(2, 2\)"):
        negative_columns(y, torch.ones(2, 2, dtype=torch.bool), gather=False, queue=None)
    with pytest.raises(TypeError, match=r"y_mask must be None or a bool tensor, got torch\.float"):
        negative_columns(y, torch.ones(2, 3), gather=False, queue=None)
    mask = torch.tensor([[True, False, True], [True, True, True]])
    cols = negative_columns(y, mask, gather=False, queue=None)
    assert cols.mask is mask and cols.features is y


def test_device_zero_is_not_the_cpu() -> None:
    """tryout 7: ``device=0`` (cuda:0 for torch) was falsy and gave CPU indices, silently;
    it is passed to torch.device like any other device."""
    if torch.cuda.is_available():
        assert AllPairs()((2,), (3,), device=0).x_index.device == torch.device("cuda", 0)
    else:
        with pytest.raises((RuntimeError, AssertionError)):  # torch has no CUDA: not the CPU
            AllPairs()((2,), (3,), device=0)
    assert AllPairs()((2,), (3,), device="meta").x_index.device.type == "meta"
    assert AllPairs()((2,), (3,)).x_index.device.type == "cpu"
