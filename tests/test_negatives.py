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


# ---------------------------------------------------------------------------------------------
# The queue's state: saved by state_dict, so that a resumed run does not start with an empty
# queue. Before, state_dict() of a NegativeQueue (and the queue.* entries of a LocalMILoss)
# held nothing, and a loss rebuilt from a checkpoint scored its next batch without the queued
# columns: a different value and gradient from the run it resumed.


def _saved(state):
    """``state`` through a file, as a checkpoint is (weights only)."""
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _filled(size, samples, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    queue = NegativeQueue(size)
    for _ in range(samples // 2):
        features = torch.randn(2, 3, 5, generator=g, dtype=dtype)
        queue.extend(features, torch.rand(2, 3, generator=g) < 0.7)
    return queue


@pytest.mark.parametrize("samples", [0, 2, 4, 8])  # empty, part filled, full, overfull
def test_queue_state_round_trips(samples):
    queue = _filled(4, samples)
    state = _saved(queue.state_dict())
    assert set(state) == {"features_buffer", "mask_buffer", "capacity"}
    resumed = NegativeQueue(4)
    resumed.load_state_dict(state)
    assert len(resumed) == len(queue) == min(samples, 4)
    assert torch.equal(resumed.features(), queue.features())
    assert torch.equal(resumed.mask(), queue.mask())
    # and it goes on as the original does: the oldest samples leave first
    new, new_mask = torch.randn(2, 3, 5), torch.ones(2, 3, dtype=torch.bool)
    queue.extend(new, new_mask)
    resumed.extend(new, new_mask)
    assert torch.equal(resumed.features(), queue.features())
    assert torch.equal(resumed.mask(), queue.mask())


def test_an_empty_state_empties_a_filled_queue():
    queue = _filled(4, 4)
    queue.load_state_dict(NegativeQueue(4).state_dict())
    assert len(queue) == 0 and queue.features().numel() == 0


def test_queue_state_takes_the_modules_device_and_keeps_its_dtype():
    """The features keep the dtype they were saved in (that of the features they came from,
    as extend keeps it), on the queue's own device; ``assign=True`` takes them as they are."""
    import warnings

    queue = _filled(4, 4, dtype=torch.float64)
    state = _saved(queue.state_dict())
    for built in (NegativeQueue(4), NegativeQueue(4).to(torch.float16)):
        built.load_state_dict(state)
        assert built.features().dtype == torch.float64
        assert torch.equal(built.features(), queue.features())
    elsewhere = NegativeQueue(4).to("meta")  # a device other than the state's, without a GPU
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # copying into meta tensors is a no-op, and says so
        elsewhere.load_state_dict(state)
    assert {t.device.type for t in elsewhere.buffers()} == {"meta"}
    assert elsewhere.features().shape == (4, 3, 5) and elsewhere.mask().shape == (4, 3)
    assigned = NegativeQueue(4).to("meta")
    assigned.load_state_dict(state, assign=True)
    assert torch.equal(assigned.features(), queue.features())
    assert torch.equal(assigned.mask(), queue.mask())


def test_queue_refuses_a_state_of_another_size_or_width():
    state = _filled(4, 2).state_dict()
    with pytest.raises(RuntimeError, match=r"queue of size 4 \(features \(2, 3, 5\)\) but this "
                                           r"queue has size 6.*NegativeQueue\(size=4\)"):
        NegativeQueue(6).load_state_dict(state)
    other = NegativeQueue(4)
    other.extend(torch.randn(1, 2, 5), torch.ones(1, 2, dtype=torch.bool))
    with pytest.raises(RuntimeError, match=r"state holds features of shape \(S, Q, C\) = "
                                           r"\(2, 3, 5\) but this queue holds \(1, 2, 5\)"):
        other.load_state_dict(state)
    assert other.features().shape == (1, 2, 5)  # a refused state changes nothing
    bad = dict(state, mask_buffer=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(RuntimeError, match=r"features \(2, 3, 5\) and mask \(2, 4\)"):
        NegativeQueue(4).load_state_dict(bad)
    old = {k: v for k, v in state.items() if k != "capacity"}  # no size saved: length checked
    with pytest.raises(RuntimeError, match=r"holds 2 samples \(features \(2, 3, 5\)\) but this "
                                           "queue keeps 1"):
        NegativeQueue(1).load_state_dict(old, strict=False)


def _local_loss(bound, size, critic=True):
    from mitools.critics import SeparableCritic
    from mitools.local import LocalMILoss

    torch.manual_seed(0)
    module = SeparableCritic(4, 3, hidden=(5,), embed_dim=4) if critic else None
    return LocalMILoss(bound, module, queue=size, x_pattern="b c h w", y_pattern="b c")


def _batches(n, dtype=torch.float32, cy=3):
    """``n`` batches of 4 samples: ``x`` a 2x2 grid of 4 channels, ``y`` one ``cy``-vector."""
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(4, 4, 2, 2, generator=g, dtype=dtype),
             torch.randn(4, cy, generator=g, dtype=dtype)) for _ in range(n)]  # fmt: skip


def _step(loss_fn, optimizer, x, y):
    optimizer.zero_grad()
    out = loss_fn(x, y).loss
    out.backward()
    grads = [p.grad.clone() for p in loss_fn.parameters()]
    optimizer.step()
    return out.detach(), grads


@pytest.mark.parametrize("bound", ["infonce", "mine"])
@pytest.mark.parametrize("size", [6, 32])  # full (after 3 batches of 4), part filled
def test_local_loss_resumes_with_its_queue_bit_for_bit(bound, size):
    """Train three steps, save, build a fresh loss and load: the next two steps' losses and
    gradients equal those of the original run, exactly (MINE's averages come along too)."""
    data = _batches(5)
    run = _local_loss(bound, size)
    opt = torch.optim.SGD(run.parameters(), lr=0.1)
    for x, y in data[:3]:
        _step(run, opt, x, y)
    assert len(run.queue) == min(size, 12)
    state = _saved(run.state_dict())
    resumed = _local_loss(bound, size)
    with torch.no_grad():  # a fresh model: different weights until loaded
        for p in resumed.parameters():
            p.add_(1.0)
    resumed.load_state_dict(state)
    opt2 = torch.optim.SGD(resumed.parameters(), lr=0.1)
    for x, y in data[3:]:
        want, want_grads = _step(run, opt, x, y)
        got, got_grads = _step(resumed, opt2, x, y)
        assert torch.equal(got, want)
        for g, w in zip(got_grads, want_grads, strict=True):
            assert torch.equal(g, w)
    assert torch.equal(resumed.queue.features(), run.queue.features())


def test_a_float64_run_resumes_bit_for_bit_in_a_loss_built_in_float32():
    """The queue keeps the dtype of the features it held: a float64 run's queue, loaded into
    a loss whose (empty) queue was built in float32, is not rounded to float32."""
    data = _batches(4, dtype=torch.float64, cy=4)
    run = _local_loss("infonce", 8, critic=False)  # the dot product: no parameters to cast
    for x, y in data[:2]:
        run(x, y)
    resumed = _local_loss("infonce", 8, critic=False)
    resumed.load_state_dict(_saved(run.state_dict()))
    assert resumed.queue.features().dtype == torch.float64
    for x, y in data[2:]:
        assert torch.equal(resumed(x, y).loss, run(x, y).loss)


def test_local_loss_refuses_a_queue_state_of_another_size():
    run = _local_loss("infonce", 6)
    x, y = _batches(1)[0]
    run(x, y)
    with pytest.raises(RuntimeError, match=r"NegativeQueue at 'queue': the state was saved "
                                           r"from a queue of size 6 .* this queue has size 8"):
        _local_loss("infonce", 8).load_state_dict(run.state_dict())
