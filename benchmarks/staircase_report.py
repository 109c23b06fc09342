"""The staircase benchmark's tables, figures and sandwich, from the estimates it trained.

``summarize`` reads bias, variance and MSE per level; ``markdown`` and ``figure`` render one
family; ``sandwich`` picks the best lower and upper bound per level and ``write_sandwich``
writes it once the three families' results exist (``staircase.py`` runs the training).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import torch
from _provenance import provenance
from torch import Tensor

from mitools.tasks import Staircase

TRUE_Q_LABELS = ["BA (true q)", "CLUB (true q)", "L1Out (true q)"]
LOWER_IN_EXPECTATION = {"InfoNCE", "NWJ", "JS", "TUBA", "α-InfoNCE α=0.01", "α-InfoNCE α=0.5",
                        "BA (mixture q)",
                        "BA", "FLO"}
UPPER_WITH_FITTED_Q = {"CLUB", "vCLUB", "L1Out", "CLUB (mixture q)", "vCLUB (mixture q)",
                       "L1Out (mixture q)"}



def summarize(estimates: Tensor, schedule: Staircase, labels: list[str],
              window: int = 500) -> dict:
    """Bias, variance and MSE of each bound at each level, from the last ``window`` steps."""
    window = min(window, schedule.steps_per_level)
    result: dict = {}
    for b_idx, label in enumerate(labels):
        rows = []
        for level_idx, level in enumerate(schedule.levels):
            end = (level_idx + 1) * schedule.steps_per_level
            e = estimates[end - window : end, b_idx].double()
            finite = torch.isfinite(e)
            e_f = e[finite]
            bias = float(e_f.mean() - level) if len(e_f) else math.nan
            var = float(e_f.var(unbiased=True)) if len(e_f) > 1 else math.nan
            mse = float(((e_f - level) ** 2).mean()) if len(e_f) else math.nan
            rows.append({"true_mi": level, "mean": float(e_f.mean()) if len(e_f) else math.nan,
                         "bias": bias, "variance": var, "mse": mse,
                         "non_finite": int((~finite).sum())})
        result[label] = rows
    return result


def markdown(summary: dict, levels: tuple[float, ...], title: str) -> str:
    head = " | ".join(f"{lv:g} nats: bias / var / MSE" for lv in levels)
    lines = [f"### {title}", "", f"| bound | {head} |",
             "| --- |" + " ---: |" * len(levels)]
    for label, rows in summary.items():
        cells = " | ".join(f"{r['bias']:+.2f} / {r['variance']:.2f} / {r['mse']:.2f}"
                           for r in rows)
        lines.append(f"| {label} | {cells} |")
    return "\n".join(lines) + "\n"


def figure(estimates: Tensor, schedule: Staircase, labels: list[str],
           path: Path, title: str, batch_size: int, ylim: tuple[float, float] = (-1, 14)) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = torch.arange(schedule.total_steps)
    truth = torch.tensor([schedule.mi_at(int(s)) for s in steps])
    cols = 4
    rows = math.ceil(len(labels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), sharex=True,
                             sharey=True, squeeze=False)
    # exponential moving average for the dark line, raw estimates light
    alpha = 0.01
    for b_idx, label in enumerate(labels):
        ax = axes[b_idx // cols][b_idx % cols]
        raw = estimates[:, b_idx].clamp(ylim[0] - 4, ylim[1] + 6)
        ema = torch.empty_like(raw)
        acc = float(raw[0])
        for i, v in enumerate(raw.tolist()):  # plotting only: a sequential filter
            acc = (1 - alpha) * acc + alpha * v
            ema[i] = acc
        ax.plot(steps, raw, color="tab:blue", alpha=0.25, linewidth=0.5)
        ax.plot(steps, ema, color="tab:blue", linewidth=1.2)
        ax.plot(steps, truth, color="black", linewidth=1.0)
        ax.axhline(math.log(batch_size), color="tab:red", linestyle=":", linewidth=0.8)
        ax.set_title(label, fontsize=9)
        ax.set_ylim(*ylim)
    for idx in range(len(labels), rows * cols):
        axes[idx // cols][idx % cols].axis("off")
    fig.suptitle(f"{title} (black: true MI, dotted: log {batch_size})", fontsize=10)
    fig.supxlabel("training step")
    fig.supylabel("estimate (nats)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sandwich(summaries: list[dict], levels: tuple[float, ...]) -> list[dict]:
    """Per level: the best lower bound (highest mean) and best upper bound (lowest mean)."""
    merged: dict = {}
    for summary in summaries:
        merged.update(summary)
    rows = []

    def pick(k: int, labels: set[str], best: Callable) -> dict:
        cands = [(lab, merged[lab][k]) for lab in sorted(labels) if lab in merged
                 and math.isfinite(merged[lab][k]["mean"])]
        lab, cell = best(cands, key=lambda c: c[1]["mean"])
        return {"bound": lab, "mean": cell["mean"], "sd": math.sqrt(cell["variance"])}

    for k, level in enumerate(levels):
        row = {"true_mi": level, "lower": pick(k, LOWER_IN_EXPECTATION, max),
               "lower_critic": pick(k, LOWER_IN_EXPECTATION - {"BA", "BA (mixture q)"}, max),
               "upper": pick(k, UPPER_WITH_FITTED_Q, min)}
        for lab in TRUE_Q_LABELS:
            if lab in merged:
                row[lab] = merged[lab][k]["mean"]
        row["bracketed"] = row["lower"]["mean"] <= level <= row["upper"]["mean"]
        rows.append(row)
    return rows


def sandwich_markdown(rows: list[dict], title: str) -> str:
    lines = [f"### {title}", "",
             "| true MI | best lower bound | best critic lower bound | "
             "best upper bound (fitted q) | L1Out, true q | CLUB, true q (= I + lautum) | "
             "bracketed |",
             "| ---: | --- | --- | --- | ---: | ---: | :---: |"]
    for r in rows:
        lo, up, lc = r["lower"], r["upper"], r["lower_critic"]
        lines.append(
            f"| {r['true_mi']:g} | {lo['mean']:.2f} ± {lo['sd']:.2f} ({lo['bound']}) | "
            f"{lc['mean']:.2f} ± {lc['sd']:.2f} ({lc['bound']}) | "
            f"{up['mean']:.2f} ± {up['sd']:.2f} ({up['bound']}) | "
            f"{r.get('L1Out (true q)', math.nan):.2f} | {r.get('CLUB (true q)', math.nan):.2f} | "
            f"{'yes' if r['bracketed'] else 'no'} |")
    lines.append("")
    lines.append("mean ± standard deviation of the estimates over the window of each level.")
    return "\n".join(lines) + "\n"


def sandwich_figure(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    n = len(rows)
    edges = list(range(n + 1))
    truth = [r["true_mi"] for r in rows]
    ax.stairs(truth, edges, color="black", linewidth=1.5, label="true MI", baseline=None)
    centres = [k + 0.5 for k in range(n)]
    for key, color, name in (("lower", "tab:blue", "best lower bound"),
                             ("lower_critic", "tab:cyan", "best critic lower bound"),
                             ("upper", "tab:red", "best upper bound (fitted q)")):
        means = [r[key]["mean"] for r in rows]
        sds = [r[key]["sd"] for r in rows]
        ax.errorbar(centres, means, yerr=sds, fmt="o", color=color, capsize=3, label=name)
        for c, r in zip(centres, rows, strict=True):
            ax.annotate(r[key]["bound"], (c, r[key]["mean"]), textcoords="offset points",
                        xytext=(6, 3 if key == "upper" else -3), fontsize=6, color=color)
    if all("L1Out (true q)" in r for r in rows):
        ax.plot(centres, [r["L1Out (true q)"] for r in rows], "x--", color="tab:gray",
                linewidth=0.8, label="L1Out, true q")
    ax.set_xticks(centres, [f"{t:g}" for t in truth])
    ax.set_xlabel("true MI of the level (nats)")
    ax.set_ylabel("estimate (nats)")
    ax.set_ylim(0, None)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)



def write_family(out_dir: Path, name: str, payload: dict, section: str, estimates: Tensor,
           schedule: Staircase, labels: list[str], title: str, batch_size: int,
           ylim: tuple[float, float] = (-1, 14)) -> None:
    """One family's results: ``{name}.json``, ``.md`` (``section``) and ``.png``."""
    (out_dir / f"{name}.json").write_text(json.dumps(payload, indent=1))
    (out_dir / f"{name}.md").write_text(section)
    figure(estimates, schedule, labels, out_dir / f"{name}.png", title, batch_size, ylim)



def write_sandwich(out_dir: Path, critic_kind: str, task: str,
                   levels: tuple[float, ...]) -> str | None:
    """The sandwich of ``critic_kind`` on ``task`` from the results in ``out_dir``.

    Needs the lower bounds (``{critic}-{task}``), FLO (``flo-{critic}-{task}``) and the
    conditional bounds (``conditional-{task}``), and takes the mixture q's
    (``conditional-mixture-{task}``) when present. Writes ``sandwich-{critic}-{task}.*`` and
    returns its table; ``None`` (with a line on stdout when the sources disagree) when a source
    is missing or they were run with different steps per level or windows.
    """
    parts = [out_dir / f"{critic_kind}-{task}.json",
             out_dir / f"flo-{critic_kind}-{task}.json",
             out_dir / f"conditional-{task}.json"]
    optional = out_dir / f"conditional-mixture-{task}.json"
    if optional.exists() and all(p.exists() for p in parts):
        parts.append(optional)
    if not all(p.exists() for p in parts):
        return None
    loaded = [json.loads(p.read_text()) for p in parts]
    if len({(d["protocol"]["steps_per_level"], d["protocol"]["window"]) for d in loaded}) != 1:
        print(f"sandwich-{critic_kind}-{task}: skipped, the sources were run with "
              "different steps per level or windows", flush=True)
        return None
    rows = sandwich([d["summary"] for d in loaded], levels)
    name = f"sandwich-{critic_kind}-{task}"
    title = f"Sandwich: {critic_kind} critics and a fitted q, {task} task"
    (out_dir / f"{name}.json").write_text(json.dumps(
        {"provenance": provenance(), "sources": [p.name for p in parts], "sandwich": rows},
        indent=1))
    section = sandwich_markdown(rows, title)
    (out_dir / f"{name}.md").write_text(section)
    sandwich_figure(rows, out_dir / f"{name}.png", title)
    return section
