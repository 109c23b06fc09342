"""The sections of ``docs/benchmarks.rst`` on the bounds themselves: the peers side by side,
the staircase and its sandwich, and the held-out upper bounds. Each takes the results folder
(and the repository root, for figure paths) and returns RST, or ``""`` when that benchmark has
not been run."""

from __future__ import annotations

from pathlib import Path

from beyond_normal_scoring import read_json
from rst_blocks import figure_lines, heading, load_result, provenance_line, section, table


def peers_section(results: Path) -> str:
    data = load_result(results, "peers.json")
    if data is None:
        return ""
    out = [heading("Peers side by side", "-"),
           "The same fixed samples (n = 5,000) through ``mitools.estimate_mi`` (defaults, "
           "bound as listed), bmi (``benchmark-mi``, its defaults) and torch-mist "
           "(``torch_mist.estimate_mi``, 2 x 256 critic, 2,000 iterations, held-out 20 %), each "
           "library in its own virtual environment, in one run, on one thread each. "
           "Produced by ``PYTHONPATH=. python benchmarks/peers/compare.py`` (see "
           "``benchmarks/README.md``). Bold: the smallest absolute error for the task.", ""]
    for name, info in data["peers"].items():
        if info.get("status") != "ok":
            out.append(f"* **{name}: skipped** ({info.get('status')}): "
                       f"{info.get('reason', '')[:200]}")
    out.append("")
    records = data["records"]
    tasks = list(dict.fromkeys(r["task"] for r in records))
    rows = []
    for task in tasks:
        group = [r for r in records if r["task"] == task]
        best = min((r["abs_error"] for r in group if r["status"] == "ok"), default=None)
        for r in group:
            ok = r["status"] == "ok"
            est = f"{r['estimate']:.3f}" if ok else r["status"]
            if r["library"] == "mitools" and "stderr" in r["settings"]:
                est += f" ± {r['settings']['stderr']:.3f}"
            err = f"{r['abs_error']:.3f}" if ok else "-"
            if ok and r["abs_error"] == best:
                err = f"**{err}**"
            rows.append([task, f"{r['true_mi']:.3f}", f"{r['library']} {r['version']}",
                         r["estimator"], est, err, f"{r['wall_time_s']:.1f}"])
    out.append(table(["task", "true MI", "library", "estimator", "estimate", "abs. error",
                      "time (s)"], rows))
    out.append(provenance_line(data["provenance"]))
    return "\n".join(out) + "\n"


def staircase_section(results: Path, root: Path) -> str:
    files = sorted((results / "staircase").glob("*.json"))
    if not files:
        return ""
    out = [heading("Staircase (Poole et al. 2019)", "-"),
           "d = 20, batch K = 64, MI raised 2 -> 10 nats, Adam lr 5e-4, a fresh batch each "
           "step, 2 x 256 ReLU critics (separable: 32-d embeddings). Every bound is trained at "
           "once with stacked critic weights on the same batches. Each cell: bias / variance / "
           "MSE of the estimates over the last steps of the level (window given per table). "
           "Produced by ``PYTHONPATH=. python benchmarks/staircase.py``.", ""]
    for path in files:
        data = read_json(path)
        if "summary" not in data:  # the sandwich tables have their own section
            continue
        proto = data["protocol"]
        title = (f"{proto['critic']} critic, {proto['task']} task: "
                 f"{proto['steps_per_level']} steps per level, window {proto['window']}")
        if proto["steps_per_level"] < 4000:
            title += " (shortened protocol)"
        out.append(heading(title, "~"))
        levels = proto["levels"]
        rows = [[label] + [f"{c['bias']:+.2f} / {c['variance']:.2f} / {c['mse']:.2f}"
                           for c in cells] for label, cells in data["summary"].items()]
        out.append(table(["bound"] + [f"{lv:g} nats" for lv in levels], rows))
        png = path.with_suffix(".png")
        if png.exists():
            out += figure_lines(png, root, "100%",
                                f"Estimates against the true staircase ({proto['critic']} "
                                f"critic, {proto['task']} task). Light: every step; dark: "
                                "moving average.")
        out.append(provenance_line(data["provenance"])
                   + f" Wall time {data['wall_time_s'] / 60:.1f} min.\n")
    return "\n".join(out) + "\n"


def sandwich_section(results: Path, root: Path) -> str:
    files = sorted((results / "staircase").glob("sandwich-*.json"))
    if not files:
        return ""
    out = [heading("Sandwich: the best lower and upper bound per level", "-"),
           "From the staircase results above, per level: the highest mean among the bounds "
           "that are lower bounds in expectation (InfoNCE, NWJ, JS, TUBA, α-InfoNCE, BA with "
           "the true H(Y), FLO), the same without BA (critics only), and the lowest mean "
           "among the upper bounds on the fitted "
           "conditional q (CLUB, vCLUB, L1Out); beside them L1Out and CLUB on the task's true "
           "conditional. Mean ± standard deviation over the window of each level. Produced by "
           "``PYTHONPATH=. python benchmarks/staircase.py`` (the sandwich is written when the "
           "three families' results exist).", ""]
    for path in files:
        data = read_json(path)
        out.append(heading(path.stem.replace("sandwich-", "").replace("-", " critics, ")
                           + " task", "~"))
        rows = []
        for r in data["sandwich"]:
            lo, up = r["lower"], r["upper"]
            lc = r["lower_critic"]
            rows.append([f"{r['true_mi']:g}",
                         f"{lo['mean']:.2f} ± {lo['sd']:.2f} ({lo['bound']})",
                         f"{lc['mean']:.2f} ± {lc['sd']:.2f} ({lc['bound']})",
                         f"{up['mean']:.2f} ± {up['sd']:.2f} ({up['bound']})",
                         f"{r.get('L1Out (true q)', float('nan')):.2f}",
                         f"{r.get('CLUB (true q)', float('nan')):.2f}",
                         "yes" if r["bracketed"] else "no"])
        out.append(table(["true MI", "best lower bound", "best critic lower bound",
                          "best upper bound (fitted q)",
                          "L1Out, true q", "CLUB, true q", "bracketed"], rows))
        png = path.with_suffix(".png")
        if png.exists():
            out += figure_lines(png, root, "80%",
                                "Best lower (blue) and upper (red) bound per level against "
                                "the true MI (black); error bars: one standard deviation over "
                                "the window.")
        out.append(provenance_line(data["provenance"]) + "\n")
    return "\n".join(out) + "\n"


def heldout_upper_section(results: Path) -> str:
    data = load_result(results, "upper_bounds_heldout.json")
    if data is None:
        return ""
    s = data["setup"]
    paragraph = (
           f"Is a fitted-q upper bound on held-out data still above the MI? n = {s['n']} "
           f"samples, {s['test_fraction']:.0%} held out and scored all pairs at once, "
           f"{s['seeds']} seeds; q: {s['q']}. Cells: mean [min, max] over seeds. Produced by "
           "``PYTHONPATH=. python benchmarks/upper_bounds_heldout.py``.")
    rows = []
    for r in data["rows"]:
        def cell(kind: str, key: str, r: dict = r) -> str:
            return (f"{r[f'{kind}_{key}_mean']:.2f} [{r[f'{kind}_{key}_min']:.2f}, "
                    f"{r[f'{kind}_{key}_max']:.2f}]")
        rows.append([r["task"], f"{r['mi']:g}", f"{r['kl_gap_mean']:.3f}",
                     cell("fitted", "l1out"), cell("true_q", "l1out"),
                     cell("fitted", "club"), cell("true_q", "club"),
                     "yes" if r["fitted_upper_holds"] else "no"])
    return section("Upper bounds with a fitted q, held out", paragraph, data["provenance"],
                   table(["task", "true MI", "held-out KL(p‖q)", "L1Out, fitted q",
                          "L1Out, true q", "CLUB, fitted q", "CLUB, true q",
                          "both fitted ≥ truth"], rows))
