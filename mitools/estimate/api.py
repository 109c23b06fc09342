"""The public function: :func:`estimate_mi`."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from mitools.critics import QuadraticCritic
from mitools.estimate.data import _as_2d_tensor, gaussianize_margins
from mitools.estimate.fit import _build_critic, _fit_fold
from mitools.estimate.folds import fold_indices
from mitools.estimate.result import MIEstimate
from mitools.estimate.stats import JACKKNIFE_GROUPS, _t_quantile, jackknife_stderr
from mitools.estimators import Estimator, get_estimator

__all__ = ["estimate_mi"]




def _check_int(name: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def estimate_mi(
    x: Any,
    y: Any,
    bound: str | Estimator = "dv",
    critic: str | nn.Module = "quadratic",
    *,
    init: str | None = None,
    margins: str = "ranks",
    hidden: Sequence[int] = (64, 64),
    embed_dim: int = 32,
    potentials: bool = True,
    folds: int = 5,
    val_fraction: float = 0.2,
    report: str = "corrected",
    batch_size: int = 512,
    max_steps: int = 2000,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    eval_every: int = 100,
    patience: int = 5,
    level: float = 0.95,
    device: str | torch.device | None = None,
    seed: int = 0,
    progress: bool = False,
    **bound_kwargs: Any,
) -> MIEstimate:
    r"""Estimate :math:`I(X; Y)` in nats from paired samples by cross-fitted critics.

    See the module docstring for the procedure and for what ``report`` selects. The estimate
    is a lower bound in expectation (up to the finite-sample bias of the log-partition term of
    DV/SMILE); the interval reflects the sampling noise of the samples, and cannot account for a
    critic family that misses the dependence altogether.

    Args:
        x: ``(n, dx)`` numpy array or tensor (a 1-D array is taken as ``(n, 1)``).
        y: ``(n, dy)``, same ``n``.
        bound: a name for :func:`mitools.estimators.get_estimator` (``"dv"``, ``"mine"``,
            ``"nwj"``, ``"infonce"``, ``"smile"``, ``"js"``, ``"tuba"``, ``"alpha_infonce"``)
            or an :class:`~mitools.estimators.Estimator` (each fold trains a copy). It is
            trained and reported. Note InfoNCE's held-out value cannot exceed
            :math:`\log n_{test}`.
        critic: ``"quadratic"`` (:class:`~mitools.critics.QuadraticCritic`), ``"separable"``,
            ``"bilinear"``, ``"concat"``, or an ``nn.Module`` mapping
            ``(N, dx), (M, dy) -> (N, M)`` (each fold trains a deep copy; no potentials are
            added).
        init: ``"gaussian"`` starts the quadratic critic at the closed-form Gaussian fit of
            each fold's training part (:meth:`~mitools.critics.QuadraticCritic.init_gaussian_`);
            ``"random"`` at its random initialisation. ``None`` (default): ``"gaussian"`` for
            the quadratic critic, ``"random"`` for every other.
        margins: ``"ranks"`` replaces every column by the normal scores of its ranks
            (:func:`gaussianize_margins`) before anything else: an increasing map of each
            variable, so the MI is unchanged, and heavy tails are gone. ``"standardize"`` keeps
            the values (each fold still standardises them).
        hidden: hidden widths of the critic's networks: the quadratic critic's separable
            residual (``()``: none, a pure quadratic form), a separable critic's encoders
            (``()``: linear embeddings), or a concat critic's MLP (at least one layer).
        embed_dim: embedding size of a separable critic or of the quadratic critic's residual.
        potentials: add learned marginal potentials :math:`a(x) + b(y)` to a named
            separable, bilinear or concat critic
            (:class:`~mitools.critics.MarginalPotentials`); the quadratic critic has its own.
        folds: number of cross-fitting folds (at least 2); the cost grows linearly with it.
        val_fraction: fraction of each fold's non-test samples used for early stopping.
        report: ``"corrected"`` (the midpoint of held-out and in-sample bounds) or
            ``"held_out"`` (the held-out bound alone).
        batch_size: training minibatch size (capped at the training part).
        max_steps: maximum number of optimiser steps per fold.
        lr: Adam learning rate.
        weight_decay: decoupled weight decay (AdamW) of the critic's parameters.
        eval_every: steps between validation evaluations.
        patience: evaluations without improvement before stopping.
        level: confidence level of the interval, in (0, 1).
        device: where to train (default: CPU, or the device of a tensor ``x``).
        seed: seeds the folds, the minibatches and the critics' initialisation (global RNG
            state is left untouched).
        progress: show a ``tqdm`` progress bar if tqdm is installed.
        **bound_kwargs: passed to the estimator (e.g. ``clip=5.0`` for SMILE,
            ``alpha=0.01`` for alpha-InfoNCE).

    Returns:
        :class:`MIEstimate` with the value, standard error, interval and one
        :class:`FoldResult` (history, critic) per fold.

    Raises:
        TypeError: inputs that are not arrays/tensors of real numbers.
        ValueError: different numbers of samples, NaN/inf values, inputs of more than two
            dimensions, bad options (named in the message), or too few samples to split.

    Example:
        >>> import torch, mitools
        >>> from mitools.estimate import estimate_mi
        >>> task = mitools.CorrelatedGaussian(dim=2, mi=1.0)
        >>> x, y = task.sample(1000, generator=0)
        >>> result = estimate_mi(x, y, max_steps=100, eval_every=50)
        >>> 0.85 < result.value < 1.15 and result.interval[0] < result.value < result.interval[1]
        True
    """
    xt = _as_2d_tensor(x, "x")
    yt = _as_2d_tensor(y, "y")
    if xt.shape[0] != yt.shape[0]:
        raise ValueError(
            f"x and y must hold the same number of samples (paired rows): got x of shape "
            f"{tuple(xt.shape)} and y of shape {tuple(yt.shape)}"
        )
    dtype = torch.promote_types(xt.dtype, yt.dtype)
    xt, yt = xt.to(dtype), yt.to(dtype)
    if margins == "ranks":
        xt, yt = gaussianize_margins(xt), gaussianize_margins(yt)
    for name, value in (("batch_size", batch_size), ("max_steps", max_steps),
                        ("eval_every", eval_every), ("patience", patience),
                        ("embed_dim", embed_dim)):
        _check_int(name, value)
    _check_int("batch_size", batch_size, 2)
    _check_int("folds", folds, 2)
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if not (isinstance(weight_decay, (int, float)) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be a non-negative number, got {weight_decay!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    if margins not in ("ranks", "standardize"):
        raise ValueError(f"margins must be 'ranks' or 'standardize', got {margins!r}")
    if report not in ("corrected", "held_out"):
        raise ValueError(f"report must be 'corrected' or 'held_out', got {report!r}")
    is_quadratic = isinstance(critic, QuadraticCritic) or (
        isinstance(critic, str) and critic.lower() == "quadratic")
    if init is None:
        init = "gaussian" if is_quadratic else "random"
    if init not in ("gaussian", "random"):
        raise ValueError(f"init must be 'gaussian', 'random' or None, got {init!r}")
    if init == "gaussian" and not is_quadratic:
        raise ValueError(
            f"init='gaussian' needs the quadratic critic (critic='quadratic' or a "
            f"QuadraticCritic), got critic={critic!r}"
        )

    if device is None:
        device = x.device if isinstance(x, Tensor) else torch.device("cpu")
    device = torch.device(device)
    n = xt.shape[0]
    gen = torch.Generator().manual_seed(seed)
    splits = fold_indices(n, folds, val_fraction, gen)
    # jackknife groups over all samples, so that leaving one out touches every fold at once
    groups = min(JACKKNIFE_GROUPS, n // (2 * folds))
    if groups < 2:
        raise ValueError(f"n={n} samples are too few for {folds} folds")
    group_of = torch.empty(n, dtype=torch.long)
    group_of[torch.randperm(n, generator=gen)] = torch.arange(n) % groups
    group_of = group_of.to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        probe = get_estimator(bound, **bound_kwargs)
    bound_name = bound if isinstance(bound, str) else getattr(probe, "name", "custom")
    if not getattr(probe, "nats", True):
        raise ValueError(f"bound {bound_name!r} is not an MI estimate in nats; choose another")

    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=folds * max_steps, desc=f"estimate_mi[{bound_name}]", leave=False)
        except ImportError:  # tqdm is optional: no bar
            bar = None

    results, leave_out = [], []
    try:
        for k, split in enumerate(splits):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed * 1009 + k)
                model = _build_critic(critic, xt.shape[1], yt.shape[1], hidden, embed_dim,
                                      potentials)
                estimator = (copy.deepcopy(bound) if isinstance(bound, Estimator)
                             else get_estimator(bound, **bound_kwargs))
            if bar is not None:
                bar.set_description(f"estimate_mi[{bound_name}] fold {k + 1}/{folds}")
            fold, loo = _fit_fold(
                xt, yt, split, model, estimator, init=init, report=report, dtype=dtype,
                device=device, batch_size=batch_size, max_steps=max_steps, lr=lr,
                weight_decay=weight_decay, eval_every=eval_every, patience=patience,
                gen=gen, bar=bar, group_of=group_of, groups=groups,
            )
            results.append(fold)
            leave_out.append(loo)
    finally:
        if bar is not None:
            bar.close()

    value = sum(r.value for r in results) / folds
    # delete-a-group jackknife over samples, critics held fixed: the estimate without group g
    stderr = jackknife_stderr(torch.stack(leave_out).mean(0))
    half = _t_quantile(0.5 + level / 2, groups - 1) * stderr
    held_out = sum(r.held_out for r in results) / folds
    in_sample = sum(r.in_sample for r in results) / folds
    if value + half < 0:
        warnings.warn(
            f"estimate_mi: the estimate {value:.3f} nats lies significantly below zero (interval "
            f"up to {value + half:.3f}); MI is never negative, so the critic generalises badly "
            "to held-out data. Heavy tails (use margins='ranks', the default), discrete values "
            "or a critic too large for n are the usual causes: try another critic (e.g. "
            "critic='separable', hidden=(64, 64)) or bound.",
            RuntimeWarning,
            stacklevel=2,
        )
    return MIEstimate(
        value=value,
        stderr=stderr,
        interval=(value - half, value + half),
        level=level,
        method="neural",
        uncertainty=(
            f"delete-a-group jackknife over the samples ({groups} groups, fold critics held "
            f"fixed); Student's t interval with {groups - 1} degrees of freedom"
        ),
        held_out=held_out,
        in_sample=in_sample,
        optimism=(in_sample - held_out) / 2,
        report=report,
        bound=bound_name,
        folds=tuple(results),
    )
