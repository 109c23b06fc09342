"""The public function: :func:`estimate_mi`."""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mitools.critics import QuadraticCritic
from mitools.critics.base import _check_widths, _no_autocast_anywhere
from mitools.estimate.critic import (
    QuadraticJointCritic,
    build_critic,
    check_residual_option,
    check_shaping_options,
)
from mitools.estimate.crossfit import fit_folds
from mitools.estimate.data import MarginTransform, _warn_if_labels, warn_if_exact_relation
from mitools.estimate.evaluation import SAMPLED_NEGATIVES_BOUNDS
from mitools.estimate.folds import fold_indices, jackknife_groups
from mitools.estimate.knn_check import knn_cross_check
from mitools.estimate.options import (
    DEFAULT_EMBED_DIM,
    DEFAULT_HIDDEN,
    DEFAULT_NEGATIVES,
    bound_with_options,
    check_critic,
    check_estimate_bound,
    check_options,
    check_sample_size,
    estimate_bounds,
    resolve_device,
    resolve_threads,
)
from mitools.estimate.persist import _is_plain, plain
from mitools.estimate.pointwise import column_names
from mitools.estimate.progress import Progress
from mitools.estimate.result import MIEstimate, constant_uncertainty
from mitools.estimate.stats import JACKKNIFE_GROUPS
from mitools.estimate.summary import summarise_folds
from mitools.estimators import Estimator
from mitools.inputs import (
    as_sample_tensor,
    check_paired,
    label_codes,
    warn_if_constant,
    warn_if_unaligned,
    warn_repeated_rows,
)
from mitools.option_checks import check_flag

__all__ = ["estimate_mi"]

def estimate_mi(
    x: Any,
    y: Any,
    bound: str | Estimator = "dv",
    critic: str | nn.Module = "quadratic",
    *,
    residual: str | None = "auto",
    init: str | None = None,
    screen: bool = True,
    margins: str = "ranks",
    discrete_x: bool = False,
    discrete_y: bool = False,
    hidden: Sequence[int] = DEFAULT_HIDDEN,
    embed_dim: int = DEFAULT_EMBED_DIM,
    potentials: bool = True,
    folds: int = 3,
    val_fraction: float = 0.1,
    report: str = "corrected",
    sided: str = "lower",
    batch_size: int = 512,
    negatives: int = DEFAULT_NEGATIVES,
    max_steps: int = 3000,
    lr: float = 3e-3,
    weight_decay: float = 0.0,
    ema: float = 0.99,
    eval_every: int = 100,
    patience: int = 2,
    level: float = 0.95,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
    threads: int | None = None,
    seed: int = 0,
    progress: bool | None = None,
    **bound_kwargs: Any,
) -> MIEstimate:
    r"""Estimate :math:`I(X; Y)` in nats from paired samples by cross-fitted critics.

    See :mod:`mitools.estimate` for the procedure and for what ``report`` selects.

    **What the result claims.** With ``sided="lower"`` (default), ``interval = (low, inf)``:
    with confidence ``level``, the MI is at least ``low``. The estimate targets the best
    bound of the critic family, which is at most the MI and equal to it when the family can
    express the pointwise MI; ``low`` is a one-sided confidence bound for that bound (Student's
    t on the jackknife standard error), hence for the MI. Nothing in the data bounds what a
    family misses, so no upper limit is claimed. ``sided="two-sided"`` gives
    ``value ± t·stderr``, an interval for the MI only when the family reaches it (on
    Gaussian data after the rank transform, for instance). ``result.diagnostics`` flags
    signs of a family that falls short, and a warning says so.

    Args:
        x: ``(n, dx)`` samples: a numpy array, tensor, pandas DataFrame or Series, list, or
            anything with ``__array__``; numeric columns (integers and booleans are
            numbers). A 1-D array is taken as ``(n, 1)``.
        y: ``(n, dy)``, same ``n``.
        bound: a lower bound in nats, by name (``"dv"``, ``"mine"``, ``"nwj"``,
            ``"infonce"``, ``"smile"``, ``"js"``, ``"tuba"``, ``"alpha_infonce"``, ``"flo"``:
            ``mitools.estimate.options.estimate_bounds()``) or as an
            :class:`~mitools.estimators.Estimator` (each fold trains a copy). It is trained
            and reported. Upper bounds (CLUB, vCLUB, L1Out) and the generative estimators
            (BA, DoE) are refused: they need a conditional density model
            (:doc:`/guide/upper_bounds`). InfoNCE's held-out value cannot exceed
            :math:`\log n_{test}`.
        critic: ``"quadratic"`` (the Gaussian form, with the residual ``residual``),
            ``"separable"``, ``"bilinear"``, ``"concat"``, or an ``nn.Module`` mapping
            ``(N, dx), (M, dy) -> (N, M)`` (each fold trains a deep copy; no potentials are
            added). A module with a method ``score_shifted(x (N, dx), y (N, dy), shifts (S,))
            -> (1 + S, N)`` (the matched pairs' scores, then those of ``y`` shifted by each
            of ``shifts``, as the default critic's joint residual has) trains on
            ``negatives`` sampled pairs per sample under DV, MINE and NWJ instead of all
            pairs; do not give a method of another meaning that name. ``"concat"`` runs its
            network on every pair of a batch and of each evaluation, :math:`n_{test}^2`
            pairs: about 25 times slower than ``"separable"`` (55 s against 2.1 s for 50
            steps at n = 1,000).
        residual: what the quadratic critic adds to its Gaussian form: ``"joint"``
            :math:`v^\top \mathrm{relu}(g(x) + h(y))`, a network of the pair that can follow
            sharp or twisted dependence; ``"separable"`` :math:`g(x)^\top h(y)`
            (:class:`~mitools.critics.QuadraticCritic`'s residual, cheaper on all pairs,
            smoother), both networks of ``hidden`` layers (refused with ``hidden=()``);
            ``None``: the pure quadratic form. ``"auto"`` (default): ``"joint"``
            for DV, MINE and NWJ, which train it on sampled negative pairs (``negatives``),
            ``"separable"`` for the other bounds, which score all pairs of each batch. Other
            critics have none: with them, ``"joint"`` or ``"separable"`` is refused.
        init: ``"gaussian"`` starts the quadratic critic at the closed-form Gaussian fit of
            each fold's training part (:meth:`~mitools.critics.QuadraticCritic.init_gaussian_`,
            plus the bound's :attr:`~mitools.estimators.Estimator.optimal_offset`: 1 for NWJ);
            ``"random"`` at its random initialisation. ``None`` (default): ``"gaussian"`` for
            the quadratic critic, ``"random"`` for every other.
        screen: with ``init="gaussian"``, train the first fold's critic, and train the other
            folds' only if it beat the Gaussian start on the first fold's test part by more
            than two standard errors of the difference (a paired jackknife; that part is
            training data for the other folds, never their test data); otherwise they keep
            the start untrained (``result.diagnostics.untrained_folds``;
            ``result.folds[0].held_out_gain`` is the gain; a NaN gain trains them). Where the
            dependence is Gaussian after the margins transform, training rarely beats the
            start, and this saves most of the time. The first fold is checked early, at
            every evaluation from step 100 until its gain exceeds 3 standard errors: a best
            trained critic no better than the start on the test part, or at most 3 standard
            errors better where validation has stopped improving, ends its training, and
            the other folds keep the start (``result.folds[0].stopped_at_check``;
            :doc:`/guide/choosing_a_bound`). A gain above two standard errors is
            evidence that training helps, measured on samples the other folds train and
            validate on: they then replace the start whenever their best trained critic's
            validation bound is higher, where the start's is at most 2 nats (without that
            evidence, or above 2 nats, only when higher by two standard errors, as the first
            fold does). ``False`` trains every fold, each choosing on its validation part
            alone.
        margins: ``"ranks"`` replaces every column by the normal scores of its ranks
            (:func:`gaussianize_margins`) before anything else: an increasing map of each
            variable, so the MI is unchanged, and heavy tails are gone. ``"standardize"`` keeps
            the values (centred and scaled in float64).
        discrete_x: ``x`` holds labels: each distinct row is a category, one-hot encoded, so
            the coding and order of the labels do not matter (``margins`` does not apply).
            Without it, a column with 3 to 20 distinct values (at least 5 samples per value
            on average) draws a warning. Pass labels as
            numbers, booleans or text (``str``; a list, numpy array or pandas column): text
            labels are numbered in sorted order (:func:`mitools.inputs.label_codes`), which
            gives the estimate of any integer coding, value for value. A missing label
            (``None``, NaN) is refused like NaN, and so is a column mixing text with numbers
            (``1`` and ``'1'``). Classes of fewer than 5 samples are merged, with a warning
            (:mod:`mitools.estimate.rare_classes`): a function of the labels, so the MI can
            only fall and the estimate stays a lower bound.
        discrete_y: the same for ``y``.
        hidden: hidden widths of the critic's networks: the quadratic critic's residual
            encoders (``()``: no residual), a separable critic's encoders (``()``: linear
            embeddings), or a concat critic's MLP (at least one layer). Where it would
            shape nothing (the bilinear critic, ``residual=None``, a critic module), a value
            other than the default (or ``()``) is refused, as ``embed_dim`` and
            ``negatives`` are (``mitools.estimate.critic.check_shaping_options``).
        embed_dim: units of the joint residual's pair layer, or embedding size of a separable
            critic or of the separable residual.
        potentials: add learned marginal potentials :math:`a(x) + b(y)` to a named
            separable, bilinear or concat critic
            (:class:`~mitools.critics.MarginalPotentials`); the quadratic critic has its own
            (``potentials=False`` is refused with it: they are part of its Gaussian form).
        folds: number of cross-fitting folds (at least 2); the cost grows linearly with it.
        val_fraction: fraction of each fold's non-test samples used for early stopping.
        report: ``"corrected"`` (the midpoint of held-out and in-sample bounds) or
            ``"held_out"`` (the held-out bound alone).
        sided: ``"lower"`` or ``"two-sided"``: the kind of ``interval`` (above).
        batch_size: training minibatch size (capped at the training part).
        negatives: negative pairs per sample in each training step, when the critic can score
            chosen pairs (the default quadratic critic with the joint residual) and the bound
            is DV, MINE or NWJ: each sample is paired with ``negatives`` others (distinct
            shifts of the batch) instead of all ``batch_size - 1``, which costs a fraction of
            scoring every pair (capped at the batch's size less one, as ``batch_size`` is
            capped). Other critics and bounds score all pairs of the batch (a value other
            than the default is refused there).
        max_steps: maximum number of optimiser steps per fold.
        lr: AdamW learning rate.
        weight_decay: decoupled weight decay (AdamW) of the critic's parameters.
        ema: decay of an exponential moving average of the critic's weights, updated every
            step; the average is what is validated and kept (it smooths the minibatch noise
            of the last ~``1 / (1 - ema)`` steps). 0 keeps the trained weights themselves.
        eval_every: steps between validation evaluations.
        patience: evaluations without improvement before stopping.
        level: confidence level of the interval, in (0, 1).
        device: where to train. ``None`` (default): the device of a tensor ``x`` off the CPU,
            else CUDA when available, else the CPU.
        dtype: the critics' compute dtype. Inputs are centred and scaled (or ranked) in their
            own precision and float64 first, so float32 (default) loses nothing that matters
            and float64 input costs no more; float64 computes in double precision (slower).
            It holds inside a ``torch.autocast`` region too: the call runs with autocast off
            (a training loop inside one autocast region never updates autocast's cached
            half-precision weights, and the estimate was that of the untrained critic).
        threads: CPU threads torch may use during the call (restored afterwards). ``None``:
            ``min(4, idle CPUs, torch.get_num_threads())``, at least 1, where idle CPUs are
            those available less the 1-minute load average: threads beyond the idle CPUs wait
            on each other (on a busy 2-core machine, 2 threads ran 10-40x slower than 1); a
            lower count set with ``torch.set_num_threads`` or ``OMP_NUM_THREADS`` is kept.
            The count holds from the options' check on: the margins, the fits and KSG's
            cross-check alike. In a process *forked* from one that had run torch on several
            threads, pass ``threads=1`` (libgomp's threads do not survive a fork, and a
            parallel region on more of them waits for ever), or start processes with
            ``spawn``.
        seed: an int in [0, 2**32 - 1]; seeds the folds, the minibatches and the critics'
            initialisation (global RNG state is left untouched). The same data, options,
            ``seed`` and thread count give the same result bit for bit (``==``), in this
            process or another, whatever the global RNG's state; another thread count may
            change the last digits (torch sums in another order), and ``threads=None`` picks
            the count from the machine's load: pass ``threads=`` to rerun bit for bit.
        progress: show a ``tqdm`` progress bar on stderr with the estimate so far (the mean
            of the finished folds) and the current fold's validation bound. ``None``
            (default): a bar when stderr is a terminal and tqdm is installed, none in a log
            file, a pipe or a notebook's captured output. ``True``: a bar; tqdm is
            optional, and without it a warning says to ``pip install tqdm``. ``False``: none.
        **bound_kwargs: passed to the estimator (e.g. ``clip=5.0`` for SMILE,
            ``alpha=0.01`` for alpha-InfoNCE).

    Returns:
        :class:`MIEstimate` with the value, standard error, interval, diagnostics and one
        :class:`FoldResult` (history, critic) per fold. ``pointwise``, ``save``/``load`` and
        ``plot_history`` use the fitted critics later. Where ``x`` or ``y`` is constant (every
        column one value) nothing is trained: the value is exactly 0.0, with no interval
        (``stderr`` and ``interval`` NaN, ``uncertainty`` says why) and no folds, as the
        classical estimators answer.

    Raises:
        TypeError: inputs that are not array-like with numeric entries (the message names the
            argument and the dtype or columns seen), labels of a discrete variable that mix
            text with numbers or are neither, or a ``critic`` that is neither a name nor an
            ``nn.Module``.
        ValueError: different numbers of samples, NaN/inf values (missing labels included),
            inputs of more than two dimensions, too few samples for the folds (the message
            says how many are needed), a variable declared discrete that has more distinct
            values than half the samples or fewer than 5 samples per class on average, an
            unavailable device, or bad options (named in the message).

    Warns:
        RuntimeWarning: signs that the estimate falls short (``result.diagnostics.flags``:
            folds stopped at ``max_steps`` while improving, a large held-out/in-sample gap, a
            large non-Gaussian share, a KSG estimate on the same samples clearly above it), an
            estimate significantly below zero, or one far below zero with a noise so wide
            that it reaches zero (the folds disagree).
        UserWarning: a column that looks like labels without ``discrete_x``/``discrete_y``.
        RuntimeWarning: continuous ``x`` and ``y`` related exactly after the margins'
            transform (a canonical correlation of 1 to rounding, e.g. ``y = x ** 3`` with
            ranks): the MI is infinite and the estimate only a lower figure.
        RuntimeWarning: ``progress=True`` without tqdm installed.
        RuntimeWarning: classes of ``discrete_x``/``discrete_y`` with fewer than 5 samples,
            which are merged.
        RuntimeWarning: a constant ``x`` or ``y`` (the estimate is then exactly 0).

    Example:
        >>> import torch, mitools
        >>> from mitools.estimate import estimate_mi
        >>> task = mitools.CorrelatedGaussian(dim=2, mi=1.0)
        >>> x, y = task.sample(1000, generator=0)
        >>> result = estimate_mi(x, y, max_steps=200, eval_every=50)
        >>> 0.85 < result.value < 1.15, result.sided, result.interval[1]
        (True, 'lower', inf)
    """
    # Fitting needs gradients even when the caller runs under torch.no_grad() or
    # torch.inference_mode() (an evaluation loop, for instance): both are off for the call;
    # so is torch.autocast (dtype= governs; and see _no_autocast_anywhere).
    with (torch.inference_mode(False), torch.enable_grad(), _no_autocast_anywhere(),
          contextlib.ExitStack() as restore):
        # labels given as text become integer codes (a discrete variable is compared by
        # equality only); the labels are kept so that pointwise codes new samples alike
        discrete_x, discrete_y = (check_flag(n, v) for n, v in (("discrete_x", discrete_x),
                                                               ("discrete_y", discrete_y)))
        x_labels = label_codes(x, "x") if discrete_x else None
        y_labels = label_codes(y, "y") if discrete_y else None
        xa = as_sample_tensor(x if x_labels is None else x_labels.values, "x", discrete_x)
        ya = as_sample_tensor(y if y_labels is None else y_labels.values, "y", discrete_y)
        check_paired(xa, ya)
        check_options(locals())
        # threads= governs the whole call from here, not the fits alone: the margins' ranks,
        # the checks and KSG's cross-check ran on torch's default count (so threads=1 in a
        # process forked from one that had used torch's threads hung in libgomp)
        restore.callback(torch.set_num_threads, torch.get_num_threads())
        torch.set_num_threads(resolve_threads(threads))
        # numpy scalars pass the checks: from here on, plain Python numbers
        seed, folds, max_steps, eval_every, patience, batch_size, negatives, embed_dim = (
            int(v) for v in (seed, folds, max_steps, eval_every, patience, batch_size,
                             negatives, embed_dim))
        lr, weight_decay, ema, level, val_fraction = (
            float(v) for v in (lr, weight_decay, ema, level, val_fraction))
        hidden = _check_widths(hidden)
        critic = check_critic(critic, hidden)  # a name in lower case, or a module
        warn_if_unaligned(x, y, "estimate_mi")
        repeated = warn_repeated_rows(xa, ya, "estimate_mi", "a repeated row can fall in one "
                                      "fold's training part and another's test part",
                                      stacklevel=3)
        if isinstance(bound, str) and bound.lower() not in estimate_bounds():
            check_estimate_bound(bound, None)  # raises, naming the bounds that work
        if margins not in ("ranks", "standardize"):
            raise ValueError(f"margins must be 'ranks' or 'standardize', got {margins!r}")
        margin_x, xt = MarginTransform.fit(xa, "discrete" if discrete_x else margins, "x")
        margin_y, yt = MarginTransform.fit(ya, "discrete" if discrete_y else margins, "y")
        is_quadratic = isinstance(critic, (QuadraticCritic, QuadraticJointCritic)) or (
            critic == "quadratic")
        init = init if init is not None else ("gaussian" if is_quadratic else "random")
        if init not in ("gaussian", "random"):
            raise ValueError(f"init must be 'gaussian', 'random' or None, got {init!r}")
        if init == "gaussian" and not is_quadratic:
            raise ValueError(
                f"init='gaussian' needs the quadratic critic (critic='quadratic' or a "
                f"QuadraticCritic), got critic={critic!r}"
            )
        quadratic = critic == "quadratic"
        check_residual_option(critic, residual, hidden)
        device = resolve_device(device, x)
        n = xt.shape[0]
        gen = torch.Generator().manual_seed(seed)
        dims = xt.shape[1] + yt.shape[1]
        check_sample_size(n, folds, dims, int((1 - 1 / folds) * (1 - val_fraction) * n) - 1
                          if init == "gaussian" else n, val_fraction)
        # after every refusal: a warning that the estimate is 0 must not precede an error
        constant = []
        for name, raw, discrete in (("x", xa, discrete_x), ("y", ya, discrete_y)):
            if warn_if_constant(raw, name, "estimate_mi", stacklevel=3):
                constant.append(name)
            if not discrete:
                _warn_if_labels(raw, name, stacklevel=3)
        # labels may be exact functions of each other; n > dims: a correlation of 1 says so
        exact = not (discrete_x or discrete_y) and warn_if_exact_relation(xt, yt, stacklevel=3)
        splits = fold_indices(n, folds, val_fraction, gen)
        groups = min(JACKKNIFE_GROUPS, n // (2 * folds))
        group_of = jackknife_groups(splits, n, groups, gen).to(device)
        with torch.random.fork_rng(devices=[]):
            # the CPU generator alone, which fork_rng restores: torch.manual_seed reseeds every
            # CUDA (and MPS, XPU) generator too, which fork_rng(devices=[]) does not restore
            torch.random.default_generator.manual_seed(seed)
            probe = bound_with_options(bound, bound_kwargs, list(_OPTIONS))
        bound_name = bound if isinstance(bound, str) else getattr(probe, "name", "custom")
        check_estimate_bound(bound, probe)
        if residual == "auto":
            residual = ("joint" if isinstance(probe, SAMPLED_NEGATIVES_BOUNDS) else "separable"
                        ) if quadratic else None
        check_shaping_options(critic, residual, probe, hidden, embed_dim, negatives,
                              potentials)

        plain_kwargs = plain(dict(bound_kwargs))
        settings = {
            "critic": critic if isinstance(critic, str) else "custom",
            "residual": residual, "hidden": list(hidden), "embed_dim": embed_dim,
            "potentials": potentials, "dim_x": xt.shape[1], "dim_y": yt.shape[1],
            "bound": bound_name if isinstance(bound, str) and _is_plain(plain_kwargs) else "custom",
            "bound_kwargs": plain_kwargs if _is_plain(plain_kwargs) else {},
            "margins": margins, "discrete_x": discrete_x, "discrete_y": discrete_y, "init": init,
            "screen": screen,
            "folds": folds, "seed": seed, "max_steps": max_steps, "batch_size": batch_size,
            "lr": lr, "dtype": str(dtype).removeprefix("torch."), "n": n,
            "val_fraction": val_fraction, "negatives": negatives, "weight_decay": weight_decay,
            "ema": ema, "eval_every": eval_every, "patience": patience,
            # pandas column names (None: an array), so pointwise matches new columns by name
            "x_columns": column_names(x), "y_columns": column_names(y),
            # text labels of a discrete variable, per column in the order of their codes
            "x_labels": None if x_labels is None else x_labels.categories,
            "y_labels": None if y_labels is None else y_labels.categories,
        }
        if constant:  # the MI is exactly 0: nothing to train (as the classical estimators)
            return MIEstimate(value=0.0, stderr=math.nan, interval=(math.nan, math.nan),
                              level=level, method="neural",
                              uncertainty=constant_uncertainty(constant), bound=bound_name,
                              report=report, sided=sided, margins=(margin_x, margin_y),
                              settings=settings)

        bar = Progress(progress, folds, max_steps, bound_name)
        try:
            results, leave_out = fit_folds(
                xt, yt, splits, make_critic=lambda: build_critic(
                    critic, xt.shape[1], yt.shape[1], hidden, embed_dim, potentials, residual),
                bound=bound, bound_kwargs=bound_kwargs, init=init, screen=screen, seed=seed,
                max_steps=max_steps, bar=bar, report=report, dtype=dtype, device=device,
                batch_size=batch_size, negatives=negatives, lr=lr, weight_decay=weight_decay,
                ema=ema, eval_every=eval_every, patience=patience, gen=gen, group_of=group_of,
                groups=groups)
        finally:
            bar.close()

        # KSG on the same samples: where it reads clearly more, the critics fell short
        knn = ((math.nan, math.nan) if exact or discrete_x or discrete_y
               else knn_cross_check(xt, yt, seed))
        return summarise_folds(
            results, leave_out, groups, sided=sided, level=level, max_steps=max_steps,
            init=init, exact=exact, knn=knn, repeated=repeated > 0, margins=margins,
            critic=critic, discrete=discrete_x or discrete_y, report=report, bound=bound_name,
            settings=settings, transforms=(margin_x, margin_y))


#: estimate_mi's own options (a keyword outside them goes to the bound)
_OPTIONS = tuple(p for p in inspect.signature(estimate_mi).parameters
                 if p not in ("x", "y", "bound_kwargs"))
