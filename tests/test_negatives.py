"""mitools.negatives: the queue and the derangement refuse malformed input by name."""

from __future__ import annotations

import pytest
import torch

from mitools.negatives import NegativeQueue, random_derangement


def test_queue_refuses_a_mask_of_another_batch():
    """A (3, 1) mask with (2, 1, 3) features was queued: 2 feature rows against 3 mask rows,
    so every later batch's columns and their validity were misaligned."""
    queue = NegativeQueue(3)
    with pytest.raises(ValueError, match=r"mask must have shape \(B, Q\) = \(2, 1\).*got \(3, 1\)"):
        queue.extend(torch.randn(2, 1, 3), torch.ones(3, 1, dtype=torch.bool))
    assert len(queue) == 0


def test_queue_refuses_a_float_mask_and_flat_features():
    """A float mask was kept as a float buffer, and the next batch's bool mask was promoted to
    float when the queue was appended to it."""
    queue = NegativeQueue(3)
    with pytest.raises(TypeError, match=r"mask must be a bool tensor, got torch\.float32"):
        queue.extend(torch.randn(2, 1, 3), torch.ones(2, 1))
    with pytest.raises(ValueError, match=r"features must have shape \(B, Q, C\), got \(2, 3\)"):
        queue.extend(torch.randn(2, 3), torch.ones(2, dtype=torch.bool))
    queue.extend(torch.randn(2, 1, 3), torch.ones(2, 1, dtype=torch.bool))
    assert queue.mask().dtype == torch.bool and queue.features().shape == (2, 1, 3)


def test_derangement_error_gives_shape_and_dtype():
    with pytest.raises(TypeError, match=r"got shape \(3,\), dtype torch\.bool"):
        random_derangement(torch.tensor([True, False, True]))
    with pytest.raises(TypeError, match=r"got shape \(2, 3\), dtype torch\.float32"):
        random_derangement(torch.ones(2, 3))


def test_derangement_takes_an_int_seed():
    """tryout 7: an int seed failed with "'int' object has no attribute 'device'"; it seeds a
    CPU generator, as the tasks' seeds do, and anything else is named."""
    valid = torch.ones(2, 6, dtype=torch.bool)
    torch.testing.assert_close(random_derangement(valid, 3),
                               random_derangement(valid, torch.Generator().manual_seed(3)))
    with pytest.raises(TypeError, match=r"random_derangement: generator must be a "
                                        r"torch\.Generator, an int seed or None, got float"):
        random_derangement(valid, 3.0)
