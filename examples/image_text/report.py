"""The results tables (markdown, mean ± sd over seeds) and ``results.json``."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .config import Config
from .evaluate import RegimeResult
from .pointing import KINDS, PointingResult

__all__ = ["Run", "read_run", "results_markdown", "write_results"]

#: One seed's results: the downstream rows and the pointing rows.
Run = tuple[list[RegimeResult], list[PointingResult]]

_REGIME_NAMES = {"supervised": "Supervised only", "frozen": "Frozen + linear (pooled)",
                 "frozen_grid": "Frozen + cell-grid probe", "finetune": "Fine-tuned"}


def _fmt(values: list[float]) -> str:
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return "n/a"
    mean = sum(vals) / len(vals)
    if len(vals) == 1:
        return f"{mean:.3f}"
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
    return f"{mean:.3f} ± {sd:.3f}"


def _mean(values: list[float]) -> str:
    vals = [v for v in values if not math.isnan(v)]
    return f"{sum(vals) / len(vals):.3f}" if vals else "n/a"


def results_markdown(runs: list[Run], finding_names: tuple[str, ...]) -> str:
    """The results tables (mean ± sd over the runs given, one run per seed)."""
    keys = [(r.regime, r.pretraining) for r in runs[0][0]]
    n = len(runs)
    per = {k: [dict(zip([(r.regime, r.pretraining) for r in res], res, strict=True))[k]
               for res, _ in runs] for k in keys}
    lines = [
        f"Downstream classification on the test split ({n} seed{'s' if n > 1 else ''}; "
        "mean ± sd over seeds). Localized: the mean AUC of the zone opacities, effusions and "
        "line; zone: which of six zones, images with one opacity (chance 0.167)",
        "",
        "| Regime | Pretraining | Edema macro AUC | Edema accuracy | Mean finding AUC | "
        "Localized AUC | Zone accuracy |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for k in keys:
        rs = per[k]
        lines.append(
            f"| {_REGIME_NAMES[k[0]]} | {k[1]} | {_fmt([r.edema_auc for r in rs])} | "
            f"{_fmt([r.edema_accuracy for r in rs])} | "
            f"{_fmt([r.mean_finding_auc for r in rs])} | "
            f"{_fmt([r.localized_auc for r in rs])} | {_fmt([r.zone_accuracy for r in rs])} |"
        )
    lines += ["", "AUC per finding (mean over seeds)", "",
              "| Finding | " + " | ".join(f"{_REGIME_NAMES[k[0]]} ({k[1]})" for k in keys) + " |",
              "| --- |" + " --- |" * len(keys)]
    for j, name in enumerate(finding_names):
        cells = [_mean([r.finding_auc[j] for r in per[k]]) for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    pts0 = runs[0][1]
    if pts0:
        lines += ["", "Pointing: the highest-MI cell of a localized finding's sentence lies in "
                  "the finding's site (hit rate; mean ± sd over seeds)", "",
                  "| Pointer | " + " | ".join(k.capitalize() for k in KINDS) + " |",
                  "| --- |" + " --- |" * len(KINDS)]
        for i, p in enumerate(pts0):
            ps = [pts[i] for _, pts in runs]
            lines.append(f"| {p.pretraining} | "
                         + " | ".join(_fmt([q.hit_rate[k] for q in ps]) for k in KINDS) + " |")
        for attr, label in (("best_fixed", "best fixed cell"), ("random_cell", "random cell")):
            lines.append(f"| {label} | " + " | ".join(
                _fmt([getattr(q, attr)[k] for q in (pts[0] for _, pts in runs)]) for k in KINDS
            ) + " |")
        lines.append("| sentences | " + " | ".join(str(pts0[0].sentences[k]) for k in KINDS)
                     + " |")
    return "\n".join(lines) + "\n"


def _run_payload(seed: int, run: Run) -> dict[str, Any]:
    res, pts = run
    return {
        "seed": seed,
        "downstream": [{**r._asdict(), "mean_finding_auc": r.mean_finding_auc,
                        "localized_auc": r.localized_auc} for r in res],
        "pointing": [p._asdict() for p in pts],
    }


def read_run(payload: dict[str, Any]) -> Run:
    """A :data:`Run` from one entry of ``results.json``'s ``runs``."""
    fields = RegimeResult._fields
    res = [RegimeResult(**{k: (tuple(v) if isinstance(v, list) else v)
                           for k, v in r.items() if k in fields}) for r in payload["downstream"]]
    pts = [PointingResult(**p) for p in payload["pointing"]]
    return res, pts


def write_results(out_dir: Path, cfg: Config, runs: list[Run], finding_names: tuple[str, ...],
                  seeds: list[int], extra: dict[str, object] | None = None) -> str:
    """Write ``results.md`` and ``results.json`` under ``out_dir``; return the markdown."""
    md = results_markdown(runs, finding_names)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.md").write_text(md)
    payload = {
        "config": asdict(cfg),
        "seeds": seeds,
        "finding_names": list(finding_names),
        "runs": [_run_payload(seed, run) for seed, run in zip(seeds, runs, strict=True)],
        **(extra or {}),
    }
    (out_dir / "results.json").write_text(json.dumps(payload, indent=2, default=str))
    return md
