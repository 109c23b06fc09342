"""Run configuration: one dataclass, two presets, command-line overrides."""

from __future__ import annotations

import argparse
import dataclasses
import types
from dataclasses import dataclass, fields
from typing import Any, Union, get_args, get_origin, get_type_hints

__all__ = ["PRESETS", "Config", "add_config_arguments", "config_from_args", "make_config"]


@dataclass
class Config:
    """Everything a run depends on (saved in every checkpoint and results file).

    Data:
        data: ``"synthetic"`` or a MIMIC-CXR-JPG folder (see :mod:`examples.image_text.mimic`).
        reports_root, labels_csv, edema_csv: MIMIC-CXR paths (defaults: inside ``data``).
        n_train, n_test: synthetic pairs for pretraining and for the test set.
        data_seed: the synthetic data's seed (fixed across training seeds).
        image_size: 64, 128 or 256.
        labelled_fraction: share of the training pairs whose labels downstream training sees.
        cache_dir: where synthetic data is cached (``None``: no cache).
    Models:
        width: image encoder channels after the stem; dim: feature size D of cells, pooled
        vector and text vectors; grid: M of the M x M local block; context_kernel: 1 keeps
        cells local (see :class:`~examples.image_text.models.ImageEncoder`); text_layers,
        text_heads.
        max_sentences, max_sentence_len, max_report_len: text truncation.
    Pretraining:
        mode: ``"local"`` or ``"global"``; bound, critic: by name; reduction: ``"max"`` or
        ``"mean"`` (local mode); sentences: ``"one"`` (local mode: one random sentence per
        report and step, the paper) or ``"all"`` (every sentence of the report against every
        cell, each an estimate of its own; same objective in expectation, less variance);
        critic_hidden, critic_embed_dim, critic_cosine,
        critic_temperature: separable-critic options;
        epochs, batch_size, lr, clip_grad_norm (0: off), weight_decay, warmup_steps.
    Downstream:
        finetune_epochs, finetune_lr (encoder), head_lr_factor (heads: finetune_lr times this),
        linear_steps, linear_lr (the linear probe that every regime starts with),
        downstream_batch_size.
    Run:
        seed, out_dir, device (``"auto"``: CUDA when present), threads (0: torch default),
        progress (tqdm bars).
    """

    # data
    data: str = "synthetic"
    reports_root: str | None = None
    labels_csv: str | None = None
    edema_csv: str | None = None
    n_train: int = 3000
    n_test: int = 1000
    data_seed: int = 0
    image_size: int = 64
    labelled_fraction: float = 0.1
    cache_dir: str | None = None
    # models
    width: int = 16
    dim: int = 64
    grid: int = 8
    context_kernel: int = 1
    text_layers: int = 1
    text_heads: int = 4
    max_sentences: int = 10
    max_sentence_len: int = 20
    max_report_len: int = 80
    # pretraining
    mode: str = "local"
    bound: str = "infonce"
    critic: str = "separable"
    reduction: str = "mean"
    sentences: str = "one"
    critic_hidden: tuple[int, ...] = ()
    critic_embed_dim: int = 64
    critic_cosine: bool = False
    critic_temperature: float = 1.0
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    clip_grad_norm: float = 1.0
    weight_decay: float = 1e-4
    warmup_steps: int = 20
    # downstream
    finetune_epochs: int = 40
    finetune_lr: float = 5e-4
    head_lr_factor: float = 10.0
    linear_steps: int = 400
    linear_lr: float = 1e-2
    downstream_batch_size: int = 32
    # run
    seed: int = 0
    out_dir: str = "runs/image_text"
    device: str = "auto"
    threads: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("local", "global"):
            raise ValueError(f"mode must be 'local' or 'global', got {self.mode!r}")
        if self.reduction not in ("max", "mean", "pair_max"):
            raise ValueError(
                f"reduction must be 'max', 'mean' or 'pair_max', got {self.reduction!r}"
            )
        if self.sentences not in ("one", "all"):
            raise ValueError(f"sentences must be 'one' or 'all', got {self.sentences!r}")
        if self.sentences == "all" and self.reduction == "pair_max":
            raise ValueError("sentences='all' works with reduction 'mean' or 'max', not 'pair_max'")
        if not 0.0 < self.labelled_fraction <= 1.0:
            raise ValueError(f"labelled_fraction must be in (0, 1], got {self.labelled_fraction}")
        for name in ("n_train", "n_test", "epochs", "batch_size", "dim", "width", "grid"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size > self.n_train and self.data == "synthetic":
            raise ValueError(f"batch_size ({self.batch_size}) exceeds n_train ({self.n_train})")


#: Named presets: overrides of the defaults.
PRESETS: dict[str, dict[str, Any]] = {
    # the whole `all` run (one seed): 134 s wall on an idle 2-core CPU machine (torch 2.13)
    "quick": {},
    # the larger run: 3.3x the data, wider encoders, bigger batches (measured once on CPU:
    # see docs/image_text.rst for its table and time)
    "full": {
        "n_train": 10000,
        "n_test": 2000,
        "width": 24,
        "dim": 128,
        "text_layers": 2,
        "critic_embed_dim": 128,
        "epochs": 20,
        "batch_size": 128,
        "finetune_epochs": 30,
        "linear_steps": 800,
    },
    # a few steps of everything (tests, smoke runs)
    "tiny": {
        "n_train": 96,
        "n_test": 64,
        "width": 8,
        "dim": 16,
        "critic_embed_dim": 16,
        "epochs": 1,
        "batch_size": 32,
        "finetune_epochs": 1,
        "linear_steps": 5,
        "labelled_fraction": 0.5,
        "warmup_steps": 1,
        "progress": False,
    },
}


def make_config(preset: str = "quick", **overrides: Any) -> Config:
    """The defaults, then a preset, then ``overrides``.

    Example:
        >>> make_config("full", seed=3).n_train, make_config("full", seed=3).seed
        (10000, 3)
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    unknown = set(overrides) - {f.name for f in fields(Config)}
    if unknown:
        raise ValueError(f"unknown config fields {sorted(unknown)}")
    return Config(**{**PRESETS[preset], **overrides})


def _field_types() -> dict[str, Any]:
    return get_type_hints(Config)


def _parser_for(tp: Any) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(tp) if a is not type(None)]
        return _parser_for(inner[0])
    if tp is bool:
        return lambda s: {"1": True, "true": True, "yes": True, "0": False, "false": False,
                          "no": False}[s.lower()]
    if origin is tuple:
        return lambda s: tuple(int(v) for v in s.split(",") if v.strip())
    return tp


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--preset`` and one ``--field-name VALUE`` option per :class:`Config` field."""
    parser.add_argument("--preset", default="quick", choices=sorted(PRESETS))
    hints = _field_types()
    for f in fields(Config):
        flag = "--" + f.name.replace("_", "-")
        parser.add_argument(flag, dest=f"cfg_{f.name}", type=_parser_for(hints[f.name]),
                            default=None, metavar=f.name.upper(),
                            help=f"(default: {f.default!r}, or the preset's)")


def config_from_args(args: argparse.Namespace, **forced: Any) -> Config:
    """The :class:`Config` of parsed arguments (preset, then explicit flags, then ``forced``)."""
    overrides = {
        k[4:]: v for k, v in vars(args).items() if k.startswith("cfg_") and v is not None
    }
    overrides.update(forced)
    return make_config(args.preset, **overrides)


def replace(cfg: Config, **changes: Any) -> Config:
    """A copy of ``cfg`` with ``changes`` (validated)."""
    return dataclasses.replace(cfg, **changes)
