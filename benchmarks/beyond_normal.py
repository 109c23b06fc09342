"""mitools on the public "Beyond Normal" benchmark (Czyz et al., NeurIPS 2023).

Runs, in the project's environment, on the samples that bmi's own samplers drew
(``peers/sample_bmi_tasks.py --benchmark``: bmi's 40 tasks, n = 5,000, seeds 0-2):

* ``estimate_mi``: :func:`mitools.estimate_mi` with its defaults;
* ``ksg``: ``mitools.classical.ksg`` (k = 10, as the paper's "KSG-10"), when importable;
* ``gaussian``: ``mitools.classical.gaussian_mi`` (canonical correlations), when importable;
* ``bmi_ksg``: bmi's own KSG (``KSGEnsembleFirstEstimator()``, bmi's defaults), run in bmi's
  venv (``peers/.venv-bmi``, one subprocess per sample, timed inside it around the estimate
  alone, with the same thread count), when that venv exists. This is the KSG the issue's
  users compare against, timed in the same run as ``estimate_mi``; its estimates equal those
  of ``peers/run_bmi_beyond_normal.sh`` (KSG has no randomness).

Samples are taken seed by seed, one task of each family in turn (a run stopped early has
covered every family).  Every method runs on each sample in turn, in this one process with
the same thread count, so their times are comparable ("median time of estimate_mi vs KSG
in the same run").  The results file is rewritten after each case and a re-run skips the
(sample, method) pairs it already holds, so the run can be stopped and resumed.  bmi's
estimators run separately in bmi's venv (``peers/run_bmi_beyond_normal.sh``);
``beyond_normal_report.py`` scores both.

Usage::

    PYTHONPATH=. python benchmarks/beyond_normal.py                  # all 40 x 3, resumable
    PYTHONPATH=. python benchmarks/beyond_normal.py --tasks 'spiral-*,1v1-*' --seeds 0
    PYTHONPATH=. python benchmarks/beyond_normal.py --quick           # smoke run, ~1 min

Writes ``benchmarks/results/beyond_normal_mitools.json`` (``--quick``:
``beyond_normal_mitools_quick.json``, not committed).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import subprocess
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "peers"))

from _cli import (  # noqa: E402
    number_list,
    output_location,
    positive_int,
    read_sample_index,
)
from _provenance import provenance  # noqa: E402
from samples import (  # noqa: E402
    interleave_families,
    load_samples,
    read_results,
    write_json_atomic,
)

DATA = HERE / "peers" / "data" / "beyond_normal"
RESULTS = HERE / "results"
METHODS = ("estimate_mi", "ksg", "gaussian", "bmi_ksg")
BMI_PYTHON = HERE / "peers" / ".venv-bmi" / "bin" / "python"
KSG_K = 10
QUICK_TASKS = "1v1-additive-0.1,spiral-multinormal-sparse-3-3-2-2.0,student-identity-2-2-1"


def select(index: list[dict], tasks: str | None, seeds: list[int] | None) -> list[dict]:
    """Index rows whose task id or family matches one of the comma-separated globs."""
    patterns = [p.strip() for p in tasks.split(",")] if tasks else ["*"]
    return [row for row in index
            if any(fnmatch.fnmatchcase(row["task_id"], p) or row["family"] == p
                   for p in patterns)
            and (seeds is None or row["seed"] in seeds)]


def ensure_samples(data: Path) -> list[dict]:
    """The sample index; draws the samples with bmi's venv first if they are missing."""
    index = data / "index.json"
    if not index.exists():
        bmi_python = HERE / "peers" / ".venv-bmi" / "bin" / "python"
        if not bmi_python.exists():
            sys.exit(f"no samples in {data} and no bmi venv to draw them: run "
                     "`bash benchmarks/peers/make_venvs.sh bmi` first")
        subprocess.run([str(bmi_python), str(HERE / "peers" / "sample_bmi_tasks.py"),
                        "--benchmark", "--out-dir", str(data)], check=True,
                       env=dict(os.environ, JAX_PLATFORMS="cpu"))
    samples = read_sample_index(index, "beyond_normal.py")
    return samples


def classical_functions() -> dict:
    """``mitools.classical``'s estimators, or why they are missing."""
    try:
        from mitools import classical
    except ImportError as exc:
        return {"missing": f"mitools.classical not importable: {exc}"}
    return {"ksg": getattr(classical, "ksg", None),
            "gaussian": getattr(classical, "gaussian_mi", None)}


def _accepts(fn, name: str) -> bool:
    import inspect

    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def method_runner(method: str, x, y, threads: int, options: dict, classical: dict):
    """A function running one method on ``(x, y)`` and returning an ``MIEstimate``, and
    the settings it uses."""
    if method == "estimate_mi":
        from mitools import estimate_mi

        return (lambda: estimate_mi(x, y, **options)), {"defaults": "estimate_mi", **options}
    fn = classical[method]
    kwargs: dict = {"k": KSG_K} if method == "ksg" else {}
    if _accepts(fn, "threads"):
        kwargs["threads"] = threads
    return (lambda: fn(x, y, **kwargs)), kwargs


def describe(result) -> dict:
    """The fields of an ``MIEstimate`` the report needs (JSON-safe)."""
    out = {"stderr": float(result.stderr), "interval": [float(v) for v in result.interval],
           "level": float(result.level), "method": getattr(result, "method", None)}
    for name in ("held_out", "in_sample", "optimism"):
        value = getattr(result, name, None)
        if value is not None and value == value:  # not NaN
            out[name] = float(value)
    folds = getattr(result, "folds", ())
    if folds:
        out["fold_steps"] = [f.steps for f in folds]
        out["fold_best_step"] = [f.best_step for f in folds]
        # in paired standard errors: on validation (replaces the start above 2) and, for the
        # first fold, on its test part (screens the other folds at 2 or below); +-inf and NaN
        # are written as JSON's Infinity and NaN, like the intervals' open ends
        out["fold_gain_over_start"] = [float(f.gain_over_start) for f in folds]
        out["fold_held_out_gain"] = [float(f.held_out_gain) for f in folds]
    return out


def run_bmi_ksg(row: dict, path: Path, threads: int, run_id: int) -> dict:
    """bmi's KSG on one sample file, in bmi's venv: its record (``peers/run_bmi.py``; time
    measured in that process around the estimate alone), tagged as this run's."""
    import tempfile

    env = dict(os.environ, JAX_PLATFORMS="cpu", OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               XLA_FLAGS="--xla_cpu_multi_thread_eigen=false "
                         f"intra_op_parallelism_threads={threads}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ksg.json"
        start = time.perf_counter()
        proc = subprocess.run([str(BMI_PYTHON), str(HERE / "peers" / "run_bmi.py"),
                               "--estimators", "ksg", "--out", str(out), str(path)],
                              env=env, capture_output=True, text=True)
        process_s = time.perf_counter() - start
        if proc.returncode != 0 or not out.exists():
            record = {"library": "bmi", "estimator": "bmi_ksg", "status": "error",
                      "message": (proc.stderr or proc.stdout)[-500:], "estimate": float("nan"),
                      "wall_time_s": float("nan"), "abs_error": float("nan")}
        else:
            (record,) = json.loads(out.read_text())["records"]
    record.update(estimator="bmi_ksg", task=row["task_id"], sample=row["file"],
                  seed=row["seed"], true_mi=row["true_mi"], run=run_id,
                  process_time_s=process_s)
    return record


#: samples of the unrecorded warm-up call of each in-process method
WARM_UP_N = 500


def warm_up(rows: list, done: set, methods: list, args, n_max, options: dict,
            classical: dict, run: dict) -> None:
    """Run each in-process method once, unrecorded, on the first ``WARM_UP_N`` samples of
    the first sample file still to do: the first call in a process pays one-time costs
    (torch's lazy initialisation: about 1 s of ``estimate_mi``'s first case) that belong to
    the process, not to the estimate. bmi's KSG runs in its own process per sample and is
    timed there around the estimate alone, after its imports."""
    todo = [(row, m) for row in rows for m in methods
            if m != "bmi_ksg" and (row["file"], m) not in done]
    if not todo:
        return
    row = todo[0][0]
    (sample,) = load_samples([str(Path(args.data) / row["file"])])
    count = min(WARM_UP_N, len(sample.x) if n_max is None else n_max)
    warmed = []
    for method in dict.fromkeys(m for _, m in todo):
        run_fn, _ = method_runner(method, sample.x[:count], sample.y[:count], args.threads,
                                  options, classical)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                run_fn()
            except Exception:  # the recorded call will report it
                continue
        warmed.append(method)
    run["warm_up"] = {"sample": row["file"], "n": count, "methods": warmed}


def run_case(method: str, row: dict, sample, threads: int, options: dict,
             classical: dict, run_id: int) -> dict:
    """One method on one sample: a record with estimate, interval, coverage and time."""
    import mitools

    if method == "bmi_ksg":
        return run_bmi_ksg(row, Path(sample.path), threads, run_id)
    run, settings = method_runner(method, sample.x, sample.y, threads, options, classical)
    record = {"library": "mitools", "version": mitools.__version__, "estimator": method,
              "task": row["task_id"], "sample": row["file"], "seed": row["seed"],
              "true_mi": row["true_mi"], "settings": settings, "run": run_id}
    start = time.perf_counter()
    try:
        result = run()
        record.update(status="ok", message="", estimate=float(result.value),
                      **describe(result))
    except Exception as exc:  # reported, not dropped
        record.update(status="error", message=f"{type(exc).__name__}: {exc}"[:500],
                      estimate=float("nan"))
    record["wall_time_s"] = time.perf_counter() - start
    record["abs_error"] = abs(record["estimate"] - row["true_mi"])
    if "interval" in record:
        lo, hi = record["interval"]
        record["covers"] = bool(lo <= row["true_mi"] <= hi)
    return record


def read_previous(out: Path) -> dict:
    """The results already in ``out`` (``{}`` if none), to resume from; exits naming the
    file, and leaving it as it is, when it is not a results file of this script."""
    advice = ("so the run cannot skip the cases it holds. The file is left as it is: move "
              "it aside, pass --fresh to start over (which replaces it) or --out to write "
              "elsewhere")
    try:
        payload = read_results(out, keys=("sample", "estimator"))
    except ValueError as exc:
        sys.exit(f"beyond_normal.py: {exc}, {advice}")
    if payload and ((payload.get("benchmark"), payload.get("side")) != ("beyond_normal",
                                                                        "mitools")
                    or not isinstance(payload.get("runs", []), list)
                    or not isinstance(payload.get("tasks", {}), dict)):
        sys.exit(f"beyond_normal.py: {out} is not a results file of beyond_normal.py "
                 f"(benchmark 'beyond_normal', side 'mitools', with runs and tasks), {advice}")
    return payload


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA), help="sample directory with index.json")
    parser.add_argument("--tasks", default=None,
                        help="comma-separated globs of task ids, or family names "
                             "(e.g. 'spiral-*,additive-noise'); default all")
    parser.add_argument("--seeds", type=number_list(int, 0, strict=False), default=None,
                        help="e.g. 0,1 (default: all in the index)")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated, from {','.join(METHODS)}")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch threads, for every method alike (default: %(default)s)")
    parser.add_argument("--estimate-mi-args", default="{}",
                        help="JSON of keyword arguments for estimate_mi (default: none)")
    parser.add_argument("--out", default=None,
                        help="results JSON (default: benchmarks/results/"
                             "beyond_normal_mitools.json; --quick: _quick.json)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run into *_quick.json: its defaults are tasks "
                             f"{QUICK_TASKS}, seed 0, methods without bmi_ksg and "
                             "estimate_mi max_steps=200 (n = 1,000); --tasks, --seeds, "
                             "--methods and --estimate-mi-args given explicitly win")
    parser.add_argument("--fresh", action="store_true", help="ignore existing results")
    args = parser.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    methods = args.methods.split(",")
    if set(methods) - set(METHODS):
        parser.error(f"unknown method(s) {sorted(set(methods) - set(METHODS))}")
    try:
        options = json.loads(args.estimate_mi_args)
    except json.JSONDecodeError as exc:
        parser.error(f"--estimate-mi-args is not valid JSON ({exc})")
    if not isinstance(options, dict):
        parser.error("--estimate-mi-args must be a JSON object of keyword arguments")
    tasks, seeds, n_max = args.tasks, args.seeds, None
    if args.quick:
        tasks, seeds, n_max = tasks or QUICK_TASKS, seeds or [0], 1000
        options.setdefault("max_steps", 200)
        if args.methods == parser.get_default("methods"):  # bmi would read all 5,000 rows
            methods = [m for m in methods if m != "bmi_ksg"]
    out = Path(args.out or RESULTS / ("beyond_normal_mitools"
                                      + ("_quick" if args.quick else "") + ".json"))
    output_location(parser, "--out", out)
    payload = {} if args.fresh else read_previous(out)
    index = ensure_samples(Path(args.data))
    rows = interleave_families(
        select(index, tasks, seeds),
        lambda row: row["family"], lambda row: row["seed"])
    # merged into the tasks already recorded: a run on another samples folder (or a subset
    # of the tasks) must not drop the metadata of the tasks whose records the file keeps
    task_meta = dict(payload.get("tasks", {}))
    task_meta.update({row["task_id"]: {k: row.get(k) for k in ("name", "family", "group",
                                                               "dim_x", "dim_y", "true_mi",
                                                               "n", "params")}
                      for row in index})
    records = payload.get("records", [])
    runs = payload.get("runs", [])
    runs.append({"provenance": provenance(), "threads": args.threads, "argv": sys.argv[1:],
                 "quick": args.quick, "n_max": n_max, "estimate_mi_args": options})
    run_id = len(runs) - 1
    done = {(r["sample"], r["estimator"]) for r in records}
    classical = classical_functions()
    unavailable = {m: classical.get("missing", f"mitools.classical lacks {m}")
                   for m in methods
                   if m not in ("estimate_mi", "bmi_ksg") and classical.get(m) is None}
    if "bmi_ksg" in methods and not BMI_PYTHON.exists():
        unavailable["bmi_ksg"] = (f"no bmi venv at {BMI_PYTHON} (make it with `bash "
                                  "benchmarks/peers/make_venvs.sh bmi`)")
    if unavailable:
        runs[run_id]["skipped"] = unavailable
        print(f"skipped: {unavailable}", flush=True)
    methods = [m for m in methods if m not in unavailable]

    def save() -> None:
        write_json_atomic(out, {"benchmark": "beyond_normal", "side": "mitools", "runs": runs,
                                "tasks": task_meta, "records": records})

    warm_up(rows, done, methods, args, n_max, options, classical, runs[run_id])
    added = 0
    for row in rows:
        todo = [m for m in methods if (row["file"], m) not in done]
        if not todo:
            continue
        (sample,) = load_samples([str(Path(args.data) / row["file"])])
        if n_max is not None:
            sample = replace(sample, x=sample.x[:n_max], y=sample.y[:n_max])
        for method in todo:
            record = run_case(method, row, sample, args.threads, options, classical, run_id)
            records.append(record)
            added += 1
            ci = record.get("interval", [float("nan")] * 2)
            print(f"{time.strftime('%H:%M:%S')} {method:12s} {row['file']:52s} "
                  f"true {row['true_mi']:6.3f} est {record['estimate']:7.3f} "
                  f"[{ci[0]:.3f}, {ci[1]:.3f}] ({record['wall_time_s']:6.1f} s) "
                  f"{record['message']}", flush=True)
            save()
    # nothing added: the file is left as it was (no run entry for a run that did nothing)
    print(f"{added} new, {len(records)} records in {out}"
          + ("" if added else " (nothing written)"))

if __name__ == "__main__":
    main()
