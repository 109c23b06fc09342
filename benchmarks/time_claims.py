"""Measure every time figure the README and the docs state, with the conditions it holds under.

Each job runs in a child process, so its wall time, CPU time (user + system, children
included) and peak memory are its own. The machine's load average is recorded before each
job: a figure measured at load 2 on a 2-core machine is not a quiet-machine figure.

Jobs (``--jobs``, default all):

* ``main``: the README's main job, read from the README's quick start (the command after
  ``&&`` on its first line), so the figure always belongs to the command users run;
* ``tiny``: the image-text pipeline with ``--preset tiny`` (the first thing to try);
* ``tests``: the README's test command (``python -m pytest``);
* ``estimate``: ``mitools.estimate_mi`` with its defaults on the d = 20 correlated Gaussian,
  n = 5,000, 2 nats, with float32 and float64 inputs and 1 and 2 threads.

Usage::

    PYTHONPATH=. python benchmarks/time_claims.py [--jobs main tiny tests estimate]

Writes ``benchmarks/results/time_claims.{json,md}``. Run it on a quiet machine (nothing else
running): the JSON records the load average so a loaded run can be told apart.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cli import output_location
from _provenance import ROOT, provenance

ESTIMATE_SNIPPET = """
import json, sys, time, torch
import mitools
dtype, threads = sys.argv[1], int(sys.argv[2])
x, y = mitools.CorrelatedGaussian(20, 2.0).sample(5000, generator=0)
x, y = x.numpy().astype(dtype), y.numpy().astype(dtype)
kwargs = {}
import inspect
if "threads" in inspect.signature(mitools.estimate_mi).parameters:
    kwargs["threads"] = threads
else:
    torch.set_num_threads(threads)
start = time.perf_counter()
r = mitools.estimate_mi(x, y, **kwargs)
print(json.dumps({"value": r.value, "seconds_in_call": time.perf_counter() - start}))
"""


def readme_main_job() -> str:
    """The main job of the README's quick start (what follows ``&&`` on its first command)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    if block is None:
        raise SystemExit("README.md: the quick start has no bash block")
    commands = [ln for ln in block.group(1).splitlines() if ln.strip() and not ln.startswith("#")]
    return commands[0].split("&&", 1)[1].strip()


def measure(argv: list[str]) -> dict:
    """Run ``argv`` from the repository root: wall time, CPU time and peak memory of the child
    (``os.wait4``'s accounting, which includes the child's own children)."""
    import tempfile

    load = os.getloadavg()[0]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise SystemExit(f"{shlex.join(argv)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return {
        "command": shlex.join(argv),
        "wall_s": round(wall, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),  # Linux reports KiB
        "load_before": round(load, 2),
        "stdout_tail": stdout[-400:],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", nargs="+", default=["main", "tiny", "tests", "estimate"],
                        choices=["main", "tiny", "tests", "estimate"],
                        help="space-separated, the jobs to time (default: all)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "time_claims"),
                        help="output path; .json and .md are written beside it (default: "
                             "benchmarks/results/time_claims); missing folders are created "
                             "before the first job")
    args = parser.parse_args(argv)
    out = Path(args.out)
    output_location(parser, "--out", out.with_suffix(".json"), out.with_suffix(".md"))

    py = sys.executable
    results: dict[str, object] = {"provenance": provenance(), "cores": os.cpu_count()}
    if "main" in args.jobs:
        cmd = readme_main_job()
        argv = shlex.split(cmd)
        argv[0] = py if argv[0] in ("python", "python3") else argv[0]
        results["main"] = measure(argv)
    if "tiny" in args.jobs:
        results["tiny"] = measure([py, "-m", "examples.image_text", "all", "--preset", "tiny"])
    if "tests" in args.jobs:
        results["tests"] = measure([py, "-m", "pytest", "-q", "-p", "no:cacheprovider"])
    if "estimate" in args.jobs:
        rows = []
        for dtype in ("float32", "float64"):
            for threads in (1, 2):
                row = measure([py, "-c", ESTIMATE_SNIPPET, dtype, str(threads)])
                row.update(json.loads(row.pop("stdout_tail").strip().splitlines()[-1]))
                row.update(dtype=dtype, threads=threads)
                rows.append(row)
        results["estimate"] = rows

    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    lines = ["| job | wall (s) | CPU (s) | peak RSS (MB) | load before |", "|---|---|---|---|---|"]
    for key in ("main", "tiny", "tests"):
        if key in results:
            r = results[key]
            lines.append(f"| {key}: `{r['command']}` | {r['wall_s']} | {r['cpu_s']} | "
                         f"{r['peak_rss_mb']} | {r['load_before']} |")
    for r in results.get("estimate", []):
        lines.append(f"| estimate_mi d=20 n=5000 {r['dtype']}, {r['threads']} thread(s) "
                     f"(value {r['value']:.3f}) | {r['wall_s']} | {r['cpu_s']} | "
                     f"{r['peak_rss_mb']} | {r['load_before']} |")
    prov = results["provenance"]
    lines.append("")
    sha, plus, suffix = prov["commit"].partition("+")  # keep "+dirty": not that commit's code
    lines.append(f"{results['cores']} cores ({prov['cpu']}), torch {prov['torch']}, commit "
                 f"{sha[:12]}{plus}{suffix}, {prov['date']}.")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
