"""Estimate MI of fixed samples with bmi (``benchmark-mi``, JAX) and write JSON records.

Runs inside ``benchmarks/peers/.venv-bmi`` (made by ``make_venvs.sh``)::

    benchmarks/peers/.venv-bmi/bin/python benchmarks/peers/run_bmi.py \
        --out results.json [--estimators infonce,nwj,dv,mine,ksg,cca] [--resume] data/*.npz

Uses bmi's documented estimator classes with bmi's defaults unless given on the command line:

* ``infonce``, ``nwj``, ``dv``, ``mine``: ``bmi.estimators.{InfoNCEEstimator, NWJEstimator,
  DonskerVaradhanEstimator, MINEEstimator}`` (bmi 0.1.3: batch 256, at most 10,000 steps
  with early stopping, MLP (16, 8), lr 0.1, 50 % train/test split, data standardised).
  bmi reports the **best** test-split value seen during training (an evaluation every 250
  steps); the record keeps that as ``estimate`` (bmi's protocol) and the last test value
  and the number of steps in ``settings``.
* ``ksg``: ``bmi.estimators.KSGEnsembleFirstEstimator()`` (the first KSG estimator,
  Euclidean norms, standardised data, neighbourhoods (5, 10), the estimate being their
  mean); the per-k values are kept in ``settings['per_k']`` (the paper's "KSG-10" is
  ``per_k['10']``).
* ``cca``: ``bmi.estimators.CCAMutualInformationEstimator()`` (Gaussian MI of the
  canonical correlations, sklearn's CCA).

``--interleave`` runs seed by seed, one task of each family in turn.  ``--resume`` keeps
the records already in ``--out`` and skips every (sample file, estimator) pair found there;
the file is rewritten after each estimate, so a stopped run loses at most one case.  Thread
count is set by the caller's environment (``OMP_NUM_THREADS``,
``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from dataclasses import asdict
from importlib.metadata import version

import bmi
from samples import (
    interleave_families,
    load_samples,
    read_records,
    sample_metadata,
    timed_estimate,
    write_records,
)

NEURAL = {
    "infonce": bmi.estimators.InfoNCEEstimator,
    "nwj": bmi.estimators.NWJEstimator,
    "dv": bmi.estimators.DonskerVaradhanEstimator,
    "mine": bmi.estimators.MINEEstimator,
}
ALL = [*NEURAL, "ksg", "cca"]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/: _cli
from _cli import output_location  # noqa: E402


def neural_runner(name: str, sample, settings: dict, max_n_steps: int | None, seed: int):
    kwargs = {"verbose": False, "seed": seed}
    if max_n_steps is not None:
        kwargs["max_n_steps"] = max_n_steps
    est = NEURAL[name](**kwargs)
    settings.update({k: v for k, v in est.parameters().dict().items()
                     if not isinstance(v, dict)})

    def run() -> float:
        result = est.estimate_with_info(sample.x, sample.y)
        info = result.additional_information
        history = info.get("test_history") or []
        settings["n_training_steps"] = info.get("n_training_steps")
        settings["last_test_mi"] = history[-1][1] if history else None
        settings["best_test_step"] = (max(history, key=lambda h: h[1])[0] if history else None)
        settings["flags"] = sorted(k for k, v in info.items() if v is True)
        return result.mi_estimate

    return run


def ksg_runner(sample, settings: dict):
    est = bmi.estimators.KSGEnsembleFirstEstimator()
    settings.update({k: v for k, v in est.parameters().dict().items()})

    def run() -> float:
        value = est.estimate(sample.x, sample.y)
        settings["per_k"] = {str(k): float(v) for k, v in est.get_predictions().items()}
        return value

    return run


def cca_runner(sample, settings: dict):
    est = bmi.estimators.CCAMutualInformationEstimator()
    settings["scale"] = True
    return lambda: est.estimate(sample.x, sample.y)


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("samples", nargs="+", help=".npz sample files")
    parser.add_argument("--out", required=True)
    parser.add_argument("--estimators", default="infonce,nwj,dv,mine",
                        help=f"comma-separated, from {','.join(ALL)}")
    parser.add_argument("--max-n-steps", type=int, default=None,
                        help="override bmi's default number of training steps")
    parser.add_argument("--seed", type=int, default=0, help="the neural estimators' seed")
    parser.add_argument("--resume", action="store_true",
                        help="keep the records in --out and skip the cases they hold")
    parser.add_argument("--interleave", action="store_true",
                        help="run seed by seed, one task of each family in turn (from the "
                             "files' metadata), so a stopped run covers every family")
    args = parser.parse_args()
    names = args.estimators.split(",")
    paths = args.samples
    if args.interleave:
        meta = {p: sample_metadata(p) for p in paths}
        paths = interleave_families(paths, lambda p: meta[p]["family"],
                                    lambda p: meta[p]["seed"])
    unknown = sorted(set(names) - set(ALL))
    if unknown:
        parser.error(f"unknown estimator(s) {unknown}; expected some of {ALL}")
    output_location(parser, "--out", args.out)

    import jax
    bmi_version = version("benchmark-mi")
    try:
        records = read_records(args.out) if args.resume else []
    except ValueError as exc:  # stop before the first estimate would write over it
        sys.exit(f"run_bmi.py: {exc}, so --resume cannot skip the cases it holds. The file is "
                 "left as it is: move it aside or pass another --out")
    done = {(r.get("sample") or r["task"], r["estimator"]) for r in records}
    extra = {"jax": jax.__version__, "bmi": bmi_version,
             "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "XLA_FLAGS",
                                                    "JAX_PLATFORMS")},
             "command": " ".join(sys.argv)}
    for path in paths:
        if all((Path(path).name, name) in done for name in names):
            continue
        (sample,) = load_samples([path])
        for name in names:
            if (Path(path).name, name) in done:
                continue
            settings: dict = {}
            if name in NEURAL:
                run = neural_runner(name, sample, settings, args.max_n_steps, args.seed)
            elif name == "ksg":
                run = ksg_runner(sample, settings)
            else:
                run = cca_runner(sample, settings)
            rec = timed_estimate("bmi", bmi_version, name, sample, settings, run)
            print(f"{time.strftime('%H:%M:%S')} bmi {name:8s} {Path(path).name:52s} "
                  f"true {sample.true_mi:6.3f} est {rec.estimate:7.3f} "
                  f"({rec.wall_time_s:6.1f} s) {rec.message}", flush=True)
            records.append(asdict(rec))
            write_records(args.out, records, extra)


if __name__ == "__main__":
    main()
