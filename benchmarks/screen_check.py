"""The screen's early check in ``estimate_mi``: the first fold's gain over the Gaussian start
from step 100 against its gain at the end.

``estimate_mi``'s default checks the first fold at every evaluation from step 100
(``SCREEN_CHECK_STEP``) until a gain above ``SCREEN_CHECK_SE`` (3) standard errors: it stops
the fold, and leaves the other folds untrained, when its best trained critic beats the
Gaussian start on the fold's test part by at most 0, or by at most 3 at an evaluation that
did not improve the best validation bound (``_screen_stops``); otherwise the screen decides
at the end, at ``SCREEN_SE`` (2). This records, with the checks never stopping (the
schedule without them), every gain the checks read and the gain at the end, on

* every Beyond Normal sample of ``beyond_normal.py`` (bmi's 40 tasks x 3 seeds, n = 5,000),
  labelled by whether the dependence is Gaussian after an increasing map of each
  coordinate;
* y = x + 0.35 (x^2 - 1) + 0.7 noise (``mild_non_gaussian.py``), 16 seeds at n = 300, 1,000
  and 3,000,

and what the checks would decide on each: where they stop, and whether the screen at the
end would have let the other folds train there (a loss where training helps).

Usage::

    PYTHONPATH=. python benchmarks/screen_check.py [--data DIR] [--out FILE] [--part I/K]

``--part I/K`` runs every K-th case from the I-th (0-based) and writes ``FILE`` with
``.partI`` before its suffix; without ``--part``, existing part files are merged when all
are there (run the K parts side by side, then once without ``--part``). About 10 minutes on
2 cores in two parts. Writes ``benchmarks/results/screen_check.json`` and ``.md``;
``--report`` writes the ``.md`` again from the ``.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cli import (
    beyond_normal_index,
    output_location,
    read_results_entry,
    read_sample_index,
)
from _provenance import ROOT, provenance
from beyond_normal import DATA
from beyond_normal_scoring import GAUSSIAN_COPULA_FAMILIES
from mild_non_gaussian import sample as mild_sample

import mitools.estimate.fit as fit
from mitools import estimate_mi

RESULTS = ROOT / "benchmarks" / "results"
MILD_SIZES = (300, 1000, 3000)
MILD_SEEDS = 16


def cases(data: Path) -> list[dict]:
    """Every case: a Beyond Normal sample file or a mild task's (n, seed)."""
    index = read_sample_index(data / "index.json", "screen_check.py")
    out = [{"set": "beyond_normal", "sample": s["file"], "task": s["task_id"],
            "gaussian_dependence": s["family"] in GAUSSIAN_COPULA_FAMILIES,
            "wide_spiral": s["family"] == "spiral" and s["dim_x"] >= 25,
            "true_mi": s["true_mi"]} for s in index]
    out += [{"set": "mild", "n": n, "seed": seed} for n in MILD_SIZES
            for seed in range(MILD_SEEDS)]
    return out


def run(case: dict, data: Path) -> dict:
    """``estimate_mi``'s default on one case with every check recorded and none stopping."""
    seen: list[list] = []
    stops = fit._screen_stops

    def record(gain: float, stalled: bool) -> bool:
        seen.append([gain, stalled])
        return False  # never stop: the schedule without the check

    fit._screen_stops = record
    try:
        if case["set"] == "beyond_normal":
            z = np.load(data / case["sample"])
            x, y, seed = z["x"], z["y"], 0
        else:
            x, y = mild_sample(case["n"], 0.35, 0.7, case["seed"])
            seed = case["seed"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = estimate_mi(x, y, seed=seed, threads=1)
    finally:
        fit._screen_stops = stops
    # the checks until one passes (above SCREEN_CHECK_SE), one per evaluation from step 100
    stop_at = next((i for i, (g, stalled) in enumerate(seen) if stops(g, stalled)), None)
    at_end = r.folds[0].held_out_gain
    return {**case, "checks": seen, "check_gain": seen[0][0] if seen else math.nan,
            "end_gain": at_end, "fold_steps": [f.steps for f in r.folds],
            "estimate": r.value, "check_stops": stop_at is not None,
            "stop_step": None if stop_at is None else fit.SCREEN_CHECK_STEP + 100 * stop_at,
            "end_screens": not at_end > fit.SCREEN_SE}


def summary_rows(rows: list[dict]) -> list[list[str]]:
    """Per group of cases: count, smallest, median and largest gain at the check, the stops,
    and the stops where the screen at the end would have trained the other folds."""
    bn = [r for r in rows if r["set"] == "beyond_normal"]
    groups = [("Beyond Normal, Gaussian dependence",
               [r for r in bn if r["gaussian_dependence"]]),
              ("Beyond Normal, 25 x 25 spirals", [r for r in bn if r["wide_spiral"]]),
              ("Beyond Normal, other non-Gaussian",
               [r for r in bn if not (r["gaussian_dependence"] or r["wide_spiral"])])]
    groups += [(f"y = x + 0.35 (x^2 - 1) + 0.7 noise, n = {n:,}",
                [r for r in rows if r["set"] == "mild" and r["n"] == n]) for n in MILD_SIZES]
    out = []
    for label, group in groups:
        if not group:
            continue
        gains = sorted(r["check_gain"] for r in group)
        stops = [r for r in group if r["check_stops"]]
        first = [r for r in stops if r["stop_step"] == fit.SCREEN_CHECK_STEP]
        trained = [r for r in stops if not r["end_screens"]]
        out.append([label, str(len(group)), f"{gains[0]:.1f}", f"{np.median(gains):.1f}",
                    f"{gains[-1]:.1f}", f"{len(stops)} ({len(first)})", str(len(trained))])
    return out


#: the columns of :func:`summary_rows`
HEADER = ["cases", "count", "smallest gain at step 100", "median", "largest",
          "check stops (at step 100)", "of which the end's screen trained the others"]


def description() -> str:
    return (f"Gain of the first fold's best trained critic over the Gaussian start on its test "
            f"part, in standard errors, at step {fit.SCREEN_CHECK_STEP}, the first check (run "
            "with the checks never stopping). The check, at every evaluation from there until "
            f"a gain above {fit.SCREEN_CHECK_SE:g}, stops at a gain of at most 0, or of at "
            f"most {fit.SCREEN_CHECK_SE:g} at an evaluation that did not improve the best "
            "validation bound. The last column counts the stops where the screen at the end "
            f"(above {fit.SCREEN_SE:g}) let the other folds train: a loss where training "
            "helps, time saved where the dependence is Gaussian.")


def summarise(rows: list[dict]) -> list[str]:
    return ["# The screen's early check", "", description(), "",
            "| " + " | ".join(HEADER) + " |",
            "| --- |" + " ---: |" * (len(HEADER) - 1),
            *("| " + " | ".join(row) + " |" for row in summary_rows(rows))]


def part_path(out: Path, i: int) -> Path:
    return out.with_suffix(f".part{i}{out.suffix}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA,
                        help="the Beyond Normal samples (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=RESULTS / "screen_check.json",
                        help="results file; a .md beside it (default: %(default)s)")
    parser.add_argument("--part", default=None, help="I/K: every K-th case from the I-th")
    parser.add_argument("--report", action="store_true",
                        help="only write the .md again from the results file")
    args = parser.parse_args(argv)
    output_location(parser, "--out", args.out)
    if args.report:  # the results alone: no samples needed
        md = summarise(read_results_entry(args.out, "screen_check.py", "rows"))
        args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
        print("\n".join(md))
        return
    beyond_normal_index(parser, args.data)
    todo = cases(args.data)
    if args.part is not None:
        try:
            i, k = (int(v) for v in args.part.split("/"))
            assert 0 <= i < k
        except (ValueError, AssertionError):
            parser.error(f"argument --part: expected I/K with 0 <= I < K, got {args.part!r}")
        rows = []
        for case in todo[i::k]:
            rows.append(run(case, args.data))
            print(json.dumps(rows[-1]), flush=True)
        part_path(args.out, i).write_text(json.dumps({"provenance": provenance(),
                                                      "part": args.part, "rows": rows}))
        return
    parts = sorted(args.out.parent.glob(args.out.stem + ".part*" + args.out.suffix))
    rows = ([r for p in parts for r in json.loads(p.read_text())["rows"]] if parts
            else [run(case, args.data) for case in todo])
    if len(rows) != len(todo):
        parser.error(f"the part files hold {len(rows)} of {len(todo)} cases: run every part")
    md = summarise(rows)
    args.out.write_text(json.dumps({"provenance": provenance(), "rows": rows}, indent=1))
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    for p in parts:
        p.unlink()
    print("\n".join(md))


if __name__ == "__main__":
    main()
