"""Render ``docs/benchmarks.rst`` from the committed benchmark JSON (no re-running).

Usage::

    python benchmarks/render_docs.py

Reads the results of every benchmark in ``benchmarks/results/`` (``required_inputs()`` lists
them: time claims, estimate accuracy, Beyond Normal (``beyond_normal_{mitools,bmi}.json``,
scored by ``beyond_normal_report.py``), the mildly non-Gaussian task, the screen's check, the
KSG cross-check, the local loss's paths (and ``local_loss_gpu.json`` where a GPU run is
committed), the peers, the staircases, the held-out upper bounds and consistency) and writes
the tables, figure references and provenance (commit, versions, hardware) into
``docs/benchmarks.rst``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
OUT = ROOT / "docs" / "benchmarks.rst"
sys.path.insert(0, str(ROOT / "benchmarks"))

import beyond_normal_report as report  # noqa: E402
import beyond_normal_scoring as bn  # noqa: E402
from beyond_normal_scoring import read_json  # noqa: E402
from bound_sections import (  # noqa: E402
    heldout_upper_section,
    peers_section,
    sandwich_section,
    staircase_section,
)
from rst_blocks import figure_lines, heading, provenance_line, section, table  # noqa: E402
from rst_blocks import load_result as _load_result  # noqa: E402


def load_result(name: str) -> dict | None:
    """``benchmarks/results/<name>`` parsed, or ``None`` when that benchmark has not been run
    (its section is then left out)."""
    return _load_result(RESULTS, name)


#: the committed full runs of ``estimate_accuracy.py`` (never its smoke or local outputs,
#: such as the git-ignored ``estimate_accuracy_quick.json``)
ACCURACY_RUNS = ("estimate_accuracy.json", "estimate_accuracy_high.json")


def _levels(run: dict) -> str:
    levels = [f"{s['mi']:g}" for s in run["summary"]]
    return (", ".join(levels[:-1]) + " and " + levels[-1] if len(levels) > 1
            else levels[0]) + " nats"


def accuracy_section() -> str:
    paths = [RESULTS / name for name in ACCURACY_RUNS if (RESULTS / name).exists()]
    if not paths:
        return ""
    runs = [read_json(p) for p in paths]
    data = runs[0]
    summaries = [s for r in runs for s in r["summary"]]
    out = [heading("estimate_mi: accuracy, time, coverage", "-"),
           f"``mitools.estimate.estimate_mi`` with its defaults on the d = 20 correlated "
           f"Gaussian, n = {data['n']} (three folds, optimism-corrected DV on the Gaussian "
           "form plus a joint residual, started at the Gaussian fit); each seed draws new "
           "data, new folds and a new initialisation. The held-out column is the "
           "(conservative) held-out bound alone; the interval is the default one-sided 95 % "
           "lower bound (covered: the truth lies above it), the two-sided column "
           "``value ± t·stderr``. Produced by ``PYTHONPATH=. python "
           "benchmarks/estimate_accuracy.py`` (2 and 4 nats, 20 seeds) and ``... "
           "--levels 6,8,10 --seeds 5 --out benchmarks/results/estimate_accuracy_high.json``.",
           ""]
    rows = [[f"{s['mi']:g}", str(s["seeds"]), f"{s['mean']:.3f}",
             f"{s['mean_held_out']:.3f}" if "mean_held_out" in s else "-",
             f"{s['within_5_percent']:.0%}", f"{s['coverage']:.0%}",
             f"{s['coverage_two_sided']:.0%}" if "coverage_two_sided" in s else "-",
             f"{s['median_time_s']:.1f}",
             f"{s['median_cpu_s']:.1f}" if "median_cpu_s" in s else "-",
             f"{s['max_time_s']:.1f}"] for s in summaries]
    out.append(table(["true MI", "seeds", "mean estimate", "mean held-out bound",
                      "within 5 %", "lower bound covers", "two-sided covers",
                      "median time (s)", "median CPU (s)", "max time (s)"], rows))
    out.append(" ".join(provenance_line(r["provenance"]) for r in runs))
    out.append("")
    # what each run recorded of its machine: cores, threads, load at its end (a load near or
    # above the run's own thread count means other jobs ran beside it)
    loaded = False
    parts = []
    for run in runs:
        p, load = run["provenance"], run.get("load_average")
        part = (f"the {_levels(run)} run on a {p['cpu_count']}-core machine with "
                f"{run.get('threads', 1)} torch thread(s)")
        if load:
            part += f", at a load average of {load[1]:.1f}"
            if load[1] > run.get("threads", 1) + 0.25:
                loaded = True
                part += " (other jobs running beside it)"
        parts.append(part)
    out.append("Times were measured for " + "; ".join(parts) + "."
               + (" Which jobs: ``benchmarks/README.md``. Wall times under load are not "
                  "those of a quiet machine; CPU times are closer." if loaded else ""))
    return "\n".join(out) + "\n"


def beyond_normal_section(results: Path | None = None) -> str:
    """The "Beyond Normal" benchmark: bmi's 40 tasks through mitools and bmi."""
    results = RESULTS if results is None else results
    res = bn.load(results)
    if not res.cases:
        return ""
    rows, s = bn.task_rows(res), bn.summary(res)
    seeds = sorted({seed for _, seed in res.cases})
    out = [heading("Beyond Normal (Czyż et al., NeurIPS 2023)", "-"),
           f"The public benchmark of bmi (``benchmark-mi``): its {len(res.task_ids)} tasks "
           "(``bmi.benchmark.BENCHMARK_TASKS``: one-dimensional, multinormal, Student-t and "
           "transformed distributions of known MI), n = 5,000 samples each, seeds "
           f"{', '.join(map(str, seeds))}, drawn by bmi's own samplers in bmi's environment "
           "and saved; every estimator reads the same files. mitools: ``estimate_mi`` with "
           "its defaults, and ``mitools.classical`` where listed (KSG with k = 10, the paper's "
           "KSG-10), all in one process on one thread. bmi 0.1.3 with its defaults: KSG "
           "(mean of k = 5 and 10, Euclidean), CCA, and the neural InfoNCE, NWJ, DV and MINE "
           "(MLP (16, 8), batch 256, lr 0.1, up to 10,000 steps with early stopping, 50 % "
           "test split). bmi reports the *best* test value seen during training, an "
           "upward-biased choice. bmi's estimators ran in their own run, on a machine "
           "shared with other jobs (load 2-6), so their times in the table below are not "
           "comparable with mitools'; bmi's KSG was timed again in mitools' run, sample by "
           "sample (the time ratios in the summary). \"Solved\": \\|log(estimate / true)\\| "
           "< log 1.5, the "
           "paper's criterion. Produced by the commands in ``benchmarks/README.md`` "
           "(*Beyond Normal*); scored by ``benchmarks/beyond_normal_report.py``.", ""]
    total = len(res.cases)
    partial = [f"{bn.LABELS.get(k, k)}: {v['cases']} of {total} cases"
               for k, v in s["by_key"].items() if v["cases"] < total]
    if partial:
        out += ["Not every estimator has run on every case: " + "; ".join(partial) + ".", ""]
    out += [" ".join(report.summary_lines(res, s)), ""]
    out.append(table(*report.summary_table(res, s)))
    png = results / "beyond_normal.png"
    if png.exists():
        out += figure_lines(png, ROOT, "100%",
                            "Mean estimate per task (rows) and estimator (columns), over the "
                            "seeds of the table below, coloured by its error (blue: over, "
                            "red: under the true MI, nats); the shape of the paper's main "
                            "results figure.")
    out += ["Per task, over the seeds on which all of the task's estimators ran (column "
            "*seeds*): mean error in nats, and in brackets the mean "
            "\\|log(estimate / true)\\| (below 0.41 is solved); bold: the smallest mean "
            "absolute error of the task.", ""]
    out.append(table(*report.per_task_table(res, rows)))
    for run in res.meta.get("mitools", {}).get("runs", []):
        out.append(provenance_line(run["provenance"]) + f" (mitools, ``{' '.join(run['argv'])}``)")
    bmi_meta = res.meta.get("bmi")
    if bmi_meta:
        out.append(f"*bmi {bmi_meta.get('bmi')}, jax {bmi_meta.get('jax')}, Python "
                   f"{bmi_meta.get('python')}; last written {bmi_meta.get('written')}; "
                   f"XLA_FLAGS ``{(bmi_meta.get('env') or {}).get('XLA_FLAGS')}``.*")
    out += ["", "Times were measured on a 2-core machine shared with other jobs; compare "
            "times within one run only."]
    return "\n".join(out) + "\n"


def time_claims_section() -> str:
    data = load_result("time_claims.json")
    if data is None:
        return ""
    paragraph = (
           "Every time the README and the docs state, measured in one run by ``PYTHONPATH=. "
           "python benchmarks/time_claims.py`` on a quiet machine (nothing else running; the "
           "load average before each job is recorded: the jobs' own load lingers into the "
           "next). Each job runs in a child process: wall time, CPU time (user + system) and "
           "peak memory are its own.")
    rows = []
    for key in ("main", "tiny", "tests"):
        job = data.get(key)
        if job:
            command = job["command"].split("python ", 1)[-1]
            rows.append([f"{key}: ``python {command}``", f"{job['wall_s']:.1f}",
                         f"{job['cpu_s']:.1f}", f"{job['peak_rss_mb']}",
                         f"{job['load_before']:.2f}"])
    for job in data.get("estimate", []):
        rows.append([f"``estimate_mi``, d = 20, n = 5,000, {job['dtype']} input, "
                     f"{job['threads']} thread(s)", f"{job['wall_s']:.1f}", f"{job['cpu_s']:.1f}",
                     f"{job['peak_rss_mb']}", f"{job['load_before']:.2f}"])
    return section("Time claims: the README's jobs on a 2-core machine", paragraph,
                   data["provenance"],
                   table(["job", "wall (s)", "CPU (s)", "peak memory (MB)", "load before"],
                         rows))


def consistency_section() -> str:
    data = load_result("consistency.json")
    if data is None:
        return ""
    s = data["setup"]
    paragraph = (
           f"Base: d = {s['dim']} correlated Gaussian at {s['mi']:g} nats, n = {s['n']}, "
           "every estimate by ``mitools.estimate_mi`` with the named bound (its defaults "
           "otherwise). "
           "Ideal values: independence 0, data processing ratio "
           "I([X, X]; [Y, Y³]) / I(X; Y) = 1, additivity ratio (two independent copies) = 2. "
           "Produced by ``PYTHONPATH=. python benchmarks/consistency.py``.")
    rows = []
    for row in data["rows"]:
        b = row["estimates"]["base"]
        rows.append([row["bound"], f"{b['value']:.3f} ± {b['stderr']:.3f}",
                     f"{row['independence']:+.3f}", f"{row['data_processing_ratio']:.3f}",
                     f"{row['additivity_ratio']:.3f}"])
    return section("Self-consistency (Song & Ermon 2020)", paragraph, data["provenance"],
                   table(["bound", "I(X;Y)", "independence", "data processing",
                          "additivity"], rows))


def mild_non_gaussian_section() -> str:
    data = load_result("mild_non_gaussian.json")
    if data is None:
        return ""
    s = data["setup"]
    paragraph = (
           f"y = x + {s['a']:g} (x² - 1) + {s['s']:g} ε with x, ε standard normal: true MI "
           f"{s['true_mi']:.4f} nats (by quadrature), {s['seeds']} seeds per size. A trained "
           "critic beats the Gaussian start by little, so each fold's choice between the two "
           "decides much of the error. ``screen=True`` (default): after a held-out gain of "
           "the first fold above two standard errors, the other folds replace the start on "
           "any validation gain (below 2 nats); "
           "``screen=False``: every fold replaces it only when its validation bound is higher "
           "by two standard errors. Produced by ``PYTHONPATH=. python "
           "benchmarks/mild_non_gaussian.py``.")
    rows = [[f"{row['n']:,}", "default" if row["screen"] else "``screen=False``",
             f"{row['mean_error']:+.4f}", f"{row['rmse']:.4f}",
             f"{row['lower_below_truth']}/{row['cases']}",
             f"{row['folds_kept_start']}/{row['folds']}"] for row in data["rows"]]
    return section("Mildly non-Gaussian dependence, small samples", paragraph,
                   data["provenance"],
                   table(["n", "estimate_mi", "mean error (nats)", "RMSE (nats)",
                          "lower bound below truth", "folds on the start (kept or untrained)"],
                         rows))


def screen_check_section() -> str:
    data = load_result("screen_check.json")
    if data is None:
        return ""
    import screen_check  # imports mitools (torch): only where the section is rendered

    paragraph = (
           "``estimate_mi`` checks its first fold's gain over the Gaussian start on that "
           "fold's test part from step 100 on, and where the check stops the fold the other "
           "folds stay untrained (``FoldResult.stopped_at_check``). "
           + screen_check.description()
           + " Produced by ``PYTHONPATH=. python benchmarks/screen_check.py`` (two parts side "
           "by side: ``benchmarks/README.md``).")
    return section("The screen's early check", paragraph, data["provenance"],
                   table(screen_check.HEADER, screen_check.summary_rows(data["rows"])))


def knn_check_section() -> str:
    data = load_result("knn_check.json")
    if data is None:
        return ""
    import knn_check  # imports mitools (torch): only where the section is rendered

    from mitools.estimate.knn_check import KNN_CHECK_K

    paragraph = (
           f"``estimate_mi`` runs mixed KSG (k = {KNN_CHECK_K}) on the same samples after the "
           "margins' transform and flags an estimate it reads clearly above "
           "(:mod:`mitools.estimate.knn_check`). On the Beyond Normal samples: "
           + " ".join(line for line in knn_check.summary_lines(data["summary"], data["rows"])
                      if line)
           + " Produced by ``PYTHONPATH=. python benchmarks/knn_check.py``.")
    return section("The KSG cross-check", paragraph, data["provenance"])


def local_loss_section() -> str:
    out = []
    for name, title in (("local_loss.json", "LocalMILoss's paths against a hand-written loss"),
                        ("local_loss_gpu.json", "The same on a GPU")):
        data = load_result(name)
        if data is None:
            continue
        import local_loss  # imports mitools (torch): only where the section is rendered

        out.append(section(
            f"{title} ({data['device_name']})",
            local_loss.description(data) + f" Produced by ``{local_loss.command_line(data)}``; "
            f"load average {data['load_before']} before and {data['load_after']} after "
            "(compare ratios, not times).",
            data["provenance"], table(*local_loss.table_cells(data))))
    return "\n".join(out)


def required_inputs() -> list[Path]:
    """Every result the page renders: a missing one would silently drop its section."""
    names = ["time_claims.json", *ACCURACY_RUNS,
             *(f"beyond_normal_{side}.json" for side in bn.SIDES), "mild_non_gaussian.json",
             "screen_check.json", "knn_check.json", "local_loss.json",
             "peers.json", "upper_bounds_heldout.json", "consistency.json"]
    return [RESULTS / name for name in names]


def check_inputs() -> None:
    """Stop with a one-line error naming the missing results (nothing is written)."""
    missing = [str(p.relative_to(ROOT)) for p in required_inputs() if not p.exists()]
    if not any((RESULTS / "staircase").glob("*.json")):
        missing.append(str((RESULTS / "staircase" / "*.json").relative_to(ROOT)))
    if missing:
        raise SystemExit(f"render_docs.py: missing {', '.join(missing)}; restore it with "
                         "`git checkout -- <file>` or rerun its benchmark "
                         "(benchmarks/README.md); docs/benchmarks.rst is left as it was")


def main(argv: list[str] | None = None) -> None:
    # a parser, so that --help (or a stray argument) answers without rewriting the page
    argparse.ArgumentParser(allow_abbrev=False,
                            description=__doc__.splitlines()[0]).parse_args(argv)
    check_inputs()
    parts = [
        ".. This page is generated by benchmarks/render_docs.py from benchmarks/results/*.json;"
        " edit that script, not this file.",
        "",
        heading("Benchmarks", "="),
        "Every number below comes from a script in ``benchmarks/`` and the JSON it wrote, "
        "committed with the code; this page is rendered from that JSON. Losses are published "
        "with the wins. For advice drawn from these results see :doc:`guide/choosing_a_bound`.",
        "",
        time_claims_section(),
        accuracy_section(),
        beyond_normal_section(),
        mild_non_gaussian_section(),
        screen_check_section(),
        knn_check_section(),
        local_loss_section(),
        peers_section(RESULTS),
        staircase_section(RESULTS, ROOT),
        sandwich_section(RESULTS, ROOT),
        heldout_upper_section(RESULTS),
        consistency_section(),
    ]
    OUT.write_text("\n".join(p for p in parts if p is not None))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
