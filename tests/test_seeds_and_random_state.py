"""Seeds and random state (eighteenth tryout): what a seed= / generator= takes, that a call
with its own seed leaves the caller's global RNGs alone, and that the same seed gives the same
result bit for bit, whatever the global RNG's state and in another process."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mitools import estimate_mi
from mitools.classical import gaussian_mi, ksg, mixed_ksg
from mitools.critics import SeparableCritic
from mitools.estimate import fold_indices, pointwise_mi
from mitools.local import LocalMILoss
from mitools.negatives import random_derangement
from mitools.samplers import RandomPairs
from mitools.tasks import CorrelatedGaussian
from mitools.training import train_critic

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(max_steps=20, eval_every=10, folds=2, threads=1, progress=False)


def _data(n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 2, generator=g, dtype=torch.float64)
    return x.numpy(), (x + torch.randn(n, 2, generator=g, dtype=torch.float64)).numpy()


def _global_states() -> tuple:
    return torch.get_rng_state().clone(), np.random.get_state(), random.getstate()  # noqa: NPY002


def _assert_untouched(before: tuple) -> None:
    torch_state, np_state, py_state = before
    assert torch.equal(torch.get_rng_state(), torch_state), "torch's global RNG moved"
    now = np.random.get_state()  # noqa: NPY002  (the caller's global state is the subject)
    assert np_state[0] == now[0] and np.array_equal(np_state[1], now[1])
    assert np_state[2:] == now[2:], "numpy's global RNG moved"
    assert random.getstate() == py_state, "Python's random moved"


# --- RandomPairs takes an int seed, as the other generator= arguments do ----------------------

def _reference_pairs(seed: int, calls: int, p: int, q: int, k: int) -> list[list[int]]:
    """The flat indices of ``calls`` successive draws from one seeded CPU generator."""
    g = torch.Generator().manual_seed(seed)
    return [sorted(torch.randperm(p * q, generator=g)[:k].tolist()) for _ in range(calls)]


@pytest.mark.parametrize("seed", [5, np.int64(5), np.uint64(5)])
def test_random_pairs_takes_an_int_seed_that_advances(seed):
    # RandomPairs(3, generator=5) was refused with a TypeError, where random_derangement,
    # fold_indices, LocalMILoss and the tasks take an int seed
    sampler = RandomPairs(3, generator=seed)
    drawn = [sampler((4, 4), (2,)).where.tolist() for _ in range(3)]
    assert drawn == _reference_pairs(5, 3, 16, 2, 3)
    assert drawn[0] != drawn[1]  # one generator, made at construction: each call draws anew


def test_random_pairs_seed_range_and_refusals():
    assert RandomPairs(2, generator=-1).generator.initial_seed() == 2**64 - 1  # torch's wrap
    assert RandomPairs(2, generator=2**64 - 1)((3,), (3,)).where.numel() == 2
    with pytest.raises(ValueError, match=r"RandomPairs: generator: an int seed must be in"):
        RandomPairs(2, generator=2**64)
    for bad in (True, 3.0, np.float64(3.0), "3", np.random.default_rng(0)):
        with pytest.raises(TypeError, match=r"RandomPairs: generator must be a torch\.Generator,"
                                            r" an int seed or None, got"):
            RandomPairs(2, generator=bad)


def test_generator_errors_name_the_function():
    with pytest.raises(TypeError, match=r"^LocalMILoss: generator must be"):
        LocalMILoss("nwj", negatives="derangement", generator=1.5)
    task = CorrelatedGaussian(dim=2, mi=1.0)
    critic = SeparableCritic(2, 2, hidden=(4,), embed_dim=2)
    with pytest.raises(TypeError, match=r"^train_critic: generator must be"):
        train_critic(critic, "nwj", task, steps=1, batch_size=4, generator=1.5)


# --- the classical estimators take a 0-d tensor seed, as estimate_mi does ---------------------

@pytest.mark.parametrize("estimator", [ksg, mixed_ksg, gaussian_mi])
def test_classical_seed_as_0d_tensor(estimator):
    # it passed the seed check and failed in numpy's default_rng: "len() of a 0-d tensor"
    x, y = _data(120)
    got = estimator(x, y, seed=torch.tensor(3), groups=torch.tensor(5))
    want = estimator(x, y, seed=3, groups=5)
    assert (got.value, got.stderr, got.interval) == (want.value, want.stderr, want.interval)


# --- a call with its own seed leaves the global RNGs alone ------------------------------------

def test_seeded_calls_leave_global_rngs_alone():
    x, y = _data()
    torch.manual_seed(123)
    np.random.seed(5)  # noqa: NPY002  (the caller's global state is the subject)
    random.seed(7)
    before = _global_states()
    result = estimate_mi(x, y, seed=1, **FAST)
    pointwise_mi(result, x[:10], y[:10])
    ksg(x, y, seed=1)
    mixed_ksg(x, y, seed=1)
    gaussian_mi(x, y, seed=1)
    fold_indices(20, 2, generator=1)
    random_derangement(torch.ones(2, 5, dtype=torch.bool), 1)
    task = CorrelatedGaussian(dim=2, mi=1.0)
    task.sample(8, generator=1)
    RandomPairs(3, generator=1)((4, 4), (2,))
    _assert_untouched(before)
    critic = SeparableCritic(2, 2, hidden=(4,), embed_dim=2)  # draws its weights: global RNG
    feats = SeparableCritic(3, 3, hidden=(4,), embed_dim=2)
    before = _global_states()
    train_critic(critic, "nwj", task, steps=2, batch_size=4, generator=1)
    loss = LocalMILoss("nwj", feats, RandomPairs(2, generator=2), negatives="derangement",
                       generator=1)
    loss(torch.randn(4, 3, 2, 2, generator=torch.Generator().manual_seed(0)),
         torch.randn(4, 3, generator=torch.Generator().manual_seed(1)))
    _assert_untouched(before)


# --- the same seed, the same result ----------------------------------------------------------

def test_task_sample_int_seed_is_a_fresh_generator_each_call():
    task = CorrelatedGaussian(dim=2, mi=1.0, transform="cubic")
    a, b = task.sample(16, generator=7), task.sample(16, generator=7)
    ref = task.sample(16, generator=torch.Generator().manual_seed(7))
    for got in (a, b):
        assert torch.equal(got[0], ref[0]) and torch.equal(got[1], ref[1])


_CHILD = """
import sys, warnings
import numpy as np, torch
warnings.filterwarnings("ignore")
from mitools import estimate_mi
g = torch.Generator().manual_seed(0)
x = torch.randn(200, 2, generator=g, dtype=torch.float64)
y = x + torch.randn(200, 2, generator=g, dtype=torch.float64)
torch.manual_seed(int(sys.argv[1]))
r = estimate_mi(x.numpy(), y.numpy(), seed=4, max_steps=20, eval_every=10, folds=2, threads=1,
                progress=False)
w = torch.cat([p.detach().flatten().double() for f in r.folds
               for p in f.critic.state_dict().values() if p.is_floating_point()])
print(r.value.hex(), r.stderr.hex(), w.sum().item().hex(), w.abs().sum().item().hex())
"""


def test_estimate_mi_same_seed_same_result_in_any_state_and_process():
    x, y = _data()
    torch.manual_seed(0)
    first = estimate_mi(x, y, seed=4, **FAST)
    torch.manual_seed(99)  # another global state: the result must not follow it
    np.random.seed(99)  # noqa: NPY002  (the caller's global state is the subject)
    second = estimate_mi(x, y, seed=4, **FAST)
    assert first == second
    assert first != estimate_mi(x, y, seed=5, **FAST)  # the seed does reach the result
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    w = torch.cat([p.detach().flatten().double() for f in first.folds
                   for p in f.critic.state_dict().values() if p.is_floating_point()])
    mine = f"{first.value.hex()} {first.stderr.hex()} {w.sum().item().hex()} " \
           f"{w.abs().sum().item().hex()}"
    child = subprocess.run([sys.executable, "-c", _CHILD, "17"], capture_output=True,
                           text=True, env=env, timeout=120, check=True)
    assert child.stdout.split() == mine.split()


def test_estimate_mi_reseeds_no_accelerator_generator(monkeypatch):
    # torch.manual_seed inside fork_rng(devices=[]) reseeded every CUDA (MPS, XPU) generator
    # to seed * 1009 + k, and fork_rng restored only the CPU one: a caller's CUDA stream was
    # replaced after any estimate_mi, even one run on the CPU
    calls = []
    for module, name in ((torch.cuda, "manual_seed_all"), (torch.mps, "manual_seed"),
                         (torch.xpu, "manual_seed_all")):
        monkeypatch.setattr(module, name, lambda seed, _n=name: calls.append((_n, seed)))
    x, y = _data()
    estimate_mi(x, y, seed=4, **FAST)
    assert calls == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_estimate_mi_leaves_the_cuda_generator_alone():
    torch.cuda.manual_seed(11)
    before = torch.cuda.get_rng_state()
    x, y = _data()
    estimate_mi(x, y, seed=4, **{**FAST, "device": "cuda"})
    assert torch.equal(torch.cuda.get_rng_state(), before)
