"""LocalMILoss's execution paths against the hand-written loss: time and peak memory.

Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/local_loss.py              # CPU sweep -> results/
    python benchmarks/local_loss.py --quick                        # smoke run (seconds)
    python benchmarks/local_loss.py --gpu                          # the GPU check (CUDA)

The task is the issue's: InfoNCE between every cell of a grid of ``D``-channel features and one
sentence vector per sample (``x (B, D, S, S)``, ``y (B, D)``), dot-product critic, forward
and backward. Compared, on the same inputs, in the same run:

* ``hand_written``: what a user writes by hand: the scores of all cells by one ``einsum``
  (``(S*S, B, B)``), the diagonal minus ``logsumexp``;
* ``dense``, ``blocked``, ``attention``: ``LocalMILoss("infonce", None, backend=...)``.

Time: median (and quartiles) of ``--repeats`` forward+backward passes after a warm-up, with
``ratio`` = time / the hand-written version's time in the same run. Peak memory: on CPU every
configuration runs in a fresh subprocess, which resets the kernel's peak-RSS counter
(``/proc/self/clear_refs``) after building the inputs and reads ``VmHWM - VmRSS`` after one
pass (the extra resident memory the pass needed; the ``ru_maxrss`` delta where ``clear_refs``
is not writable); on CUDA ``torch.cuda.max_memory_allocated`` minus the memory allocated
before the pass. Configurations whose score tensor would exceed ``--score-budget-mb`` (the
hand-written and dense versions) or whose estimated time exceeds ``--time-budget`` are recorded
as skipped, not extrapolated. The JSON records the machine's load average before and after.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _cli import (  # noqa: E402
    fill_defaults,
    name_list,
    number_list,
    output_location,
    positive_float,
    positive_int,
)
from _provenance import provenance  # noqa: E402

from mitools.local import LocalMILoss  # noqa: E402

VERSIONS = ("hand_written", "dense", "blocked", "attention")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float64": torch.float64}


def make_inputs(batch: int, side: int, dim: int, device: str, dtype: torch.dtype, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, dim, side, side, generator=gen).to(device, dtype).requires_grad_()
    y = torch.randn(batch, dim, generator=gen).to(device, dtype).requires_grad_()
    return x, y


def make_runner(version: str, x: torch.Tensor, y: torch.Tensor):
    """One forward+backward pass of ``version`` on ``x``, ``y``; returns the loss."""
    if version == "hand_written":

        def run() -> float:
            x.grad = y.grad = None
            scores = torch.einsum("bchw,mc->hwbm", x, y).flatten(0, 1).float()  # (P, B, B)
            diag = torch.diagonal(scores, dim1=-2, dim2=-1)
            loss = -((diag - torch.logsumexp(scores, dim=-1)).mean() + math.log(x.shape[0]))
            loss.backward()
            return float(loss.detach())

        return run
    loss_fn = LocalMILoss("infonce", None, backend=version)

    def run() -> float:
        x.grad = y.grad = None
        out = loss_fn(x, y)
        out.loss.backward()
        assert loss_fn.last_backend == version, (loss_fn.last_backend, version)
        return float(out.loss.detach())

    return run


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_run(run, repeats: int, device: str) -> dict:
    _sync(device)
    start = time.perf_counter()
    loss = run()  # warm-up (kernels, allocator)
    _sync(device)
    warm = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        run()
        _sync(device)
        times.append(time.perf_counter() - start)
    qs = statistics.quantiles(times, n=4) if len(times) >= 2 else [times[0]] * 3
    return {"median_s": statistics.median(times), "q1_s": qs[0], "q3_s": qs[2],
            "n": repeats, "warmup_s": warm, "loss": loss}  # fmt: skip


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def measure_peak(version: str, batch: int, side: int, dim: int, device: str, dtype: str) -> dict:
    """Peak extra memory of one forward+backward pass (in this process)."""
    small = make_inputs(4, 2, dim, device, DTYPES[dtype])
    make_runner(version, *small)()  # load the code paths and kernels at tiny sizes
    del small
    x, y = make_inputs(batch, side, dim, device, DTYPES[dtype])
    run = make_runner(version, x, y)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        run()
        torch.cuda.synchronize()
        return {"peak_mb": (torch.cuda.max_memory_allocated() - base) / 2**20,
                "method": "torch.cuda.max_memory_allocated"}  # fmt: skip
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
        return {"peak_mb": peak / 1024, "method": "ru_maxrss delta"}


def peak_in_subprocess(version: str, batch: int, side: int, dim: int, dtype: str,
                       threads: int) -> dict:  # fmt: skip
    cmd = [sys.executable, __file__, "--measure-peak",
           json.dumps([version, batch, side, dim, "cpu", dtype]), "--threads", str(threads)]
    # A fixed mmap threshold makes glibc return large blocks to the kernel when freed, so the
    # resident set tracks the live tensors.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=1800, env=env)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def score_mb(batch: int, side: int) -> float:
    return side * side * batch * batch * 4 / 2**20


def sweep(args: argparse.Namespace) -> list[dict]:
    """One row per (dtype, batch): every version's time, ratio and peak memory."""
    rows = []
    device = args.device
    for dtype in args.dtypes:
        previous: dict[str, tuple[int, float]] = {}
        for batch in args.batches:
            row: dict = {"dtype": dtype, "batch": batch, "grid": f"{args.side}x{args.side}",
                         "dim": args.dim, "score_mb": score_mb(batch, args.side)}  # fmt: skip
            for version in args.versions:
                if version in ("hand_written", "dense") and row["score_mb"] > args.score_budget_mb:
                    row[version] = {"skipped": f"scores {row['score_mb']:.0f} MB > budget"}
                    continue
                if version in previous:  # time grows like B^2 for every version
                    b0, t0 = previous[version]
                    estimate = t0 * (batch / b0) ** 2 * (args.repeats + 2)
                    if estimate > args.time_budget:
                        row[version] = {"skipped": f"estimated {estimate:.0f} s > time budget"}
                        continue
                try:
                    x, y = make_inputs(batch, args.side, args.dim, device, DTYPES[dtype])
                    entry = time_run(make_runner(version, x, y), args.repeats, device)
                    del x, y
                    if device.startswith("cuda"):
                        entry.update(measure_peak(version, batch, args.side, args.dim, device,
                                                  dtype))  # fmt: skip
                    elif not args.no_memory:
                        entry.update(peak_in_subprocess(version, batch, args.side, args.dim,
                                                        dtype, args.threads))  # fmt: skip
                    previous[version] = (batch, entry["median_s"])
                except (torch.cuda.OutOfMemoryError, RuntimeError) as err:
                    entry = {"error": f"{type(err).__name__}: {err}"[:160]}
                    if device.startswith("cuda"):
                        torch.cuda.empty_cache()
                row[version] = entry
            hand = row.get("hand_written", {}).get("median_s")
            for version in args.versions:
                if hand and "median_s" in row[version]:
                    row[version]["ratio"] = row[version]["median_s"] / hand
            rows.append(row)
            print(markdown_row(row, args.versions), flush=True)
    return rows


def _cell(entry: dict) -> str:
    if "median_s" not in entry:
        return "skipped" if "skipped" in entry else "error"
    ms = entry["median_s"] * 1e3
    text = f"{ms:.3g} ms" if ms < 100 else f"{ms:,.0f} ms"
    if "ratio" in entry:
        text += f" ({entry['ratio']:.2f}x)"
    if "peak_mb" in entry:
        text += f", {entry['peak_mb']:,.0f} MB"
    return text


def markdown_header(versions: tuple[str, ...]) -> str:
    return ("| dtype | batch | " + " | ".join(versions) + " |\n"
            "| --- | ---: |" + " ---: |" * len(versions))  # fmt: skip


def markdown_row(row: dict, versions: tuple[str, ...]) -> str:
    cells = " | ".join(_cell(row[v]) for v in versions)
    return f"| {row['dtype']} | {row['batch']} | {cells} |"


def description(result: dict) -> str:
    """What the table measures, one paragraph (the .md's and the docs' page's)."""
    args = result["args"]
    return (f"InfoNCE, {args['side']}x{args['side']} cells x 1 sentence, {args['dim']}-d "
            "features, dot-product critic, forward + backward. Each cell: median time (ratio "
            "to the hand-written version of the same run), peak extra memory of one pass.")


def table_cells(result: dict) -> tuple[list[str], list[list[str]]]:
    """The table's header and rows as text cells (the docs' page renders them)."""
    versions = tuple(result["args"]["versions"])
    rows = [[r["dtype"], str(r["batch"]), *(_cell(r[v]) for v in versions)]
            for r in result["rows"]]
    return ["dtype", "batch", *versions], rows


def command_line(result: dict) -> str:
    """The command that produced ``result``, with the ``OMP_NUM_THREADS`` it ran under."""
    threads = result["omp_num_threads"]
    return (f"OMP_NUM_THREADS={threads} " if threads else "") + result["command"]


def markdown(result: dict) -> str:
    env = result["provenance"]
    versions = tuple(result["args"]["versions"])
    lines = [
        f"# LocalMILoss paths vs the hand-written loss ({result['device_name']})",
        "",
        description(result),
        "",
        markdown_header(versions),
        *(markdown_row(r, versions) for r in result["rows"]),
        "",
        f"Commit `{env['commit']}`, torch {env['torch']}, {env['cpu']}, "
        f"{env['torch_threads']} thread(s); load average {result['load_before']} before, "
        f"{result['load_after']} after (a shared machine: compare ratios, not times).",
        "",
        f"Command: `{command_line(result)}`",
    ]
    return "\n".join(lines) + "\n"


#: the defaults of each mode: (device, batches, side, dtypes, score budget MB, time budget s)
MODES = {
    "gpu": dict(device="cuda", batches=[1024, 4096, 16384], side=16,
                dtypes=["float32", "bfloat16"], score_budget_mb=80_000.0, time_budget=45.0),
    "cpu": dict(device="cpu", batches=[256, 512, 1024, 2048, 4096], side=4,
                dtypes=["float32"], score_budget_mb=300.0, time_budget=400.0),
    "quick": dict(device="cpu", batches=[32, 64], side=4, dtypes=["float32"],
                  score_budget_mb=300.0, time_budget=30.0),
}


def device_name(text: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N``, where this torch can use it."""
    allowed = "cpu, cuda or cuda:N"
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; choose {allowed}") from None
    if device.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"{text!r}: choose {allowed}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(
                f"{text!r}: CUDA is not available to this torch ({torch.__version__}); "
                "choose cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(
                f"{text!r}: this machine has {torch.cuda.device_count()} GPU(s), "
                f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, checked before anything runs (a bad value is a usage error, exit 2),
    with the chosen mode's defaults filled in where no value was given."""
    parser = argparse.ArgumentParser(allow_abbrev=False,
        description=__doc__.split("\n")[0],
        epilog="--gpu and --quick set the defaults of --device, --batches, --side, --dtypes, "
               "--score-budget-mb and --time-budget; an option given explicitly wins.")
    parser.add_argument("--gpu", action="store_true",
                        help="the GPU check: cuda, 16x16 cells, D=128, B in 1024/4096/16384, "
                        "float32 and bfloat16")  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help="a tiny smoke sweep: cpu, B in 32/64, 4x4 cells, float32, "
                             "time budget 30 s")
    parser.add_argument("--device", type=device_name, default=None,
                        help="cpu, cuda or cuda:N (default: cpu; --gpu: cuda)")
    parser.add_argument("--batches", type=number_list(int), default=None,
                        help="comma-separated batch sizes, each >= 1 (default: "
                             "256,512,1024,2048,4096)")
    parser.add_argument("--side", type=positive_int, default=None,
                        help="the grid is side x side (default: 4; --gpu: 16)")
    parser.add_argument("--dim", type=positive_int, default=128,
                        help="feature channels (default: %(default)s)")
    parser.add_argument("--dtypes", type=name_list(DTYPES), default=None,
                        help=f"comma-separated, from {','.join(DTYPES)} (default: float32; "
                             "--gpu: float32,bfloat16)")
    parser.add_argument("--versions", type=name_list(VERSIONS), default=list(VERSIONS),
                        help=f"comma-separated, from {','.join(VERSIONS)} (default: all)")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch threads (default: %(default)s)")
    parser.add_argument("--repeats", type=positive_int, default=3,
                        help="timed repeats per config, after a warm-up (default: "
                             "%(default)s)")
    parser.add_argument("--score-budget-mb", type=positive_float, default=None,
                        help="skip the versions that form the whole score tensor above this "
                             "many MB (default: 300; --gpu: 80000)")
    parser.add_argument("--time-budget", type=positive_float, default=None,
                        help="seconds per config")
    parser.add_argument("--no-memory", action="store_true", help="skip the CPU memory runs")
    parser.add_argument("--out", type=Path, default=None,
                        help="results JSON, .md beside it (default: benchmarks/results/"
                             "local_loss.json; --quick, --gpu: local_loss_quick, _gpu)")
    parser.add_argument("--measure-peak", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure_peak is not None:
        return args
    mode = "gpu" if args.gpu else "quick" if args.quick else "cpu"
    if mode == "gpu" and args.device is None and not torch.cuda.is_available():
        parser.error(f"argument --gpu: CUDA is not available to this torch "
                     f"({torch.__version__}); run it on a GPU machine")
    fill_defaults(args, MODES[mode])
    args.versions = tuple(args.versions)
    if args.out is None:  # quick runs are git-ignored (benchmarks/results/*_quick.*)
        stem = "local_loss_gpu" if args.gpu else "local_loss_quick" if args.quick else \
            "local_loss"
        args.out = ROOT / "benchmarks" / "results" / f"{stem}.json"
    output_location(parser, "--out", args.out, args.out.with_suffix(".md"))
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.measure_peak is not None:
        version, batch, side, dim, device, dtype = json.loads(args.measure_peak)
        print(json.dumps(measure_peak(version, batch, side, dim, device, dtype)))
        return

    load_before = [round(v, 2) for v in os.getloadavg()]
    rows = sweep(args)
    result = {
        "provenance": provenance(),
        "device_name": (torch.cuda.get_device_name() if args.device.startswith("cuda")
                        else "CPU"),
        "command": " ".join(["python", "benchmarks/local_loss.py", *sys.argv[1:]]),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_before": load_before,
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "rows": rows,
    }
    out = args.out
    out.write_text(json.dumps(result, indent=2))
    out.with_suffix(".md").write_text(markdown(result))
    print()
    print(markdown(result))
    print(f"wrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
