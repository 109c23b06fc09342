"""Is a fitted-q CLUB / L1Out on held-out data an upper bound in practice?

Evidence for reporting an upper bound beside estimate_mi's lower one. For each task and seed:
draw n samples, fit a conditional density q(y|x) (a diagonal Gaussian with a 2 x 256 MLP,
which contains the true conditional of the Gaussian task) by maximum likelihood on 80 % of
them (early stopping on a validation fifth of that part), and evaluate on the held-out 20 %,
all pairs at once (N = n_test): CLUB, L1Out and BA (true H(Y)) with the fitted q, and the
same bounds with the task's true conditional on the same test samples. The held-out KL gap
E[log p(y|x) - log q(y|x)] says how well q fits.

Tasks: the d = 20 correlated Gaussian at 2-10 nats, and its cubic variant (y -> y^3, where a
Gaussian q is misspecified) at 2 and 4 nats.

Usage::

    PYTHONPATH=. python benchmarks/upper_bounds_heldout.py [--seeds 3] [--n 5000] [--quick]

Writes ``benchmarks/results/upper_bounds_heldout.{json,md}`` (``--quick``:
``upper_bounds_heldout_quick.{json,md}``, not committed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cli import at_least, fill_defaults, output_location, positive_int
from _conditional_fit import fit_q
from _provenance import ROOT, provenance

from mitools.bounds import ba, club, l1out
from mitools.tasks import CorrelatedGaussian


def one_case(task, n, seed, max_steps):
    x, y = task.sample(n, generator=seed)
    n_test = n // 5
    x_tr, y_tr, x_te, y_te = x[n_test:], y[n_test:], x[:n_test], y[:n_test]
    start = time.time()
    q = fit_q(x_tr, y_tr, seed, max_steps)
    with torch.no_grad():
        fitted = q.log_prob(y_te, x_te).double()
    true = task.conditional_log_prob(x_te.double(), y_te.double())
    h = task.entropy_y()
    kl = float(torch.diagonal(true).mean() - torch.diagonal(fitted).mean())
    return {
        "seed": seed, "fit_time_s": time.time() - start, "kl_gap": kl,
        "fitted": {"club": float(club(fitted)), "l1out": float(l1out(fitted)),
                   "ba": float(ba(fitted, h))},
        "true_q": {"club": float(club(true)), "l1out": float(l1out(true)),
                   "ba": float(ba(true, h))},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=at_least(100), default=None,
                        help="default: 5000; --quick: 1000")
    parser.add_argument("--seeds", type=positive_int, default=None, help="default: 3; --quick: 1")
    parser.add_argument("--max-steps", type=positive_int, default=None,
                        help="default: 3000; --quick: 300")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch threads (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run into *_quick.*: its defaults are --n 1000, --seeds 1 "
                             "and --max-steps 300; options given explicitly win")
    parser.add_argument("--out", default=None,
                        help="output path without suffix (default: benchmarks/results/"
                             "upper_bounds_heldout, --quick: upper_bounds_heldout_quick)")
    args = parser.parse_args(argv)
    # --quick changes the defaults only: an option given explicitly wins
    fill_defaults(args, {"n": 1000, "seeds": 1, "max_steps": 300} if args.quick
                  else {"n": 5000, "seeds": 3, "max_steps": 3000})
    # a smoke run never overwrites the committed results (``*_quick.*`` is git-ignored)
    out = Path(args.out or ROOT / "benchmarks" / "results" /
               ("upper_bounds_heldout" + ("_quick" if args.quick else "")))
    output_location(parser, "--out", out.with_suffix(".json"), out.with_suffix(".md"))
    torch.set_num_threads(args.threads)
    n, seeds, max_steps = args.n, args.seeds, args.max_steps
    tasks = [(None, mi) for mi in (2.0, 4.0, 6.0, 8.0, 10.0)] + [("cubic", 2.0), ("cubic", 4.0)]
    rows = []
    start = time.time()
    for transform, mi in tasks:
        task = CorrelatedGaussian(20, mi, transform=transform)
        cases = [one_case(task, n, seed, max_steps) for seed in range(seeds)]
        row = {"task": transform or "gaussian", "mi": mi, "cases": cases}
        for key in ("club", "l1out", "ba"):
            for kind in ("fitted", "true_q"):
                vals = [c[kind][key] for c in cases]
                row[f"{kind}_{key}_mean"] = sum(vals) / len(vals)
                row[f"{kind}_{key}_min"] = min(vals)
                row[f"{kind}_{key}_max"] = max(vals)
        row["kl_gap_mean"] = sum(c["kl_gap"] for c in cases) / len(cases)
        row["fitted_upper_holds"] = all(
            c["fitted"]["l1out"] >= mi and c["fitted"]["club"] >= mi for c in cases)
        rows.append(row)
        print(f"{row['task']:8s} {mi:4.1f}  KL {row['kl_gap_mean']:.3f}  "
              f"L1Out fitted {row['fitted_l1out_mean']:.2f} [{row['fitted_l1out_min']:.2f}, "
              f"{row['fitted_l1out_max']:.2f}] true-q {row['true_q_l1out_mean']:.2f}  "
              f"CLUB fitted {row['fitted_club_mean']:.2f} true-q {row['true_q_club_mean']:.2f}  "
              f"BA fitted {row['fitted_ba_mean']:.2f}  ({time.time() - start:.0f} s)",
              flush=True)
    payload = {"provenance": provenance(),
               "setup": {"n": n, "test_fraction": 0.2, "seeds": seeds, "max_steps": max_steps,
                         "q": "DiagonalGaussian 2 x 256, early stopping on validation NLL",
                         "quick": args.quick},
               "wall_time_s": time.time() - start, "rows": rows}
    out.with_suffix(".json").write_text(json.dumps(payload, indent=1))
    lines = [f"n = {n} (20 % held out, all {n // 5} test pairs scored), {seeds} seeds; "
             "q: diagonal Gaussian, 2 x 256 MLP, maximum likelihood with early stopping. "
             "Cells: mean [min, max] over seeds.", "",
             "| task | true MI | held-out KL(p‖q) | L1Out, fitted q | L1Out, true q | "
             "CLUB, fitted q | CLUB, true q | BA (true H), fitted q | fitted ≥ truth |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |"]
    for r in rows:
        def cell(kind, key, r=r):
            return (f"{r[f'{kind}_{key}_mean']:.2f} [{r[f'{kind}_{key}_min']:.2f}, "
                    f"{r[f'{kind}_{key}_max']:.2f}]")
        lines.append(f"| {r['task']} | {r['mi']:g} | {r['kl_gap_mean']:.3f} | "
                     f"{cell('fitted', 'l1out')} | {cell('true_q', 'l1out')} | "
                     f"{cell('fitted', 'club')} | {cell('true_q', 'club')} | "
                     f"{cell('fitted', 'ba')} | "
                     f"{'yes' if r['fitted_upper_holds'] else 'no'} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
