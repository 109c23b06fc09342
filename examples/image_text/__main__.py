"""Command line of the image-text example: ``python -m examples.image_text COMMAND [options]``.

Every option is listed by ``python -m examples.image_text COMMAND --help``, grouped by what
it sets; each subcommand takes only the options it uses.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.distributed as dist

from mitools.cli.parser import did_you_mean
from mitools.option_checks import usable_cpus

from .checkpoint import check_resume, run_label
from .config import (
    DATA_LOCATIONS,
    PATH_FIELDS,
    Config,
    add_config_arguments,
    config_from_args,
    resolve_threads,
)
from .pipeline import Clock, evaluate_seeds, final_estimate, run_supervised
from .report import table_of_seeds
from .train import build_objective, pretrain, resolve_device, run_dir

__all__ = ["main"]

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


def _parser() -> argparse.ArgumentParser:
    # allow_abbrev=False here and in every add_parser (a subparser does not inherit it): a
    # shortened option is an error naming what it may mean, never silently another option
    # (evaluate --mode would have been --modes, all --seed 1 --seeds)
    parser = argparse.ArgumentParser(prog="python -m examples.image_text",
                                     description=_DESCRIPTION, epilog=_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_parser = functools.partial(sub.add_parser, allow_abbrev=False)
    seeds_help = "repeat over these seeds and average (default: --seed)"
    p = add_parser("all", help="pretrain global and local, evaluate, print the tables",
                       description="Pretrain global and local (--reduction) for each seed, "
                                   "evaluate every regime, write results.md/json and the "
                                   "cell-MI figure under --out-dir (each seed's results.json "
                                   "is replaced by this run's).")
    add_config_arguments(p, ("data", "model", "pretraining", "downstream", "run"),
                         exclude=("mode",))
    p.add_argument("--seeds", type=int, nargs="+", default=None, help=seeds_help)
    p.add_argument("--resume", action="store_true", help="continue from the epoch checkpoints")
    p = add_parser("pretrain", help="pretrain one objective (--mode, --reduction)",
                       description="Pretrain one objective; the checkpoint goes to "
                                   "OUT_DIR/seed<k>/pretrain-<global|local-REDUCTION>/.")
    add_config_arguments(p, ("data", "model", "pretraining", "run"))
    p.add_argument("--resume", action="store_true", help="continue from the epoch checkpoint")
    p = add_parser("evaluate", help="evaluate every pretraining checkpoint of a seed",
                       description="Evaluate every checkpoint under OUT_DIR/seed<k>/, or those "
                                   "of --modes (data and model settings come from the "
                                   "checkpoints, which must agree; where the data is may be "
                                   "given anew).")
    add_config_arguments(p, ("downstream", "run"))
    _add_data_locations(p)
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="evaluate these seeds (default: --seed); the summary OUT_DIR/results.md "
                        "averages every seed with results, as `table` does")
    p.add_argument("--modes", nargs="+", default=None, metavar="LABEL",
                   help="evaluate only these pretrainings, by the label of their folder "
                        "OUT_DIR/seed<k>/pretrain-LABEL: global, local-attention, local-max, "
                        "local-mean-all, ... (default: every checkpoint of the seed; "
                        "checkpoints pretrained with other settings, e.g. --epochs, must be "
                        "evaluated separately). Separate runs add up: each adds its rows to "
                        "OUT_DIR/seed<k>/results.json and .md, replacing only those of the "
                        "pretrainings it evaluates and the baselines, and the summary "
                        "OUT_DIR/results.md averages them all; rows evaluated with other "
                        "settings are refused, not mixed in")
    p = add_parser("supervised", help="labels only: does the data carry each finding?",
                       description="Train the image encoder from scratch on the labelled "
                                   "pairs (--labelled-fraction 1: all of them) and print each "
                                   "finding's test AUC.")
    add_config_arguments(p, ("data", "model", "downstream", "run"))
    p = add_parser("table", help="average the per-seed results.json of an output folder",
                       description="Average OUT_DIR/seed<k>/results.json over --seeds (by "
                                   "default every seed that has one) into OUT_DIR/results.md "
                                   "and .json.")
    p.add_argument("--out-dir", default=Config.out_dir,
                   help=f"folder of the per-seed results (default {Config.out_dir})")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="seeds to average (default: every seed with a results file, "
                        "OUT_DIR/seed<k>/results.json)")
    for name, p in sub.choices.items():
        p.set_defaults(subparser=p, command=name)
    return parser


#: ``evaluate``'s data location options: where the data of the checkpoints is now.
_LOCATION_HELP = {
    "data": "the MIMIC-CXR-JPG folder the checkpoints were pretrained on, where it is now "
            "(moved, or reached by another path)",
    "reports_root": "its reports folder, where it is now",
    "labels_csv": "its CheXpert labels CSV, where it is now",
    "edema_csv": "its edema-severity CSV, where it is now",
}


def _add_data_locations(parser: argparse.ArgumentParser) -> None:
    """``evaluate``'s options that say where the checkpoints' data is now, and where this run
    caches it; the data settings themselves (sizes, seed, image size) come from the
    checkpoints."""
    g = parser.add_argument_group(
        "data location options",
        "Paths are where files are, not what was trained: give the data's when it has moved "
        "since pretraining (default: the paths the checkpoints recorded). The cache is this "
        "run's own: never the folder a checkpoint recorded.")
    for name in DATA_LOCATIONS:
        g.add_argument("--" + name.replace("_", "-"), dest=f"cfg_{name}", default=None,
                       metavar="FOLDER" if name in ("data", "reports_root") else "CSV",
                       help=_LOCATION_HELP[name])
    g.add_argument("--cache-dir", dest="cfg_cache_dir", default=None, metavar="DIR",
                   help="folder to cache the generated data in (default: no cache, whatever "
                        "--cache-dir the checkpoints were pretrained with)")


def _data_at(args: argparse.Namespace) -> dict[str, str]:
    """The data locations given to ``evaluate`` on the command line."""
    return {k: v for k in DATA_LOCATIONS if (v := getattr(args, f"cfg_{k}", None)) is not None}


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
    """Usage errors of the options that are not settings: a seed given twice, a file in the
    place of a folder the command reads or writes, and an ``--out-dir`` it cannot write in
    (found before any work, not after the data is generated or the training done)."""
    for name in PATH_FIELDS:  # "" is no path: it would silently mean the current folder
        given = getattr(args, f"cfg_{name}", None) if cfg is not None else (
            args.out_dir if name == "out_dir" else None)
        if given is not None and not given.strip():
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} {given!r} is empty; give a path (. for the current "
                             "folder)" + (", or leave --data out for the synthetic data"
                                          if name == "data" else ""))
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
    runs = (_pretraining_runs(args, cfg)
            if cfg is not None and args.command in ("pretrain", "all") else [])
    for seed in seeds if seeds is not None else [cfg.seed if cfg is not None else 0]:
        folders.append(("--out-dir", out_dir, out_dir / f"seed{seed}"))
        folders += [("--out-dir", out_dir, run_dir(run)) for run in runs if run.seed == seed]
    checked: set[tuple[str, Path]] = set()  # folders share their existing ancestors
    for flag, given, folder in folders:
        for path in (folder, *folder.parents):
            if path.exists():
                if (flag, path) in checked:
                    break
                checked.add((flag, path))
                what = f"{flag} {given}" + ("" if path == given else f": {path}")
                if not path.is_dir():
                    raise ValueError(f"{what} is a file, not a folder; move the file away or "
                                     f"give another {flag}")
                # every command writes under --out-dir: found now, not after the work. A
                # folder is made and removed, since os.access can say yes where making one
                # fails (as root on /proc, or on a read-only mount)
                if flag == "--out-dir":
                    try:
                        os.rmdir(tempfile.mkdtemp(prefix=".write-check-", dir=path))
                    except OSError as err:
                        raise ValueError(
                            f"{what} is not writable: no folder can be made in it "
                            f"({err.strerror}: permissions, or a read-only file system); "
                            f"give another {flag}") from None
                break


def _resume_checks(args: argparse.Namespace, cfg: Config) -> None:
    """``--resume``: every checkpoint the command would continue from can be (see
    :func:`~examples.image_text.checkpoint.check_resume`), found before any data is generated
    or any run trained (``all --resume`` found a damaged local checkpoint only after
    pretraining the global run)."""
    for run in _pretraining_runs(args, cfg):
        path = run_dir(run) / "checkpoint.pt"
        if path.exists():
            check_resume(path, run)


def _pretraining_runs(args: argparse.Namespace, cfg: Config) -> list[Config]:
    """The runs ``pretrain`` (``cfg.mode``) or ``all`` (both modes) trains, seed by seed."""
    seeds = args.seeds if getattr(args, "seeds", None) is not None else [cfg.seed]
    modes = ("global", "local") if args.command == "all" else (cfg.mode,)
    return [dataclasses.replace(cfg, seed=seed, mode=mode) for seed in seeds for mode in modes]


def _unrecognized(parser: argparse.ArgumentParser, command: str, extra: Sequence[str]) -> str:
    """The usage error of arguments ``command`` does not take, naming the commands that take
    each of its options (argparse's own error named no command and showed the top-level
    usage), and the options of ``command`` a shortened or misspelled one may mean."""
    hints = []
    for arg in extra:
        option = arg.split("=", 1)[0]
        if not option.startswith("--"):
            continue
        takers = [name for name, p in _subparsers(parser).items()
                  if option in p._option_string_actions]
        hint = (f"{option} is an option of {', '.join(takers)}, not of {command}"
                if takers else f"no command takes {option}")
        # an option of other commands: only this command's options that it begins (--mode:
        # --modes), not any spelled alike (--n-test is no typo of --preset)
        meant = did_you_mean(option, _subparsers(parser)[command]._option_string_actions,
                             begun_only=bool(takers))
        hints.append(f"{hint}; {meant}" if takers and meant else
                     f"{option}: {meant}" if meant else hint)
    return (f"unrecognized arguments: {' '.join(extra)}"
            + (f" ({'; '.join(hints)}; see {parser.prog} {command} --help)" if hints else ""))


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser of each command, by name."""
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        args.subparser.error(_unrecognized(parser, args.command, extra))
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
        if cfg is not None and getattr(args, "resume", False):
            _resume_checks(args, cfg)
    except ValueError as err:  # in option terms already (and paths are not field names)
        args.subparser.error(str(err))
    try:
        if args.command == "table":
            print(table_of_seeds(args.out_dir, args.seeds))
            return 0
        assert cfg is not None
        return _run(args, cfg)
    except BrokenPipeError:  # stdout closed early (`| head`): stop, as a pipe's SIGPIPE would
        _stdout_to_devnull()
        print(f"{prog}: stopped: its output was closed (e.g. `| head`){_resume_hint(args)}",
              file=sys.stderr)
        return 141
    except (ValueError, OSError) as err:  # a runtime error: one line, no traceback
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted{_resume_hint(args)}", file=sys.stderr)
        return 130


def _summarised_seeds(summary: Path) -> str:
    """The seeds the summary ``results.md`` (its ``results.json``) averages, in words."""
    seeds = list(json.loads(summary.with_suffix(".json").read_text())["seeds"])
    return (f"the mean of seeds {', '.join(map(str, seeds))}" if len(seeds) > 1 else
            f"seed {seeds[0]} alone")


def _resume_hint(args: argparse.Namespace) -> str:
    # the interruption may come before the first epoch's checkpoint: --resume then starts anew
    return ("; rerun the same command with --resume to continue from the last epoch "
            "checkpoint (from the start where none was written yet)"
            if args.command in ("pretrain", "all") else "")


def _stdout_to_devnull() -> None:
    """After stdout was closed, send what is left to devnull, so that Python's flush at exit
    does not fail again (the recipe of Python's ``signal`` docs)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (a test's capture)
        pass


def _run(args: argparse.Namespace, cfg: Config) -> int:
    torch.set_num_threads(resolve_threads(cfg.threads))
    rank, _ = _init_distributed(cfg)
    clock = Clock(rank == 0)
    clock(f"{args.command}: preset {args.preset}, {torch.get_num_threads()} threads, "
          f"device {resolve_device(cfg.device)}")
    try:
        if args.command == "pretrain":
            out = pretrain(cfg, resume=args.resume)
            clock(f"pretrained {run_label(cfg)} ({cfg.bound}, {cfg.critic}) for {cfg.epochs} "
                  f"epochs; final MI estimate {final_estimate(out.estimates):.3f} nats; checkpoint "
                  f"{out.checkpoint}")
        elif args.command == "supervised":
            print(run_supervised(cfg, clock))
        else:
            seeds = args.seeds if args.seeds is not None else [cfg.seed]
            md = evaluate_seeds(cfg, seeds, args.command == "all",
                                 getattr(args, "resume", False), rank, clock,
                                 getattr(args, "modes", None),
                                 _data_at(args) if args.command == "evaluate" else None)
            if md is not None:
                print(md)
                summary = Path(cfg.out_dir) / "results.md"
                print(f"results: {summary} (and results.json), {_summarised_seeds(summary)}")
        clock(f"done: {clock.summary()}")
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
