"""Data preparation and MI pretraining (single process, or several under ``torchrun``).

Pretraining draws a global batch of image-report pairs per step from one seeded generator, so
every rank sees the same permutation and sentence choices and takes its contiguous slice;
negatives come from all ranks (``gather=True``) and gradients are averaged over ranks, which is
single-process training on the global batch. A checkpoint (encoders, critic and estimator state,
optimizer, scheduler, RNG states, loss history) is written after every epoch; ``resume=True``
continues from it exactly. Checkpoints hold only tensors and plain Python values (the config as
a dict, the RNG states as tensors) and are read with ``torch.load(..., weights_only=True)``:
a file that holds anything else is refused (:func:`load_checkpoint`), since unpickling
arbitrary objects can run code.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .checkpoint import (
    check_finished,
    check_resumable,
    config_from_checkpoint,
    load_checkpoint,
    load_weights,
    run_dir,
)
from .config import Config
from .data import ImageTextData, generate_synthetic
from .files import save_atomic
from .mimic import find_labels, load_mimic_cxr
from .models import ImageEncoder, TextEncoder
from .objective import PretrainObjective
from .text import WordTokenizer

__all__ = [
    "Datasets",
    "EncodedPairs",
    "Encoders",
    "PretrainOutcome",
    "available_devices",
    "build_encoders",
    "check_labelled",
    "config_from_checkpoint",
    "encode_pairs",
    "load_checkpoint",
    "load_datasets",
    "load_pretrained",
    "pretrain",
    "resolve_device",
    "run_dir",
]


class EncodedPairs(NamedTuple):
    """Tensors of a split, ready for batching by index.

    Attributes:
        images: ``(N, 1, S, S)`` float32.
        sentences: ``(N, Smax, L)`` token ids of each report's sentences (0 = padding).
        sentence_mask: ``(N, Smax)`` bool, real sentences.
        report: ``(N, R)`` token ids of the whole report.
        edema: ``(N,)`` int64 (-1 unknown).
        findings: ``(N, F)`` float32 (nan unknown).
        sites: ``(N, Smax)`` int64, the site (:data:`~examples.image_text.data.SITES`) of
            the finding each sentence describes (-1 none).
    """

    images: Tensor
    sentences: Tensor
    sentence_mask: Tensor
    report: Tensor
    edema: Tensor
    findings: Tensor
    sites: Tensor


class Datasets(NamedTuple):
    """Train and test splits, the labelled subset of train, the tokenizer."""

    train: EncodedPairs
    test: EncodedPairs
    labelled: Tensor
    tokenizer: WordTokenizer
    finding_names: tuple[str, ...]


class Encoders(nn.Module):
    """The image and text encoders trained together."""

    def __init__(self, image: ImageEncoder, text: TextEncoder) -> None:
        super().__init__()
        self.image = image
        self.text = text


class PretrainOutcome(NamedTuple):
    """Where the checkpoint is, and the per-step loss and estimate (nats) of the whole run."""

    checkpoint: Path
    losses: list[float]
    estimates: list[float]


def encode_pairs(data: ImageTextData, tok: WordTokenizer, cfg: Config) -> EncodedPairs:
    """Tokenise the reports of ``data`` (sentences truncated to ``cfg.max_sentences``)."""
    n, s_max, l_max = len(data), cfg.max_sentences, cfg.max_sentence_len
    flat, owner, slot = [], [], []
    for i, sents in enumerate(data.reports):
        if not sents:
            raise ValueError(f"empty report at index {i}: every image needs >= 1 sentence")
        for k, s in enumerate(sents[:s_max]):
            flat.append(s)
            owner.append(i)
            slot.append(k)
    ids = tok.encode(flat, l_max)
    sentences = torch.zeros(n, s_max, l_max, dtype=torch.long)
    sentences[owner, slot] = ids
    mask = torch.zeros(n, s_max, dtype=torch.bool)
    mask[owner, slot] = True
    sites = torch.full((n, s_max), -1, dtype=torch.long)
    sites[owner, slot] = torch.tensor(
        [data.sentence_sites[i][k] for i, k in zip(owner, slot, strict=True)], dtype=torch.long
    )
    report = tok.encode([" ".join(r) for r in data.reports], cfg.max_report_len)
    return EncodedPairs(data.images, sentences, mask, report, data.edema, data.findings, sites)


def load_datasets(cfg: Config) -> Datasets:
    """Generate (or load) the data of ``cfg``, build the tokenizer, pick the labelled subset."""
    if cfg.data == "synthetic":
        train = generate_synthetic(cfg.n_train, size=cfg.image_size, seed=cfg.data_seed,
                                   cache_dir=cfg.cache_dir)
        test = generate_synthetic(cfg.n_test, size=cfg.image_size, seed=cfg.data_seed + 100_003,
                                  cache_dir=cfg.cache_dir)
    else:
        for flag, given in (("--labels-csv", cfg.labels_csv), ("--edema-csv", cfg.edema_csv)):
            if given is not None and not Path(given).is_file():  # named by its option
                raise FileNotFoundError(f"{flag} {given}: no such file")
        full = load_mimic_cxr(cfg.data, reports_root=cfg.reports_root, labels_csv=cfg.labels_csv,
                              edema_csv=cfg.edema_csv, size=cfg.image_size)
        perm = torch.randperm(len(full), generator=torch.Generator().manual_seed(cfg.data_seed))
        n_test = max(1, len(full) // 5)
        train, test = full.subset(perm[n_test:]), full.subset(perm[:n_test])
    tok = WordTokenizer.build(s for r in train.reports for s in r)
    n = len(train)
    n_lab = max(1, round(cfg.labelled_fraction * n))
    labelled = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed))[:n_lab]
    return Datasets(encode_pairs(train, tok, cfg), encode_pairs(test, tok, cfg),
                    labelled.sort().values, tok, train.finding_names)


def check_labelled(cfg: Config, ds: Datasets) -> None:
    """Refuse (``ValueError``) data whose labelled pairs carry no label at all, before any
    training: every downstream regime would have nothing to learn from. Only a MIMIC-CXR
    folder can lack labels (no CheXpert labels CSV and no ``--edema-csv``); pretraining needs
    none, so ``pretrain`` does not call this."""
    lab = ds.labelled
    if bool((ds.train.edema[lab] >= 0).any()) or bool((~ds.train.findings[lab].isnan()).any()):
        return
    given = cfg.labels_csv or find_labels(Path(cfg.data))
    labels = (f"none in {given}" if given is not None else
              f"no labels file: expected {Path(cfg.data) / 'mimic-cxr-2.0.0-chexpert.csv'} "
              "(or .csv.gz), or give --labels-csv")
    edema = (f"none in {cfg.edema_csv}" if cfg.edema_csv is not None
             else "no --edema-csv given")
    raise ValueError(
        f"the {lab.numel()} labelled training pairs of {cfg.data} carry no label, so there is "
        f"nothing to train the downstream heads on: CheXpert labels: {labels}; edema "
        f"severities: {edema} (`pretrain` needs no labels; `all`, `evaluate` and "
        "`supervised` do)")


def build_encoders(cfg: Config, vocab_size: int) -> Encoders:
    """Fresh encoders of the sizes in ``cfg``."""
    return Encoders(
        ImageEncoder(cfg.image_size, grid=cfg.grid, width=cfg.width, dim=cfg.dim,
                     context_kernel=cfg.context_kernel),
        TextEncoder(vocab_size, dim=cfg.dim, layers=cfg.text_layers, heads=cfg.text_heads,
                    max_len=max(cfg.max_sentence_len, cfg.max_report_len)),
    )


def build_objective(cfg: Config, gather: bool = False) -> PretrainObjective:
    """The critic + bound of ``cfg``."""
    return PretrainObjective(
        cfg.mode, cfg.dim, cfg.dim, bound=cfg.bound, critic=cfg.critic, reduction=cfg.reduction,
        gather=gather, all_sentences=cfg.sentences == "all",
        attention_temperature=cfg.attention_temperature, contrast=cfg.contrast,
        critic_kwargs=(
            {"hidden": cfg.critic_hidden, "embed_dim": cfg.critic_embed_dim,
             "cosine": cfg.critic_cosine, "temperature": cfg.critic_temperature}
            if cfg.critic == "separable" else {}
        ),
    )


def resolve_device(name: str) -> torch.device:
    """``"auto"``: this rank's CUDA device when CUDA is present, else CPU; a CUDA device when
    CUDA is not present is refused (``ValueError``)."""
    if name != "auto":
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {name!r}: this torch build or machine has no CUDA device; "
                             f"use --device cpu (or auto); available: {available_devices()}")
        if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: this machine has {torch.cuda.device_count()} "
                             f"CUDA devices; available: {available_devices()}")
        if device.type not in ("cpu", "cuda") and name not in available_devices().split(", "):
            raise ValueError(f"device {name!r} is not available on this machine; available: "
                             f"{available_devices()}")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def available_devices() -> str:
    """The ``--device`` values this machine can run, e.g. ``"auto, cpu, cuda, cuda:0"``."""
    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        names += ["cuda", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return ", ".join(names)


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _lr_lambda(warmup: int, total: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))

    return f


def pretrain(cfg: Config, ds: Datasets | None = None, *, resume: bool = False,
             stop_after: int | None = None) -> PretrainOutcome:
    """Pretrain image and text encoders by maximising ``cfg.mode`` MI for ``cfg.epochs``.

    Args:
        cfg: the run configuration.
        ds: the data (loaded from ``cfg`` when ``None``).
        resume: continue from ``run_dir(cfg)/checkpoint.pt`` if it exists (refused, with a
            ``ValueError``, if that file holds anything but tensors and plain values).
        stop_after: return after this many epochs of this call, as if interrupted (the
            learning-rate schedule still spans ``cfg.epochs``).

    Returns:
        A :class:`PretrainOutcome`; the checkpoint holds the final state.
    """
    ds = ds if ds is not None else load_datasets(cfg)
    rank, world = _world()
    if cfg.batch_size % world:
        raise ValueError(f"batch_size ({cfg.batch_size}) must be divisible by the world size "
                         f"({world})")
    device = resolve_device(cfg.device)
    out = run_dir(cfg)
    ckpt_path = out / "checkpoint.pt"
    torch.manual_seed(cfg.seed)
    model = build_encoders(cfg, len(ds.tokenizer)).to(device)
    objective = build_objective(cfg, gather=world > 1).to(device)
    params = [*model.parameters(), *objective.parameters()]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = ds.train.images.shape[0]
    steps_per_epoch = n // cfg.batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"n_train ({n}) is smaller than batch_size ({cfg.batch_size})")
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, _lr_lambda(cfg.warmup_steps, cfg.epochs * steps_per_epoch)
    )
    g = torch.Generator().manual_seed(cfg.seed + 1)
    losses: list[float] = []
    estimates: list[float] = []
    start_epoch = 0
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, device, resuming=True)
        check_resumable(ckpt_path, state, cfg)
        load_weights(ckpt_path, state, model, objective)
        try:
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            g.set_state(state["rng"]["sampler"])
            torch.set_rng_state(state["rng"]["torch"])
            if torch.cuda.is_available() and state["rng"].get("cuda") is not None:
                torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        except (KeyError, TypeError, ValueError, RuntimeError) as err:  # altered by hand
            raise ValueError(
                f"cannot resume {ckpt_path}: its optimizer, schedule or random state does not "
                f"fit this run ({type(err).__name__}: {str(err).splitlines()[0]}); delete it "
                "(then --resume starts that run anew), or rerun without --resume") from None
        losses, estimates = list(state["losses"]), list(state["estimates"])
        start_epoch = int(state["epoch"]) + 1
    elif resume and rank == 0:
        print(f"no checkpoint at {ckpt_path}; starting from scratch")

    local_b = cfg.batch_size // world
    tr = ds.train
    end_epoch = cfg.epochs if stop_after is None else min(cfg.epochs, start_epoch + stop_after)
    for epoch in range(start_epoch, end_epoch):
        model.train()
        objective.train()
        perm = torch.randperm(n, generator=g)
        bar = _progress(range(steps_per_epoch), cfg.progress and rank == 0,
                        f"{cfg.mode} epoch {epoch + 1}/{cfg.epochs}")
        for step in bar:
            idx = perm[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            pick = torch.multinomial(tr.sentence_mask[idx].float(), 1, generator=g)[:, 0]
            mine = slice(rank * local_b, (rank + 1) * local_b)
            idx, pick = idx[mine], pick[mine]
            feats = model.image(tr.images[idx].to(device))
            if cfg.mode == "local" and cfg.sentences == "all":
                # every real sentence of each report, (B, S, D), padding slots left at zero
                mask = tr.sentence_mask[idx].to(device)
                real = model.text(tr.sentences[idx].to(device)[mask])
                text = real.new_zeros(*mask.shape, real.shape[-1]).index_put((mask,), real)
                res = objective(feats.local, text, text_mask=mask)
            elif cfg.mode == "local":
                res = objective(feats.local, model.text(tr.sentences[idx, pick].to(device)))
            else:
                res = objective(feats.local, model.text(tr.report[idx].to(device)))
            opt.zero_grad(set_to_none=True)
            res.loss.backward()
            if world > 1:
                for p in params:
                    if p.grad is not None:
                        dist.all_reduce(p.grad)
                        p.grad /= world
            if cfg.clip_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad_norm)
            opt.step()
            sched.step()
            losses.append(float(res.loss.detach()))
            estimates.append(float(res.estimate.detach()))
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(mi=f"{estimates[-1]:.3f}")
        if rank == 0:
            save_atomic(ckpt_path, {
                "epoch": epoch,
                "config": asdict(cfg),
                "vocab": ds.tokenizer.vocab,
                "model": model.state_dict(),
                "objective": objective.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "rng": {
                    "sampler": g.get_state(),
                    "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                },
                "losses": losses,
                "estimates": estimates,
            })
        if world > 1:
            dist.barrier()
    return PretrainOutcome(ckpt_path, losses, estimates)


def _progress(it: range, enabled: bool, desc: str):
    if not enabled:
        return it
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is an optional extra
        return it
    # disable=None: no bars when stderr is not a terminal (a log filled with 289 KB of them)
    return tqdm(it, desc=desc, leave=False, dynamic_ncols=True, disable=None)


def load_pretrained(path: str | Path, device: torch.device | None = None, *,
                    finished: bool = False) -> tuple[Encoders, PretrainObjective, Config]:
    """Encoders, objective and config from a pretraining checkpoint (see
    :func:`load_checkpoint` for what is refused). With ``finished=True`` a checkpoint whose
    run stopped before its last epoch is refused too (``ValueError``, see
    :func:`~examples.image_text.checkpoint.check_finished`): scores of its encoders would be
    read as those of the run its settings describe."""
    state = load_checkpoint(path, device)
    if finished:
        check_finished(path, state)
    cfg = config_from_checkpoint(state)
    model = build_encoders(cfg, len(state["vocab"]))
    objective = build_objective(cfg)
    load_weights(path, state, model, objective)
    return model, objective, cfg
