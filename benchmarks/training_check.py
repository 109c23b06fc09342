"""First training check: a separable critic trained on the d=20 staircase with every bound.

Protocol (Poole et al. 2019): d = 20 correlated Gaussians, batch 64, MI raised 2 -> 4 -> 6 ->
8 -> 10 nats, ``--steps-per-level`` steps each (4,000 by default), a fresh batch every step,
Adam at 5e-4, a separable critic with two hidden layers of 256 units and a 32-d embedding.
Prints, for each bound, the mean estimate over the last 500 steps of each level next to the
true MI, and writes the table as markdown and JSON to ``benchmarks/results/``.

    python benchmarks/training_check.py                   # the full protocol (~10 min, 2 cores)
    python benchmarks/training_check.py --quick           # a smoke run (seconds)
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cli import at_least, level_schedule, output_location, positive_int

import mitools
from mitools.estimators import get_estimator
from mitools.tasks import CorrelatedGaussian, Staircase
from mitools.training import train_critic

BOUNDS: dict[str, dict] = {
    "infonce": {},
    "nwj": {},
    "dv": {},
    "mine": {"momentum": 0.99},
    "tuba": {},
    "js": {},
    "smile": {"clip": 5.0},
    "alpha_infonce": {"alpha": 0.01},
}


def train_one(name: str, kwargs: dict, schedule: Staircase, dim: int, batch: int, seed: int,
              window: int) -> list[float]:
    """Train one critic on the staircase with :func:`mitools.training.train_critic`."""
    torch.manual_seed(seed)
    critic = mitools.SeparableCritic(dim, dim, hidden=(256, 256), embed_dim=32)
    bound = get_estimator(name, **kwargs)
    tasks = {mi: CorrelatedGaussian(dim, mi) for mi in schedule.levels}
    trace = train_critic(critic, bound, lambda step: tasks[schedule.mi_at(step)],
                         steps=schedule.total_steps, batch_size=batch, lr=5e-4,
                         generator=seed)  # the same batches for every bound
    return trace.tolist()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, checked, with ``--quick``'s defaults where none was given."""
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    parser.add_argument("--steps-per-level", type=positive_int, default=None,
                        help="default: 4000; --quick: 200")
    parser.add_argument("--window", type=positive_int, default=None,
                        help="last steps averaged per level (default: 500; --quick: 100); "
                             "one longer than a level is cut to the level's steps, and the "
                             "results record the window used")
    parser.add_argument("--batch", type=at_least(2), default=64,
                        help="samples per step (default: %(default)s)")
    parser.add_argument("--dim", type=positive_int, default=20,
                        help="components of the Gaussian task (default: %(default)s)")
    parser.add_argument("--seed", type=at_least(0), default=0,
                        help="seed (default: %(default)s)")
    parser.add_argument("--bounds", nargs="*", default=list(BOUNDS), choices=list(BOUNDS),
                        help="space-separated (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run into training_check_quick.*: its defaults are "
                             "--steps-per-level 200 and --window 100; options given "
                             "explicitly win")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results",
                        help="output folder (default: benchmarks/results)")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch threads (small batches gain nothing from more)")
    args = parser.parse_args(argv)
    stem = "training_check_quick" if args.quick else "training_check"
    output_location(parser, "--out", args.out / f"{stem}.md", args.out / f"{stem}.json")
    level_schedule(args)  # --quick changes the defaults only; the window used is recorded
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    schedule = Staircase(steps_per_level=args.steps_per_level)
    window = args.window

    rows = {}
    timings = {}
    for name in args.bounds:
        start = time.perf_counter()
        est = train_one(name, BOUNDS[name], schedule, args.dim, args.batch, args.seed, window)
        timings[name] = time.perf_counter() - start
        per_level = []
        for k in range(len(schedule.levels)):
            end = (k + 1) * schedule.steps_per_level
            chunk = torch.tensor(est[end - window : end])
            per_level.append({"mean": float(chunk.mean()), "std": float(chunk.std()),
                              "median": float(chunk.median())})
        rows[name] = per_level
        cells = " ".join(f"{v['mean']:6.2f}" for v in per_level)
        print(f"{name:14s} {cells}   ({timings[name]:.0f} s)", flush=True)

    header = "| bound | " + " | ".join(f"true {v:g}" for v in schedule.levels) + " |"
    lines = [header, "|" + "---|" * (len(schedule.levels) + 1)]
    for name, per_level in rows.items():
        cells = " | ".join(
            f"{v['mean']:.2f} ± {v['std']:.2f} ({v['median']:.2f})" for v in per_level
        )
        lines.append(f"| {name} | {cells} |")
    table = "\n".join(lines)
    print()
    print(f"mean ± std (median) of the last {window} estimates of each level "
          f"(log {args.batch} = {torch.log(torch.tensor(float(args.batch))):.2f})")
    print(table)

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip()
    except OSError:
        commit = ""
    stem = "training_check_quick" if args.quick else "training_check"
    (args.out / f"{stem}.md").write_text(table + "\n")
    (args.out / f"{stem}.json").write_text(json.dumps({
        "levels": list(schedule.levels), "steps_per_level": schedule.steps_per_level,
        "window": window, "batch": args.batch, "dim": args.dim, "seed": args.seed,
        "results": rows, "seconds": timings, "commit": commit,
        "torch": torch.__version__, "mitools": mitools.__version__,
        "machine": f"{platform.machine()} {platform.processor()} "
                   f"{torch.get_num_threads()} threads",
    }, indent=2))


if __name__ == "__main__":
    main()
