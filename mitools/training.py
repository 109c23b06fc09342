r"""One training loop for a critic (or a conditional density) and a bound on fresh batches.

:func:`train_critic` is the loop the examples and benchmarks share: draw a fresh batch from a
task of known MI, score every pair, maximise the estimator's training objective with Adam,
and keep the trace of the estimates. It serves a single critic with a single bound as well as
models stacked along a leading axis (the staircase benchmark trains every bound at once), and
the two-player estimators (:class:`~mitools.estimators.GenerativeEstimator`): when the
estimator has a ``learning_objective`` (CLUB, L1Out, BA, ... fit :math:`q` by maximum
likelihood), the model maximises that and the trace records the estimator's value.

Example:
    >>> import torch, mitools
    >>> from mitools.training import train_critic
    >>> task = mitools.CorrelatedGaussian(dim=2, mi=1.0)
    >>> critic = mitools.SeparableCritic(2, 2, hidden=(16,), embed_dim=8)
    >>> trace = train_critic(critic, "infonce", task, steps=20, batch_size=32, generator=0)
    >>> trace.shape
    torch.Size([20])
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from mitools.critics.base import checked_scores
from mitools.estimators import Estimator, get_estimator
from mitools.option_checks import check_int, check_number
from mitools.tasks.seeding import _generator

__all__ = ["SamplesPairs", "train_critic"]


class SamplesPairs(Protocol):
    """A task of :mod:`mitools.tasks`: anything with ``sample(n, generator) -> (x, y)``."""

    def sample(self, n: int, /, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Draw ``n`` joint samples ``(x (n, Dx), y (n, Dy))``; :func:`train_critic` calls
        ``task.sample(batch_size, generator=gen)`` (a ``torch.Generator``)."""
        ...


def _as_generator(generator: torch.Generator | int | None) -> torch.Generator:
    if isinstance(generator, torch.Generator):
        return generator
    if generator is None:
        return torch.Generator().manual_seed(int(torch.randint(2**62, ()).item()))
    return _generator(generator, name="train_critic: generator")  # a seed (numpy ints count)


def train_critic(
    critic: nn.Module,
    estimator: str | Estimator,
    task: SamplesPairs | Callable[[int], SamplesPairs],
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 5e-4,
    generator: torch.Generator | int | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    log_every: int | None = 0,
    log: Callable[[str], None] = print,
) -> Tensor:
    r"""Train ``critic`` with ``estimator`` on fresh batches of ``task``; return the estimates.

    Each step draws ``x, y = task.sample(batch_size, generator)``, computes
    ``scores = critic(x, y)`` ``(..., N, N)``, the value ``estimator(scores, anchors=x)``
    (plus ``targets=y`` when the estimator declares ``needs_targets``), and takes one
    optimiser step that maximises the training objective summed over leading dimensions: the
    estimator's ``learning_objective`` when it has one (the generative estimators: a
    conditional density :math:`q` is fitted by maximum likelihood, not by its bound), otherwise
    the value itself (every lower bound: value and gradient are one).

    Called inside a ``torch.autocast`` region, the critic's networks train in autocast's dtype
    (the scores and the bounds stay float32); the weights' half-precision copies that autocast
    caches are dropped after every step, so each step computes with the updated weights.

    The critic and the estimator train in training mode (``.train()``) and get their own
    modes back afterwards: MINE in evaluation mode is plain DV with a still moving average,
    and a MINE evaluated before (``mine.eval()``) then trained here would otherwise take
    DV's biased gradient, silently.

    Args:
        critic: an ``nn.Module`` mapping ``x (n, Dx), y (n, Dy)`` to scores ``(..., n, n)``: a
            critic of :mod:`mitools.critics`, a conditional density of
            :mod:`mitools.conditionals` (called in critic order), or stacked models.
        estimator: a name for :func:`~mitools.estimators.get_estimator` or an
            :class:`~mitools.estimators.Estimator` (its parameters, e.g. a learned baseline
            or FLO's per-pair network, are trained too).
        task: an object with ``sample(n, generator)`` (a task of :mod:`mitools.tasks`), or a
            function of the step returning one (a schedule, e.g.
            ``lambda step: staircase.task_at(step)``).
        steps: number of optimiser steps.
        batch_size: samples per batch, :math:`N \ge 2` (each row needs a negative).
        lr: Adam's learning rate (ignored when ``optimizer`` is given).
        generator: a ``torch.Generator`` or an int seed for the batches (the same seed gives
            every model the same batches), or ``None``: a seed drawn from torch's global RNG
            (which advances by one draw). A seed or a generator leaves the global RNG as it
            was; the critic's own random draws, if any, are its business.
        optimizer: an optimiser over the parameters to train; by default Adam over the
            critic's and the estimator's parameters.
        log_every: print a progress line every this many steps (0 or ``None``: never).
        log: where progress lines go.

    Returns:
        Tensor ``(steps, *value_shape)``: the estimator's value at every step, detached,
        in nats (one column per leading problem of the scores).

    Raises:
        ValueError: ``steps`` not a positive int, ``batch_size`` not an int >= 2,
            ``log_every`` not a non-negative int, ``lr`` not a finite number > 0, or nothing
            to train (no ``optimizer``, and neither the critic nor the estimator has
            parameters).
        ValueError, TypeError: at a step, a ``critic`` whose scores are not
            ``(..., batch_size, batch_size)`` (``mitools.critics.base.check_scores``).
        TypeError: a ``critic`` that is not an ``nn.Module`` (a name: build it with
            :func:`~mitools.critics.get_critic`), a ``task`` that neither has ``sample`` nor
            is a function of the step (a :class:`~mitools.tasks.Staircase` itself: pass
            ``lambda step: staircase.task_at(step)``), or a bad ``generator``.
    """
    steps = check_int("train_critic: steps", steps)
    # every bound needs a negative per row: one sample per batch gives 1 x 1 scores
    batch_size = check_int("train_critic: batch_size", batch_size, 2)
    log_every = 0 if log_every is None else check_int("train_critic: log_every", log_every, 0)
    if optimizer is None:
        lr = check_number("train_critic: lr", lr, 0)
    est = get_estimator(estimator)
    if not hasattr(task, "sample") and not callable(task):
        hint = (" (for a Staircase, pass lambda step: staircase.task_at(step, dim=...))"
                if hasattr(task, "task_at") else "")
        raise TypeError(
            "train_critic: task must have sample(n, generator) or be a function of the step "
            f"returning such a task, got {type(task).__name__}{hint}"
        )
    schedule: Callable[[int], Any] = task if not hasattr(task, "sample") else (lambda _: task)
    if not isinstance(critic, nn.Module):
        if isinstance(critic, str):
            hint = f" (build it first: mitools.get_critic({critic!r}, dim_x, dim_y))"
        else:
            hint = ""
        raise TypeError(
            "train_critic: critic must be an nn.Module scoring x (n, Dx) against y (n, Dy), "
            f"got {type(critic).__name__}{hint}"
        )
    gen = _as_generator(generator)
    if optimizer is None:
        params = [*critic.parameters(), *est.parameters()]
        if not params:
            raise ValueError(
                f"train_critic: nothing to train: neither the {type(critic).__name__} nor the "
                f"estimator {type(est).__name__} has parameters; pass an optimizer over the "
                "parameters to train"
            )
        optimizer = torch.optim.Adam(params, lr=lr)
    # training mode for the loop, as a training loop sets it: MINE in evaluation mode returns
    # plain DV and keeps its moving average still, so a MINE evaluated before and passed on
    # trained with DV's biased gradient, silently (dropout and batch norm likewise)
    modes = [(m, m.training) for m in (*critic.modules(), *est.modules())]
    critic.train()
    est.train()
    try:
        return _train_loop(critic, est, schedule, steps, batch_size, gen, optimizer,
                           log_every, log)
    finally:
        for module, mode in modes:
            module.training = mode


def _train_loop(
    critic: nn.Module,
    est: Estimator,
    schedule: Callable[[int], Any],
    steps: int,
    batch_size: int,
    gen: torch.Generator,
    optimizer: torch.optim.Optimizer,
    log_every: int,
    log: Callable[[str], None],
) -> Tensor:
    """The steps of :func:`train_critic`, its arguments checked; the trace of estimates."""
    objective_fn = getattr(est, "learning_objective", None)
    needs_targets = bool(getattr(est, "needs_targets", False))
    trace: list[Tensor] = []
    start = time.perf_counter()
    for step in range(steps):
        current = schedule(step)
        if not hasattr(current, "sample"):
            raise TypeError(
                f"train_critic: task must have sample(n, generator) or be a function of the "
                f"step returning such a task, got {type(current).__name__}"
            )
        x, y = current.sample(batch_size, generator=gen)
        scores = checked_scores(critic, x, y, leading=None)
        extra: dict[str, Tensor] = {"anchors": x}
        if needs_targets:
            extra["targets"] = y
        value = est(scores, **extra)
        objective = value if objective_fn is None else objective_fn(scores, **extra)
        optimizer.zero_grad(set_to_none=True)
        (-objective.sum()).backward()
        optimizer.step()
        # Under a torch.autocast region around this call, autocast keeps its half-precision
        # copies of the weights until the region ends: without this, every later step would
        # compute with the first step's weights, and the critic would never learn.
        torch.clear_autocast_cache()
        trace.append(value.detach())
        if log_every and (step + 1) % log_every == 0:
            shown = " ".join(f"{v:.2f}" for v in value.detach().reshape(-1).tolist()[:16])
            log(f"  step {step + 1}/{steps} ({time.perf_counter() - start:.0f} s) {shown}")
    return torch.stack(trace)
