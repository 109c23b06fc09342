"""The results tables (markdown, mean ± sd over seeds; one seed's values alone) and
``results.json``."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .config import Config, differing_fields
from .evaluate import RegimeResult
from .files import write_text_atomic
from .pointing import KINDS, PointingResult

__all__ = ["Run", "check_same_settings", "read_run", "results_markdown", "seeds_with_results",
           "table_of_seeds", "write_results"]

#: One seed's results: the downstream rows and the pointing rows.
Run = tuple[list[RegimeResult], list[PointingResult]]

_REGIME_NAMES = {"supervised": "Supervised only", "frozen": "Frozen + linear (pooled)",
                 "frozen_grid": "Frozen + cell-grid probe", "finetune": "Fine-tuned"}


#: Settings that may differ between the seeds averaged: the seed, the run's bookkeeping (device
#: and threads change results by float rounding only), and what names each checkpoint's row.
#: Where the files are (output, cache and data folders) is no setting at all
#: (:func:`~examples.image_text.config.differing_fields`).
_PER_SEED = ("seed", "device", "threads", "progress", "mode", "reduction", "sentences")


def check_same_settings(configs: dict[int, dict[str, Any]]) -> None:
    """Refuse to average seeds run with different settings: ``configs`` maps each seed to its
    config (a dict, as in ``results.json``); a ``ValueError`` names the seeds and the keys that
    differ, with their values (everything but :data:`_PER_SEED` must agree)."""
    (first, ref), *others = configs.items()
    for seed, cfg in others:
        keys = differing_fields(ref, cfg, ignore=_PER_SEED)
        if keys:
            shown = ", ".join(f"{k} {ref.get(k)!r} vs {cfg.get(k)!r}" for k in keys)
            raise ValueError(
                f"seeds {first} and {seed} were run with different settings ({shown}); "
                "only seeds run alike are averaged: rerun one of them with the other's settings"
            )


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


def _rows_by_label(runs: list[Run], seeds: list[int] | None) -> None:
    """Refuse runs whose rows differ: every seed must hold the same (regime, pretraining)
    rows and the same pointing rows, or a mean would mix rows or drop some."""
    seeds = seeds if seeds is not None else list(range(len(runs)))
    sets = [({(r.regime, r.pretraining) for r in res}, {p.pretraining for p in pts})
            for res, pts in runs]
    for kind, i in (("downstream", 0), ("pointing", 1)):
        union = set.union(*(s[i] for s in sets))
        missing = [f"seed {seed} lacks " + ", ".join(sorted(map(_row_name, union - s[i])))
                   for seed, s in zip(seeds, sets, strict=True) if union - s[i]]
        if missing:
            raise ValueError(
                f"the seeds do not hold the same {kind} rows ({'; '.join(missing)}), so their "
                "mean would mix or drop rows; evaluate the same pretrainings for every seed "
                "(or average only the seeds that share them)"
            )


def _row_name(key: object) -> str:
    if isinstance(key, tuple):
        return f"{_REGIME_NAMES.get(key[0], key[0])} ({key[1]})"
    return f"pointing ({key})"


def results_markdown(runs: list[Run], finding_names: tuple[str, ...],
                     seeds: list[int] | None = None) -> str:
    """The results tables (mean ± sd over the runs given, one run per seed; a single run's
    values, captioned "1 seed", without an sd it has not got). Rows are matched
    by their labels; runs that do not hold the same rows are refused (a ``ValueError`` naming
    the seeds, ``seeds``, and the rows they lack)."""
    _rows_by_label(runs, seeds)
    keys = [(r.regime, r.pretraining) for r in runs[0][0]]
    n = len(runs)
    per = {k: [{(r.regime, r.pretraining): r for r in res}[k] for res, _ in runs] for k in keys}
    # one seed has no spread: its cells are its values (_fmt), and the captions say so
    spread = "mean ± sd over seeds" if n > 1 else "1 seed"
    lines = [
        f"Downstream classification on the test split ({f'{n} seeds; ' if n > 1 else ''}"
        f"{spread}). Localized: the mean AUC of the zone opacities, effusions and "
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
    lines += ["", f"AUC per finding ({'mean over seeds' if n > 1 else spread})", "",
              "| Finding | " + " | ".join(f"{_REGIME_NAMES[k[0]]} ({k[1]})" for k in keys) + " |",
              "| --- |" + " --- |" * len(keys)]
    for j, name in enumerate(finding_names):
        cells = [_mean([r.finding_auc[j] for r in per[k]]) for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    pts0 = runs[0][1]
    if pts0:
        lines += ["", "Pointing: the highest-MI cell of a localized finding's sentence lies in "
                  f"the finding's site (hit rate; {spread})", "",
                  "| Pointer | " + " | ".join(k.capitalize() for k in KINDS) + " |",
                  "| --- |" + " --- |" * len(KINDS)]
        for p in pts0:
            ps = [{q.pretraining: q for q in pts}[p.pretraining] for _, pts in runs]
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
    md = results_markdown(runs, finding_names, seeds)
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "config": asdict(cfg),
        "seeds": seeds,
        "finding_names": list(finding_names),
        "runs": [_run_payload(seed, run) for seed, run in zip(seeds, runs, strict=True)],
        **(extra or {}),
    }
    write_text_atomic(out_dir / "results.json", json.dumps(payload, indent=2, default=str))
    write_text_atomic(out_dir / "results.md", md)
    return md


def seeds_with_results(out_dir: str | Path) -> list[int]:
    """The seeds ``k`` whose ``out_dir/seed<k>/results.json`` exists, in increasing order."""
    found = (p.parent.name[4:] for p in Path(out_dir).glob("seed*/results.json"))
    return sorted(int(k) for k in found if k.isdigit())


def table_of_seeds(out_dir: str | Path, seeds: Sequence[int] | None = None,
                   extra: dict[str, Any] | None = None) -> str:
    """``table``, and ``evaluate``'s summary: average ``seed<k>/results.json`` files (e.g. of
    seeds run in parallel processes, or evaluated one at a time) into ``out_dir/results.md``
    and ``.json``; return the markdown. ``seeds``: by default every seed with a results file
    (:func:`seeds_with_results`), so that the summary of a several-seed run is never
    rewritten with fewer seeds unasked. ``extra``: what to record beside the tables (a run's
    ``timings_s``, torch version, threads); the summary's earlier entries are kept (the
    timings only of the seeds averaged), and this run's timings added to them.

    Raises:
        FileNotFoundError: no results file of a seed (or of any seed).
        ValueError: a results file is damaged, or the seeds cannot be averaged (other
            settings, other rows); the message names them.
    """
    if seeds is None:
        seeds = seeds_with_results(out_dir)
        if not seeds:
            where = "" if Path(out_dir).is_dir() else " (no such folder)"
            raise FileNotFoundError(f"no results under {out_dir}{where}: expected "
                                    "seed<k>/results.json for some seed k; run `all` or "
                                    "`evaluate` first")
    runs, names, configs, cfgs = [], (), {}, {}
    for seed in seeds:
        path = Path(out_dir) / f"seed{seed}" / "results.json"
        if not path.exists():
            have = seeds_with_results(out_dir)
            raise FileNotFoundError(
                f"no results for seed {seed}: expected {path}; "
                + (f"seeds with results there: {', '.join(map(str, have))}" if have else
                   "no seed has results there") + " (run `evaluate` for the others)")
        names, run, configs[seed], cfgs[seed] = _read_results(path)
        runs.append(run)
    check_same_settings(configs)
    cfg = cfgs[seeds[0]]
    kept = _kept_extras(Path(out_dir) / "results.json", seeds)
    old_timings = kept.get("timings_s")
    timings = {**(old_timings if isinstance(old_timings, dict) else {}),
               **(extra or {}).get("timings_s", {})}
    return write_results(Path(out_dir), cfg, runs, names, list(seeds),
                         {**kept, **(extra or {}), **({"timings_s": timings} if timings else {})})


def _read_results(path: Path) -> tuple[tuple[str, ...], Run, dict[str, Any], Config]:
    """One seed's ``results.json``: finding names, run, config (dict and :class:`Config`).

    Raises:
        ValueError: the file is not JSON, or not a results file of this example (another
            file under its name, or one edited by hand); the message names it and says to
            delete it and rerun ``evaluate`` (or ``all``) for that seed.
    """
    def refuse(why: str) -> ValueError:
        return ValueError(f"results file {path} {why}: delete it and rerun `evaluate` (or "
                          "`all`) for that seed")

    try:
        payload = json.loads(path.read_text())
    except UnicodeDecodeError:
        raise refuse("is not text") from None
    except json.JSONDecodeError as err:
        raise refuse(f"is not valid JSON ({err})") from None
    if not isinstance(payload, dict):
        raise refuse(f"holds a JSON {type(payload).__name__}, not the object `evaluate` writes")
    missing = [k for k in ("config", "finding_names", "runs") if k not in payload]
    if missing:
        raise refuse(f"is not a results file of this example (it lacks "
                     f"{', '.join(map(repr, missing))})")
    try:
        names = tuple(str(n) for n in payload["finding_names"])
        run = read_run(payload["runs"][0])
        if not isinstance(payload["config"], dict):
            raise TypeError(f"its config is a {type(payload['config']).__name__}")
        config = dict(payload["config"])
        if not run[0]:
            raise ValueError("it has no downstream rows")
        cfg = Config(**{**config, "critic_hidden": tuple(config.get("critic_hidden", ()))})
        if any(len(r.finding_auc) != len(names) for r in run[0]):
            raise ValueError("a row's AUCs do not match its findings")
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
        raise refuse(f"is not a results file of this example ({type(err).__name__}: "
                     f"{err})") from None
    return names, run, config, cfg


def _kept_extras(path: Path, seeds: Sequence[int]) -> dict[str, object]:
    """What ``all`` recorded in ``results.json`` beside the tables (timings, torch version,
    threads), kept when ``table`` rewrites it; timings only of the seeds averaged."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):  # none yet, or unreadable: nothing to keep
        return {}
    if not isinstance(old, dict):  # not what `all` writes: nothing to keep
        return {}
    extra = {k: v for k, v in old.items()
             if k not in ("config", "seeds", "finding_names", "runs")}
    if isinstance(extra.get("timings_s"), dict):
        extra["timings_s"] = {k: v for k, v in extra["timings_s"].items()
                              if k.split("/")[0] in {f"seed{s}" for s in seeds}}
    return extra
