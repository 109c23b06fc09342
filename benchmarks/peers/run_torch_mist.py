"""Estimate MI of fixed samples with torch-mist and write JSON records.

Runs inside ``benchmarks/peers/.venv-torch-mist`` (made by ``make_venvs.sh``)::

    benchmarks/peers/.venv-torch-mist/bin/python benchmarks/peers/run_torch_mist.py \
        --out results.json data/*.npz

Uses torch-mist's documented one-call API ``torch_mist.estimate_mi(data=(x, y),
estimator=NAME, hidden_dims=[...], max_iterations=..., test_data=(x_test, y_test))``.
Its own defaults are kept (batch 128, 10 % of the training data for validation and early
stopping, each estimator's default critic and negatives), except for the critic size and
number of iterations (2 x 256 and 2,000, as in the issue's reference numbers) and a held-out
test split (torch-mist evaluates on the training data when none is given, and warns).
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from samples import load_samples, timed_estimate, write_records

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/: _cli
from _cli import output_location


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("samples", nargs="+", help=".npz sample files")
    parser.add_argument("--out", required=True)
    parser.add_argument("--estimators", default="smile,infonce,nwj,mine")
    parser.add_argument("--hidden", default="256,256")
    parser.add_argument("--max-iterations", type=int, default=2000)
    parser.add_argument("--test-fraction", type=float, default=0.2,
                        help="held-out fraction for the reported value (0: torch-mist's "
                             "default of evaluating on the training data)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    output_location(parser, "--out", args.out)  # written after every estimate has run

    import torch_mist
    hidden = [int(h) for h in args.hidden.split(",")]
    mist_version = version("torch-mist")
    records = []
    for sample in load_samples(args.samples):
        n = len(sample.x)
        perm = np.random.default_rng(args.seed).permutation(n)
        n_test = round(args.test_fraction * n)
        test, train = perm[:n_test], perm[n_test:]
        x = torch.from_numpy(sample.x)
        y = torch.from_numpy(sample.y)
        for name in args.estimators.split(","):
            settings = {"hidden_dims": hidden, "max_iterations": args.max_iterations,
                        "n_train": len(train), "n_test": n_test, "batch_size": 128,
                        "torch_threads": torch.get_num_threads()}

            train_data = (x[train], y[train])
            test_data = (x[test], y[test]) if n_test > 0 else None

            def run(name=name, train_data=train_data, test_data=test_data) -> float:
                torch.manual_seed(args.seed)
                out = torch_mist.estimate_mi(
                    data=train_data, estimator=name, hidden_dims=hidden,
                    max_iterations=args.max_iterations, test_data=test_data, verbose=False)
                value = out[0] if isinstance(out, tuple) else out
                return float(value)

            rec = timed_estimate("torch-mist", mist_version, name, sample, settings, run)
            print(f"torch-mist {name:8s} {sample.name:28s} true {sample.true_mi:6.3f} "
                  f"est {rec.estimate:7.3f} ({rec.wall_time_s:5.1f} s) {rec.message}", flush=True)
            records.append(rec)
    write_records(args.out, records, {"torch": torch.__version__})


if __name__ == "__main__":
    main()
