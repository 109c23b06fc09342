"""Run configuration: one dataclass, three presets, command-line options grouped by use."""

from __future__ import annotations

import argparse
import dataclasses
import types
from dataclasses import dataclass, fields
from typing import Any, Union, get_args, get_origin, get_type_hints

import torch

from mitools.option_checks import usable_cpus

from .checks import _REDUCTIONS, validate_config

__all__ = [
    "DATA_LOCATIONS",
    "GROUPS",
    "PATH_FIELDS",
    "PRESETS",
    "Config",
    "add_config_arguments",
    "config_from_args",
    "differing_fields",
    "make_config",
    "resolve_threads",
]


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
        mode: ``"local"`` or ``"global"``; bound, critic: by name; reduction (local mode):
        ``"mean"`` / ``"max"`` over per-cell estimates (``"max"``: the paper's objective),
        ``"pair_max"`` (a pair-level variant: each pair scored by its best cell) or
        ``"attention"`` (the sentence attends over the cells, GLoRIA), see
        :mod:`~examples.image_text.objective`; attention_temperature; contrast
        (pooled reductions: the bound's rows are the images, the sentences or both);
        sentences: ``"one"`` (local mode: one random sentence per report and step, the paper)
        or ``"all"`` (every sentence of the report at every step);
        critic_hidden, critic_embed_dim, critic_cosine,
        critic_temperature: separable-critic options;
        epochs, batch_size, lr, clip_grad_norm (0: off), weight_decay, warmup_steps.
    Downstream:
        finetune_epochs, finetune_lr (encoder), head_lr_factor (heads: finetune_lr times this),
        linear_steps, linear_lr (the linear probe that every regime starts with),
        downstream_batch_size.
    Run:
        seed, out_dir, device (``"auto"``: CUDA when present), threads (CPU threads of torch;
        0: :func:`resolve_threads`' default, at most 4), progress (tqdm bars).
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
    reduction: str = "attention"
    attention_temperature: float = 1.0
    contrast: str = "both"
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
        validate_config(self)


#: Named presets: overrides of the defaults.
PRESETS: dict[str, dict[str, Any]] = {
    # the documented tables; `all` (one seed) took 222 s of CPU with one thread (torch 2.13)
    "quick": {},
    # the larger run: 3.3x the data, wider encoders, bigger batches
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


#: The options that say where the data is (``--data`` when it names a folder).
DATA_LOCATIONS = ("data", "reports_root", "labels_csv", "edema_csv")
#: The fields that name where a run reads or writes its files, not what it computes: the same
#: data reached through another path (moved, a link, another mount), or a copied or moved
#: output folder, resumes, evaluates and averages like the original. Of ``--data`` only what
#: it names counts as a setting: the synthetic data or a folder (:func:`differing_fields`).
PATH_FIELDS = ("out_dir", "cache_dir", *DATA_LOCATIONS)


def _setting(name: str, value: Any) -> Any:
    """What a field's value says about what a run computes: a path field's value says
    nothing (``None``), but for ``--data``, whether it is the synthetic data or a folder."""
    if name == "data":
        return value if value == "synthetic" else "a folder"
    if name in PATH_FIELDS:
        return None
    return list(value) if isinstance(value, tuple) else value  # JSON makes tuples lists


def differing_fields(a: Config | dict[str, Any], b: Config | dict[str, Any],
                     ignore: tuple[str, ...] = ()) -> list[str]:
    """The settings (sorted field names) that differ between two configs or their dicts (a
    tuple equals the list JSON makes of it), leaving out ``ignore``. Paths are where files
    are, not settings (:data:`PATH_FIELDS`): two folders given to ``--data`` never differ,
    the synthetic data and a folder do.

    Example:
        >>> differing_fields(make_config("tiny"), make_config("quick"), ignore=("progress",))[:3]
        ['batch_size', 'critic_embed_dim', 'dim']
        >>> differing_fields(make_config(data="/data/mimic", out_dir="a", lr=0.1),
        ...                  make_config(data="/mnt/mimic", out_dir="b", cache_dir="c"))
        ['lr']
        >>> differing_fields(make_config(data="/data/mimic"), make_config())
        ['data']
    """
    da, db = (dataclasses.asdict(c) if isinstance(c, Config) else c for c in (a, b))
    return sorted(k for k in {*da, *db} - set(ignore)
                  if _setting(k, da.get(k)) != _setting(k, db.get(k)))


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


#: Every option's help text (the field's meaning; the CLI appends the defaults).
HELP: dict[str, str] = {
    "data": "'synthetic' (generated, no download) or a MIMIC-CXR-JPG folder",
    "reports_root": "MIMIC-CXR reports folder (default: inside --data)",
    "labels_csv": "MIMIC-CXR CheXpert labels CSV (default: inside --data)",
    "edema_csv": "optional CSV of edema severities (subject_id, study_id, edema_severity)",
    "n_train": "synthetic training pairs (pretraining uses all, downstream the labelled share)",
    "n_test": "synthetic test pairs",
    "data_seed": "seed of the synthetic data (the same across training seeds)",
    "image_size": "image side in pixels: 64, 128 or 256",
    "labelled_fraction": "share of the training pairs whose labels downstream training sees",
    "cache_dir": "folder to cache the generated data in (default: no cache)",
    "width": "image encoder channels after the stem",
    "dim": "feature size D of the cells, the pooled image vector and the text vectors",
    "grid": "side M of the image's M x M block of cells",
    "context_kernel": "1 keeps each cell's receptive field local (about 3 cells); 3 widens it",
    "text_layers": "Transformer layers of the text encoder",
    "text_heads": "attention heads of the text encoder",
    "max_sentences": "sentences kept per report",
    "max_sentence_len": "tokens kept per sentence",
    "max_report_len": "tokens kept per report (global mode encodes the whole report)",
    "mode": "'local' (cells vs one sentence) or 'global' (pooled image vs the whole report)",
    "bound": "MI bound by name: infonce, dv, mine, nwj, js, smile, ...",
    "critic": "cell critic: separable (dot product of embeddings), bilinear (x W y), concat "
              "(an MLP of the pair) or quadratic (the Gaussian log density ratio)",
    "reduction": "local objective: mean or max of per-cell estimates (max: the paper's), "
                 "pair_max (a pair-level variant: each pair scored by its best cell) or "
                 "attention (GLoRIA)",
    "attention_temperature": "temperature of the sentence's attention over the cells "
                             "(--reduction attention), in critic-score units",
    "contrast": "pair_max/attention: the bound's rows are the images (each picks its "
                "sentence), the sentences (each picks its image) or both",
    "sentences": "local mode: one random sentence per report and step, or all of them",
    "critic_hidden": "hidden widths of the separable critic's encoders, e.g. 128,128 ('' none)",
    "critic_embed_dim": "embedding size of the separable critic",
    "critic_cosine": "cosine similarity in the separable critic",
    "critic_temperature": "temperature of the separable critic's scores",
    "epochs": "pretraining epochs per mode",
    "batch_size": "pretraining batch (the negatives of each bound)",
    "lr": "pretraining learning rate (AdamW, warm-up then cosine decay)",
    "clip_grad_norm": "gradient-norm clip in pretraining (0: off)",
    "weight_decay": "AdamW weight decay in pretraining",
    "warmup_steps": "linear learning-rate warm-up steps",
    "finetune_epochs": "epochs of supervised and fine-tuned training on the labelled pairs",
    "finetune_lr": "encoder learning rate when fine-tuning and training from scratch",
    "head_lr_factor": "head learning rate = finetune-lr times this",
    "linear_steps": "full-batch steps of each frozen probe",
    "linear_lr": "learning rate of the frozen probes",
    "downstream_batch_size": "batch of supervised and fine-tuned training",
    "seed": "training seed (initialisation, batches, labelled subset)",
    "out_dir": "folder of checkpoints and results",
    "device": "'auto' (CUDA when present), 'cpu', 'cuda', 'cuda:1', ...",
    "threads": "CPU threads of torch, at most the cores this process may use; 0: min(4, "
               "those cores). On a shared machine use 1",
    "progress": "tqdm progress bars (--no-progress: none); the phase lines print regardless",
}

#: Which fields each option group holds; subcommands add only the groups they use.
GROUPS: dict[str, tuple[str, ...]] = {
    "data": ("data", "reports_root", "labels_csv", "edema_csv", "n_train", "n_test",
             "data_seed", "image_size", "cache_dir"),
    "model": ("width", "dim", "grid", "context_kernel", "text_layers", "text_heads",
              "max_sentences", "max_sentence_len", "max_report_len"),
    "pretraining": ("mode", "bound", "critic", "reduction", "attention_temperature",
                    "contrast", "sentences", "critic_hidden", "critic_embed_dim", "critic_cosine",
                    "critic_temperature", "epochs", "batch_size", "lr", "clip_grad_norm",
                    "weight_decay", "warmup_steps"),
    "downstream": ("labelled_fraction", "finetune_epochs", "finetune_lr", "head_lr_factor",
                   "linear_steps", "linear_lr", "downstream_batch_size"),
    "run": ("seed", "out_dir", "device", "threads", "progress"),
}


def _field_types() -> dict[str, Any]:
    return get_type_hints(Config)


def _parser_for(tp: Any) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(tp) if a is not type(None)]
        return _parser_for(inner[0])
    if origin is tuple:
        return positive_ints
    return tp


def positive_ints(text: str) -> tuple[int, ...]:
    """``--critic-hidden``'s type: comma-separated positive ints (``''``: none).

    Example:
        >>> positive_ints("64, 32"), positive_ints("")
        ((64, 32), ())
    """
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = (0,)
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(
            f"must be comma-separated positive ints, e.g. 64,64 ('' for none), got {text!r}")
    return values


#: The options that take one of a few words (argparse lists them in the help).
CHOICES: dict[str, tuple[str, ...]] = {
    "mode": ("local", "global"),
    "critic": ("separable", "bilinear", "concat", "quadratic"),
    "reduction": _REDUCTIONS,
    "contrast": ("images", "sentences", "both"),
    "sentences": ("one", "all"),
}


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _defaults_text(name: str) -> str:
    """``" (default X; full Y, tiny Z)"``; a help text that states its own default (a field
    whose default is none) gets only the presets' values."""
    base = next(f.default for f in fields(Config) if f.name == name)
    others = [f"{p} {_shown(PRESETS[p][name])}" for p in PRESETS if name in PRESETS[p]]
    if "(default" in HELP[name]:
        return f" ({', '.join(others)})" if others else ""
    text = f"default {_shown(base)}" if base not in ("", None, ()) else "default none"
    return f" ({text}" + (f"; {', '.join(others)}" if others else "") + ")"


def add_config_arguments(parser: argparse.ArgumentParser, groups: tuple[str, ...],
                         exclude: tuple[str, ...] = ()) -> None:
    """``--preset`` and one ``--field-name VALUE`` option per field of ``groups``.

    Each group becomes an argparse argument group with the fields' help texts and defaults
    (the quick preset's, then the presets that change them). ``exclude`` drops fields that
    a subcommand sets itself.
    """
    parser.add_argument("--preset", default="quick", choices=sorted(PRESETS),
                        help="named settings: tiny (about 6 s: a smoke test of the whole "
                             "pipeline, with too little training for its MI estimates, near "
                             "0, or its tables to mean anything), quick (the documented "
                             "tables), full (3x the data); options override it "
                             "(default: quick)")
    hints = _field_types()
    for group in groups:
        g = parser.add_argument_group(f"{group} options")
        for name in GROUPS[group]:
            if name in exclude:
                continue
            flag = "--" + name.replace("_", "-")
            help_text = HELP[name] + _defaults_text(name)
            if hints[name] is bool:  # an on/off flag: --progress / --no-progress
                g.add_argument(flag, dest=f"cfg_{name}", action=argparse.BooleanOptionalAction,
                               default=None, help=help_text)
            elif CHOICES.get(name):
                g.add_argument(flag, dest=f"cfg_{name}", choices=CHOICES[name], default=None,
                               help=help_text)
            else:
                g.add_argument(flag, dest=f"cfg_{name}", type=_parser_for(hints[name]),
                               default=None, metavar=name.split("_")[-1].upper(),
                               help=help_text)


def resolve_threads(threads: int) -> int:
    """The CPU threads to give torch: ``threads``, or for 0 the smallest of 4, the cores this
    process may run on, and torch's current count (which keeps a lower ``OMP_NUM_THREADS``
    or ``torch.set_num_threads``; torch's own default, every core, oversubscribes shared
    machines and buys nothing for this example's small convolutions).

    Example:
        >>> resolve_threads(3), 1 <= resolve_threads(0) <= 4
        (3, True)
    """
    if threads > 0:
        return threads
    return max(1, min(4, usable_cpus(), torch.get_num_threads()))


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
