r"""The staircase benchmark of Poole et al. (2019): every bound against a known, rising MI.

Protocol (REFERENCE.md): d = 20 correlated Gaussian (optionally cubed), batch K = 64, MI
raised 2 -> 4 -> 6 -> 8 -> 10 nats in levels of 4,000 steps (20,000 in all), a fresh batch
each step, Adam lr 5e-4, critics with two hidden layers of 256 ReLU units (separable: 32-d
embeddings; concat: one MLP on [x, y] over all K^2 pairs). Bias, variance and MSE of each
bound are read from the last 500 estimates of each level.

To fit on a couple of CPU cores, all bounds train **at once**: the critics' weights are
stacked along a leading model axis (one batched matmul per layer for all bounds), and every
bound sees the same sampled batch. Each bound still has its own critic, its own estimator
state (MINE's moving average, TUBA/alpha-InfoNCE baselines) and, since Adam is elementwise,
exactly the optimiser it would have alone.

Three families of estimators, each trained by :func:`mitools.training.train_critic` on the
same batches (the same generator seed):

* ``lower``: the discriminative lower bounds above, stacked;
* ``conditional``: one conditional density :math:`q(y \mid x)` (a diagonal Gaussian with a
  2 x 256 MLP, :class:`mitools.conditionals.DiagonalGaussian`) fitted by maximum likelihood,
  with a Gaussian marginal model for DoE; on its scores BA (true :math:`H(Y)`), DoE, CLUB,
  vCLUB and L1Out. The same bounds on the task's *true* conditional, on the same batches, are
  reported beside them ("true q");
* ``flo``: FLO with a critic of the chosen kind and a 2 x 256 MLP per-pair term on
  :math:`[x, y]`;
* ``mixture`` (not run by default): the conditional bounds with a mixture of 8 diagonal
  Gaussians as q (``conditional-mixture-{task}``), for the cubic task where a single
  Gaussian is misspecified; the sandwich includes it when present.

The *sandwich* (``sandwich-{critic}-{task}``) puts the best lower bound (the highest mean
among the bounds that are lower bounds in expectation: InfoNCE, NWJ, JS, TUBA, the
alpha-InfoNCE, BA and FLO; not DV/MINE, whose batch estimate is biased upward, nor SMILE,
biased by its clip) and the best upper bound (the lowest mean among CLUB, vCLUB and L1Out on
the fitted q) against the truth, per level.

Usage::

    PYTHONPATH=. python benchmarks/staircase.py                       # full protocol, all
    PYTHONPATH=. python benchmarks/staircase.py --critics separable --tasks gaussian
    PYTHONPATH=. python benchmarks/staircase.py --families conditional,flo  # new ones only
    PYTHONPATH=. python benchmarks/staircase.py --quick               # CI smoke test
    PYTHONPATH=. python benchmarks/staircase.py --sandwich-only       # re-tabulate only

Writes ``benchmarks/results/staircase/{critic}-{task}.json``, ``.md`` and ``.png`` (one
panel per bound, like the paper's figure) for the lower bounds,
``conditional-{task}.*`` and ``flo-{critic}-{task}.*`` for the new families,
``sandwich-{critic}-{task}.*`` when all three exist, and ``summary.md``
(``--quick``: into ``benchmarks/results/staircase_quick/``, not committed).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cli import at_least, level_schedule, name_list, output_location, positive_int
from _provenance import ROOT, provenance
from stacked_critics import StackedEstimators, make_critic
from staircase_report import TRUE_Q_LABELS, markdown, summarize, write_family, write_sandwich

from mitools.bounds import ba, club, l1out
from mitools.conditionals import DiagonalGaussian, GaussianMarginal, MixtureOfGaussians
from mitools.critics import mlp
from mitools.estimators import BA, CLUB, FLO, VCLUB, DoE, Estimator, L1Out, get_estimator
from mitools.tasks import CorrelatedGaussian, Staircase
from mitools.training import train_critic


@dataclass(frozen=True)
class BoundSpec:
    """One bound of the benchmark: a label and how to build its estimator."""

    label: str
    name: str
    kwargs: dict


BOUNDS = [
    BoundSpec("InfoNCE", "infonce", {}),
    BoundSpec("NWJ", "nwj", {}),
    BoundSpec("DV", "dv", {}),
    BoundSpec("MINE", "mine", {}),
    BoundSpec("JS", "js", {}),
    BoundSpec("SMILE τ=1", "smile", {"clip": 1.0}),
    BoundSpec("SMILE τ=5", "smile", {"clip": 5.0}),
    BoundSpec("SMILE τ=∞", "smile", {"clip": None}),
    BoundSpec("α-InfoNCE α=0.01", "alpha_infonce", {"alpha": 0.01}),
    BoundSpec("α-InfoNCE α=0.5", "alpha_infonce", {"alpha": 0.5}),
    BoundSpec("TUBA", "tuba", {}),
]



def run_staircase(
    critic_kind: str,
    transform: str | None,
    schedule: Staircase,
    bounds: list[BoundSpec],
    batch_size: int = 64,
    dim: int = 20,
    lr: float = 5e-4,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> Tensor:
    """Train one critic per bound on the shared schedule; returns estimates ``(steps, B)``."""
    torch.manual_seed(seed)
    critic = make_critic(critic_kind, len(bounds), dim)
    estimators: list[Estimator] = [get_estimator(b.name, **b.kwargs) for b in bounds]
    for est in estimators:
        est.train()
    return train_critic(
        critic, StackedEstimators(estimators),
        lambda step: schedule.task_at(step, dim=dim, transform=transform),
        steps=schedule.total_steps, batch_size=batch_size, lr=lr, generator=seed + 1,
        log_every=max(1, schedule.steps_per_level // 4),
        log=lambda line: log(f"  {critic_kind}/{transform or 'gaussian'}{line}"),
    )


CONDITIONAL_LABELS = ["BA", "DoE", "CLUB", "vCLUB", "L1Out"]
MIXTURE_LABELS = [f"{label} (mixture q)" for label in CONDITIONAL_LABELS]
FAMILIES = ("lower", "conditional", "flo", "mixture")


class ConditionalPanel(Estimator):
    """BA, DoE, CLUB, vCLUB and L1Out on one conditional's scores; q fitted by likelihood."""

    needs_targets = True

    def __init__(self, entropy_y: float, dim: int, generator: torch.Generator):
        super().__init__()
        self.ba, self.club, self.l1out = BA(entropy_y), CLUB(), L1Out()
        self.vclub = VCLUB(generator)
        self.doe = DoE(GaussianMarginal(dim))

    def forward(self, scores: Tensor, *, targets: Tensor | None = None,
                **_: object) -> Tensor:
        return torch.stack([self.ba(scores), self.doe(scores, targets=targets),
                            self.club(scores), self.vclub(scores), self.l1out(scores)])

    def learning_objective(self, scores: Tensor, *, targets: Tensor | None = None,
                           **_: object) -> Tensor:
        # DoE's gradient is that of both log-likelihoods: q(y|x) and the marginal model.
        return self.doe.learning_objective(scores, targets=targets)


def run_conditional(transform: str | None, schedule: Staircase, batch_size: int = 64,
                    dim: int = 20, lr: float = 5e-4, seed: int = 0,
                    log: Callable[[str], None] = print, mixture: bool = False) -> Tensor:
    """Fit q(y|x) by likelihood on the schedule; the conditional bounds ``(steps, 5)``.

    ``q`` is a diagonal Gaussian, or with ``mixture`` a mixture of 8 diagonal Gaussians.
    """
    torch.manual_seed(seed)
    q: nn.Module = (MixtureOfGaussians(dim, dim, components=8, hidden=(256, 256)) if mixture
                    else DiagonalGaussian(dim, dim, hidden=(256, 256)))
    entropy = CorrelatedGaussian(dim, 0.0, transform=transform).entropy_y()
    panel = ConditionalPanel(entropy, dim, torch.Generator().manual_seed(seed + 2))
    return train_critic(
        q, panel, lambda step: schedule.task_at(step, dim=dim, transform=transform),
        steps=schedule.total_steps, batch_size=batch_size, lr=lr, generator=seed + 1,
        log_every=max(1, schedule.steps_per_level // 4),
        log=lambda line: log(f"  conditional{'-mixture' if mixture else ''}/"
                             f"{transform or 'gaussian'}{line}"),
    )


def run_flo(critic_kind: str, transform: str | None, schedule: Staircase,
            batch_size: int = 64, dim: int = 20, lr: float = 5e-4, seed: int = 0,
            log: Callable[[str], None] = print) -> Tensor:
    """FLO with a critic of ``critic_kind`` and an MLP per-pair term; ``(steps, 1)``."""
    torch.manual_seed(seed)
    critic = make_critic(critic_kind, 1, dim)
    flo = StackedEstimators([FLO(u_network=mlp(2 * dim, (256, 256), 1))])
    return train_critic(
        critic, flo, lambda step: schedule.task_at(step, dim=dim, transform=transform),
        steps=schedule.total_steps, batch_size=batch_size, lr=lr, generator=seed + 1,
        log_every=max(1, schedule.steps_per_level // 4),
        log=lambda line: log(f"  flo-{critic_kind}/{transform or 'gaussian'}{line}"),
    )


def true_q_traces(transform: str | None, schedule: Staircase, batch_size: int = 64,
                  dim: int = 20, seed: int = 0) -> Tensor:
    """BA, CLUB and L1Out on the task's true conditional, on the trained models' batches."""
    gen = torch.Generator().manual_seed(seed + 1)
    out = torch.empty(schedule.total_steps, 3)
    for step in range(schedule.total_steps):
        task = schedule.task_at(step, dim=dim, transform=transform)
        x, y = task.sample(batch_size, generator=gen)
        s = task.conditional_log_prob(x.double(), y.double())
        out[step] = torch.stack([ba(s, task.entropy_y()), club(s), l1out(s)]).float()
    return out



def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, checked, with ``--quick``'s defaults where none was given and
    ``out_dir`` made."""
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--critics", type=name_list(("separable", "concat")),
                        default="separable,concat",
                        help="comma-separated, from separable,concat (default: both)")
    parser.add_argument("--tasks", type=name_list(("gaussian", "cubic")),
                        default="gaussian,cubic",
                        help="comma-separated, from gaussian,cubic (default: both)")
    parser.add_argument("--families", type=name_list(FAMILIES), default="lower,conditional,flo",
                        help="which estimator families to train (comma-separated): lower, "
                             "conditional, flo, and mixture (the conditional bounds with a "
                             "mixture-of-Gaussians q); default: %(default)s")
    parser.add_argument("--sandwich-only", action="store_true",
                        help="train nothing: rebuild the sandwiches from the results on disk")
    parser.add_argument("--steps-per-level", type=positive_int, default=None,
                        help="default: 4000; --quick: 200")
    parser.add_argument("--batch-size", type=at_least(2), default=64,
                        help="samples per step, each a fresh batch (default: %(default)s)")
    parser.add_argument("--window", type=positive_int, default=None,
                        help="the last steps of each level summarised (default: 500; "
                             "--quick: 100); one longer than a level is cut to the level's "
                             "steps, and the results record the window used")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test into staircase_quick/: its defaults are "
                             "--steps-per-level 200 and --window 100; options given "
                             "explicitly win")
    parser.add_argument("--threads", type=positive_int, default=2,
                        help="torch threads (default: %(default)s; the committed runs used 1)")
    parser.add_argument("--seed", type=at_least(0), default=0,
                        help="seed of the batches and the initial weights (default: "
                             "%(default)s)")
    parser.add_argument("--out-dir", default=None,
                        help="default: benchmarks/results/staircase (--quick: "
                             "benchmarks/results/staircase_quick, not committed)")
    args = parser.parse_args(argv)
    level_schedule(args)  # --quick changes the defaults only; the window used is recorded
    # a smoke run never overwrites the committed results (``*_quick/`` is git-ignored)
    args.out_dir = Path(args.out_dir or ROOT / "benchmarks" / "results" /
                        ("staircase_quick" if args.quick else "staircase"))
    output_location(parser, "--out-dir", args.out_dir / "summary.md")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    steps_per_level, window, out_dir = args.steps_per_level, args.window, args.out_dir
    families = set() if args.sandwich_only else set(args.families)
    schedule = Staircase(steps_per_level=steps_per_level)
    sections = []

    def protocol(critic: str, task: str, **extra: object) -> dict:
        return {"critic": critic, "task": task, "dim": 20, "batch_size": args.batch_size,
                "levels": list(schedule.levels), "steps_per_level": steps_per_level,
                "window": window, "lr": 5e-4, "hidden": [256, 256], "seed": args.seed,
                "quick": args.quick, **extra}

    def emit(name: str, payload: dict, estimates: Tensor, labels: list[str], title: str,
             ylim: tuple[float, float] = (-1, 14)) -> None:
        section = markdown(payload["summary"], schedule.levels, title)
        write_family(out_dir, name, payload, section, estimates, schedule, labels, title,
               args.batch_size, ylim)
        sections.append(section)
        print(section, f"({payload['wall_time_s']:.0f} s)", flush=True)

    for task in args.tasks:
        transform = None if task == "gaussian" else task
        suffix = f"{steps_per_level} steps/level, batch {args.batch_size}"
        if "conditional" in families:
            start = time.time()
            estimates = run_conditional(transform, schedule, batch_size=args.batch_size,
                                        seed=args.seed)
            estimates = torch.cat([estimates, true_q_traces(
                transform, schedule, batch_size=args.batch_size, seed=args.seed)], dim=1)
            labels = CONDITIONAL_LABELS + TRUE_Q_LABELS
            payload = {"provenance": provenance(),
                       "protocol": protocol("conditional (diagonal Gaussian q)", task,
                                            model="DiagonalGaussian, marginal GaussianMarginal"),
                       "bounds": [{"label": lab} for lab in labels],
                       "wall_time_s": time.time() - start,
                       "summary": summarize(estimates, schedule, labels, window)}
            emit(f"conditional-{task}", payload, estimates, labels,
                 f"conditional q(y|x), {task} task, {suffix}", ylim=(-1, 40))
        if "mixture" in families:
            start = time.time()
            estimates = run_conditional(transform, schedule, batch_size=args.batch_size,
                                        seed=args.seed, mixture=True)
            payload = {"provenance": provenance(),
                       "protocol": protocol("conditional (mixture of 8 Gaussians q)", task,
                                            model="MixtureOfGaussians(components=8), "
                                                  "marginal GaussianMarginal"),
                       "bounds": [{"label": lab} for lab in MIXTURE_LABELS],
                       "wall_time_s": time.time() - start,
                       "summary": summarize(estimates, schedule, MIXTURE_LABELS, window)}
            emit(f"conditional-mixture-{task}", payload, estimates, MIXTURE_LABELS,
                 f"mixture q(y|x), {task} task, {suffix}", ylim=(-1, 40))
        for critic_kind in args.critics:
            if "lower" in families:
                start = time.time()
                estimates = run_staircase(critic_kind, transform, schedule, BOUNDS,
                                          batch_size=args.batch_size, seed=args.seed)
                payload = {
                    "provenance": provenance(),
                    "protocol": protocol(critic_kind, task, embed_dim=32),
                    "bounds": [{"label": b.label, "name": b.name, "kwargs": b.kwargs}
                               for b in BOUNDS],
                    "wall_time_s": time.time() - start,
                    "summary": summarize(estimates, schedule, [b.label for b in BOUNDS], window),
                }
                emit(f"{critic_kind}-{task}", payload, estimates, [b.label for b in BOUNDS],
                     f"{critic_kind} critic, {task} task, {suffix}")
            if "flo" in families:
                start = time.time()
                estimates = run_flo(critic_kind, transform, schedule,
                                    batch_size=args.batch_size, seed=args.seed)
                payload = {"provenance": provenance(),
                           "protocol": protocol(f"{critic_kind} + FLO per-pair MLP", task,
                                                embed_dim=32),
                           "bounds": [{"label": "FLO", "name": "flo"}],
                           "wall_time_s": time.time() - start,
                           "summary": summarize(estimates, schedule, ["FLO"], window)}
                emit(f"flo-{critic_kind}-{task}", payload, estimates, ["FLO"],
                     f"FLO, {critic_kind} critic, {task} task, {suffix}")
            section = write_sandwich(out_dir, critic_kind, task, schedule.levels)
            if section is not None:
                print(section, flush=True)
    (out_dir / "summary.md").write_text("\n".join(sections))


if __name__ == "__main__":
    main()
