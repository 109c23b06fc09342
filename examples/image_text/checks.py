"""The checks of a :class:`~examples.image_text.config.Config`: every value that the
pipeline would fail on later (in data generation, a model's constructor, the optimizer) is
refused up front with a ``ValueError`` that names the field."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

__all__ = ["validate_config"]

_REDUCTIONS = ("mean", "max", "pair_max", "attention")  # objective.REDUCTIONS (no torch import)


def validate_config(cfg: Any) -> None:
    """Raise a ``ValueError`` naming the first field of ``cfg`` whose value is refused.

    Example:
        >>> from examples.image_text.config import make_config
        >>> make_config("tiny", text_heads=3)
        Traceback (most recent call last):
        ...
        ValueError: text_heads (3) must divide dim (16), the text encoder's width
    """
    if cfg.mode not in ("local", "global"):
        raise ValueError(f"mode must be 'local' or 'global', got {cfg.mode!r}")
    if cfg.reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {cfg.reduction!r}")
    if cfg.sentences not in ("one", "all"):
        raise ValueError(f"sentences must be 'one' or 'all', got {cfg.sentences!r}")
    if cfg.contrast not in ("images", "sentences", "both"):
        raise ValueError(
            f"contrast must be 'images', 'sentences' or 'both', got {cfg.contrast!r}"
        )
    if not cfg.attention_temperature > 0:
        raise ValueError(
            f"attention_temperature must be > 0, got {cfg.attention_temperature}"
        )
    if cfg.threads < 0:
        raise ValueError(f"threads must be >= 0 (0: the default), got {cfg.threads}")
    if not 0.0 < cfg.labelled_fraction <= 1.0:
        raise ValueError(f"labelled_fraction must be in (0, 1], got {cfg.labelled_fraction}")
    for name in ("n_train", "n_test", "epochs", "batch_size", "dim", "width", "grid"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    for name in ("text_layers", "text_heads", "max_sentences", "max_sentence_len",
                 "max_report_len", "critic_embed_dim", "linear_steps",
                 "downstream_batch_size", "finetune_epochs"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    for name in ("warmup_steps", "data_seed"):
        if getattr(cfg, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(cfg, name)}")
    for name in ("lr", "finetune_lr", "linear_lr", "head_lr_factor", "critic_temperature"):
        if not getattr(cfg, name) > 0:  # NaN too
            raise ValueError(f"{name} must be > 0, got {getattr(cfg, name)}")
    for name in ("weight_decay", "clip_grad_norm"):
        if not getattr(cfg, name) >= 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(cfg, name)}")
    for f in dataclasses.fields(cfg):  # every float option: what the ranges above let
        # through, inf (and NaN) is never meant
        value = getattr(cfg, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{f.name} must be a finite number, got {value}")
    if any(not isinstance(h, int) or h < 1 for h in cfg.critic_hidden):
        raise ValueError(f"critic_hidden must be positive ints, got {cfg.critic_hidden}")
    if cfg.dim % cfg.text_heads:
        raise ValueError(f"text_heads ({cfg.text_heads}) must divide dim ({cfg.dim}), "
                         "the text encoder's width")
    if cfg.width not in (1, 2, 4) and cfg.width % 8:  # GroupNorm groups of 8
        raise ValueError(f"width must be 1, 2, 4 or a multiple of 8, got {cfg.width}")
    ratio = cfg.image_size // cfg.grid
    if cfg.image_size not in (64, 128, 256):
        raise ValueError(f"image_size must be 64, 128 or 256, got {cfg.image_size}")
    if cfg.image_size % cfg.grid or ratio < 2 or ratio & (ratio - 1):
        raise ValueError(f"grid must divide image_size ({cfg.image_size}) by a power of "
                         f"two >= 2, got {cfg.grid}")
    if cfg.context_kernel not in (1, 3):
        raise ValueError(f"context_kernel must be 1 or 3, got {cfg.context_kernel}")
    _check_device(cfg.device)
    if cfg.batch_size > cfg.n_train and cfg.data == "synthetic":
        raise ValueError(f"batch_size ({cfg.batch_size}) exceeds n_train ({cfg.n_train})")


def _check_device(name: str) -> None:
    """A device name torch can parse (``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...);
    whether it is present is checked when the device is resolved."""
    if name == "auto":
        return
    try:
        torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N', ... (a torch device), "
                         f"got {name!r}") from None


