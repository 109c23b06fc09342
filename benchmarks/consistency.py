"""Self-consistency tests of every bound (Song & Ermon 2020), through ``estimate_mi``.

Song & Ermon check properties any MI estimate should have, without knowing the true MI:

* **independence**: for independent X, Y the estimate is about 0;
* **data processing**: :math:`I([X, X]; [Y, h(Y)]) = I(X; Y)` for a deterministic h
  (here the cubic map), so the ratio of the two estimates is about 1;
* **additivity**: for two independent copies,
  :math:`I([X_1, X_2]; [Y_1, Y_2]) = 2 I(X; Y)`, so the ratio is about 2.

Base data: the d-dimensional correlated Gaussian of ``mitools.tasks`` (default d = 10 at
2 nats, n = 4,000). Every estimate is ``mitools.estimate_mi`` with the named bound (its
default critic, split and early stopping), reported on held-out data.

The generative estimators (CLUB, L1Out, DoE) are not in ``estimate_mi``; with
``--generative`` they are checked the same way through the bounds directly: a diagonal
Gaussian q(y|x) (and a Gaussian marginal for DoE) fitted by maximum likelihood on 80 % of each
data set, the bound evaluated on the held-out 20 % (``benchmarks/_conditional_fit.py``).
Note that on the data-processing set, y = [y, y^3] has no density in 2d dimensions, so a
density model's log-likelihood is unbounded there.

Usage::

    PYTHONPATH=. python benchmarks/consistency.py [--quick]
    PYTHONPATH=. python benchmarks/consistency.py --generative   # the generative rows only

Writes ``benchmarks/results/consistency.json`` and ``consistency.md``
(``consistency_generative.*`` with ``--generative``; ``--quick``: ``consistency_quick.*``
or ``consistency_generative_quick.*``, not committed).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cli import at_least, fill_defaults, output_location, positive_float, positive_int
from _conditional_fit import held_out_generative
from _provenance import ROOT, provenance

from mitools.estimate import estimate_mi
from mitools.tasks import CorrelatedGaussian

BOUNDS = [
    ("DV", "dv", {}),
    ("MINE", "mine", {}),
    ("NWJ", "nwj", {}),
    ("InfoNCE", "infonce", {}),
    ("JS", "js", {}),
    ("SMILE τ=5", "smile", {"clip": 5.0}),
    ("SMILE τ=∞", "smile", {"clip": None}),
    ("α-InfoNCE α=0.01", "alpha_infonce", {"alpha": 0.01}),
    ("TUBA", "tuba", {}),
]
GENERATIVE = [("CLUB (fitted q, held out)", "club"), ("L1Out (fitted q, held out)", "l1out"),
              ("DoE (fitted q, held out)", "doe")]


def datasets(dim: int, mi: float, n: int, seed: int) -> dict[str, tuple[torch.Tensor, ...]]:
    """The four data sets: base, independent, data-processed and two-copy."""
    task = CorrelatedGaussian(dim, mi)
    g = torch.Generator().manual_seed(seed)
    x, y = task.sample(n, generator=g)
    x2, y2 = task.sample(n, generator=g)
    independent_y = task.sample(n, generator=g)[1]
    return {
        "base": (x, y),
        "independence": (x, independent_y),
        "data_processing": (torch.cat([x, x], 1), torch.cat([y, y**3], 1)),
        "additivity": (torch.cat([x, x2], 1), torch.cat([y, y2], 1)),
    }


def estimate_cell(estimate: dict) -> str:
    """``value ± stderr`` of one estimate, or the value alone where it has no standard error
    (the generative bounds, read from one fitted q: the table said "± nan")."""
    if math.isfinite(estimate["stderr"]):
        return f"{estimate['value']:.3f} ± {estimate['stderr']:.3f}"
    return f"{estimate['value']:.3f}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, checked, with ``--quick``'s defaults where none was given and ``out``
    the output path (its folder made)."""
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=positive_int, default=10,
                        help="components of the base Gaussian task (default: %(default)s)")
    parser.add_argument("--mi", type=positive_float, default=2.0,
                        help="MI of the base task in nats (default: %(default)s)")
    parser.add_argument("--n", type=at_least(100), default=None,
                        help="samples per data set (default: 4000; --quick: 600)")
    parser.add_argument("--max-steps", type=positive_int, default=None,
                        help="estimate_mi's max_steps (default: its own), or the steps of the "
                             "generative q fits (default: 2,000); --quick: 100")
    parser.add_argument("--seed", type=at_least(0), default=0,
                        help="seed of the data sets and the fits (default: %(default)s)")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch threads (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test into *_quick.*: its defaults are --n 600 and "
                             "--max-steps 100; options given explicitly win")
    parser.add_argument("--generative", action="store_true",
                        help="only the generative estimators, through the bounds directly")
    parser.add_argument("--out", default=None,
                        help="output path without suffix, .json and .md written (default: "
                             "benchmarks/results/consistency, with --generative "
                             "consistency_generative; --quick adds _quick)")
    args = parser.parse_args(argv)
    out_name = "consistency_generative" if args.generative else "consistency"
    # a smoke run never overwrites the committed results (``*_quick.*`` is git-ignored)
    out_name += "_quick" if args.quick else ""
    args.out = Path(args.out or ROOT / "benchmarks" / "results" / out_name)
    output_location(parser, "--out", args.out.with_suffix(".json"),
                    args.out.with_suffix(".md"))
    # --quick changes the defaults only: an option given explicitly wins
    return fill_defaults(args, {"n": 600, "max_steps": 100} if args.quick else {"n": 4000})


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    n, max_steps, out = args.n, args.max_steps, args.out
    steps = {} if max_steps is None else {"max_steps": max_steps}
    if args.generative:  # recorded as the steps it ran with
        max_steps = max_steps or 2000
    elif max_steps is None:
        import inspect

        max_steps = inspect.signature(estimate_mi).parameters["max_steps"].default
    data = datasets(args.dim, args.mi, n, args.seed)
    rows = []
    start = time.time()
    generative = {}
    if args.generative:  # fit one q per data set; every generative bound reads it
        generative = {key: held_out_generative(x, y, args.seed, max_steps)
                      for key, (x, y) in data.items()}
    for label, name, kwargs in (BOUNDS if not args.generative
                                else [(lab, nm, {}) for lab, nm in GENERATIVE]):
        est = {}
        for key, (x, y) in data.items():
            if args.generative:
                est[key] = {"value": generative[key][name], "stderr": float("nan"),
                            "interval": [float("nan")] * 2}
                continue
            r = estimate_mi(x, y, bound=name, seed=args.seed, **steps, **kwargs)
            est[key] = {"value": r.value, "stderr": r.stderr, "interval": list(r.interval)}
        base = est["base"]["value"]
        row = {
            "bound": label,
            "estimates": est,
            "independence": est["independence"]["value"],
            "data_processing_ratio": est["data_processing"]["value"] / base,
            "additivity_ratio": est["additivity"]["value"] / base,
        }
        rows.append(row)
        print(f"{label:18s} base {base:6.3f}  indep {row['independence']:+.3f}  "
              f"DP ratio {row['data_processing_ratio']:.3f}  "
              f"additivity ratio {row['additivity_ratio']:.3f}  ({time.time() - start:.0f} s)",
              flush=True)
    payload = {"provenance": provenance(),
               "setup": {"dim": args.dim, "mi": args.mi, "n": n, "max_steps": max_steps,
                         "seed": args.seed, "quick": args.quick, "h": "cube"},
               "wall_time_s": time.time() - start, "rows": rows}
    out.with_suffix(".json").write_text(json.dumps(payload, indent=1))
    lines = [f"Base: d = {args.dim} correlated Gaussian, I = {args.mi:g} nats, n = {n}; "
             "ideal: independence 0, data-processing ratio 1, additivity ratio 2.", "",
             "| bound | I(X;Y) | independence | data processing ratio | additivity ratio |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for row in rows:
        b = row["estimates"]["base"]
        lines.append(f"| {row['bound']} | {estimate_cell(b)} | "
                     f"{row['independence']:+.3f} | {row['data_processing_ratio']:.3f} | "
                     f"{row['additivity_ratio']:.3f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
