"""Command line of the image-text example: ``python -m examples.image_text COMMAND [options]``.

Every option is listed by ``python -m examples.image_text COMMAND --help``, grouped by what
it sets; each subcommand takes only the options it uses.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.distributed as dist

from mitools.option_checks import usable_cpus

from .checkpoint import check_finished
from .config import (
    GROUPS,
    PATH_FIELDS,
    Config,
    add_config_arguments,
    config_from_args,
    resolve_threads,
)
from .evaluate import REGIMES, RegimeResult, downstream
from .pointing import PointingResult, cell_mi_figure, pointing
from .report import Run, check_same_settings, table_of_seeds, write_results
from .train import (
    Datasets,
    build_encoders,
    build_objective,
    config_from_checkpoint,
    load_checkpoint,
    load_datasets,
    load_pretrained,
    pretrain,
    resolve_device,
    run_dir,
    run_label,
    run_label_of,
)

_DESCRIPTION = """\
Pretrain an image encoder and a text encoder on paired chest radiographs and reports by
maximising mutual information, between image cells and report sentences (local) or between
the pooled image and the report (global), then evaluate the image encoder downstream
(Liao, Moyer et al., MICCAI 2021). The default data is synthetic: nothing is downloaded."""

_EPILOG = """\
first try (about 6 s, the whole pipeline on a few images; a smoke test: its MI estimates
come out near 0 and its tables mean nothing, there is too little training):
  python -m examples.image_text all --preset tiny
the documented tables (one seed; see docs/image_text.rst for the time it takes; --threads 1
on a machine shared with other jobs):
  python -m examples.image_text all --preset quick --threads 1
  python -m examples.image_text all --preset quick --seeds 0 1 2
one pretraining, then evaluate every checkpoint of a seed (or only some: --modes), then
average seeds:
  python -m examples.image_text pretrain --mode local --reduction pair_max --seed 1
  python -m examples.image_text evaluate --seed 1
  python -m examples.image_text evaluate --seed 1 --modes global local-pair_max
  python -m examples.image_text table --seeds 0 1 2
does the data carry each finding? (fully supervised, every label; the documented run's 10
epochs, not the default DEFAULT_FT)
  python -m examples.image_text supervised --labelled-fraction 1 --finetune-epochs 10
several processes or GPUs:
  torchrun --nproc_per_node=2 -m examples.image_text pretrain --mode local""".replace(
    "DEFAULT_FT", str(Config.finetune_epochs))


class _Clock:
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


def _init_distributed(cfg: Config) -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        use_nccl = torch.cuda.is_available() and cfg.device in ("auto", "cuda")
        if use_nccl:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group("nccl" if use_nccl else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


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


def evaluate_seed(cfg: Config, ds: Datasets, clock: _Clock | None = None,
                  paths: Sequence[Path] | None = None,
                  ) -> tuple[list[RegimeResult], list[PointingResult], dict[str, float]]:
    """Every downstream regime and the pointing score for every pretraining checkpoint of a
    seed, plus the supervised and untrained baselines. Returns (rows, pointing, timings).

    ``paths``: the checkpoints to evaluate (``all`` passes the ones it has just written, so
    that older runs left in ``--out-dir``, by another preset or version, never mix in);
    ``None``: every checkpoint of the seed under ``cfg.out_dir``."""
    clock = clock or _Clock(False)
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


def _pretrain_modes(cfg: Config, ds: Datasets, resume: bool, clock: _Clock,
                    timings: dict[str, float]) -> list[Path]:
    """Pretrain global, then local MI; return the two checkpoints written."""
    paths = []
    for mcfg in (dataclasses.replace(cfg, mode="global"), dataclasses.replace(cfg, mode="local")):
        clock(f"seed {cfg.seed}: pretraining {run_label(mcfg)} ({mcfg.epochs} epochs)")
        t = time.perf_counter()
        out = pretrain(mcfg, ds, resume=resume)
        timings[f"seed{cfg.seed}/pretrain-{run_label(mcfg)}"] = time.perf_counter() - t
        clock(f"seed {cfg.seed}: {run_label(mcfg)} done, final MI estimate "
              f"{_final(out.estimates):.3f} nats")
        paths.append(run_dir(mcfg) / "checkpoint.pt")
    return paths


def _final(estimates: list[float]) -> float:
    tail = estimates[-20:]
    return sum(tail) / max(1, len(tail))


def _evaluate_seeds(cfg: Config, seeds: Sequence[int], pretrain_first: bool, resume: bool,
                    rank: int, clock: _Clock, modes: Sequence[str] | None = None) -> str | None:
    runs: list[Run] = []
    timings: dict[str, float] = {}
    names: tuple[str, ...] = ()
    found: dict[int, list[Path]] = {}
    configs: dict[int, Config] = {}
    for seed in seeds:
        scfg = dataclasses.replace(cfg, seed=seed)
        if not pretrain_first:  # evaluate: the checkpoints picked, their settings
            found[seed] = _checkpoints(scfg, modes)
            scfg = _config_of_checkpoints(scfg, found[seed])
        configs[seed] = scfg
    check_same_settings({seed: dataclasses.asdict(c) for seed, c in configs.items()})
    for seed in seeds:
        scfg = configs[seed]
        ds = load_datasets(scfg)
        clock(f"seed {seed}: data ({_sizes(ds)})")
        names = ds.finding_names
        paths = (_pretrain_modes(scfg, ds, resume, clock, timings) if pretrain_first
                 else found[seed])
        if rank != 0:
            continue
        res, pts, seed_timings = evaluate_seed(scfg, ds, clock, paths)
        timings.update({f"seed{seed}/{k}": v for k, v in seed_timings.items()})
        runs.append((res, pts))
        write_results(Path(cfg.out_dir) / f"seed{seed}", scfg, [(res, pts)], names, [seed])
    if rank != 0 or not runs:
        return None
    return write_results(Path(cfg.out_dir), cfg, runs, names, list(seeds),
                         {"timings_s": timings, "torch": torch.__version__,
                          "threads": torch.get_num_threads()})


def _config_of_checkpoints(cfg: Config, paths: Sequence[Path]) -> Config:
    """``evaluate``: data, model and pretraining settings from the checkpoints ``paths`` of a
    seed (which must agree but for the objective, ``mode`` / ``reduction`` / ``sentences``,
    and where their files are, ``--cache-dir``), the rest from ``cfg``. Checkpoints that do
    not agree are refused with the ``evaluate --modes`` commands that evaluate each group."""
    if not paths:
        raise _no_checkpoint(cfg)
    kept = GROUPS["data"] + GROUPS["model"] + tuple(
        k for k in GROUPS["pretraining"] if k not in ("mode", "reduction", "sentences"))
    compared = [k for k in kept if k not in PATH_FIELDS]
    states = [load_checkpoint(p) for p in paths]
    for path, state in zip(paths, states, strict=True):
        check_finished(path, state)
    saved = [config_from_checkpoint(state) for state in states]
    labels = [run_label_of(p) for p in paths]
    for other, path in zip(saved[1:], paths[1:], strict=True):
        differ = [k for k in compared if getattr(other, k) != getattr(saved[0], k)]
        if differ:
            alike = [label for label, s in zip(labels, saved, strict=True)
                     if not any(getattr(s, k) != getattr(saved[0], k) for k in compared)]
            shown = ", ".join(f"--{k.replace('_', '-')} {getattr(saved[0], k)!r} vs "
                              f"{getattr(other, k)!r}" for k in differ)
            command = f"python -m examples.image_text evaluate --seed {cfg.seed}" + (
                f" --out-dir {cfg.out_dir}" if cfg.out_dir != Config.out_dir else "")
            raise ValueError(
                f"{path} was pretrained with other data, model or pretraining settings than "
                f"{paths[0]} ({shown}); evaluate them separately, e.g. `{command} --modes "
                f"{' '.join(alike)}`, then `{command} --modes "
                f"{run_label_of(path)}` (each rewrites "
                f"seed{cfg.seed}/results.md and .json: copy the first away)")
    return dataclasses.replace(cfg, **{k: getattr(saved[0], k) for k in kept})


def _sizes(ds: Datasets) -> str:
    """The split sizes of the data loaded (MIMIC-CXR's, not the preset's synthetic sizes)."""
    return f"{ds.train.images.shape[0]} training, {ds.test.images.shape[0]} test pairs"


def _cmd_supervised(cfg: Config, clock: _Clock) -> str:
    """Train the image encoder with labels only and print the AUC of every finding."""
    ds = load_datasets(cfg)
    clock(f"data ({_sizes(ds)}, {cfg.labelled_fraction:.0%} of the training pairs labelled)")
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
    (out / "supervised.md").write_text(md)
    (out / "supervised.json").write_text(json.dumps(
        {"config": dataclasses.asdict(cfg), "result": {**r._asdict(),
                                                       "localized_auc": r.localized_auc}},
        indent=2, default=str))
    return md


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m examples.image_text",
                                     description=_DESCRIPTION, epilog=_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    seeds_help = "repeat over these seeds and average (default: --seed)"
    p = sub.add_parser("all", help="pretrain global and local, evaluate, print the tables",
                       description="Pretrain global and local (--reduction) for each seed, "
                                   "evaluate every regime, write results.md/json and the "
                                   "cell-MI figure under --out-dir.")
    add_config_arguments(p, ("data", "model", "pretraining", "downstream", "run"),
                         exclude=("mode",))
    p.add_argument("--seeds", type=int, nargs="+", default=None, help=seeds_help)
    p.add_argument("--resume", action="store_true", help="continue from the epoch checkpoints")
    p = sub.add_parser("pretrain", help="pretrain one objective (--mode, --reduction)",
                       description="Pretrain one objective; the checkpoint goes to "
                                   "OUT_DIR/seed<k>/pretrain-<global|local-REDUCTION>/.")
    add_config_arguments(p, ("data", "model", "pretraining", "run"))
    p.add_argument("--resume", action="store_true", help="continue from the epoch checkpoint")
    p = sub.add_parser("evaluate", help="evaluate every pretraining checkpoint of a seed",
                       description="Evaluate every checkpoint under OUT_DIR/seed<k>/, or those "
                                   "of --modes (data and model settings come from the "
                                   "checkpoints, which must agree).")
    add_config_arguments(p, ("downstream", "run"))
    p.add_argument("--seeds", type=int, nargs="+", default=None, help=seeds_help)
    p.add_argument("--modes", nargs="+", default=None, metavar="LABEL",
                   help="evaluate only these pretrainings, by the label of their folder "
                        "OUT_DIR/seed<k>/pretrain-LABEL: global, local-attention, local-max, "
                        "local-mean-all, ... (default: every checkpoint of the seed; "
                        "checkpoints pretrained with other settings, e.g. --epochs, must be "
                        "evaluated separately)")
    p = sub.add_parser("supervised", help="labels only: does the data carry each finding?",
                       description="Train the image encoder from scratch on the labelled "
                                   "pairs (--labelled-fraction 1: all of them) and print each "
                                   "finding's test AUC.")
    add_config_arguments(p, ("data", "model", "downstream", "run"))
    p = sub.add_parser("table", help="average the per-seed results.json of an output folder",
                       description="Average OUT_DIR/seed<k>/results.json over --seeds.")
    p.add_argument("--out-dir", default=Config.out_dir,
                   help=f"folder of the per-seed results (default {Config.out_dir})")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds to average")
    for name, p in sub.choices.items():
        p.set_defaults(subparser=p, command=name)
    return parser


def _option_terms(message: str) -> str:
    """A :class:`Config` error in option terms: ``n_train`` -> ``--n-train`` (a leading field
    name, and any other field name with an underscore)."""
    names = {f.name for f in dataclasses.fields(Config)}

    def flag(word: str) -> str:
        return "--" + word.replace("_", "-") if word in names else word

    head, sep, rest = message.partition(" ")
    return flag(head) + sep + re.sub(r"\b[a-z]+(?:_[a-z]+)+\b", lambda m: flag(m.group(0)),
                                     rest)


def _usage_checks(cfg: Config, command: str) -> None:
    """What can be refused before any data is generated: the device, the threads, and the
    objectives."""
    resolve_device(cfg.device)
    cores = usable_cpus()
    if cfg.threads > cores:
        raise ValueError(f"threads {cfg.threads} is more than the {cores} cores this process "
                         f"may use, which only slows it down; give at most {cores} (0: the "
                         "default, the smaller of 4 and the cores)")
    if command in ("pretrain", "all"):
        for mode in (cfg.mode,) if command == "pretrain" else ("global", "local"):
            build_objective(dataclasses.replace(cfg, mode=mode))


def _argument_checks(args: argparse.Namespace, cfg: Config | None) -> None:
    """Usage errors of the options that are not settings: a seed given twice, and a file in
    the place of a folder the command reads or writes (found before any work, not after the
    data is generated)."""
    seeds = getattr(args, "seeds", None)
    if seeds is not None:
        twice = sorted({s for s in seeds if seeds.count(s) > 1})
        if twice:
            raise ValueError(f"--seeds {' '.join(map(str, seeds))}: seed "
                             f"{', '.join(map(str, twice))} is given more than once; give "
                             "each seed once (a repeat would count as another seed)")
    out_dir = Path(cfg.out_dir if cfg is not None else args.out_dir)
    folders = [("--out-dir", out_dir, out_dir)]
    if cfg is not None and cfg.cache_dir is not None:
        folders.append(("--cache-dir", Path(cfg.cache_dir), Path(cfg.cache_dir)))
    for seed in seeds if seeds is not None else [cfg.seed if cfg is not None else 0]:
        folders.append(("--out-dir", out_dir, out_dir / f"seed{seed}"))
        if cfg is not None and args.command in ("pretrain", "all"):
            modes = ("global", "local") if args.command == "all" else (cfg.mode,)
            folders += [("--out-dir", out_dir,
                         run_dir(dataclasses.replace(cfg, seed=seed, mode=m))) for m in modes]
    for flag, given, folder in folders:
        for path in (folder, *folder.parents):
            if path.exists():
                if not path.is_dir():
                    what = f"{flag} {given}" + ("" if path == given else f": {path}")
                    raise ValueError(f"{what} is a file, not a folder; move the file away or "
                                     f"give another {flag}")
                break


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    prog = f"{parser.prog} {args.command}"
    cfg = None
    if args.command != "table":
        try:
            cfg = config_from_args(args)
            _usage_checks(cfg, args.command)
        except ValueError as err:  # a usage error: exit 2, with the command's usage line
            args.subparser.error(_option_terms(str(err)))
    try:
        _argument_checks(args, cfg)
    except ValueError as err:  # in option terms already (and paths are not field names)
        args.subparser.error(str(err))
    try:
        if args.command == "table":
            print(table_of_seeds(args.out_dir, args.seeds))
            return 0
        assert cfg is not None
        return _run(args, cfg)
    except (ValueError, OSError) as err:  # a runtime error: one line, no traceback
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        hint = ("; rerun the same command with --resume to continue from the last epoch "
                "checkpoint" if args.command in ("pretrain", "all") else "")
        print(f"{prog}: interrupted{hint}", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace, cfg: Config) -> int:
    torch.set_num_threads(resolve_threads(cfg.threads))
    rank, _ = _init_distributed(cfg)
    clock = _Clock(rank == 0)
    clock(f"{args.command}: preset {args.preset}, {torch.get_num_threads()} threads, "
          f"device {resolve_device(cfg.device)}")
    try:
        if args.command == "pretrain":
            out = pretrain(cfg, resume=args.resume)
            clock(f"pretrained {run_label(cfg)} ({cfg.bound}, {cfg.critic}) for {cfg.epochs} "
                  f"epochs; final MI estimate {_final(out.estimates):.3f} nats; checkpoint "
                  f"{out.checkpoint}")
        elif args.command == "supervised":
            print(_cmd_supervised(cfg, clock))
        else:
            seeds = args.seeds if args.seeds is not None else [cfg.seed]
            md = _evaluate_seeds(cfg, seeds, args.command == "all",
                                 getattr(args, "resume", False), rank, clock,
                                 getattr(args, "modes", None))
            if md is not None:
                print(md)
                print(f"results: {Path(cfg.out_dir) / 'results.md'} (and results.json)")
        clock(f"done: {clock.summary()}")
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
