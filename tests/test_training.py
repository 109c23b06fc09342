"""mitools.training.train_critic: equals a hand-written loop, trains q by likelihood, errors."""

from __future__ import annotations

import pytest
import torch

import mitools
from mitools.conditionals import DiagonalGaussian
from mitools.estimators import CLUB, FLO, get_estimator
from mitools.tasks import CorrelatedGaussian, Staircase
from mitools.training import train_critic


def _manual_loop(critic, bound, task, steps, batch, seed):
    opt = torch.optim.Adam([*critic.parameters(), *bound.parameters()], lr=5e-4)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        x, y = task.sample(batch, generator=gen)
        value = bound(critic(x, y))
        opt.zero_grad()
        (-value).backward()
        opt.step()
        out.append(float(value.detach()))
    return torch.tensor(out)


@pytest.mark.parametrize("name", ["infonce", "tuba", "mine"])
def test_equals_a_hand_written_loop(name):
    task = CorrelatedGaussian(dim=3, mi=1.0)
    torch.manual_seed(0)
    critic = mitools.SeparableCritic(3, 3, hidden=(16,), embed_dim=4)
    want = _manual_loop(critic, get_estimator(name), task, 15, 16, seed=7)
    torch.manual_seed(0)
    critic = mitools.SeparableCritic(3, 3, hidden=(16,), embed_dim=4)
    got = train_critic(critic, get_estimator(name), task, steps=15, batch_size=16, generator=7)
    torch.testing.assert_close(got, want)


def test_schedule_and_stacked_problems():
    schedule = Staircase(levels=(1.0, 3.0), steps_per_level=4)
    seen = []

    def task_at(step):
        seen.append(step)
        return schedule.task_at(step, dim=2)

    critic = mitools.SeparableCritic(2, 2, hidden=(8,), embed_dim=4)
    stacked = lambda x, y: torch.stack([critic(x, y), 2 * critic(x, y)])  # noqa: E731
    trace = train_critic(_Wrap(stacked, critic), "dv", task_at, steps=8, batch_size=8,
                         generator=0)
    assert trace.shape == (8, 2) and seen == list(range(8))


class _Wrap(torch.nn.Module):
    def __init__(self, fn, inner):
        super().__init__()
        self.fn, self.inner = fn, inner

    def forward(self, x, y):
        return self.fn(x, y)


def test_upper_bound_trains_q_by_likelihood_and_records_the_bound():
    task = CorrelatedGaussian(dim=2, mi=1.0)
    torch.manual_seed(0)
    q = DiagonalGaussian(2, 2, hidden=(32,))
    trace = train_critic(q, CLUB(), task, steps=300, batch_size=128, lr=1e-2, generator=1)
    x, y = task.sample(4000, generator=2)
    with torch.no_grad():
        kl = torch.diagonal(task.conditional_log_prob(x, y)).mean() + q.learning_loss(y, x)
    assert float(kl) < 0.05  # q fitted by likelihood, not by minimising CLUB
    closed = task.mutual_information() + task.lautum_information()
    assert abs(float(trace[-100:].mean()) - closed) < 0.25


def test_flo_with_a_pair_network_trains():
    task = CorrelatedGaussian(dim=2, mi=1.0)
    torch.manual_seed(0)
    critic = mitools.SeparableCritic(2, 2, hidden=(16,), embed_dim=8)
    flo = FLO(u_network=mitools.critics.mlp(4, (16,), 1))
    trace = train_critic(critic, flo, task, steps=300, batch_size=64, lr=3e-3, generator=3)
    assert 0.4 < float(trace[-100:].mean()) < 1.1


def test_errors():
    critic = mitools.SeparableCritic(2, 2, hidden=(4,), embed_dim=2)
    task = CorrelatedGaussian(dim=2, mi=1.0)
    with pytest.raises(ValueError, match="steps"):
        train_critic(critic, "dv", task, steps=0)
    with pytest.raises(ValueError, match="batch_size"):
        train_critic(critic, "dv", task, steps=1, batch_size=0)
    with pytest.raises(TypeError, match="sample"):
        train_critic(critic, "dv", lambda step: "task", steps=1)
    with pytest.raises(TypeError, match="generator"):
        train_critic(critic, "dv", task, steps=1, generator="seed")


def test_a_staircase_passed_as_the_task_is_refused_by_name() -> None:
    """tryout: train_critic(critic, "dv", Staircase(...)) failed inside the loop with
    "'Staircase' object is not callable"; it is a TypeError naming task, with the way to
    pass a schedule."""
    from mitools.critics import BilinearCritic

    with pytest.raises(TypeError, match=r"task must have sample.*got Staircase.*task_at"):
        train_critic(BilinearCritic(2, 2), "dv", Staircase(levels=(1.0, 2.0), steps_per_level=2),
                     steps=4, batch_size=8, generator=0)
    with pytest.raises(TypeError, match="got int"):
        train_critic(BilinearCritic(2, 2), "dv", 3, steps=4, batch_size=8)


def test_batch_of_one_is_refused_by_name() -> None:
    """tryout: train_critic(..., batch_size=1) failed in the bound with "infonce: scores need
    at least 2 columns ... got shape (1, 1)", naming neither train_critic nor batch_size;
    every bound needs a negative per row, so batch_size must be >= 2."""
    from mitools.critics import BilinearCritic

    with pytest.raises(ValueError, match=r"train_critic: batch_size must be an int >= 2, got 1"):
        train_critic(BilinearCritic(2, 2), "infonce", CorrelatedGaussian(2, 0.5), steps=2,
                     batch_size=1)


def test_an_estimator_or_critic_in_eval_mode_trains_in_training_mode() -> None:
    """tryout 7: a MINE put in evaluation mode (to read a value) and then passed to
    train_critic stayed in it: plain DV, its moving average never updated, so it trained with
    DV's biased gradient, silently. The loop trains in training mode, as a fresh MINE, and
    gives the modes back."""
    from mitools.estimators import MINE

    task = CorrelatedGaussian(dim=2, mi=1.0)

    def run(mine):
        torch.manual_seed(0)
        critic = mitools.SeparableCritic(2, 2, hidden=(8,), embed_dim=4).eval()
        trace = train_critic(critic, mine, task, steps=5, batch_size=16, generator=0)
        return critic, trace

    fresh, evaluated = MINE(0.9), MINE(0.9).eval()
    _, trace_a = run(fresh)
    critic_b, trace_b = run(evaluated)
    torch.testing.assert_close(trace_b, trace_a)
    torch.testing.assert_close(evaluated.log_partition_ema, fresh.log_partition_ema)
    assert bool(evaluated.initialized)
    assert not evaluated.training and not critic_b.training  # the modes are given back
    assert fresh.training


def test_a_critic_that_is_not_a_module_is_refused_by_name() -> None:
    """tryout 7: a critic given by name failed with "'str' object has no attribute
    'parameters'", and a module with nothing to train with Adam's "optimizer got an empty
    parameter list"."""
    task = CorrelatedGaussian(dim=2, mi=1.0)
    with pytest.raises(TypeError, match=r"critic must be an nn.Module.*got str.*get_critic"):
        train_critic("separable", "infonce", task, steps=1)
    with pytest.raises(TypeError, match=r"critic must be an nn\.Module.*got function"):
        train_critic(lambda x, y: x @ y.T, "infonce", task, steps=1)
    with pytest.raises(ValueError, match=r"nothing to train.*Identity.*InfoNCE"):
        train_critic(torch.nn.Identity(), "infonce", task, steps=1)
