"""Benchmark LocalMILoss against a naive loop: forward+backward time and peak memory.

Run from the repository root::

    python benchmarks/local_loss.py            # the full CPU sweep -> benchmarks/results/
    python benchmarks/local_loss.py --quick    # a CI smoke run (seconds), *_quick.json (ignored)
    python benchmarks/local_loss.py --device cuda --gpu   # the GPU comparison of the issue

What is compared, on the same inputs, critic and bound (InfoNCE), in the same run:

* ``naive``: a Python loop over position pairs and anchors, one critic call per anchor row,
  the bound per pair, the mean over pairs (``tests/local_reference.py``);
* ``unchunked``: ``LocalMILoss(chunk_size=None)``, every pair at once;
* ``chunked``: ``LocalMILoss(chunk_size=C)``, C pairs at a time, recomputed in backward
  (the blocked autograd function, since the critic is separable);
* on CUDA (``--gpu``) also ``hand_written``: the dot-product scores of all cells by one einsum,
  then logsumexp (what a user writes by hand), against ``LocalMILoss(critic=None, chunk_size=C)``.

Time: median (and interquartile range) of ``--repeats`` forward+backward passes after a
warm-up, single-threaded on CPU by default (``--threads``) so that runs on a shared machine are
comparable; ratios are ``naive / loss`` of the same run. Configurations whose naive loop would
take more than ``--naive-budget`` critic calls, or whose unchunked score tensor would exceed
``--score-budget-mb``, are recorded as skipped rather than extrapolated.

Peak memory (CPU): every configuration runs in a fresh subprocess; after building the inputs
it resets the kernel's peak-RSS counter (``echo 5 > /proc/self/clear_refs``) and reads
``VmHWM - VmRSS`` from ``/proc/self/status`` after one forward+backward pass: the extra
resident memory the pass needed at its peak. (Where ``clear_refs`` is not writable the
``ru_maxrss`` delta is used and the JSON says so.) On CUDA: ``torch.cuda.max_memory_allocated``
after ``reset_peak_memory_stats``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from local_reference import naive_local_mi  # noqa: E402

from mitools.critics import SeparableCritic  # noqa: E402
from mitools.estimators import get_estimator  # noqa: E402
from mitools.local import LocalMILoss  # noqa: E402
from mitools.samplers import AllPairs, LocalToGlobal  # noqa: E402

DIM = 128


# ---------------------------------------------------------------------------------------------
# One configuration.
# ---------------------------------------------------------------------------------------------


def make_inputs(batch: int, side: int, tokens: int, device: str, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, DIM, side, side, generator=gen).to(device).requires_grad_()
    if tokens == 1:
        y = torch.randn(batch, DIM, generator=gen).to(device).requires_grad_()
    else:
        y = torch.randn(batch, tokens, DIM, generator=gen).to(device).requires_grad_()
    torch.manual_seed(seed)
    critic = SeparableCritic(DIM, DIM, hidden=(256,), embed_dim=128).to(device)
    return x, y, critic


def make_runner(variant: str, batch: int, side: int, tokens: int, chunk: int, device: str):
    """A closure running one forward+backward pass of ``variant``."""
    x, y, critic = make_inputs(batch, side, tokens, device)
    sampler = LocalToGlobal() if tokens == 1 else AllPairs()
    y_pattern = "b c" if tokens == 1 else "b l c"
    if variant == "naive":
        est = get_estimator("infonce")

        def run() -> None:
            objective, _ = naive_local_mi(est, critic, sampler, "mean", x, y, "b c h w", y_pattern)
            assert objective is not None
            (-objective).backward()

        return run
    if variant == "hand_written":  # dot-product critic, all cells at once (GPU comparison)
        assert tokens == 1

        def run() -> None:
            scores = torch.einsum("bchw,mc->hwbm", x, y).flatten(0, 1)  # (P, B, B)
            diag = torch.diagonal(scores, dim1=-2, dim2=-1)
            per_row = diag - torch.logsumexp(scores, dim=-1)
            loss = -(per_row.mean() + torch.log(torch.tensor(float(batch))))
            loss.backward()

        return run
    kwargs: dict = {"chunk_size": chunk} if variant in ("chunked", "dot_chunked") else {}
    use_critic = None if variant.startswith("dot") else critic
    loss_fn = LocalMILoss("infonce", use_critic, sampler, "mean", y_pattern=y_pattern, **kwargs)

    def run() -> None:
        loss_fn(x, y).loss.backward()

    return run


def time_variant(run, repeats: int, device: str, budget_s: float = 4.0) -> dict:
    start = time.perf_counter()
    run()  # warm-up; its duration caps the repeats of slow configurations
    repeats = max(2, min(repeats, int(budget_s / max(time.perf_counter() - start, 1e-9))))
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    qs = statistics.quantiles(times, n=4) if len(times) >= 2 else [times[0]] * 3
    return {"median_s": statistics.median(times), "q1_s": qs[0], "q3_s": qs[2], "n": repeats}


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def measure_peak(variant: str, batch: int, side: int, tokens: int, chunk: int, device: str) -> dict:
    """Runs inside a fresh subprocess: peak extra memory of one forward+backward pass."""
    make_runner(variant, 4, 2, min(tokens, 2), chunk, device)()  # load code paths, tiny sizes
    run = make_runner(variant, batch, side, tokens, chunk, device)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        run()
        torch.cuda.synchronize()
        return {"peak_mb": (torch.cuda.max_memory_allocated() - base) / 2**20, "method": "cuda"}
    import resource

    try:
        Path("/proc/self/clear_refs").write_text("5")
        base = _status_kb("VmRSS")
        run()
        return {"peak_mb": (_status_kb("VmHWM") - base) / 1024, "method": "clear_refs+VmHWM"}
    except OSError:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        run()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
        return {"peak_mb": peak / 1024, "method": "ru_maxrss delta (upper bound of base)"}


def peak_in_subprocess(
    variant: str, batch: int, side: int, tokens: int, chunk: int, device: str, threads: int
) -> dict:
    cmd = [
        sys.executable, __file__, "--measure-peak",
        json.dumps([variant, batch, side, tokens, chunk, device]),
        "--threads", str(threads),
    ]  # fmt: skip
    # A fixed mmap threshold makes glibc return every large block to the kernel when freed, so
    # the resident set tracks the live tensors (no retained heap inflating the baseline).
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=1800, env=env)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# Sweeps.
# ---------------------------------------------------------------------------------------------


def environment(device: str, threads: int) -> dict:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    env = {
        "commit": commit,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "device": device,
    }
    if device == "cuda":
        env["gpu"] = torch.cuda.get_device_name()
    return env


def sweep(args: argparse.Namespace) -> dict:
    device = args.device
    if args.quick:
        batches, sides, token_counts = [8, 16], [4], [1, 4]
    else:
        batches, sides, token_counts = [16, 64, 256], [4, 8, 16, 32], [1, 16, 64]
    rows = []
    for batch in batches:
        for side in sides:
            for tokens in token_counts:
                pairs = side * side * tokens
                row: dict = {"batch": batch, "grid": f"{side}x{side}", "y_positions": tokens,
                             "pairs": pairs}  # fmt: skip
                score_mb = pairs * batch * batch * 4 / 2**20
                for variant in ("naive", "unchunked", "chunked"):
                    if variant == "naive" and pairs * batch > args.naive_budget:
                        row[variant] = {"skipped": f"{pairs * batch} critic calls > budget"}
                        continue
                    if variant == "unchunked" and score_mb > args.score_budget_mb:
                        row[variant] = {"skipped": f"scores {score_mb:.0f} MB > budget"}
                        continue
                    if variant == "chunked" and pairs * batch * batch > args.chunked_budget:
                        row[variant] = {"skipped": "too long for this sweep"}
                        continue
                    run = make_runner(variant, batch, side, tokens, args.chunk_size, device)
                    row[variant] = time_variant(run, args.repeats, device)
                for variant in ("unchunked", "chunked"):
                    if "median_s" in row.get("naive", {}) and "median_s" in row[variant]:
                        row[f"speedup_{variant}"] = (
                            row["naive"]["median_s"] / row[variant]["median_s"]
                        )
                rows.append(row)
                print(format_row(row), flush=True)

    return {"timing": rows, **memory_sweep(args)}


def memory_sweep(args: argparse.Namespace) -> dict:
    """Peak memory as the position pairs grow, two ways, with the batch and chunk fixed.

    ``memory`` grows the pairs through the y positions on a fixed 8x8 grid (the inputs barely
    grow: the pairs alone); ``memory_grid`` grows them through the grid at 16 y positions (the
    x input, its embeddings and their gradients grow linearly with the cells too).
    """
    if args.quick:
        series = {"memory": [(2, q) for q in (2, 8)], "memory_grid": [(s, 4) for s in (2, 4)]}
    else:
        series = {
            "memory": [(8, q) for q in (4, 16, 64, 256)],
            "memory_grid": [(s, 16) for s in (4, 8, 16, 32)],
        }
    out: dict = {}
    for name, configs in series.items():
        out[name] = []
        for side, tokens in configs:
            pairs = side * side * tokens
            entry: dict = {"batch": args.memory_batch, "grid": f"{side}x{side}",
                           "y_positions": tokens, "pairs": pairs}  # fmt: skip
            for variant in ("unchunked", "chunked"):
                entry[variant] = peak_in_subprocess(
                    variant, args.memory_batch, side, tokens, args.chunk_size, args.device,
                    args.threads,
                )  # fmt: skip
            out[name].append(entry)
            print(
                f"{name:11s} grid={side}x{side} y={tokens:3d} pairs={pairs:6d}  unchunked="
                f"{entry['unchunked'].get('peak_mb', 'err')}  chunked="
                f"{entry['chunked'].get('peak_mb', 'err')} MB",
                flush=True,
            )
    return out


def gpu_comparison(args: argparse.Namespace) -> dict:
    """The issue's GPU note: 16x16 cells x 1 sentence, 128-d, dot-product critic, InfoNCE."""
    rows = []
    for batch in (1024, 4096):
        row: dict = {"batch": batch, "grid": "16x16", "y_positions": 1}
        for variant in ("hand_written", "dot_chunked"):
            try:
                run = make_runner(variant, batch, 16, 1, args.gpu_chunk_size, "cuda")
                row[variant] = time_variant(run, args.repeats, "cuda")
                del run
                torch.cuda.empty_cache()
                row[variant].update(
                    peak_in_subprocess(variant, batch, 16, 1, args.gpu_chunk_size, "cuda", 1)
                )
            except torch.cuda.OutOfMemoryError as err:
                row[variant] = {"error": f"out of memory: {err}"[:200]}
                torch.cuda.empty_cache()
        rows.append(row)
        print(json.dumps(row), flush=True)
    return {"gpu": rows, "gpu_chunk_size": args.gpu_chunk_size}


def format_row(row: dict) -> str:
    def ms(v: dict) -> str:
        return f"{v['median_s'] * 1e3:9.2f}" if "median_s" in v else "        -"

    sp = row.get("speedup_chunked")
    return (
        f"B={row['batch']:4d} grid={row['grid']:>5} y={row['y_positions']:3d} "
        f"pairs={row['pairs']:6d} | naive {ms(row['naive'])} ms | unchunked "
        f"{ms(row['unchunked'])} ms | chunked {ms(row['chunked'])} ms | speedup "
        f"{row.get('speedup_unchunked', float('nan')):7.1f}x / "
        f"{sp if sp is not None else float('nan'):7.1f}x"
    )


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for variant, marker in (("naive", "o"), ("unchunked", "s"), ("chunked", "^")):
        pts = [
            (r["pairs"] * r["batch"] ** 2, r[variant]["median_s"])
            for r in result.get("timing", [])
            if "median_s" in r[variant]
        ]
        if pts:
            xs, ys = zip(*sorted(pts), strict=True)
            ax1.loglog(xs, ys, marker, label=variant, alpha=0.8)
    ax1.set_xlabel("scores per step (pairs x B^2)")
    ax1.set_ylabel("forward+backward time (s)")
    ax1.set_title("time, InfoNCE, separable critic, 128-d")
    ax1.legend()
    for series, style in (("memory", "-"), ("memory_grid", ":")):
        how = "more y positions" if series == "memory" else "larger grid"
        for variant, marker in (("unchunked", "s"), ("chunked", "^")):
            pts = [(m["pairs"], m[variant].get("peak_mb")) for m in result.get(series, [])]
            pts = [(a, b) for a, b in pts if b is not None]
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax2.loglog(xs, ys, marker + style, label=f"{variant}, {how}")
    ax2.set_xlabel(f"position pairs (batch {result['args']['memory_batch']})")
    ax2.set_ylabel("peak extra memory (MB)")
    ax2.set_title(f"peak memory, chunk_size={result['args']['chunk_size']}")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny smoke sweep")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--gpu", action="store_true", help="the GPU comparison of the issue")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--gpu-chunk-size", type=int, default=16)
    parser.add_argument("--memory-batch", type=int, default=64)
    parser.add_argument("--naive-budget", type=int, default=20_000, help="max critic calls")
    parser.add_argument("--score-budget-mb", type=float, default=1024.0)
    parser.add_argument("--chunked-budget", type=float, default=6.0e8, help="max scores")
    parser.add_argument("--memory-only", action="store_true", help="only the memory sweeps")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--measure-peak", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.measure_peak is not None:
        variant, batch, side, tokens, chunk, device = json.loads(args.measure_peak)
        print(json.dumps(measure_peak(variant, batch, side, tokens, chunk, device)))
        return
    if args.quick:
        args.repeats = min(args.repeats, 3)
    result: dict = {"environment": environment(args.device, args.threads), "args": {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
    }}  # fmt: skip
    if args.gpu:
        result.update(gpu_comparison(args))
    elif args.memory_only:
        result.update(memory_sweep(args))
    else:
        result.update(sweep(args))
    out = args.out
    if out is None:  # quick runs are git-ignored (benchmarks/results/*_quick.*)
        stem = "local_loss_gpu" if args.gpu else "local_loss"
        out = ROOT / "benchmarks" / "results" / f"{stem}{'_quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    if not args.gpu:
        plot(result, out.with_suffix(".png"))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
