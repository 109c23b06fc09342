"""``estimate_mi``'s k-nearest-neighbour cross-check on the Beyond Normal samples.

For every sample of ``beyond_normal.py`` (bmi's 40 tasks x 3 seeds, n = 5,000), runs
:func:`mitools.estimate.knn_check.knn_cross_check` on the samples after the default rank
margins, with seed 0 as ``estimate_mi``'s default does, times it (one thread), and compares
it with the committed ``estimate_mi`` estimate of that sample
(``results/beyond_normal_mitools.json``): how far the check reads above the estimate, and
on how many samples it would flag it (:func:`~mitools.estimate.knn_check.knn_shortfall`).
The estimates are those of the committed run, made before the check existed: the check
runs after the folds' fits and changes no estimate.

Usage::

    PYTHONPATH=. python benchmarks/knn_check.py [--data DIR] [--out FILE]

Writes ``benchmarks/results/knn_check.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cli import beyond_normal_index, output_location, read_sample_index
from _provenance import ROOT, provenance
from beyond_normal import DATA

from mitools.estimate import gaussianize_margins
from mitools.estimate.knn_check import knn_cross_check, knn_shortfall

RESULTS = ROOT / "benchmarks" / "results"


def summary_lines(summary: dict, rows: list[dict]) -> list[str]:
    """The result in words (the .md's and the docs' page's)."""
    ran = [r for r in rows if math.isfinite(r["knn_value"]) and r["estimate"] is not None]
    largest = max(ran, key=lambda r: r["knn_value"] - r["estimate"]) if ran else None
    return [
        f"{summary['checked']} of {summary['samples']} samples checked (at most 10 joint "
        "dimensions, at most 5 % repeated values per column); flagged against the committed "
        f"estimates: {summary['flagged']}.",
        "" if largest is None else
        f"Largest reading above the estimate: {summary['largest_gap_nats']:.3f} nats "
        f"({largest['sample']}: KSG {largest['knn_value']:.3f}, estimate "
        f"{largest['estimate']:.3f}, true MI {largest['true_mi']:.3f}).",
        f"Time of the check, one thread: median {summary['seconds_median']:.3f} s, largest "
        f"{summary['seconds_max']:.3f} s (0 where it does not apply).",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA,
                        help="the Beyond Normal samples (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=RESULTS / "knn_check.json",
                        help="results file; a .md beside it (default: %(default)s)")
    args = parser.parse_args(argv)
    output_location(parser, "--out", args.out)
    index = beyond_normal_index(parser, args.data)
    committed = json.loads((RESULTS / "beyond_normal_mitools.json").read_text())
    estimates = {r["sample"]: r for r in committed["records"]
                 if r["estimator"] == "estimate_mi" and r["status"] == "ok"}
    torch.set_num_threads(1)
    rows = []
    for s in read_sample_index(index, "knn_check.py"):
        z = np.load(args.data / s["file"])
        x, y = (gaussianize_margins(torch.from_numpy(np.asarray(z[k], dtype=np.float64)))
                for k in ("x", "y"))
        start = time.perf_counter()
        value, stderr = knn_cross_check(x, y, seed=0)
        seconds = time.perf_counter() - start
        r = estimates.get(s["file"])
        rows.append({
            "sample": s["file"], "dims": s["dim_x"] + s["dim_y"], "true_mi": s["true_mi"],
            "knn_value": value, "knn_stderr": stderr, "seconds": seconds,
            "estimate": None if r is None else r["estimate"],
            "flagged": bool(r is not None and knn_shortfall(value, stderr, r["estimate"],
                                                            r["stderr"])),
        })
    ran = [r for r in rows if math.isfinite(r["knn_value"]) and r["estimate"] is not None]
    gaps = [r["knn_value"] - r["estimate"] for r in ran]
    seconds = np.array([r["seconds"] for r in rows])
    summary = {
        "samples": len(rows), "checked": len(ran), "flagged": sum(r["flagged"] for r in rows),
        "largest_gap_nats": max(gaps) if gaps else None,
        "seconds_median": float(np.median(seconds)), "seconds_max": float(seconds.max()),
    }
    args.out.write_text(json.dumps({"provenance": provenance(), "summary": summary,
                                    "rows": rows}, indent=1))
    md = ["# estimate_mi's KSG cross-check on the Beyond Normal samples", "",
          *summary_lines(summary, rows)]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
