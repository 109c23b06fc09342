"""Accuracy, time and interval coverage of ``mitools.estimate_mi`` with its defaults.

On the d = 20 correlated Gaussian with n = 5,000 samples, at each MI level (default 2 and 4
nats; ``--levels 2,4,6,8,10`` for the whole staircase), over ``--seeds`` seeds (each draws new
data, a new split and a new initialisation):

* the estimate within 5 % of the true MI;
* coverage of the reported 95 % interval (a one-sided lower bound by default: the truth is
  covered when it lies above it) and of the two-sided ``value ± t·stderr`` interval;
* wall and CPU time per estimate, on ``--threads`` threads (state the machine's load with
  the numbers: times on a shared machine are not those of a quiet one).

Usage::

    PYTHONPATH=. python benchmarks/estimate_accuracy.py [--levels 2,4] [--seeds 20] [--threads 1]

Writes ``benchmarks/results/estimate_accuracy.{json,md}`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cli import at_least, number_list, output_location, positive_int
from _provenance import ROOT, provenance

from mitools.estimate import estimate_mi
from mitools.estimate.stats import t_quantile
from mitools.tasks import CorrelatedGaussian


def one(mi: float, seed: int, n: int, threads: int) -> dict:
    x, y = CorrelatedGaussian(20, mi).sample(n, generator=10_000 + seed)
    start, cpu = time.perf_counter(), time.process_time()
    r = estimate_mi(x.numpy(), y.numpy(), seed=seed, threads=threads)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    half = t_quantile(0.5 + r.level / 2, 19) * r.stderr
    return {"mi": mi, "seed": seed, "value": r.value, "stderr": r.stderr,
            "interval": list(r.interval), "sided": r.sided, "held_out": r.held_out,
            "optimism": r.optimism, "covers": r.interval[0] <= mi <= r.interval[1],
            "covers_two_sided": abs(r.value - mi) <= half,
            "flags": list(r.diagnostics.flags),
            "rel_error": (r.value - mi) / mi, "held_out_rel_error": (r.held_out - mi) / mi,
            "wall_time_s": wall, "cpu_time_s": cpu, "steps": [f.steps for f in r.folds],
            "folds": [{"held_out": f.held_out, "in_sample": f.in_sample, "value": f.value,
                       "best_step": f.best_step} for f in r.folds]}


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=number_list(float), default="2,4",
                        help="comma-separated MI levels in nats (default: %(default)s)")
    parser.add_argument("--seeds", type=positive_int, default=20,
                        help="seeds per level (default: %(default)s)")
    parser.add_argument("--n", type=at_least(100), default=5000,
                        help="samples per estimate (default: %(default)s)")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch threads (default: %(default)s)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                             "estimate_accuracy"),
                        help="output path without suffix, .json and .md written (default: "
                             "benchmarks/results/estimate_accuracy)")
    args = parser.parse_args()
    out = Path(args.out)
    output_location(parser, "--out", out.with_suffix(".json"), out.with_suffix(".md"))
    torch.set_num_threads(args.threads)
    runs = []
    for mi in args.levels:
        for seed in range(args.seeds):
            row = one(mi, seed, args.n, args.threads)
            runs.append(row)
            print(f"{mi:g} nats seed {seed:2d}: {row['value']:.3f} ± {row['stderr']:.3f} "
                  f"covers={row['covers']} rel.err {row['rel_error']:+.3f} "
                  f"({row['wall_time_s']:.1f} s)", flush=True)
    summary = []
    for mi in sorted({r["mi"] for r in runs}):
        rs = [r for r in runs if r["mi"] == mi]
        summary.append({
            "mi": mi, "seeds": len(rs),
            "mean": sum(r["value"] for r in rs) / len(rs),
            "mean_held_out": sum(r["held_out"] for r in rs) / len(rs),
            "within_5_percent": sum(abs(r["rel_error"]) <= 0.05 for r in rs) / len(rs),
            "coverage": sum(r["covers"] for r in rs) / len(rs),
            "coverage_two_sided": sum(r["covers_two_sided"] for r in rs) / len(rs),
            "flagged": sum(bool(r["flags"]) for r in rs) / len(rs),
            "median_time_s": sorted(r["wall_time_s"] for r in rs)[len(rs) // 2],
            "median_cpu_s": sorted(r["cpu_time_s"] for r in rs)[len(rs) // 2],
            "max_time_s": max(r["wall_time_s"] for r in rs),
            "seed0_value": rs[0]["value"],
        })
    payload = {"provenance": provenance(), "n": args.n, "dim": 20, "threads": args.threads,
               "load_average": list(os.getloadavg()), "runs": runs, "summary": summary}
    out.with_suffix(".json").write_text(json.dumps(payload, indent=1))
    lines = ["| true MI | seeds | mean estimate | mean held-out bound | within 5 % | "
             "95 % lower bound covers | two-sided covers | flagged | median time (s) | "
             "median CPU (s) | max time (s) |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for s in summary:
        lines.append(f"| {s['mi']:g} | {s['seeds']} | {s['mean']:.3f} | "
                     f"{s['mean_held_out']:.3f} | "
                     f"{s['within_5_percent']:.0%} | {s['coverage']:.0%} | "
                     f"{s['coverage_two_sided']:.0%} | {s['flagged']:.0%} | "
                     f"{s['median_time_s']:.1f} | {s['median_cpu_s']:.1f} | "
                     f"{s['max_time_s']:.1f} |")
    lines.append(f"\n{args.threads} thread(s); load average at the end "
                 f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}.")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
