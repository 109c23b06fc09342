"""Draw fixed samples from bmi's own benchmark tasks (multinormal and Student-t families).

Runs inside ``benchmarks/peers/.venv-bmi``; writes one ``.npz`` per task (see
``samples.py``) so every library is compared on data that mitools did not generate::

    benchmarks/peers/.venv-bmi/bin/python benchmarks/peers/sample_bmi_tasks.py --out-dir DIR
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from importlib.metadata import version

from bmi.benchmark.tasks import multinormal, student
from samples import save_sample

TASKS = [
    multinormal.task_multinormal_dense(5, 5),
    multinormal.task_multinormal_dense(25, 25),
    multinormal.task_multinormal_2pair(5, 5),
    student.task_student_identity(dim_x=2, dim_y=2, df=1),
    student.task_student_identity(dim_x=3, dim_y=3, df=2),
    student.task_student_identity(dim_x=5, dim_y=5, df=3),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for task in TASKS:
        x, y = task.sample(args.n, seed=args.seed)
        path = Path(args.out_dir) / f"bmi-{task.id}.npz"
        save_sample(path, f"bmi:{task.id}",
                    f"benchmark-mi {version('benchmark-mi')} task {task.id}, seed {args.seed}",
                    task.mutual_information, x, y)
        print(f"{task.id}: dims {task.dim_x}x{task.dim_y}, MI {task.mutual_information:.3f}")


if __name__ == "__main__":
    main()
