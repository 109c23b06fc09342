"""Draw fixed samples from bmi's own benchmark tasks with bmi's own samplers.

Runs inside ``benchmarks/peers/.venv-bmi``; writes one ``.npz`` per task (and seed), see
``samples.py``, so every library is compared on data that mitools did not generate.

Two modes::

    # the six multinormal / Student-t tasks of the peer table (compare.py), one seed
    benchmarks/peers/.venv-bmi/bin/python benchmarks/peers/sample_bmi_tasks.py --out-dir DIR

    # the full "Beyond Normal" benchmark (Czyz et al., NeurIPS 2023): bmi's 40 tasks
    # (bmi.benchmark.BENCHMARK_TASKS), n = 5,000, seeds 0, 1, 2, plus index.json
    benchmarks/peers/.venv-bmi/bin/python benchmarks/peers/sample_bmi_tasks.py --benchmark \
        [--out-dir benchmarks/peers/data/beyond_normal] [--copy-to /work/data/beyond_normal]

In ``--benchmark`` mode each file ``<task_id>-s<seed>.npz`` holds ``x``, ``y`` (the dtype
bmi's sampler returned), ``true_mi``, ``name`` (the task id), ``source`` and the metadata
``task_id``, ``task_name``, ``family``, ``group``, ``seed``, ``dim_x``, ``dim_y``, ``n``,
``params`` (JSON of bmi's scalar task parameters); ``index.json`` lists them (see
:func:`index_entry`).  Existing files are kept unless ``--force``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from importlib.metadata import version

from bmi.benchmark.tasks import multinormal, student
from samples import save_sample

HERE = Path(__file__).resolve().parent
DEFAULT_BENCHMARK_DIR = HERE / "data" / "beyond_normal"

# Outermost transform (the task id's prefix) -> family; tried in this order.
FAMILIES = [
    ("spiral-", "spiral"), ("half_cube-", "half-cube"), ("normal_cdf-", "normal-cdf"),
    ("wiggly-", "wiggly"), ("asinh-", "asinh"), ("swissroll", "swiss-roll"),
    ("1v1-additive", "additive-noise"), ("1v1-bimodal", "bimodal"),
    ("1v1-normal", "binormal"), ("multinormal-dense", "multinormal-dense"),
    ("multinormal-sparse", "multinormal-sparse"), ("student-identity", "student-t"),
]


def peer_tasks() -> list:
    """The six tasks of the peer table (``compare.py``)."""
    return [
        multinormal.task_multinormal_dense(5, 5),
        multinormal.task_multinormal_dense(25, 25),
        multinormal.task_multinormal_2pair(5, 5),
        student.task_student_identity(dim_x=2, dim_y=2, df=1),
        student.task_student_identity(dim_x=3, dim_y=3, df=2),
        student.task_student_identity(dim_x=5, dim_y=5, df=3),
    ]


def family_of(task_id: str) -> str:
    """The family of a bmi task id (its outermost transform or its base distribution)."""
    for prefix, family in FAMILIES:
        if task_id.startswith(prefix):
            return family
    return "other"


def groups() -> dict[str, str]:
    """bmi's own grouping of the benchmark (``bmi.benchmark.task_list``): task id -> group."""
    from bmi.benchmark import task_list

    out = {}
    for group in ("ONE_DIM", "EMBEDDINGS", "MULTINORMAL", "STUDENT", "TRANSFORMED"):
        for task in getattr(task_list, f"{group}_TASKS"):
            out[task.id] = group.lower().replace("_", "-")
    return out


def scalar_params(task) -> dict:
    """bmi's task parameters without the large ones (covariance matrices)."""
    return {k: v for k, v in task.params.items() if isinstance(v, (int, float, str, bool))}


def index_entry(task, group: str, seed: int, n: int, file: str) -> dict:
    """One row of ``index.json``."""
    return {"task_id": task.id, "name": task.name, "family": family_of(task.id),
            "group": group, "dim_x": task.dim_x, "dim_y": task.dim_y, "seed": seed, "n": n,
            "true_mi": float(task.mutual_information), "params": scalar_params(task),
            "file": file}


def sample_benchmark(out_dir: Path, n: int, seeds: list[int], force: bool) -> list[dict]:
    """Draw every task of ``bmi.benchmark.BENCHMARK_TASKS`` for every seed; return the index."""
    from bmi.benchmark import BENCHMARK_TASKS

    bmi_version = version("benchmark-mi")
    group_of = groups()
    index = []
    for task in BENCHMARK_TASKS.values():
        for seed in seeds:
            file = f"{task.id}-s{seed}.npz"
            entry = index_entry(task, group_of.get(task.id, "?"), seed, n, file)
            index.append(entry)
            path = out_dir / file
            if path.exists() and not force:
                continue
            x, y = task.sample(n, seed=seed)
            save_sample(path, task.id,
                        f"benchmark-mi {bmi_version} BENCHMARK_TASKS[{task.id!r}]"
                        f".sample({n}, seed={seed})",
                        task.mutual_information, x, y, dtype=None,
                        task_id=task.id, task_name=task.name, family=entry["family"],
                        group=entry["group"], seed=seed, dim_x=task.dim_x, dim_y=task.dim_y,
                        n=n, params=json.dumps(entry["params"]))
            print(f"{file}: {task.dim_x}x{task.dim_y}, MI {task.mutual_information:.4f}",
                  flush=True)
    payload = {"benchmark": "Beyond Normal (Czyz et al., NeurIPS 2023), bmi.benchmark."
                            "BENCHMARK_TASKS", "bmi_version": bmi_version, "n": n,
               "seeds": seeds, "tasks": len(BENCHMARK_TASKS), "samples": index}
    (out_dir / "index.json").write_text(json.dumps(payload, indent=1))
    return index


def main() -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=None,
                        help=f"default with --benchmark: {DEFAULT_BENCHMARK_DIR}")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0, help="peer-table mode")
    parser.add_argument("--benchmark", action="store_true",
                        help="all 40 tasks of bmi.benchmark.BENCHMARK_TASKS, several seeds")
    parser.add_argument("--seeds", default="0,1,2", help="--benchmark mode")
    parser.add_argument("--force", action="store_true", help="redraw existing files")
    parser.add_argument("--copy-to", default=None,
                        help="also copy the sample files and index.json to this directory")
    args = parser.parse_args()
    if args.benchmark:
        out_dir = Path(args.out_dir) if args.out_dir else DEFAULT_BENCHMARK_DIR
        out_dir.mkdir(parents=True, exist_ok=True)
        index = sample_benchmark(out_dir, args.n, [int(s) for s in args.seeds.split(",")],
                                 args.force)
        print(f"{len(index)} samples, index {out_dir / 'index.json'}")
        if args.copy_to:
            dest = Path(args.copy_to)
            dest.mkdir(parents=True, exist_ok=True)
            for entry in index:
                shutil.copy2(out_dir / entry["file"], dest / entry["file"])
            shutil.copy2(out_dir / "index.json", dest / "index.json")
            print(f"copied to {dest}")
        return
    if args.out_dir is None:
        parser.error("--out-dir is required without --benchmark")
    for task in peer_tasks():
        x, y = task.sample(args.n, seed=args.seed)
        path = Path(args.out_dir) / f"bmi-{task.id}.npz"
        save_sample(path, f"bmi:{task.id}",
                    f"benchmark-mi {version('benchmark-mi')} task {task.id}, seed {args.seed}",
                    task.mutual_information, x, y)
        print(f"{task.id}: dims {task.dim_x}x{task.dim_y}, MI {task.mutual_information:.3f}")


if __name__ == "__main__":
    main()
