r"""Inputs of :func:`~mitools.estimate.estimate_mi`: coercion, margins, standardisation.

Precision: inputs are read by :func:`mitools.inputs.as_sample_tensor`, which keeps their own
precision (``int64``, ``float64``, ...); they keep it until their location and scale are gone.
Ranks are computed on the values as given, and the standardised values are computed in float64;
only then are they cast to the compute dtype (float32 by default). So ``1_700_000_000 + i`` as
``int64`` gives exactly the estimate of ``i``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from mitools.estimate.compare import EqualByContent
from mitools.estimate.rare_classes import merge_rare_classes

__all__ = ["MarginTransform", "Standardization", "gaussianize_margins"]

#: columns with at least this many and at most FEW_VALUES distinct values are flagged as
#: probable labels when they are not declared discrete
FEW_VALUES = 20


class Standardization(NamedTuple):
    """Per-column location and scale (from a fold's training and validation samples), float64.

    That fold's critic expects ``(x - x_mean) / x_scale`` and ``(y - y_mean) / y_scale``,
    applied to the output of the margins transform (:class:`MarginTransform`).
    """

    x_mean: Tensor
    x_scale: Tensor
    y_mean: Tensor
    y_scale: Tensor


def _normal_scores(u: Tensor) -> Tensor:
    r""":math:`\Phi^{-1}(u)` in float64."""
    return math.sqrt(2.0) * torch.special.erfinv(2.0 * u.to(torch.float64) - 1.0)


def gaussianize_margins(x: Tensor) -> Tensor:
    r"""Map every column to standard-normal scores of its ranks: :math:`\Phi^{-1}(r / (n+1))`.

    An increasing map of each column separately, so the mutual information with any other
    variable is unchanged (for continuous data); heavy tails and skew are gone. Tied values
    share their average rank. The ranks are computed on the values as given, so integers of any
    size (timestamps, say) lose nothing.

    Args:
        x: ``(n, d)`` samples.

    Returns:
        ``(n, d)`` normal scores, in ``x``'s dtype if floating point, else float64.

    Raises:
        TypeError: ``x`` is not a real-valued ``torch.Tensor`` (convert an array with
            ``torch.as_tensor``).
        ValueError: ``x`` is not ``(n, d)``, or holds NaN or infinite values (which have no
            rank among the samples).

    Example:
        >>> import torch
        >>> gaussianize_margins(torch.tensor([[10.0], [-3.0], [500.0]])).squeeze(1)
        tensor([ 0.0000, -0.6745,  0.6745])
    """
    if not isinstance(x, Tensor) or x.is_complex():
        raise TypeError("gaussianize_margins: x must be a real torch.Tensor (n, d), got "
                        + (f"dtype {x.dtype}" if isinstance(x, Tensor) else type(x).__name__)
                        + "; convert an array with torch.as_tensor(x)")
    if x.dim() != 2:
        raise ValueError(f"gaussianize_margins: x must have shape (n, d), got {tuple(x.shape)}"
                         + ("; a single variable is x[:, None]" if x.dim() == 1 else ""))
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        row = int((~torch.isfinite(x)).any(1).nonzero()[0, 0])
        raise ValueError(f"gaussianize_margins: x holds NaN or infinite values (first: row "
                         f"{row}), which have no rank among the samples; drop them first")
    out = _rank_scores(x)
    return out.to(x.dtype) if x.is_floating_point() else out


def _rank_scores(x: Tensor) -> Tensor:
    """:func:`gaussianize_margins` in float64, whatever ``x``'s dtype."""
    n = x.shape[0]
    cols = x.T.contiguous()  # (d, n)
    ordered = torch.sort(cols, dim=1).values
    below = torch.searchsorted(ordered, cols, right=False)
    upto = torch.searchsorted(ordered, cols, right=True)
    u = (below + upto + 1).to(torch.float64) / (2.0 * (n + 1))  # average rank / (n + 1)
    return _normal_scores(u).T


@dataclass(frozen=True, eq=False)  # == by content: EqualByContent
class MarginTransform(EqualByContent):
    r"""The per-variable transform fitted to the samples before any fold sees them.

    * ``"ranks"``: every column to the normal scores of its ranks (:func:`gaussianize_margins`).
      New values are placed by the fitted samples' empirical distribution function,
      interpolated linearly between the distinct fitted values (each at its average rank,
      so the fitted samples map exactly to their own scores) and clamped to the fitted range.
    * ``"standardize"``: every column centred and scaled by its mean and standard deviation
      over all samples, in float64.
    * ``"discrete"``: each distinct row is a category; categories of fewer than
      :data:`~mitools.estimate.rare_classes.MIN_CLASS_SIZE` samples are merged (with a
      warning: :mod:`mitools.estimate.rare_classes`), and the ``g`` classes so formed are
      one-hot encoded without the last (``g - 1`` columns); new rows must be fitted
      categories.

    Integer samples stay integers wherever a value is compared or subtracted: the knots and
    categories are kept as ``int64``, and ``"standardize"`` subtracts each column's minimum in
    ``int64`` before float64. So integers of any size (nanosecond timestamps, hashed IDs as
    labels) are neither merged nor rounded: ``2**60 + i`` gives what ``i`` gives.

    Attributes:
        kind: ``"ranks"``, ``"standardize"`` or ``"discrete"``.
        params: the fitted values, tensors: per column ``(knots, scores)`` for ``"ranks"``;
            ``(center, scale, origin)`` for ``"standardize"`` (``origin``: the minimum
            subtracted first, ``int64`` for integer samples); ``(categories, codes)`` for
            ``"discrete"``, the ``(k, d)`` categories and the ``(k,)`` ``int64`` class of each
            (rare ones merged). Knots, origins and categories are ``int64`` for
            integer samples, float64 otherwise; scores, centres and scales are float64.
        dim_in: columns of the raw variable.
    """

    kind: str
    params: tuple[Tensor, ...]
    dim_in: int

    @classmethod
    def fit(cls, a: Tensor, kind: str, name: str = "x") -> tuple[MarginTransform, Tensor]:
        """Fit the transform to ``a (n, d)`` and return it with the transformed ``a`` (float64).

        Raises:
            ValueError: ``kind="discrete"`` with several categories but a single class once
                rare ones are merged, fewer than 5 samples per category on average, or so
                many distinct values that ``a`` is evidently continuous (more than half the
                samples). A single category is fitted (no columns: the variable is constant).

        Warns:
            RuntimeWarning: ``kind="discrete"`` with rare classes, which are merged.
        """
        n, d = a.shape
        if kind == "ranks":
            out = _rank_scores(a)
            params = []
            for j in range(d):  # a loop over columns, each vectorised
                knots, first = _unique_first(_exact(a[:, j]))
                params += [knots, out[first, j]]
            return cls(kind, tuple(params), d), out
        if kind == "standardize":
            origin = _origin(a)
            center, scale = location_scale(_relative(a, origin))
            transform = cls(kind, (center, scale, origin), d)
            return transform, transform.transform(a)
        if kind == "discrete":
            categories, counts = torch.unique(_exact(a), dim=0, return_counts=True)
            k = categories.shape[0]
            if k < 2:  # constant: estimate_mi answers 0 without training, as without the flag
                transform = cls(kind, (categories, torch.zeros(1, dtype=torch.int64)), d)
                return transform, transform.transform(a, name)
            if k > max(n // 2, 2):
                raise ValueError(
                    f"discrete_{name}=True but {name} has {k} distinct values among {n} samples: "
                    f"that is a continuous variable; pass discrete_{name}=False"
                )
            if n < MIN_MEAN_CLASS_SIZE * k:
                raise ValueError(
                    f"discrete_{name}=True but {name}'s {k} classes hold {n / k:.1f} samples "
                    f"each on average among {n}: a critic cannot learn a class from the few "
                    "samples of it that a fold trains on, and its held-out bound falls below 0 "
                    f"(n/2 classes of 2 gave -1.7 nats); every class needs about "
                    f"{MIN_MEAN_CLASS_SIZE} samples on average or more: merge rare classes"
                    + _mixed_ksg_advice(int(counts.min()), name)
                )
            codes = merge_rare_classes(counts.cpu(), name).to(categories.device)
            transform = cls(kind, (categories, codes), d)
            return transform, transform.transform(a, name)
        raise ValueError(f"unknown margins kind {kind!r}")

    @property
    def dim_out(self) -> int:
        """Columns after the transform (``k - 1`` for ``k`` categories)."""
        return self._classes() - 1 if self.kind == "discrete" else self.dim_in

    def _codes(self) -> Tensor:
        """``"discrete"``: the class of each category (rare ones merged), ``(k,)``; results
        saved before classes were merged hold the categories alone."""
        return self.params[1] if len(self.params) > 1 else torch.arange(self.params[0].shape[0])

    def _classes(self) -> int:
        return int(self._codes().max()) + 1

    def transform(self, a: Tensor, name: str = "x") -> Tensor:
        """Apply the fitted transform to new samples ``a (m, dim_in)``; float64 ``(m, dim_out)``.

        Raises:
            ValueError: wrong number of columns, or (``"discrete"``) a category not seen in
                the fitted samples.
        """
        if a.dim() != 2 or a.shape[1] != self.dim_in:
            raise ValueError(
                f"{name} must have shape (m, {self.dim_in}) like the fitted samples, got "
                f"{tuple(a.shape)}"
            )
        if self.kind == "standardize":
            center, scale, *origin = (p.to(a.device) for p in self.params)
            rel = _relative(a, origin[0]) if origin else a.to(torch.float64)  # (files of 2)
            return (rel - center) / scale
        if self.kind == "discrete":
            values, categories = _common(a, self.params[0].to(a.device))
            match = (values[:, None, :] == categories[None, :, :]).all(-1)  # (m, k)
            unknown = ~match.any(1)
            if bool(unknown.any()):
                row = int(unknown.nonzero()[0, 0])
                raise ValueError(
                    f"{name} row {row} holds {a[row].tolist()}, not one of the "
                    f"{categories.shape[0]} categories seen when fitting"
                )
            # each row's class (the merged one for a rare category), one-hot without the last
            codes = self._codes().to(a.device)[match.to(torch.int8).argmax(1)]
            return torch.nn.functional.one_hot(codes, self._classes())[:, :-1].to(torch.float64)
        columns = []
        for j in range(self.dim_in):  # a loop over columns, each vectorised
            values, knots = _common(a[:, j].contiguous(), self.params[2 * j].to(a.device))
            scores = self.params[2 * j + 1].to(a.device)
            columns.append(_interpolate(values, knots, scores))
        return torch.stack(columns, dim=1)


def _mixed_ksg_advice(smallest: int, name: str) -> str:
    """Whether :func:`mitools.classical.mixed_ksg` can take labels whose smallest class holds
    ``smallest`` samples, and with which k: it needs every class to hold more than k >= 1
    samples (its default k is 3)."""
    if smallest < 2:
        return (f" (mitools.classical.mixed_ksg cannot take them either: a class of {name} "
                "holds 1 sample, and it needs at least 2 in every class, with k=1)")
    k = f" and k={smallest - 1}" if smallest - 1 < 3 else ""
    return f", or use mitools.classical.mixed_ksg with discrete_{name}=True{k}"


def _unique_first(col: Tensor) -> tuple[Tensor, Tensor]:
    """Sorted distinct values of ``col`` and the index of one sample holding each."""
    ordered, order = torch.sort(col, stable=True)
    new = torch.ones_like(ordered, dtype=torch.bool)
    new[1:] = ordered[1:] != ordered[:-1]
    return ordered[new], order[new]


def _exact(a: Tensor) -> Tensor:
    """``a`` in a dtype that holds its values exactly: ``int64`` for integers, else float64."""
    return a.to(torch.float64 if a.is_floating_point() else torch.int64)


def _common(values: Tensor, fitted: Tensor) -> tuple[Tensor, Tensor]:
    """``values`` and ``fitted`` in one dtype for comparison: ``int64`` when both are
    integers (exact at any size), else float64."""
    if values.is_floating_point() or fitted.is_floating_point():
        return values.to(torch.float64), fitted.to(torch.float64)
    return values.to(torch.int64), fitted.to(torch.int64)


def _origin(a: Tensor) -> Tensor:
    """``(d,)`` what :func:`_relative` subtracts: an integer column's minimum (``int64``), so
    that a shift of the data changes nothing; 0 where the range does not fit in ``int64``
    and for floating-point samples (float64)."""
    if a.is_floating_point() or a.shape[0] == 0:
        return torch.zeros(a.shape[1], dtype=torch.float64, device=a.device)
    lo, hi = a.to(torch.int64).aminmax(dim=0)
    return torch.where(hi - lo >= 0, lo, torch.zeros_like(lo))  # hi - lo < 0: it wrapped


def _relative(a: Tensor, origin: Tensor) -> Tensor:
    """``a - origin`` in float64, the subtraction done in ``int64`` for integers (exact), and
    in float64 where the difference would wrap around ``int64`` (a value far outside the
    fitted range)."""
    values, origin = _common(a, origin)
    if values.is_floating_point():
        return values - origin
    rough = values.to(torch.float64) - origin.to(torch.float64)
    return torch.where(rough.abs() < 2.0**62, (values - origin).to(torch.float64), rough)


def _interpolate(v: Tensor, knots: Tensor, scores: Tensor) -> Tensor:
    """Piecewise-linear map through ``(knots, scores)`` in the uniform (CDF) scale, clamped.
    ``v`` and ``knots`` share a dtype (:func:`_common`): differences are exact for integers."""
    if knots.numel() == 1:
        return torch.zeros(v.shape, dtype=torch.float64, device=v.device)
    u_knots = torch.special.ndtr(scores)
    i = (torch.searchsorted(knots, v, right=True) - 1).clamp(0, knots.numel() - 2)
    lo, hi = knots[i], knots[i + 1]
    w = ((v - lo).to(torch.float64) / (hi - lo).to(torch.float64)).clamp(0.0, 1.0)
    u = u_knots[i] + w * (u_knots[i + 1] - u_knots[i])
    out = _normal_scores(u)
    exact = knots[i] == v  # fitted values map to their own scores, bit for bit
    out = torch.where(exact, scores[i], out)
    return torch.where(v >= knots[-1], scores[-1], torch.where(v <= knots[0], scores[0], out))


def _few_valued_columns(a: Tensor) -> list[tuple[int, int]]:
    """``(column, distinct values)`` of columns with 3 to :data:`FEW_VALUES` distinct values."""
    out = []
    for j in range(a.shape[1]):  # a loop over columns
        k = int(torch.unique(a[:, j]).numel())
        if 3 <= k <= FEW_VALUES and a.shape[0] >= 5 * k:
            out.append((j, k))
    return out


def _warn_if_labels(a: Tensor, name: str, stacklevel: int) -> None:
    few = _few_valued_columns(a)
    if few:
        cols = ", ".join(f"column {j}: {k} values" for j, k in few[:5])
        warnings.warn(
            f"estimate_mi: {name} looks discrete ({cols}). It is treated as an ordered number "
            f"(tied values share a rank). If it holds labels, pass discrete_{name}=True, which "
            "one-hot encodes the categories so that their order and coding do not matter",
            UserWarning,
            stacklevel=stacklevel,
        )


def warn_if_exact_relation(xt: Tensor, yt: Tensor, stacklevel: int) -> bool:
    """Warn when a linear combination of the transformed ``yt`` is (to rounding) one of
    ``xt`` (``(n, dx)``, ``(n, dy)``): for continuous variables the MI is then infinite,
    and an estimate is set by the fit's regularisation and by ``n``, not by the data (with
    ranks, ``estimate_mi(x, x ** 3)`` read 7.6 nats, silently). Returns whether it warned.
    The test, :func:`mitools.classical.gaussian.exact_relation`, is the one the classical
    estimators apply to the normal scores of the ranks."""
    from mitools.classical.gaussian import exact_relation

    rho = exact_relation(xt.double().cpu().numpy(), yt.double().cpu().numpy())
    if rho is None:
        return False
    warnings.warn(
        "estimate_mi: after the margins' transform a combination of y is an exact linear "
        f"function of x (largest canonical correlation {rho:.12g}): y is, "
        "to rounding, a function of x (with the default rank margins, any increasing one), "
        "and the MI of continuous variables so related is infinite. The estimate is then set "
        "by the critic's regularisation and by n, not by the data: read it as a lower figure",
        RuntimeWarning,
        stacklevel=stacklevel,
    )
    return True


#: fewest samples per class, on average, that ``discrete_x`` / ``discrete_y`` take: each
#: fold trains on about half of a class's samples
MIN_MEAN_CLASS_SIZE = 5
#: columns whose largest magnitude lies outside [1 / SAFE_MAGNITUDE, SAFE_MAGNITUDE] are
#: divided by it before their mean and standard deviation are taken: the squares of values
#: below ~1e-162 underflow and above ~1e154 overflow in float64 (a column of 1e-170 became
#: constant, and MI 0)
SAFE_MAGNITUDE = 1e150


def location_scale(a: Tensor) -> tuple[Tensor, Tensor]:
    """``(d,)`` mean and standard deviation of the columns of float ``a`` ``(n, d)``, at any
    magnitude (:data:`SAFE_MAGNITUDE`); a constant column, or a single sample, has scale 1."""
    magnitude = a.abs().amax(0)
    unit = torch.where((magnitude > SAFE_MAGNITUDE) | (magnitude < 1 / SAFE_MAGNITUDE),
                       magnitude, torch.ones_like(magnitude))
    unit = torch.where(unit > 0, unit, torch.ones_like(unit))  # an all-zero column
    u = a / unit  # a itself where the magnitude is safe: the same bits as without the unit
    center = u.mean(0) * unit
    scale = u.std(0) * unit if a.shape[0] > 1 else torch.ones_like(unit)
    return center, torch.where(scale > 0, scale, torch.ones_like(scale))


def _standardize(x: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
    return location_scale(x[idx])
