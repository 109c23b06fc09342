"""The per-seed pipeline behind the example's commands: pretrain global and local MI, evaluate
every pretraining checkpoint of a seed downstream, average seeds, and the supervised-only run.

The command line (:mod:`examples.image_text.__main__`) parses and checks the options, then
calls these.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from .checkpoint import check_finished, run_label, run_label_of
from .config import DATA_LOCATIONS, GROUPS, PATH_FIELDS, Config, differing_fields
from .evaluate import REGIMES, RegimeResult, downstream
from .files import write_text_atomic
from .pointing import PointingResult, cell_mi_figure, pointing
from .report import Run, check_same_settings, table_of_seeds, write_results
from .seed_results import BASELINES, check_mergeable, write_seed_results
from .train import (
    Datasets,
    build_encoders,
    build_objective,
    check_labelled,
    config_from_checkpoint,
    load_checkpoint,
    load_datasets,
    load_pretrained,
    pretrain,
    resolve_device,
    run_dir,
)


class Clock:
    """Prints one line per phase with the elapsed wall time (rank 0 only)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def __call__(self, message: str) -> None:
        if self.enabled:
            s = int(time.perf_counter() - self.t0)
            print(f"[{s // 60:3d}:{s % 60:02d}] {message}", flush=True)

    def summary(self) -> str:
        wall, cpu = time.perf_counter() - self.t0, time.process_time() - self.c0
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        return (f"total {wall:.0f} s wall, {cpu:.0f} s CPU, {torch.get_num_threads()} threads, "
                f"load average {load:.1f}")


def _checkpoints(cfg: Config, modes: Sequence[str] | None = None) -> list[Path]:
    """The pretraining checkpoints of ``cfg.seed``: global first, then the local ones; with
    ``modes`` (run labels, ``global``, ``local-attention``, ...: ``evaluate --modes``) only
    those, each of which must exist."""
    seed_dir = Path(cfg.out_dir) / f"seed{cfg.seed}"
    found = sorted(seed_dir.glob("pretrain-*/checkpoint.pt"))
    found = sorted(found, key=lambda p: p.parent.name != "pretrain-global")
    if modes is None:
        return found
    have = [run_label_of(p) for p in found]
    missing = [m for m in modes if m not in have]
    if missing:
        raise FileNotFoundError(
            f"--modes {' '.join(missing)}: no such checkpoint under {seed_dir} (expected "
            f"{seed_dir / f'pretrain-{missing[0]}' / 'checkpoint.pt'}); this seed has "
            f"{', '.join(have) or 'none'}")
    return [p for p, label in zip(found, have, strict=True) if label in modes]


def _no_checkpoint(cfg: Config) -> FileNotFoundError:
    return FileNotFoundError(f"no pretraining checkpoint under {Path(cfg.out_dir)}/"
                             f"seed{cfg.seed}; run `pretrain` (or `all`) first")


def evaluate_seed(cfg: Config, ds: Datasets, clock: Clock | None = None,
                  paths: Sequence[Path] | None = None,
                  ) -> tuple[list[RegimeResult], list[PointingResult], dict[str, float]]:
    """Every downstream regime and the pointing score for every pretraining checkpoint of a
    seed, plus the supervised and untrained baselines. Returns (rows, pointing, timings).

    ``paths``: the checkpoints to evaluate (``all`` passes the ones it has just written, so
    that older runs left in ``--out-dir``, by another preset or version, never mix in);
    ``None``: every checkpoint of the seed under ``cfg.out_dir``."""
    clock = clock or Clock(False)
    device = resolve_device(cfg.device)
    timings: dict[str, float] = {}
    paths = list(paths) if paths is not None else _checkpoints(cfg)
    if not paths:
        raise _no_checkpoint(cfg)
    # every checkpoint loaded (and an interrupted one refused) before any training starts
    pretrained = [load_pretrained(path, device, finished=True) for path in paths]

    def timed(key: str, fn, *args, **kwargs):
        t = time.perf_counter()
        out = fn(*args, **kwargs)
        timings[key] = time.perf_counter() - t
        return out

    clock(f"seed {cfg.seed}: supervised training from scratch on the labelled pairs")
    results = [timed("supervised", downstream, cfg, ds, "supervised")]
    # untrained encoders and critic: what the architecture gives before any training
    torch.manual_seed(cfg.seed)
    encoders = {"untrained": (build_encoders(cfg, len(ds.tokenizer)).to(device),
                              build_objective(dataclasses.replace(cfg, mode="local",
                                                                  reduction="mean")).to(device))}
    for model, objective, pcfg in pretrained:
        encoders[run_label(pcfg)] = (model.to(device), objective.to(device))
    pts = []
    for label, (model, objective) in encoders.items():
        regimes = ("frozen", "frozen_grid") if label == "untrained" else REGIMES[1:]
        clock(f"seed {cfg.seed}: evaluating {label} ({', '.join(regimes)}, pointing)")
        for regime in regimes:
            results.append(timed(f"{regime}-{label}", downstream, cfg, ds, regime, model,
                                 pretraining=label))
        pts.append(timed(f"pointing-{label}", pointing, cfg, ds, model, objective, label))
    # the same rows in the same order for every seed
    labels = list(encoders)
    results.sort(key=lambda r: (REGIMES.index(r.regime),
                                labels.index(r.pretraining) if r.pretraining in labels else -1))
    figure = cell_mi_figure(Path(cfg.out_dir) / f"seed{cfg.seed}" / "cell_mi.png", ds,
                            {k: v for k, v in encoders.items() if k != "untrained"}, device)
    if figure is not None:
        clock(f"seed {cfg.seed}: figure {figure}")
    return results, pts, timings


def _pretrain_modes(cfg: Config, ds: Datasets, resume: bool, clock: Clock,
                    timings: dict[str, float]) -> list[Path]:
    """Pretrain global, then local MI; return the two checkpoints written."""
    paths = []
    for mcfg in (dataclasses.replace(cfg, mode="global"), dataclasses.replace(cfg, mode="local")):
        clock(f"seed {cfg.seed}: pretraining {run_label(mcfg)} ({mcfg.epochs} epochs)")
        t = time.perf_counter()
        out = pretrain(mcfg, ds, resume=resume)
        timings[f"seed{cfg.seed}/pretrain-{run_label(mcfg)}"] = time.perf_counter() - t
        clock(f"seed {cfg.seed}: {run_label(mcfg)} done, final MI estimate "
              f"{final_estimate(out.estimates):.3f} nats")
        paths.append(run_dir(mcfg) / "checkpoint.pt")
    return paths


def final_estimate(estimates: list[float]) -> float:
    """The mean of the last 20 logged MI estimates of a pretraining (nats): the value the
    phase lines print."""
    tail = estimates[-20:]
    return sum(tail) / max(1, len(tail))


def evaluate_seeds(cfg: Config, seeds: Sequence[int], pretrain_first: bool, resume: bool,
                   rank: int, clock: Clock, modes: Sequence[str] | None = None,
                   data_at: Mapping[str, str] | None = None) -> str | None:
    """``all`` (``pretrain_first``: pretrain global and local first) or ``evaluate`` (the
    checkpoints of ``modes``, by default all) for every seed: write each seed's results and,
    on rank 0, the averaged ``results.md``/``.json`` under ``cfg.out_dir``, returning its
    Markdown (``None`` on other ranks): for ``all`` the mean of its ``seeds``, whose results
    are one whole run; for ``evaluate`` the mean of every seed with results there, evaluated
    now or before (:func:`~examples.image_text.report.table_of_seeds`, as ``table``).
    ``data_at``: ``evaluate``'s data locations given on the command line
    (:data:`~examples.image_text.config.DATA_LOCATIONS`, e.g. ``{"data":
    "/mnt/mimic-cxr-jpg"}``), used instead of those the checkpoints recorded."""
    runs: list[Run] = []
    timings: dict[str, float] = {}
    names: tuple[str, ...] = ()
    found: dict[int, list[Path]] = {}
    configs: dict[int, Config] = {}
    for seed in seeds:
        scfg = dataclasses.replace(cfg, seed=seed)
        if not pretrain_first:  # evaluate: the checkpoints picked, their settings
            found[seed] = _checkpoints(scfg, modes)
            scfg = _config_of_checkpoints(scfg, found[seed], data_at or {})
        configs[seed] = scfg
    check_same_settings({seed: dataclasses.asdict(c) for seed, c in configs.items()})
    if not pretrain_first:  # evaluate adds its rows to each seed's results: can it?
        for seed in seeds:
            check_mergeable(Path(cfg.out_dir) / f"seed{seed}", configs[seed],
                            {*BASELINES, *map(run_label_of, found[seed])})
    for seed in seeds:
        scfg = configs[seed]
        try:
            ds = load_datasets(scfg)
        except FileNotFoundError as err:
            if pretrain_first or scfg.data == "synthetic":
                raise
            raise FileNotFoundError(f"{err}; if the data has moved since pretraining, give "
                                    "`evaluate` --data (and --reports-root, --labels-csv, "
                                    "--edema-csv if given then) where it is now") from None
        clock(f"seed {seed}: data ({_sizes(ds)})")
        check_labelled(scfg, ds)  # before pretraining: downstream needs labels, pretrain none
        names = ds.finding_names
        paths = (_pretrain_modes(scfg, ds, resume, clock, timings) if pretrain_first
                 else found[seed])
        if rank != 0:
            continue
        res, pts, seed_timings = evaluate_seed(scfg, ds, clock, paths)
        timings.update({f"seed{seed}/{k}": v for k, v in seed_timings.items()})
        # evaluate: with the rows earlier runs (other --modes) wrote for the seed
        runs.append(write_seed_results(Path(cfg.out_dir) / f"seed{seed}", scfg, (res, pts),
                                       names, seed, merge=not pretrain_first))
    if rank != 0 or not runs:
        return None
    extra = {"timings_s": timings, "torch": torch.__version__,
             "threads": torch.get_num_threads()}
    try:
        if pretrain_first:  # all: its seeds' results are one whole run, summarised alone
            return write_results(Path(cfg.out_dir), cfg, runs, names, list(seeds), extra)
        # evaluate: the summary of every seed with results, as `table` writes it, not only
        # of the seeds this run evaluated (`evaluate --seed 1` wrote seed 1 alone)
        return table_of_seeds(cfg.out_dir, extra=extra)
    except ValueError as err:  # the seeds' merged rows differ: no mean of them yet
        raise ValueError(f"each seed's results are written ({Path(cfg.out_dir)}/seed<k>/"
                         f"results.md and .json), but not their mean: {err}"
                         + ("" if pretrain_first else "; or average the seeds that agree "
                            "with `table --seeds ...`")) from None


def _config_of_checkpoints(cfg: Config, paths: Sequence[Path],
                           data_at: Mapping[str, str]) -> Config:
    """``evaluate``: data, model and pretraining settings from the checkpoints ``paths`` of a
    seed (which must agree but for the objective, ``mode`` / ``reduction`` / ``sentences``,
    and where their files are), the rest from ``cfg``. Checkpoints that do not agree are
    refused with the ``evaluate --modes`` commands that evaluate each group.

    Where the data is: ``data_at`` (the locations given to ``evaluate``), else the first
    checkpoint's; a folder given for data pretrained on the synthetic data, or the reverse, is
    refused. Where files are written (``out_dir``, ``cache_dir``) always comes from ``cfg``,
    never from a checkpoint: a copied or moved output folder writes only under its new place
    (and its data cache under this run's ``--cache-dir``, if any)."""
    if not paths:
        raise _no_checkpoint(cfg)
    kept = GROUPS["data"] + GROUPS["model"] + tuple(
        k for k in GROUPS["pretraining"] if k not in ("mode", "reduction", "sentences"))
    states = [load_checkpoint(p) for p in paths]
    for path, state in zip(paths, states, strict=True):
        check_finished(path, state)
    saved = [config_from_checkpoint(state) for state in states]
    labels = [run_label_of(p) for p in paths]

    def differ_from_first(other: Config) -> list[str]:
        return [k for k in differing_fields(saved[0], other) if k in kept]

    for other, path in zip(saved[1:], paths[1:], strict=True):
        differ = differ_from_first(other)
        if differ:
            alike = [label for label, s in zip(labels, saved, strict=True)
                     if not differ_from_first(s)]
            shown = ", ".join(f"--{k.replace('_', '-')} {getattr(saved[0], k)!r} vs "
                              f"{getattr(other, k)!r}" for k in differ)
            command = f"python -m examples.image_text evaluate --seed {cfg.seed}" + (
                f" --out-dir {shlex.quote(str(cfg.out_dir))}" if cfg.out_dir != Config.out_dir
                else "")  # quoted: a folder with spaces gives a command that runs
            raise ValueError(
                f"{path} was pretrained with other data, model or pretraining settings than "
                f"{paths[0]} ({shown}); evaluate them separately, e.g. `{command} --modes "
                f"{' '.join(alike)}`, then `{command} --modes "
                f"{run_label_of(path)}` (results of other settings cannot share "
                f"seed{cfg.seed}/results.json: move the first's away before the second)")
    located = {k: data_at.get(k, getattr(saved[0], k)) for k in DATA_LOCATIONS}
    if "data" in differing_fields(saved[0], {**dataclasses.asdict(saved[0]), **located}):
        raise ValueError(
            f"--data {located['data']}: {paths[0]} was pretrained on "
            f"{'the synthetic data' if saved[0].data == 'synthetic' else 'a folder'} "
            f"({saved[0].data!r}); --data says where that data is now, it cannot change it")
    return dataclasses.replace(cfg, **{k: getattr(saved[0], k) for k in kept
                                       if k not in PATH_FIELDS}, **located)


def _sizes(ds: Datasets) -> str:
    """The split sizes of the data loaded (MIMIC-CXR's, not the preset's synthetic sizes)."""
    return f"{ds.train.images.shape[0]} training, {ds.test.images.shape[0]} test pairs"


def run_supervised(cfg: Config, clock: Clock) -> str:
    """Train the image encoder with labels only and print the AUC of every finding."""
    ds = load_datasets(cfg)
    clock(f"data ({_sizes(ds)}, {cfg.labelled_fraction:.0%} of the training pairs labelled)")
    check_labelled(cfg, ds)
    clock(f"supervised training, {cfg.finetune_epochs} epochs on {ds.labelled.numel()} pairs")
    r = downstream(cfg, ds, "supervised")
    lines = [f"Supervised only, {ds.labelled.numel()} labelled pairs, {cfg.finetune_epochs} "
             f"epochs (seed {cfg.seed})", "", "| Finding | AUC |", "| --- | --- |"]
    lines += [f"| {n} | {a:.3f} |" for n, a in zip(ds.finding_names, r.finding_auc, strict=True)]
    lines += [f"| edema (macro) | {r.edema_auc:.3f} |",
              f"| zone accuracy | {r.zone_accuracy:.3f} |"]
    md = "\n".join(lines) + "\n"
    out = Path(cfg.out_dir) / f"seed{cfg.seed}"
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "supervised.json", json.dumps(
        {"config": dataclasses.asdict(cfg), "result": {**r._asdict(),
                                                       "localized_auc": r.localized_auc}},
        indent=2, default=str))
    write_text_atomic(out / "supervised.md", md)
    return md
