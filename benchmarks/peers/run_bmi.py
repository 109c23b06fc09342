"""Estimate MI of fixed samples with bmi (``benchmark-mi``, JAX) and write JSON records.

Runs inside ``benchmarks/peers/.venv-bmi`` (made by ``make_venvs.sh``)::

    benchmarks/peers/.venv-bmi/bin/python benchmarks/peers/run_bmi.py \
        --out results.json data/*.npz

Uses bmi's documented estimator classes ``bmi.estimators.{InfoNCEEstimator, NWJEstimator,
DonskerVaradhanEstimator, MINEEstimator}`` and their ``estimate(x, y)``.  Settings are bmi's
defaults unless given on the command line (bmi 0.1.3: batch 256, 10,000 steps, MLP (16, 8),
lr 0.1, 50 % train/test split; note bmi reports the best test-split value seen during
training).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from importlib.metadata import version

import bmi
from samples import load_samples, timed_estimate, write_records

ESTIMATORS = {
    "infonce": bmi.estimators.InfoNCEEstimator,
    "nwj": bmi.estimators.NWJEstimator,
    "dv": bmi.estimators.DonskerVaradhanEstimator,
    "mine": bmi.estimators.MINEEstimator,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("samples", nargs="+", help=".npz sample files")
    parser.add_argument("--out", required=True)
    parser.add_argument("--estimators", default="infonce,nwj,dv,mine")
    parser.add_argument("--max-n-steps", type=int, default=None,
                        help="override bmi's default number of training steps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import jax
    bmi_version = version("benchmark-mi")
    records = []
    for sample in load_samples(args.samples):
        for name in args.estimators.split(","):
            kwargs = {"verbose": False, "seed": args.seed}
            if args.max_n_steps is not None:
                kwargs["max_n_steps"] = args.max_n_steps
            est = ESTIMATORS[name](**kwargs)
            settings = {k: v for k, v in est.parameters().dict().items()
                        if not isinstance(v, dict)}
            rec = timed_estimate("bmi", bmi_version, name, sample, settings,
                                 lambda est=est, s=sample: est.estimate(s.x, s.y))
            print(f"bmi {name:8s} {sample.name:28s} true {sample.true_mi:6.3f} "
                  f"est {rec.estimate:7.3f} ({rec.wall_time_s:5.1f} s) {rec.message}", flush=True)
            records.append(rec)
    write_records(args.out, records, {"jax": jax.__version__})


if __name__ == "__main__":
    main()
