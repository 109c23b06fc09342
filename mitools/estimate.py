r"""One-call mutual-information estimation for two arrays: :func:`estimate_mi`.

A user with paired samples ``x (n, dx)``, ``y (n, dy)`` wants one number with an error bar.
:func:`estimate_mi` does what a careful practitioner would do by hand, with K-fold
cross-fitting so that every sample serves once as held-out data:

0. replace every column by the normal scores of its ranks (``margins="ranks"``): an
   increasing map of each variable leaves the MI unchanged and removes heavy tails, which
   would otherwise dominate the log-partition term;
1. split the samples at random into ``folds`` parts; for each fold ``k``, that part is the
   **test** part, and the rest is split into a **validation** part (``val_fraction`` of it)
   and a **training** part;
2. standardise both variables with the mean and scale of the fold's training and validation
   samples;
3. build the critic (by default :class:`~mitools.critics.QuadraticCritic` with an MLP
   residual, started at the closed-form Gaussian fit of the training part) and train it on
   minibatches of the training part, maximising the chosen bound;
4. every ``eval_every`` steps (and before the first), evaluate the bound on the whole
   validation part (all :math:`n_{val}(n_{val} - 1)` negative pairs) and keep the critic with
   the best validation value; stop when it has not improved for ``patience`` evaluations;
5. evaluate that critic's bound on the fold's **test** part, which took no part in training
   or selection (``held_out``), and on as many of its own training samples (``in_sample``).

**The reported value.** A critic fitted to finite data is worse than the best critic of its
family: its held-out bound falls short of the best attainable one, and its in-sample bound
exceeds it, by the same amount to first order (the optimism argument behind AIC and TIC;
the DV bound is the log-likelihood of an exponential family, for which both gaps are
:math:`p / 2n` for :math:`p` effective parameters). With ``report="corrected"`` (default) each
fold reports the midpoint of its held-out and in-sample bounds, an estimate, unbiased to
first order, of the best critic's bound (itself a lower bound of the MI); with
``report="held_out"`` each fold reports its held-out bound, which is conservative (low by
that optimism). Both are always in the result. The estimate is the
mean over folds. Its standard error is a delete-a-group jackknife over the samples (20
random groups; leaving a group out removes it from every fold's evaluations at once, with the
critics held fixed), and the interval uses Student's t with ``groups - 1`` degrees of freedom.
(The spread of the fold values would understate the error: the folds share the luck of the
whole data set.) Neither value is ever the maximum over evaluations, which biases upwards.

Design notes (measured on the d = 20 correlated Gaussian, n = 5,000, see
``docs/benchmarks.rst``):

* The default bound is **DV**: held out, it has no :math:`\log K` ceiling (InfoNCE is capped at
  :math:`\log n_{test}`), and training with the same objective that is reported keeps the
  critic calibrated for it.
* The default critic is **quadratic plus a separable MLP residual**, started at the Gaussian
  fit (``init="gaussian"``; the residual starts at zero). From random starts, minibatch DV
  training on 10-nat data stalls near 9 nats (its gradient is dominated by a few extreme
  negative pairs); from the Gaussian fit it starts at the answer for Gaussian data, and the
  residual learns what the quadratic form cannot (on bmi's Student-t tasks, whose
  dependence has no linear part, the pure quadratic form finds nothing). Early stopping
  keeps the Gaussian start when training does not improve the validation bound.

References:
    Poole et al. *On Variational Bounds of Mutual Information*, ICML 2019.
    Song & Ermon. *Understanding the Limitations of Variational Mutual Information
    Estimators*, ICLR 2020. McAllester & Stratos. *Formal Limitations on the Measurement of
    Mutual Information*, AISTATS 2020. Chernozhukov et al. *Double/debiased machine learning
    for treatment and structural parameters*, Econometrics Journal 2018 (cross-fitting).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from mitools.critics import QuadraticCritic, get_critic, mlp
from mitools.estimators import Estimator, get_estimator

__all__ = [
    "FoldResult",
    "HistoryPoint",
    "MIEstimate",
    "MarginalPotentials",
    "Split",
    "Standardization",
    "estimate_mi",
    "fold_indices",
    "gaussianize_margins",
]


class Split(NamedTuple):
    """Indices of the three disjoint parts of the samples used by one fold."""

    train: Tensor
    val: Tensor
    test: Tensor


class Standardization(NamedTuple):
    """Per-column location and scale (from a fold's training and validation samples).

    That fold's critic expects ``(x - x_mean) / x_scale`` and ``(y - y_mean) / y_scale``.
    """

    x_mean: Tensor
    x_scale: Tensor
    y_mean: Tensor
    y_scale: Tensor


class HistoryPoint(NamedTuple):
    """One evaluation during training: ``step`` (training steps done; 0 is the initial
    critic), ``train`` (mean of the minibatch bound values since the previous evaluation,
    nats; NaN at step 0) and ``val`` (the bound on the whole validation split, nats)."""

    step: int
    train: float
    val: float


@dataclass(frozen=True)
class FoldResult:
    """One fold of :func:`estimate_mi`.

    Attributes:
        held_out: the bound of the kept critic on this fold's test part, in nats.
        in_sample: its bound on as many of its own training samples, in nats.
        value: what this fold reports: ``held_out``, or the midpoint of ``held_out`` and
            ``in_sample`` with ``report="corrected"``.
        history: evaluations during training (validation values, not the estimate).
        best_step: the step whose critic was kept (best validation value; 0: the initial one).
        steps: training steps run (early stopping may end before ``max_steps``).
        split: the fold's train / validation / test indices into the samples.
        critic: the trained critic (on standardised inputs, in evaluation mode).
        estimator: the trained estimator module (holds learned baselines, if any).
        standardization: the location/scale applied before the critic (after the rank
            transform with ``margins="ranks"``).
    """

    held_out: float
    in_sample: float
    value: float
    history: list[HistoryPoint] = field(repr=False)
    best_step: int
    steps: int
    split: Split = field(repr=False)
    critic: nn.Module = field(repr=False)
    estimator: Estimator = field(repr=False)
    standardization: Standardization = field(repr=False)


@dataclass(frozen=True)
class MIEstimate:
    """Result of :func:`estimate_mi`.

    Attributes:
        value: the estimate in nats: the mean of the folds' values (see ``report``).
        stderr: its standard error: a delete-a-group jackknife over the samples, with the
            fold critics held fixed.
        interval: ``(low, high)``, ``value`` -/+ Student's t quantile (``groups - 1``
            degrees of freedom, 19 for 20 groups) times ``stderr``.
        level: confidence level of ``interval``.
        held_out: mean over folds of the bound on held-out test samples (conservative).
        in_sample: mean over folds of the bound on the critics' own training samples.
        optimism: ``(in_sample - held_out) / 2``, the estimated gap between a fitted critic
            and the best critic of its family on either side; ``value - held_out`` when
            ``report="corrected"``.
        report: ``"corrected"`` or ``"held_out"``.
        bound: name of the bound trained and reported.
        folds: one :class:`FoldResult` per fold.
    """

    value: float
    stderr: float
    interval: tuple[float, float]
    level: float
    held_out: float
    in_sample: float
    optimism: float
    report: str
    bound: str
    folds: tuple[FoldResult, ...] = field(repr=False)

    @property
    def critic(self) -> nn.Module:
        """The first fold's trained critic (apply its ``standardization`` first)."""
        return self.folds[0].critic

    @property
    def standardization(self) -> Standardization:
        """The first fold's standardisation."""
        return self.folds[0].standardization

    @property
    def history(self) -> list[HistoryPoint]:
        """The first fold's training history."""
        return self.folds[0].history


class MarginalPotentials(nn.Module):
    r"""Adds learned marginal potentials to a critic: :math:`f(x, y) + a(x) + b(y)`.

    The pointwise MI :math:`\log p(y|x) - \log p(y)` of many distributions (all Gaussian
    ones) is a low-rank interaction plus terms in :math:`x` alone and :math:`y` alone.
    Bounds like DV, NWJ and JS are not invariant to those terms, so a critic that must learn
    them inside its embeddings wastes capacity; two small scalar functions learn them
    directly. Each potential is a small MLP minus a learned quadratic form,

    .. math:: a(x) = \mathrm{MLP}_a(x) - \lVert P_a x \rVert^2,

    since ReLU networks extrapolate linearly while log-densities decay at least
    quadratically in the tails (where held-out negatives that the training set never showed
    must still get low scores). A separable ``critic`` stays separable.

    Args:
        critic: the interaction critic, ``(..., N, Dx), (..., M, Dy) -> (..., N, M)``.
        dim_x: features of ``x``.
        dim_y: features of ``y``.
        hidden: hidden widths of the potential networks :math:`a` and :math:`b`.

    Example:
        >>> import torch
        >>> from mitools.critics import SeparableCritic
        >>> f = MarginalPotentials(SeparableCritic(3, 2, hidden=()), 3, 2)
        >>> f(torch.randn(5, 3), torch.randn(4, 2)).shape
        torch.Size([5, 4])
    """

    def __init__(self, critic: nn.Module, dim_x: int, dim_y: int, hidden: Sequence[int] = (64,)):
        super().__init__()
        self.critic = critic
        self.dim_x, self.dim_y = dim_x, dim_y
        self.a = mlp(dim_x, tuple(hidden), 1)
        self.b = mlp(dim_y, tuple(hidden), 1)
        self.quad_x = nn.Linear(dim_x, dim_x, bias=False)
        self.quad_y = nn.Linear(dim_y, dim_y, bias=False)
        # Small, not zero: the gradient of ||P x||^2 vanishes at P = 0.
        nn.init.normal_(self.quad_x.weight, std=0.05)
        nn.init.normal_(self.quad_y.weight, std=0.05)

    def potentials(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """The potentials :math:`a(x)` ``(..., N)`` and :math:`b(y)` ``(..., M)``."""
        a = self.a(x).squeeze(-1) - self.quad_x(x).square().sum(-1)
        b = self.b(y).squeeze(-1) - self.quad_y(y).square().sum(-1)
        return a, b

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        a, b = self.potentials(x, y)
        return self.critic(x, y) + a[..., :, None] + b[..., None, :]


def fold_indices(
    n: int,
    folds: int = 5,
    val_fraction: float = 0.2,
    generator: torch.Generator | None = None,
) -> list[Split]:
    """Cross-fitting splits: each sample is in exactly one fold's test part.

    The samples are permuted and cut into ``folds`` near-equal parts. Fold ``k`` tests on part
    ``k``; of the other samples, the first ``round(val_fraction * rest)`` (in permuted order)
    validate and the others train.

    Args:
        n: number of samples.
        folds: number of folds, at least 2.
        val_fraction: fraction of each fold's non-test samples used for validation, in (0, 1).
        generator: source of randomness.

    Returns:
        One :class:`Split` of ``int64`` index tensors per fold.

    Raises:
        ValueError: bad ``folds`` or ``val_fraction``, or a part with fewer than 2 samples (a
            bound needs a positive and a negative pair).

    Example:
        >>> import torch
        >>> splits = fold_indices(10, folds=5, val_fraction=0.25,
        ...                       generator=torch.Generator().manual_seed(0))
        >>> [(len(s.train), len(s.val), len(s.test)) for s in splits][0]
        (6, 2, 2)
        >>> sorted(torch.cat([s.test for s in splits]).tolist()) == list(range(10))
        True
    """
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"folds must be an int >= 2, got {folds!r}")
    if not (isinstance(val_fraction, (int, float)) and 0.0 < val_fraction < 1.0):
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction!r}")
    perm = torch.randperm(n, generator=generator)
    parts = list(perm.tensor_split(folds))
    splits = []
    for k in range(folds):
        rest = torch.cat([parts[j] for j in range(folds) if j != k])
        n_val = round(val_fraction * len(rest))
        split = Split(rest[n_val:], rest[:n_val], parts[k])
        if min(len(p) for p in split) < 2:
            raise ValueError(
                f"n={n} samples in {folds} folds with val_fraction={val_fraction} gives parts "
                f"of sizes (train={len(split.train)}, val={len(split.val)}, "
                f"test={len(split.test)}); every part needs at least 2 samples"
            )
        splits.append(split)
    return splits


def _as_2d_tensor(a: Any, name: str) -> Tensor:
    if isinstance(a, Tensor):
        t = a.detach()
    elif isinstance(a, np.ndarray) or isinstance(a, (list, tuple)):
        arr = np.asarray(a)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers, got numpy dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    else:
        raise TypeError(f"{name} must be a numpy array or a torch.Tensor, got {type(a).__name__}")
    if t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers, got dtype {t.dtype}")
    if t.dim() == 1:
        t = t[:, None]  # n scalar samples: shape (n,) -> (n, 1)
    elif t.dim() != 2:
        raise ValueError(
            f"{name} must have shape (n, d) (or (n,) for scalars), got shape {tuple(t.shape)}"
        )
    if t.shape[1] < 1:
        raise ValueError(f"{name} must have at least one feature, got shape {tuple(t.shape)}")
    t = t.to(torch.float64) if t.dtype == torch.float64 else t.to(torch.float32)
    if not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).any(dim=1).sum())
        raise ValueError(f"{name} contains NaN or infinite values in {bad} of {t.shape[0]} rows")
    return t


def _standardize(x: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
    mean = x[idx].mean(0)
    scale = x[idx].std(0)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # constant columns
    return mean, scale


def gaussianize_margins(x: Tensor) -> Tensor:
    r"""Map every column to standard-normal scores of its ranks: :math:`\Phi^{-1}(r / (n+1))`.

    An increasing map of each column separately, so the mutual information with any other
    variable is unchanged (for continuous data); heavy tails and skew are gone. Tied values
    share their average rank.

    Args:
        x: ``(n, d)`` samples.

    Returns:
        ``(n, d)`` normal scores, in ``x``'s dtype.

    Example:
        >>> import torch
        >>> gaussianize_margins(torch.tensor([[10.0], [-3.0], [500.0]])).squeeze(1)
        tensor([ 0.0000, -0.6745,  0.6745])
    """
    n = x.shape[0]
    cols = x.T.contiguous()  # (d, n)
    ordered = torch.sort(cols, dim=1).values
    below = torch.searchsorted(ordered, cols, right=False)
    upto = torch.searchsorted(ordered, cols, right=True)
    u = (below + upto + 1).to(torch.float64) / (2.0 * (n + 1))  # average rank / (n + 1)
    return (math.sqrt(2.0) * torch.special.erfinv(2.0 * u - 1.0)).T.to(x.dtype)


def _t_quantile(p: float, dof: int) -> float:
    """Quantile of Student's t distribution: bisection on its CDF, integrated by Simpson's rule
    (error below 1e-5 for dof >= 1 and p <= 0.9995)."""
    if not 0.5 <= p < 1.0:
        raise ValueError(f"p must lie in [0.5, 1), got {p}")
    v = float(dof)
    log_norm = math.lgamma((v + 1) / 2) - math.lgamma(v / 2) - 0.5 * math.log(v * math.pi)

    def cdf(t: float) -> float:
        intervals = 2 * max(1000, math.ceil(100 * t))
        h = t / intervals
        total = 0.0
        for i in range(intervals + 1):  # scalar quadrature, a few thousand points, once
            u = i * h
            w = 1 if i in (0, intervals) else (4 if i % 2 else 2)
            total += w * math.exp(log_norm - (v + 1) / 2 * math.log1p(u * u / v))
        return 0.5 + total * h / 3

    lo, hi = 0.0, 1.0
    while cdf(hi) < p:
        lo, hi = hi, 2 * hi
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return (lo + hi) / 2


@torch.no_grad()
def _evaluate(estimator: Estimator, critic: nn.Module, x: Tensor, y: Tensor) -> float:
    """The bound on all pairs of ``(x, y)``."""
    return float(estimator(critic(x, y), anchors=x))


@torch.no_grad()
def _evaluate_leaving_groups_out(estimator: Estimator, critic: nn.Module, x: Tensor, y: Tensor,
                                 group_of: Tensor, groups: int) -> tuple[float, Tensor]:
    """The bound on all pairs of ``(x, y)``, and ``(groups,)`` values of it without the samples
    of group ``g`` for each ``g < groups`` (``group_of`` gives each sample's group); the scores
    are computed once for all of them."""
    scores = critic(x, y)
    value = float(estimator(scores, anchors=x))
    values = []
    for g in range(groups):  # a loop over groups (20), each a full vectorised evaluation
        keep = group_of != g
        values.append(float(estimator(scores, row_mask=keep, col_mask=keep, anchors=x)))
    return value, torch.tensor(values, dtype=torch.float64)


_JACKKNIFE_GROUPS = 20


def _check_int(name: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _build_critic(critic: str | nn.Module, dim_x: int, dim_y: int, hidden: Sequence[int],
                  embed_dim: int, potentials: bool) -> nn.Module:
    if isinstance(critic, nn.Module):
        return copy.deepcopy(critic)
    name = critic.lower() if isinstance(critic, str) else critic
    kwargs: dict[str, Any] = {}
    if name in ("separable", "concat"):
        kwargs["hidden"] = tuple(hidden)
    if name == "quadratic":
        kwargs["hidden"] = tuple(hidden) if len(hidden) else None
    if name in ("separable", "quadratic"):
        kwargs["embed_dim"] = embed_dim
    model = get_critic(critic, dim_x, dim_y, **kwargs)
    if potentials and not isinstance(model, QuadraticCritic):
        model = MarginalPotentials(model, dim_x, dim_y)
    return model


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
            separable, bilinear or concat critic (:class:`MarginalPotentials`); the quadratic
            critic has its own.
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
    groups = min(_JACKKNIFE_GROUPS, n // (2 * folds))
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
    loo_means = torch.stack(leave_out).mean(0)
    stderr = math.sqrt((groups - 1) / groups * float(((loo_means - loo_means.mean()) ** 2).sum()))
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
        held_out=held_out,
        in_sample=in_sample,
        optimism=(in_sample - held_out) / 2,
        report=report,
        bound=bound_name,
        folds=tuple(results),
    )


def _fit_fold(xt: Tensor, yt: Tensor, split: Split, model: nn.Module, estimator: Estimator, *,
              init: str, report: str, dtype: torch.dtype, device: torch.device,
              batch_size: int, max_steps: int, lr: float, weight_decay: float,
              eval_every: int, patience: int, gen: torch.Generator, bar: Any,
              group_of: Tensor, groups: int) -> tuple[FoldResult, Tensor]:
    """Train one fold's critic with early stopping; evaluate it held out and in sample, also
    with each jackknife group left out (``(groups,)``, the fold's value without group g)."""
    fit = torch.cat([split.train, split.val])
    x_mean, x_scale = _standardize(xt, fit)
    y_mean, y_scale = _standardize(yt, fit)
    xs = ((xt - x_mean) / x_scale).to(device)
    ys = ((yt - y_mean) / y_scale).to(device)
    train, val, test = (p.to(device) for p in split)
    model = model.to(device=device, dtype=dtype)
    estimator = estimator.to(device=device, dtype=dtype)
    if init == "gaussian":
        model.init_gaussian_(xs[train], ys[train])
    optimizer = torch.optim.AdamW(
        [
            {"params": list(model.parameters()), "weight_decay": float(weight_decay)},
            {"params": list(estimator.parameters()), "weight_decay": 0.0},
        ],
        lr=lr,
    )
    batch = min(batch_size, len(train))

    def snapshot() -> tuple[dict, dict]:
        return copy.deepcopy(model.state_dict()), copy.deepcopy(estimator.state_dict())

    model.eval()
    estimator.eval()
    best_val = _evaluate(estimator, model, xs[val], ys[val])
    history = [HistoryPoint(0, math.nan, best_val)]
    best_step, best_state, since_best = 0, snapshot(), 0
    running, running_n, step = 0.0, 0, 0
    for step in range(1, max_steps + 1):
        model.train()
        estimator.train()
        idx = train[torch.randperm(len(train), generator=gen)[:batch].to(device)]
        xb, yb = xs[idx], ys[idx]
        value = estimator(model(xb, yb), anchors=xb)
        optimizer.zero_grad(set_to_none=True)
        (-value).backward()
        optimizer.step()
        running += float(value.detach())
        running_n += 1
        if bar is not None:
            bar.update(1)
        if step % eval_every == 0 or step == max_steps:
            model.eval()
            estimator.eval()
            val_value = _evaluate(estimator, model, xs[val], ys[val])
            history.append(HistoryPoint(step, running / running_n, val_value))
            running, running_n = 0.0, 0
            if bar is not None:
                bar.set_postfix(val=f"{val_value:.3f}")
            if val_value > best_val:
                best_val, best_step, best_state, since_best = val_value, step, snapshot(), 0
            else:
                since_best += 1
                if since_best >= patience:
                    break
    if bar is not None:
        bar.update(max_steps - step)  # early stopping: count the steps not run as done
    model.load_state_dict(best_state[0])
    estimator.load_state_dict(best_state[1])
    model.eval()
    estimator.eval()
    # the bounds, and the fold's value with each jackknife group left out of its evaluations
    held_out, loo = _evaluate_leaving_groups_out(estimator, model, xs[test], ys[test],
                                                 group_of[test], groups)
    own = train[: len(test)]
    corrected = report == "corrected"
    in_sample, own_loo = _evaluate_leaving_groups_out(estimator, model, xs[own], ys[own],
                                                      group_of[own], groups if corrected else 0)
    value = (held_out + in_sample) / 2 if corrected else held_out
    if corrected:
        loo = (loo + own_loo) / 2
    return FoldResult(
        held_out=held_out,
        in_sample=in_sample,
        value=value,
        history=history,
        best_step=best_step,
        steps=step,
        split=split,
        critic=model,
        estimator=estimator,
        standardization=Standardization(x_mean, x_scale, y_mean, y_scale),
    ), loo
