"""Pretraining checkpoints: where a run's is, reading them safely, their settings, and what
may resume them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import Config, differing_fields
from .files import load_tensor_file

__all__ = ["check_finished", "check_resumable", "check_resume", "config_from_checkpoint",
           "load_checkpoint", "load_weights", "run_dir", "run_label", "run_label_of"]


def run_label(cfg: Config) -> str:
    """The pretraining's name in tables and folders: ``global``, ``local-attention``,
    ``local-mean-all`` (``--sentences all``), ..."""
    if cfg.mode == "global":
        return "global"
    return f"local-{cfg.reduction}" + ("-all" if cfg.sentences == "all" else "")


def run_dir(cfg: Config) -> Path:
    """``<out_dir>/seed<seed>/pretrain-<label>`` (:func:`run_label`)."""
    return Path(cfg.out_dir) / f"seed{cfg.seed}" / f"pretrain-{run_label(cfg)}"


def run_label_of(checkpoint: Path) -> str:
    """The :func:`run_label` of a checkpoint in its :func:`run_dir`, from the folder's name.

    Example:
        >>> run_label_of(Path("runs/seed0/pretrain-local-attention/checkpoint.pt"))
        'local-attention'
    """
    return checkpoint.parent.name.removeprefix("pretrain-")


def load_checkpoint(path: str | Path, device: torch.device | str | None = None, *,
                    resuming: bool = False) -> dict[str, Any]:
    """Read a checkpoint written by ``pretrain``: tensors and plain Python values only.
    ``resuming``: read to be resumed (``--resume``): a refusal says what to do in those
    terms.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is damaged (truncated, or not a torch file), or holds other
            objects (it was not written by this example, or was altered; unpickling those
            could run arbitrary code, so it is not loaded): see ``examples.image_text.files``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no pretraining checkpoint at {path}; run `pretrain` first")
    remedy = _RESUME_REMEDY if resuming else _REMEDY
    state = load_tensor_file(path, "checkpoint", remedy, device)
    _check_structure(path, state, remedy)
    return state


_REMEDY = ("delete it (or its run folder) and rerun `pretrain`, or `pretrain --resume`, which "
           "starts that run anew")
#: What to do with a checkpoint ``--resume`` cannot continue from.
_RESUME_REMEDY = ("--resume expected the checkpoint `pretrain` writes after every epoch; "
                  "delete it (then --resume starts that run anew), or rerun without --resume "
                  "(every run starts anew and replaces its checkpoint)")
#: What every checkpoint ``pretrain`` writes holds, and the type of each entry.
_ENTRIES: dict[str, type | tuple[type, ...]] = {
    "epoch": int, "config": dict, "vocab": (tuple, list), "model": dict, "objective": dict,
    "optimizer": dict, "scheduler": dict, "rng": dict, "losses": list, "estimates": list}


def _check_structure(path: Path, state: Any, remedy: str) -> None:
    """Refuse a torch file that is not a pretraining checkpoint (another file saved under its
    name): a ``ValueError`` naming it, where a ``KeyError`` deep in the pipeline came before."""
    if not isinstance(state, dict):
        wrong = f"it holds a {type(state).__name__}, not a dict"
    else:
        missing = [k for k in _ENTRIES if k not in state]
        bad = [k for k, t in _ENTRIES.items() if k in state and not isinstance(state[k], t)]
        wrong = (f"it lacks {', '.join(map(repr, missing))}" if missing else
                 f"its {', '.join(map(repr, bad))} {'is' if len(bad) == 1 else 'are'} of the "
                 "wrong type" if bad else "")
        if not wrong:
            try:
                config_from_checkpoint(state)
            except (KeyError, TypeError, ValueError) as err:
                wrong = f"its settings are not this example's ({err})"
    if wrong:
        raise ValueError(f"checkpoint {path} is not a pretraining checkpoint of this example "
                         f"({wrong}): {remedy}")


def config_from_checkpoint(state: dict[str, Any]) -> Config:
    """The :class:`Config` stored (as a dict) in a checkpoint."""
    cfg_dict = dict(state["config"])
    cfg_dict["critic_hidden"] = tuple(cfg_dict["critic_hidden"])
    known = {f for f in Config.__dataclass_fields__}
    return Config(**{k: v for k, v in cfg_dict.items() if k in known})


def load_weights(path: str | Path, state: dict[str, Any], model: nn.Module,
                  objective: nn.Module) -> None:
    try:
        model.load_state_dict(state["model"])
        objective.load_state_dict(state["objective"])
    except RuntimeError as err:  # weights of another architecture (an older version's run)
        lines = str(err).splitlines()  # torch's heading, then one line per difference
        raise ValueError(
            f"{path}: its weights do not fit the model its saved settings describe in this "
            f"version of the example (first difference: {lines[min(1, len(lines) - 1)].strip()}); "
            "it was written by another version: delete its folder or use another --out-dir"
        ) from None


#: What a resumed run may change: the epochs to extend to and how it runs. Where its files are
#: is no setting (:func:`~examples.image_text.config.differing_fields`): a copied or moved
#: output folder, or the same data through another path, resumes.
_RESUME_FREE = ("epochs", "device", "threads", "progress")


def check_resumable(path: Path, state: dict[str, Any], cfg: Config) -> None:
    """Refuse to resume a checkpoint with other settings than ``cfg`` (it would go on under
    another objective or schedule, or mislabel the run), or with fewer epochs than it has."""
    saved = config_from_checkpoint(state)
    differ = differing_fields(saved, cfg, ignore=_RESUME_FREE)
    shown = ", ".join(f"--{k.replace('_', '-')} {getattr(saved, k)!r} in the checkpoint, "
                      f"{getattr(cfg, k)!r} now" for k in differ)
    if (saved.seed, run_label(saved)) != (cfg.seed, run_label(cfg)):  # copied or moved here
        raise ValueError(
            f"cannot resume {path}: it is the checkpoint of another run than the one its "
            f"folder is for ({shown}): it was copied or moved there; delete it, or move it "
            "back to its own folder, then rerun (without it, --resume starts that run anew)")
    if differ:
        raise ValueError(
            f"cannot resume {path}: it was pretrained with other settings ({shown}); resume "
            "with the checkpoint's settings (only --epochs may be raised, to extend the run), "
            "or use another --out-dir"
        )
    done = int(state["epoch"]) + 1
    if cfg.epochs < done:
        raise ValueError(
            f"cannot resume {path} to --epochs {cfg.epochs}: it has done {done} epochs "
            f"already; resume with --epochs {done} or more"
        )


def check_resume(path: Path, cfg: Config) -> None:
    """Refuse, before any work, a checkpoint ``path`` that ``--resume`` cannot continue the
    run ``cfg`` from: a damaged file, another torch file, the checkpoint of another run
    (copied or moved into this run's folder), or one of other settings (:func:`check_resumable`).
    Each ``ValueError`` names the file and says what to do."""
    check_resumable(path, load_checkpoint(path, resuming=True), cfg)


def check_finished(path: str | Path, state: dict[str, Any]) -> None:
    """Refuse a checkpoint whose run stopped before its last epoch (an interrupted run): its
    scores would be read as those of the run its settings describe."""
    done, planned = int(state["epoch"]) + 1, int(state["config"]["epochs"])
    if done < planned:
        raise ValueError(
            f"{path} has done {done} of its {planned} epochs (an interrupted run); finish it "
            "with the `pretrain` (or `all`) command that wrote it plus --resume, then evaluate"
        )
