"""Command line: ``python -m examples.image_text {all,pretrain,evaluate} [options]``.

Examples::

    python -m examples.image_text all --preset quick              # ~5 min on 2 CPU cores
    python -m examples.image_text all --preset quick --seeds 0 1 2
    python -m examples.image_text pretrain --mode local --epochs 10 --resume
    python -m examples.image_text evaluate --out-dir runs/image_text
    python -m examples.image_text table --seeds 0 1 2    # average seeds run separately
    torchrun --nproc_per_node=2 -m examples.image_text pretrain --mode local

Every :class:`~examples.image_text.config.Config` field is an option (``--batch-size 128``,
``--bound dv``, ``--critic bilinear``, ``--data /path/to/mimic-cxr-jpg``, ...).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.distributed as dist

from .config import Config, add_config_arguments, config_from_args
from .evaluate import (
    PointingResult,
    RegimeResult,
    cell_mi_figure,
    downstream,
    pointing,
    write_results,
)
from .objective import MODES
from .train import (
    Datasets,
    build_encoders,
    build_objective,
    load_datasets,
    load_pretrained,
    pretrain,
    resolve_device,
    run_dir,
)


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


def evaluate_seed(cfg: Config, ds: Datasets, modes: Sequence[str] = MODES,
                  ) -> tuple[list[RegimeResult], list[PointingResult], dict[str, float]]:
    """Every downstream regime and the pointing score for the pretrained checkpoints of a seed."""
    device = resolve_device(cfg.device)
    timings: dict[str, float] = {}
    results = []
    t = time.perf_counter()
    results.append(downstream(cfg, ds, "supervised"))
    timings["supervised"] = time.perf_counter() - t
    pts = []
    models = {}
    # untrained encoders and critic: what the architecture gives before any training
    torch.manual_seed(cfg.seed)
    untrained = build_encoders(cfg, len(ds.tokenizer)).to(device)
    untrained_obj = build_objective(dataclasses.replace(cfg, mode="local")).to(device)
    results.append(downstream(cfg, ds, "frozen", untrained, pretraining="untrained"))
    pts.append(pointing(cfg, ds, untrained, untrained_obj, "untrained"))
    for mode in modes:
        path = run_dir(cfg, mode) / "checkpoint.pt"
        model, objective, pcfg = load_pretrained(path, device)
        label = "global"
        if mode == "local":
            extra = ", all sentences" if pcfg.sentences == "all" else ""
            label = f"local ({pcfg.reduction}{extra})"
        models[label] = (model.to(device), objective.to(device))
        for regime in ("frozen", "finetune"):
            t = time.perf_counter()
            results.append(downstream(cfg, ds, regime, model, pretraining=label))
            timings[f"{regime}-{mode}"] = time.perf_counter() - t
        pts.append(pointing(cfg, ds, model, objective, label))
    # the same rows in the same order for every seed
    order = {"supervised": 0, "frozen": 1, "finetune": 2}
    kind = {"untrained": 0, "global": 1}
    results.sort(key=lambda r: (order[r.regime], kind.get(r.pretraining, 2)))
    fig = cell_mi_figure(Path(cfg.out_dir) / f"seed{cfg.seed}" / "cell_mi.png", ds, models, device)
    if fig is not None:
        print(f"figure: {fig}")
    return results, pts, timings


def _cmd_pretrain(cfg: Config, resume: bool) -> None:
    t = time.perf_counter()
    out = pretrain(cfg, resume=resume)
    if not dist.is_initialized() or dist.get_rank() == 0:
        print(f"pretrained {cfg.mode} ({cfg.bound}, {cfg.critic}) for {cfg.epochs} epochs in "
              f"{time.perf_counter() - t:.1f}s; final MI estimate "
              f"{sum(out.estimates[-20:]) / max(1, len(out.estimates[-20:])):.3f} nats; "
              f"checkpoint {out.checkpoint}")


def _evaluate_seeds(cfg: Config, seeds: Sequence[int], pretrain_first: bool, resume: bool,
                    rank: int) -> str | None:
    runs, all_timings = [], {}
    ds = None
    for seed in seeds:
        scfg = dataclasses.replace(cfg, seed=seed)
        ds = load_datasets(scfg)
        if pretrain_first:
            for mode in MODES:
                t = time.perf_counter()
                mcfg = dataclasses.replace(scfg, mode=mode,
                                           reduction=cfg.reduction if mode == "local" else "mean")
                pretrain(mcfg, ds, resume=resume)
                all_timings[f"seed{seed}/pretrain-{mode}"] = time.perf_counter() - t
        if rank != 0:
            continue
        modes = [m for m in MODES if (run_dir(scfg, m) / "checkpoint.pt").exists()]
        if not modes:
            raise FileNotFoundError(
                f"no pretraining checkpoint under {Path(cfg.out_dir) / f'seed{seed}'}; "
                "run `pretrain` (or `all`) first"
            )
        res, pts, timings = evaluate_seed(scfg, ds, modes)
        all_timings.update({f"seed{seed}/{k}": v for k, v in timings.items()})
        runs.append((res, pts))
        write_results(Path(cfg.out_dir) / f"seed{seed}", scfg, [(res, pts)], _names(ds), [seed])
    if rank != 0 or ds is None:
        return None
    return write_results(Path(cfg.out_dir), cfg, runs, _names(ds), list(seeds),
                         {"timings_s": all_timings, "torch": torch.__version__,
                          "threads": torch.get_num_threads()})


def _names(ds: Datasets) -> tuple[str, ...]:
    return ds.finding_names


def _cmd_table(cfg: Config, seeds: Sequence[int]) -> str:
    """Aggregate ``seed<k>/results.json`` files (e.g. of seeds run in parallel processes)."""
    import json

    runs, names = [], ()
    for seed in seeds:
        path = Path(cfg.out_dir) / f"seed{seed}" / "results.json"
        if not path.exists():
            raise FileNotFoundError(f"no results for seed {seed}: expected {path}")
        payload = json.loads(path.read_text())
        names = tuple(payload["finding_names"])
        run = payload["runs"][0]
        res = [RegimeResult(r["regime"], r["pretraining"], r["edema_auc"], r["edema_accuracy"],
                            tuple(r["finding_auc"])) for r in run["downstream"]]
        pts = [PointingResult(**p) for p in run["pointing"]]
        runs.append((res, pts))
    return write_results(Path(cfg.out_dir), cfg, runs, names, list(seeds))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.image_text",
                                     description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_all = sub.add_parser("all", help="pretrain local and global, evaluate, print the table")
    p_pre = sub.add_parser("pretrain", help="pretrain one mode (--mode local|global)")
    p_eval = sub.add_parser("evaluate", help="evaluate the pretrained checkpoints of out_dir")
    p_tab = sub.add_parser("table", help="average the per-seed results.json of out_dir")
    for p in (p_all, p_pre, p_eval, p_tab):
        add_config_arguments(p)
    for p in (p_all, p_eval, p_tab):
        p.add_argument("--seeds", type=int, nargs="+", default=None,
                       help="repeat over these seeds and average (default: --seed)")
    for p in (p_all, p_pre):
        p.add_argument("--resume", action="store_true",
                       help="continue from the last epoch checkpoint")
    args = parser.parse_args(argv)
    cfg = config_from_args(args)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    rank, _ = _init_distributed(cfg)
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        if args.command == "pretrain":
            _cmd_pretrain(cfg, args.resume)
        elif args.command == "table":
            print(_cmd_table(cfg, args.seeds if args.seeds is not None else [cfg.seed]))
        else:
            seeds = args.seeds if args.seeds is not None else [cfg.seed]
            md = _evaluate_seeds(cfg, seeds, args.command == "all",
                                 getattr(args, "resume", False), rank)
            if md is not None:
                print(md)
                print(f"results: {Path(cfg.out_dir) / 'results.md'} (and results.json); "
                      f"total {time.perf_counter() - t0:.0f}s wall, "
                      f"{time.process_time() - c0:.0f}s CPU, {torch.get_num_threads()} threads")
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
