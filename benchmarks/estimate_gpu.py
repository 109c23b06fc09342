"""estimate_mi's default on a GPU against the CPU: phase 4 of ``benchmarks/gpu_check.sh``.

Two tasks with n = 5,000 pairs (a 5-d Gaussian with 2 nats, and y = sin(3x) + 0.1 noise):
``device=None`` (which picks the GPU when one is present) and ``device="cpu"``, printing
the device used, the wall time and the result. Run on any machine::

    PYTHONPATH=. python benchmarks/estimate_gpu.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from mitools import CorrelatedGaussian, estimate_mi


def main(argv: list[str] | None = None) -> None:
    # a parser, so that --help (or a stray argument) answers without running the benchmark
    argparse.ArgumentParser(allow_abbrev=False,
                            description=__doc__.splitlines()[0]).parse_args(argv)
    rng = np.random.default_rng(0)
    task = CorrelatedGaussian(dim=5, mi=2.0)
    x, y = (v.numpy() for v in task.sample(5000, generator=0))
    s = rng.normal(size=(5000, 1))
    cases = {
        "gaussian d=5, true MI 2.000": (x, y),
        "y = sin(3x) + 0.1 noise": (s, np.sin(3 * s) + 0.1 * rng.normal(size=(5000, 1))),
    }
    for name, (a, b) in cases.items():
        for device in (None, "cpu"):
            start = time.perf_counter()
            result = estimate_mi(a, b, device=device, threads=4)
            used = next(result.critic.parameters()).device.type
            print(f"{name:30s} device={device!s:5s} ran on {used:4s} "
                  f"{time.perf_counter() - start:6.1f} s  {result}", flush=True)
    if torch.cuda.is_available():
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
