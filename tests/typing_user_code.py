"""User code that ``tests/test_typing_user_code.py`` type-checks with ``mypy --strict``.

Each function uses the public API as the README and the guides show it; ``assert_type``
fails on a result typed ``Any`` (an ``nn.Module``'s untyped ``__call__``), and ``--strict``
on a documented argument that the annotations refuse. Nothing runs on import (pytest imports
the module for its doctests).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from typing_extensions import assert_type

import mitools
from mitools import bounds, classical
from mitools.conditionals import DiagonalGaussian
from mitools.critics import MarginalPotentials, SeparableCritic, get_critic, mlp
from mitools.distributed import all_gather_with_grad, all_gather_with_offset, rank
from mitools.estimate import MIEstimate, load_estimate, save_estimate
from mitools.estimators import get_estimator
from mitools.local import GlobalMILoss, LocalMILoss, LocalMIResult
from mitools.samplers import AllPairs, Neighbourhood, RandomPairs
from mitools.tasks import CorrelatedGaussian, Staircase
from mitools.training import train_critic


def estimate(x: np.ndarray, y: np.ndarray, path: Path) -> tuple[float, float, float]:
    result = assert_type(mitools.estimate_mi(x, y, hidden=[32], max_steps=100), MIEstimate)
    low, _ = assert_type(result.interval, tuple[float, float])
    if result.diagnostics is not None:
        assert_type(result.diagnostics.flags, tuple[str, ...])
    assert_type(result.folds[0].best_step, int)
    assert_type(result.pointwise(x[:5], y[:5]), Tensor)
    save_estimate(result, path)
    result.save(str(path))
    return load_estimate(path).value, MIEstimate.load(path).stderr, low


def classical_values(x: np.ndarray, y: np.ndarray, labels: list[str]) -> list[float]:
    assert_type(classical.canonical_correlations(x, y), np.ndarray)
    return [classical.ksg(x, y, k=5, estimator=2, groups=0).value,
            classical.mixed_ksg(labels, x, discrete_x=True).value,
            classical.gaussian_mi(x, y).value]


def critic_scores(x: Tensor, y: Tensor) -> None:
    sep = SeparableCritic(8, 8, hidden=(32,), embed_dim=16, learn_temperature=True)
    pooled = mitools.AttentionPoolCritic(SeparableCritic(8, 8, hidden=()), temperature=1)
    assert_type(sep(x, y), Tensor)
    assert_type(get_critic("separable", dim_x=8, dim_y=8, embed_dim=16)(x, y), Tensor)
    assert_type(get_critic(sep, 8, 8), SeparableCritic)
    assert_type(mlp(8, (32,), 16)(x), Tensor)
    assert_type(mitools.QuadraticCritic(8, 8).init_gaussian_(x, y)(x, y), Tensor)
    assert_type(mitools.ConcatCritic(8, 8, hidden=(16,), chunk_size=4)(x, y), Tensor)
    assert_type(mitools.BilinearCritic(8, 8)(x, y), Tensor)
    assert_type(MarginalPotentials(mitools.BilinearCritic(8, 8), 8, 8)(x, y), Tensor)
    assert_type(pooled(x[None], y), Tensor)
    assert_type(pooled.weights(x[None], y), Tensor)
    assert_type(mitools.MaxPoolCritic(sep)(x[None], y, mask=None), Tensor)
    assert_type(DiagonalGaussian(8, 8)(x, y), Tensor)


def bound_values(scores: Tensor) -> None:
    assert_type(bounds.infonce(scores), Tensor)
    assert_type(bounds.smile(scores, 5), Tensor)
    assert_type(bounds.tuba(scores, 1), Tensor)
    assert_type(bounds.alpha_infonce(scores, 0, 0.5), Tensor)
    assert_type(bounds.vclub(scores, generator=0), Tensor)
    assert_type(get_estimator("smile", clip=5)(scores), Tensor)
    assert_type(mitools.MINE()(scores), Tensor)


def local_losses(cells: Tensor, sentence: Tensor, tokens: Tensor, mask: Tensor) -> None:
    paper = LocalMILoss("dv", SeparableCritic(16, 16), reduction="max",
                        x_pattern="b c h w", y_pattern="b c")
    out = assert_type(paper(cells, sentence), LocalMIResult)
    assert_type(out.loss, Tensor)  # (torch 2.13 leaves Tensor.backward unannotated)
    assert_type(out.local, Tensor)
    pairs = LocalMILoss("infonce", None, AllPairs(), x_pattern="b c h w", y_pattern="b l c")
    assert_type(pairs(cells, tokens, y_mask=mask), LocalMIResult)
    near = LocalMILoss("infonce", None, Neighbourhood(1), y_pattern="b c h w")
    assert_type(near(cells, cells).estimate, Tensor)
    drawn = LocalMILoss("nwj", None, RandomPairs(4, generator=0), queue=8, gather=True)
    assert_type(drawn(cells, sentence), LocalMIResult)
    glob = GlobalMILoss("infonce", SeparableCritic(16, 16, hidden=()), pool="mean")
    assert_type(glob(cells, sentence), LocalMIResult)


class MyTask:
    """A task of one's own: ``sample(n, generator)``, as train_critic calls it."""

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        x = torch.randn(n, 8, generator=generator)
        return x, x + torch.randn(n, 8, generator=generator)


def training() -> None:
    task = CorrelatedGaussian(dim=8, mi=2)
    assert_type(task.sample(64, generator=0), tuple[Tensor, Tensor])
    schedule = Staircase(levels=[2, 4], steps_per_level=5)
    critic = SeparableCritic(8, 8)
    assert_type(train_critic(critic, "infonce", task, steps=2, generator=0), Tensor)
    train_critic(critic, get_estimator("nwj"), MyTask(), steps=2, log_every=None)
    train_critic(critic, "dv", lambda step: schedule.task_at(step, dim=8), steps=2)


def gathered(x: Tensor, y: Tensor, critic: SeparableCritic) -> None:
    y_all, offset = all_gather_with_offset(y)
    assert_type(offset, int)
    assert_type(bounds.infonce(critic(x, all_gather_with_grad(y)), offset=rank() * len(x)),
                Tensor)
    assert_type(bounds.infonce(critic(x, y_all), offset=offset), Tensor)
