"""Checking :func:`~mitools.estimate.estimate_mi`'s options: numbers, device, threads, sizes."""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from mitools.critics.base import _check_widths
from mitools.estimate.progress import check_progress
from mitools.option_checks import (
    MAX_SEED,
    check_flag,
    check_int,
    check_number,
    check_threads,
    usable_cpus,
)

#: at most this many threads by default: more rarely helps the small matrices of a critic,
#: and on a shared machine every extra thread competes with other jobs
DEFAULT_MAX_THREADS = 4
#: samples needed per fold: each fold's test part is split into at least 5 jackknife groups
#: of at least 2 samples
MIN_SAMPLES_PER_FOLD = 10
#: the widths of a named critic's hidden layers, and its embedding size, by default
DEFAULT_HIDDEN = (64, 64)
DEFAULT_EMBED_DIM = 64
#: negative pairs per sample in a training step of a critic that scores chosen pairs
DEFAULT_NEGATIVES = 8


def available_devices() -> list[str]:
    """Devices this PyTorch can use: ``cpu``, each CUDA device, ``mps`` where present."""
    devices = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return devices


def resolve_device(device: Any, x: Any) -> torch.device:
    """``None``: the device of a tensor ``x`` off the CPU, else CUDA when available, else the
    CPU. A named device must exist, or the error says which do."""
    if device is None:
        if isinstance(x, Tensor) and x.device.type != "cpu":
            return x.device
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device must be None, a torch.device or a name like 'cpu' or 'cuda', got {device!r}"
            f"; available here: {', '.join(available_devices())}"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = "built without CUDA" if torch.version.cuda is None else (
                f"built with CUDA {torch.version.cuda}, but no GPU or driver was found")
            raise ValueError(
                f"device={device!r}: CUDA is not available (this PyTorch {torch.__version__} is "
                f"{build}); available devices: {', '.join(available_devices())}. Leave "
                "device=None to use a GPU when there is one and the CPU otherwise"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}: there are {torch.cuda.device_count()} CUDA "
                             f"devices; available: {', '.join(available_devices())}")
    elif dev.type == "mps" and "mps" not in available_devices():
        raise ValueError(f"device={device!r}: MPS is not available; available devices: "
                         f"{', '.join(available_devices())}")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device={device!r} is not supported; available devices: "
                         f"{', '.join(available_devices())}")
    return dev


def default_threads() -> int:
    """``min(4, idle CPUs, torch.get_num_threads())``, at least 1. Idle CPUs are those this
    process may use less the 1-minute load average (rounded): threads beyond them make torch's
    threads wait for each other (on a 2-core machine running other jobs, 2 threads were
    10-40x slower than 1). A lower thread count set by the caller (``torch.set_num_threads``,
    ``OMP_NUM_THREADS``) is kept."""
    cpus = usable_cpus()
    try:
        idle = cpus - round(os.getloadavg()[0])
    except (AttributeError, OSError):  # no load average (Windows)
        idle = cpus
    return max(1, min(DEFAULT_MAX_THREADS, cpus, idle, torch.get_num_threads()))


def resolve_threads(threads: Any) -> int:
    if threads is None:
        return default_threads()
    return check_threads("threads", threads)


def check_sample_size(n: int, folds: int, dim: int, train_size: int,
                      val_fraction: float = 0.1) -> None:
    """Enough samples for the folds, the jackknife and (``dim`` features) a covariance fit
    on ``train_size`` samples (those ``val_fraction`` leaves to train on)."""
    need = MIN_SAMPLES_PER_FOLD * folds
    # more features than samples: most often arrays given as (features, samples)
    transposed = (f" There are more columns ({dim} in x and y) than rows ({n}): rows are "
                  "samples, so if yours are features, pass the arrays transposed (x.T)."
                  if 0 < n < dim else "")
    if n < need:
        fewer = max(2, n // MIN_SAMPLES_PER_FOLD)
        raise ValueError(
            f"estimate_mi needs at least {MIN_SAMPLES_PER_FOLD} samples per fold, n >= {need} for "
            f"folds={folds}; got n={n}. Each fold holds out n/folds samples to measure the "
            "critic on, and its uncertainty needs at least 5 groups of 2 of them. "
            + (f"Use folds={fewer} or more samples." if n >= 2 * MIN_SAMPLES_PER_FOLD
               else "Collect more samples: with so few, no estimate of MI is meaningful.")
            + transposed
        )
    if train_size <= dim:
        raise ValueError(
            f"the Gaussian start fits a covariance of x and y's {dim} features to each fold's "
            f"{max(train_size, 0)} training samples, which needs more samples than features: "
            "use more samples, fewer folds, "
            + (f"a smaller val_fraction (got {val_fraction}: the share of each fold's "
               "non-test samples kept for validation), " if val_fraction > 0.5 else "")
            + "or init='random' with another critic." + transposed
        )


@functools.cache
def estimate_bounds() -> tuple[str, ...]:
    """The registered bounds :func:`~mitools.estimate.estimate_mi` can fit a critic with: lower
    bounds on MI in nats from unnormalised critic scores. Upper bounds (CLUB, vCLUB, L1Out) and
    the generative estimators (BA, DoE) need a conditional density model, and JSD is not in
    nats, so they are left out."""
    from mitools.estimators import available_estimators, get_estimator

    names = []
    for name in available_estimators():
        try:
            e = get_estimator(name)
        except (TypeError, ValueError):  # needs arguments only a density model supplies (BA)
            continue
        if (e.direction == "lower" and not e.needs_log_density
                and getattr(e, "nats", True)):  # fmt: skip
            names.append(name)
    return tuple(names)


def _kind(estimator: Any) -> str:
    return "an upper bound" if estimator.direction == "upper" else "an estimate, not a bound,"


def check_estimate_bound(bound: Any, estimator: Any) -> None:
    """Refuse, in the user's terms, a bound ``estimate_mi`` cannot report as a lower bound.

    Raises:
        ValueError: an unknown name, an upper bound or a generative estimator, or a value not
            in nats; the message lists the bounds that work.
    """
    valid = estimate_bounds()
    label = bound if isinstance(bound, str) else type(bound).__name__
    if estimator is None:  # a name outside estimate_bounds()
        from mitools.estimators import available_estimators

        name = str(bound).lower()
        if name in available_estimators():
            kind = ("it is an upper bound" if name in ("club", "vclub", "l1out")
                    else "it is a generative estimator")
            why = ("it is not in nats (the Jensen-Shannon divergence)" if name == "jsd" else
                   f"{kind}, which needs a conditional density model q(y|x) "
                   "(mitools.train_critic or LocalMILoss/GlobalMILoss with a "
                   "mitools.conditionals model; docs: guide/upper_bounds)")
            raise ValueError(
                f"bound {bound!r} is not one estimate_mi can fit: estimate_mi trains a critic "
                f"and reports a lower bound in nats, but {why}. Bounds estimate_mi takes: "
                f"{list(valid)}"
            )
        close = difflib.get_close_matches(str(bound).lower(), valid, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown bound {bound!r} for estimate_mi; choose one of "
                         f"{list(valid)}.{hint}")
    if getattr(estimator, "direction", "lower") != "lower":
        raise ValueError(
            f"estimate_mi fits a critic and reports a lower bound on the MI, but bound "
            f"{label!r} is {_kind(estimator)} that needs a conditional density model q(y|x): "
            "fit it with mitools.train_critic or LocalMILoss/GlobalMILoss and a "
            "mitools.conditionals model (docs: "
            f"guide/upper_bounds). Bounds estimate_mi takes: {list(valid)}"
        )
    if getattr(estimator, "needs_log_density", False):
        raise ValueError(
            f"bound {label!r} needs log conditional densities log q(y|x), which estimate_mi's "
            f"critics do not give; bounds estimate_mi takes: {list(valid)}"
        )
    if not getattr(estimator, "nats", True):
        raise ValueError(f"bound {label!r} is not an MI estimate in nats; bounds estimate_mi "
                         f"takes: {list(valid)}")


def check_critic(critic: Any, hidden: Sequence[int]) -> str | nn.Module:
    """The ``critic`` option: a name of :func:`~mitools.critics.available_critics`
    (case-insensitive, spaces around ignored, as :func:`~mitools.critics.get_critic` reads
    it), returned in lower case, or an ``nn.Module``, returned as it is. Checked before
    anything is fitted: an estimate of a constant variable trains no critic, and took any.
    (Whether ``hidden``, ``embed_dim`` and ``negatives`` shape the critic is
    :func:`mitools.estimate.critic.check_shaping_options`.)

    Raises:
        TypeError: neither a string nor an ``nn.Module``; the message names ``critic``.
        ValueError: an unknown name (the message lists the names), or ``"concat"`` with
            ``hidden=()`` (its network needs a hidden layer).
    """
    from mitools.critics import available_critics, critic_name

    if isinstance(critic, nn.Module):
        return critic
    if not isinstance(critic, str):
        raise TypeError(f"critic must be a name ({', '.join(map(repr, available_critics()))}) "
                        f"or an nn.Module scoring (N, dx), (M, dy) -> (N, M), got "
                        f"{type(critic).__name__} {critic!r}")
    name = critic_name(critic)
    if name == "concat" and not len(hidden):
        raise ValueError("critic='concat' needs at least one hidden layer (its network scores "
                         "each pair [x_i, y_j]), got hidden=()")
    return name


def check_options(o: dict[str, Any]) -> None:
    """Check :func:`~mitools.estimate.estimate_mi`'s options (its ``locals()``): each bad
    value raises a ``ValueError`` that names the argument and the value."""
    for name in ("max_steps", "eval_every", "patience", "embed_dim", "negatives"):
        check_int(name, o[name])
    check_int("batch_size", o["batch_size"], 2)
    check_int("folds", o["folds"], 2)
    check_int("seed", o["seed"], 0, MAX_SEED)
    check_number("lr", o["lr"], 0)
    check_number("weight_decay", o["weight_decay"], 0, strict=False)
    check_number("ema", o["ema"], 0, strict=False, high=1)
    check_number("level", o["level"], 0, high=1)
    check_number("val_fraction", o["val_fraction"], 0, high=1)
    hidden = o["hidden"]
    # a sequence: read twice (here, then by estimate_mi), a generator was empty at the second
    # reading and gave the pure quadratic critic silently
    _check_widths(hidden, kinds=Sequence)
    for name, allowed in (("report", ("corrected", "held_out")),
                          ("sided", ("lower", "two-sided")),
                          ("residual", ("auto", "joint", "separable", None))):
        if o[name] not in allowed:
            names = [repr(a) for a in allowed]
            raise ValueError(f"{name} must be {', '.join(names[:-1])} or {names[-1]}, "
                             f"got {o[name]!r}")
    if o["dtype"] not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {o['dtype']!r}")
    for name in ("discrete_x", "discrete_y", "potentials", "screen"):
        check_flag(name, o[name])
    check_progress(o["progress"])


def bound_with_options(bound: Any, bound_kwargs: dict[str, Any], options: list[str]) -> Any:
    """The estimator ``get_estimator(bound, **bound_kwargs)``, where ``bound_kwargs`` are the
    keywords :func:`~mitools.estimate.estimate_mi` does not know itself (``options``).

    Raises:
        TypeError: a keyword the bound does not take either (a misspelled option, most
            often): the message names it, says where it went, and suggests the closest of
            ``options``.
    """
    from mitools.estimators import Estimator, get_estimator

    def unknown(where: str) -> TypeError:
        hints = [f"did you mean {close[0]!r} instead of {key!r}?"
                 for key in bound_kwargs
                 for close in [difflib.get_close_matches(key, options, n=1)] if close]
        return TypeError(
            f"estimate_mi got {', '.join(map(repr, bound_kwargs))}, not one of its options: "
            f"{where}. " + (" ".join(hints) if hints else f"Its options: {', '.join(options)}"))

    if isinstance(bound, Estimator) and bound_kwargs:
        raise unknown(f"with the bound given as an object ({type(bound).__name__}), there is "
                      "no bound to pass them to")
    try:
        return get_estimator(bound, **bound_kwargs)
    except TypeError as err:
        if not bound_kwargs or "keyword" not in str(err):
            raise
        raise unknown(f"it passed them on to the bound {bound!r}, which does not take them "
                      f"either ({err})") from None

