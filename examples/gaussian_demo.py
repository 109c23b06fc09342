"""Every bound on a Gaussian of known MI: the optimal critic, then a briefly trained one.

    python -m examples.gaussian_demo            # ~1 minute on 2 CPU cores
    python -m examples.gaussian_demo --mi 6 --steps 3000

Part 1 evaluates each bound on the *optimal* critic (the true pointwise MI) over many batches:
what the bound can reach at best with this batch size. Part 2 evaluates the generative and
upper bounds at the *true conditional density* p(y|x). Part 3 trains a separable critic with
each lower bound from scratch (with :func:`mitools.training.train_critic`) and reports the
mean estimate over the last steps.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

import torch

import mitools
from mitools import bounds
from mitools.estimators import get_estimator
from mitools.training import train_critic

BOUNDS: dict[str, dict] = {
    "infonce": {},
    "nwj": {},
    "dv": {},
    "mine": {},
    "tuba": {},
    "js": {},
    "smile": {"clip": 5.0},
    "alpha_infonce": {"alpha": 0.01},
}


def optimal_critic_table(task: mitools.CorrelatedGaussian, batch: int, n_batches: int) -> None:
    gen = torch.Generator().manual_seed(0)
    x, y = task.sample(batch * n_batches, generator=gen)
    scores = task.optimal_critic(
        x.double().reshape(n_batches, batch, -1), y.double().reshape(n_batches, batch, -1)
    )
    print(f"1) optimal critic, {n_batches} batches of {batch}: mean ± standard error")
    for name, kwargs in BOUNDS.items():
        shift = 1.0 if name in ("nwj", "tuba") else 0.0  # NWJ/TUBA(a=1) peak at PMI + 1
        bound = get_estimator(name, **kwargs)
        if name in ("tuba", "alpha_infonce"):
            bound = get_estimator(name, baseline=float(shift), **kwargs)
        values = bound.eval()(scores + shift)
        se = values.std() / math.sqrt(n_batches)
        print(f"   {name:14s} {float(values.mean()):6.2f} ± {float(se):.2f}")


def true_conditional_table(task: mitools.CorrelatedGaussian, batch: int, n_batches: int) -> None:
    gen = torch.Generator().manual_seed(0)
    x, y = task.sample(batch * n_batches, generator=gen)
    x, y = x.double().reshape(n_batches, batch, -1), y.double().reshape(n_batches, batch, -1)
    s = task.conditional_log_prob(x, y)  # log p(y_j | x_i): the exact model
    pmi = task.optimal_critic(x, y)
    values = {
        "ba (true H)": bounds.ba(s, task.entropy_y()),
        "doe": bounds.doe(s, task.marginal_log_prob(y)),
        "flo (optimum)": bounds.flo(pmi, -torch.diagonal(pmi, dim1=-2, dim2=-1)),
        "l1out": bounds.l1out(s),
        "club": bounds.club(s),
    }
    closed = task.mutual_information() + task.lautum_information()
    print(f"2) the true conditional p(y|x), {n_batches} batches of {batch}: mean ± standard "
          f"error (CLUB's expectation: I + lautum = {closed:.2f})")
    for name, v in values.items():
        print(f"   {name:14s} {float(v.mean()):6.2f} ± {float(v.std() / math.sqrt(n_batches)):.2f}")


def trained_table(task: mitools.CorrelatedGaussian, batch: int, steps: int, seed: int) -> None:
    print(f"3) separable critic trained for {steps} steps (batch {batch}), "
          f"mean of the last {steps // 5} estimates")
    for name, kwargs in BOUNDS.items():
        torch.manual_seed(seed)
        critic = mitools.SeparableCritic(task.dim_x, task.dim_y, hidden=(256, 256), embed_dim=32)
        history = train_critic(critic, get_estimator(name, **kwargs), task, steps=steps,
                               batch_size=batch, lr=5e-4, generator=seed)
        tail = history[-(steps // 5):]
        print(f"   {name:14s} {float(tail.mean()):6.2f}   (std {float(tail.std()):.2f})",
              flush=True)


def _number(kind: type, low: float) -> Callable[[str], float]:
    """An argparse type: a ``kind`` (int or float) of at least ``low``, finite; anything else
    is a usage error (exit 2) before any work, not a traceback after the first tables."""
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got {text!r}") from None
        if not math.isfinite(value) or value < low:
            raise argparse.ArgumentTypeError(f"must be finite and >= {low}, got {text!r}")
        return value
    return parse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False,
                                     description="Every mitools bound on a Gaussian of known MI")
    parser.add_argument("--mi", type=_number(float, 0), default=4.0,
                        help="true MI in nats (default: %(default)s)")
    parser.add_argument("--dim", type=_number(int, 1), default=20,
                        help="components of the Gaussian (default: %(default)s)")
    parser.add_argument("--batch", type=_number(int, 2), default=64,
                        help="samples per batch, each row's negatives the others "
                             "(default: %(default)s)")
    parser.add_argument("--steps", type=_number(int, 1), default=1500,
                        help="training steps of part 3 (default: %(default)s)")
    parser.add_argument("--seed", type=_number(int, 0), default=0,
                        help="seed of part 3's training (default: %(default)s)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    task = mitools.CorrelatedGaussian(args.dim, args.mi)
    print(f"{task}: true MI = {task.mutual_information():.2f} nats; "
          f"log(batch) = {math.log(args.batch):.2f} caps InfoNCE\n")
    optimal_critic_table(task, args.batch, n_batches=500)
    print()
    true_conditional_table(task, args.batch, n_batches=500)
    print()
    trained_table(task, args.batch, args.steps, args.seed)


if __name__ == "__main__":
    main()
