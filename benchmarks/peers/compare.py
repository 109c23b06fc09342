"""Peers side by side: mitools.estimate_mi, bmi and torch-mist on the same fixed samples.

One command (after ``bash benchmarks/peers/make_venvs.sh``)::

    PYTHONPATH=. python benchmarks/peers/compare.py

1. draws the fixed samples: the d = 20 correlated Gaussian (``mitools.tasks``) at 2, 4, 6,
   8 and 10 nats, n = 5,000, and (when the bmi venv exists) bmi's own multinormal and
   Student-t tasks drawn by bmi's samplers (``sample_bmi_tasks.py``), into
   ``benchmarks/peers/data/``;
2. runs ``mitools.estimate_mi`` in this process, and each peer's runner in the peer's own
   virtual environment (``run_bmi.py``, ``run_torch_mist.py``); a peer whose venv is
   missing or whose install failed is reported as *skipped*, never dropped;
3. writes ``benchmarks/results/peers.json`` and ``peers.md`` (estimate, absolute error and
   wall time per library, estimator and task; commit, versions and hardware).

Every library runs with the same thread count (``--threads``, default 1) on the same CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _cli import (  # noqa: E402
    at_least,
    name_list,
    number_list,
    output_location,
    positive_int,
)
from _provenance import ROOT, provenance  # noqa: E402
from samples import (  # noqa: E402
    Record,
    load_samples,
    read_results,
    save_sample,
    timed_estimate,
)

PEERS = {
    "bmi": ("run_bmi.py", HERE / ".venv-bmi"),
    "torch-mist": ("run_torch_mist.py", HERE / ".venv-torch-mist"),
}


def make_gaussian_samples(out_dir: Path, levels: list[float], n: int, seed: int) -> list[Path]:
    from mitools.tasks import CorrelatedGaussian

    paths = []
    for mi in levels:
        task = CorrelatedGaussian(dim=20, mi=mi)
        x, y = task.sample(n, generator=seed + int(mi * 100))
        path = out_dir / f"gaussian-d20-mi{mi:g}.npz"
        save_sample(path, f"gaussian-d20-{mi:g}nats", f"mitools {task!r}, seed {seed}",
                    task.mutual_information(), x.numpy(), y.numpy())
        paths.append(path)
    return paths


def peer_python(name: str) -> Path | None:
    venv = PEERS[name][1]
    python = venv / "bin" / "python"
    if python.exists() and not Path(f"{venv}.failed").exists():
        return python
    return None


def run_peer(name: str, samples: list[Path], out: Path, extra: list[str], env: dict) -> dict:
    python = peer_python(name)
    if python is None:
        return {"status": "skipped", "reason": f"virtual environment {PEERS[name][1]} missing or "
                "its install failed; run benchmarks/peers/make_venvs.sh", "records": []}
    cmd = [str(python), str(HERE / PEERS[name][0]), "--out", str(out), *extra,
           *map(str, samples)]
    print("$", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, env=env, cwd=ROOT, text=True, capture_output=True)
    print(proc.stdout[-4000:], proc.stderr[-2000:] if proc.returncode else "", flush=True)
    if proc.returncode != 0 or not out.exists():
        return {"status": "error", "reason": proc.stderr[-1000:], "records": []}
    payload = json.loads(out.read_text())
    payload["status"] = "ok"
    return payload


def run_mitools(samples: list[Path], bounds: list[str], seed: int) -> list[Record]:
    import mitools
    from mitools.estimate import estimate_mi

    records = []
    for sample in load_samples(map(str, samples)):
        for bound in bounds:
            info: dict = {}

            def run(bound=bound, sample=sample, info=info) -> float:
                r = estimate_mi(sample.x, sample.y, bound=bound, seed=seed)
                info.update(stderr=r.stderr, interval=list(r.interval), held_out=r.held_out,
                            optimism=r.optimism, folds=len(r.folds),
                            steps=[f.steps for f in r.folds],
                            best_step=[f.best_step for f in r.folds])
                return r.value

            rec = timed_estimate("mitools", mitools.__version__, bound, sample,
                                 {"defaults": "estimate_mi", "seed": seed}, run)
            rec.settings.update(info)
            print(f"mitools {bound:8s} {sample.name:28s} true {sample.true_mi:6.3f} "
                  f"est {rec.estimate:7.3f} ± {info.get('stderr', float('nan')):.3f} "
                  f"({rec.wall_time_s:5.1f} s)", flush=True)
            records.append(rec)
    return records


def markdown(records: list[dict], skipped: dict[str, str]) -> str:
    tasks = list(dict.fromkeys(r["task"] for r in records))
    lines = ["| task | true MI | library | estimator | estimate | abs. error | time (s) |",
             "| --- | ---: | --- | --- | ---: | ---: | ---: |"]
    for task in tasks:
        rows = [r for r in records if r["task"] == task]
        best = min((r["abs_error"] for r in rows if r["status"] == "ok"), default=None)
        for r in rows:
            est = f"{r['estimate']:.3f}" if r["status"] == "ok" else r["status"]
            if r["library"] == "mitools" and "stderr" in r["settings"]:
                est += f" ± {r['settings']['stderr']:.3f}"
            err = f"{r['abs_error']:.3f}" if r["status"] == "ok" else "-"
            if best is not None and r["status"] == "ok" and r["abs_error"] == best:
                err = f"**{err}**"
            lines.append(f"| {task} | {r['true_mi']:.3f} | {r['library']} {r['version']} | "
                         f"{r['estimator']} | {est} | {err} | {r['wall_time_s']:.1f} |")
    for name, reason in skipped.items():
        lines.append(f"| (all) | | {name} | skipped | {reason} | | |")
    return "\n".join(lines) + "\n"


def reused(path: Path) -> dict:
    """A per-library output kept by ``--reuse``; exits naming it when it cannot be read."""
    try:
        return read_results(path)
    except ValueError as exc:
        sys.exit(f"compare.py: {exc}; --reuse cannot use it. Delete it to run that library "
                 "again, or run without --reuse")


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=number_list(float, 0, strict=False),
                        default="2,4,6,8,10")
    parser.add_argument("--n", type=at_least(100), default=5000)
    parser.add_argument("--seed", type=at_least(0), default=0)
    parser.add_argument("--threads", type=positive_int, default=1)
    parser.add_argument("--mitools-bounds", default="dv,smile,infonce")
    parser.add_argument("--peers", type=name_list(PEERS), default="bmi,torch-mist")
    parser.add_argument("--no-bmi-tasks", action="store_true")
    parser.add_argument("--reuse", action="store_true",
                        help="keep existing samples and reuse the per-library outputs "
                             "data/out-{mitools,bmi,torch-mist}.json instead of re-running "
                             "(to assemble a table from runs made separately)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "peers"))
    args = parser.parse_args()
    out = Path(args.out)
    output_location(parser, "--out", out.with_suffix(".json"), out.with_suffix(".md"))

    import torch

    torch.set_num_threads(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               XLA_FLAGS="--xla_cpu_multi_thread_eigen=false "
                         f"intra_op_parallelism_threads={args.threads}",
               JAX_PLATFORMS="cpu")
    data = HERE / "data"
    levels = args.levels
    if args.reuse:
        samples = [data / f"gaussian-d20-mi{mi:g}.npz" for mi in levels]
    else:
        samples = make_gaussian_samples(data, levels, args.n, args.seed)
    bmi_python = peer_python("bmi")
    if args.reuse and not args.no_bmi_tasks:
        samples += sorted(data.glob("bmi-*.npz"))
    elif bmi_python is not None and not args.no_bmi_tasks:
        subprocess.run([str(bmi_python), str(HERE / "sample_bmi_tasks.py"), "--out-dir",
                        str(data), "--n", str(args.n), "--seed", str(args.seed)],
                       env=env, check=True)
        samples += sorted(data.glob("bmi-*.npz"))

    start = time.time()
    mitools_out = data / "out-mitools.json"
    if args.reuse and mitools_out.exists():
        records = reused(mitools_out)["records"]
    else:
        records = [asdict(r) for r in run_mitools(samples, args.mitools_bounds.split(","),
                                                   args.seed)]
        mitools_out.write_text(json.dumps({"records": records}, indent=1))
    peers_info, skipped = {}, {}
    for name in args.peers:
        out_json = data / f"out-{name}.json"
        parts = sorted(data.glob(f"out-{name}-*.json")) or [out_json]
        if args.reuse and all(p.exists() for p in parts):
            # outputs of one or several runner invocations (e.g. estimators split in two)
            loaded = [reused(p) for p in parts]
            result = {k: v for k, v in loaded[0].items() if k != "records"}
            result["records"] = [r for part in loaded for r in part["records"]]
            result["status"] = "ok"
            result["parts"] = [p.name for p in parts]
        else:
            result = run_peer(name, samples, out_json, [], env)
        peers_info[name] = {k: v for k, v in result.items() if k != "records"}
        if result["status"] != "ok":
            skipped[name] = result["status"] + ": " + result.get("reason", "")[:200]
        records += result["records"]
    payload = {"provenance": provenance(), "threads": args.threads, "n": args.n,
               "seed": args.seed, "total_time_s": time.time() - start, "peers": peers_info,
               "samples": [{"name": s.name, "source": s.source, "true_mi": s.true_mi,
                            "dim_x": s.x.shape[1], "dim_y": s.y.shape[1]}
                           for s in load_samples(map(str, samples))],
               "records": records}
    out.with_suffix(".json").write_text(json.dumps(payload, indent=1))
    out.with_suffix(".md").write_text(markdown(records, skipped))
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
