r"""The pointwise MI of new pairs under :func:`~mitools.estimate.estimate_mi`'s fitted critics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from mitools.bounds import _lme_negatives, _prepare
from mitools.critics.base import _no_autocast_anywhere
from mitools.inputs import as_sample_tensor, check_paired, label_codes
from mitools.option_checks import check_int

if TYPE_CHECKING:
    from mitools.estimate.result import MIEstimate

__all__ = ["pointwise_mi"]

#: rows of the score matrix computed at once (pairs are scored on the diagonal of blocks)
CHUNK = 512


def log_partition(scores: Tensor) -> float:
    r""":math:`\log` of the mean of :math:`e^{S_{ij}}` over the off-diagonal entries of
    ``scores (N, N)``: the DV bound's log-partition term, the same reduction the bound uses."""
    p = _prepare(scores, 0, None, None, "log_partition")
    return float(_lme_negatives(p.scores, p))


def column_names(a: Any) -> list[str] | None:
    """The column names a pandas DataFrame (its columns) or named Series (its name) carries,
    as strings; ``None`` for anything else (arrays, tensors, lists)."""
    columns = getattr(a, "columns", None)
    if columns is not None and getattr(a, "ndim", 2) == 2:
        return [str(c) for c in columns]
    if getattr(a, "ndim", None) == 1 and hasattr(a, "to_numpy") and hasattr(a, "name"):
        return None if a.name is None else [str(a.name)]
    return None


def align_columns(a: Any, expected: list[str] | None, name: str) -> Any:
    """``a`` with its columns in the fitted order: a DataFrame whose columns are the fitted
    ones in another order is reordered by name; other names are refused. Inputs without
    names (arrays, tensors, lists), and fits made without names, are taken by position."""
    given = column_names(a)
    if expected is None or given is None or given == expected:
        return a
    if sorted(given) == sorted(expected) and len(set(given)) == len(given) and hasattr(
            a, "columns"):
        label = {str(c): c for c in a.columns}
        return a[[label[c] for c in expected]]
    missing = [c for c in expected if c not in given]
    extra = [c for c in given if c not in expected]
    detail = "; ".join(part for part in (
        f"missing {missing}" if missing else "", f"not fitted {extra}" if extra else "") if part)
    raise ValueError(
        f"{name} has columns {given}, but the estimate was fitted on {name} columns {expected}"
        f"{f' ({detail})' if detail else ''}: pass the same columns (in any order: they are "
        "matched by name), or a numpy array / tensor to match them by position"
    )


def _check_columns(given: Any, a: Tensor, fitted: int, name: str) -> None:
    """Refuse ``a`` (``given`` read as samples) unless it has the ``fitted`` columns, saying
    how a 1-D input was read (one row of a multi-column fit came as ``(2, 1)``, and the error
    was about the numbers of pairs)."""
    if a.shape[1] == fitted:
        return
    shape = getattr(given, "shape", None)  # arrays, tensors (on any device), pandas
    shape = tuple(shape) if shape is not None else tuple(np.shape(given))  # lists
    one_row = (f": a 1-D input is read as {a.shape[0]} samples of one column; pass one pair "
               f"as a row, {name}[None, :] (shape (1, {fitted}))"
               if len(shape) == 1 and shape[0] == fitted else "")
    raise ValueError(f"{name} must have {fitted} column{'s' if fitted != 1 else ''} like the "
                     f"fitted {name}, got shape {shape}{one_row}")


def _discrete_values(a: Any, name: str, settings: dict[str, Any], labels_key: str,
                     discrete_key: str) -> Any:
    """New samples of a fitted variable as the fit read them: text labels as the fit's codes,
    and for a discrete variable fitted on numbers, a ``category`` column as its values (text
    there is refused: coded anew, it would be classes of its own)."""
    labels = settings.get(labels_key)
    if labels is not None:
        return label_codes(a, name, labels).values
    if not settings.get(discrete_key):
        return a
    codes = label_codes(a, name)
    if codes.categories is not None:
        raise TypeError(f"{name} was fitted on numbers (discrete_{name}=True); pass the same "
                        "numbers, not text labels")
    return codes.values


@torch.no_grad()
def pointwise_mi(result: MIEstimate, x: Any, y: Any, fold: int | None = None) -> Tensor:
    r"""Pointwise mutual information :math:`\log \frac{p(x, y)}{p(x)\,p(y)}` of new pairs, in nats.

    Computed in the estimate's ``dtype``, with ``torch.autocast`` off (as
    :func:`~mitools.estimate_mi`).

    Each pair goes through the fitted margins transform (for ``margins="ranks"``, the
    fitted samples' empirical distribution function, interpolated between their values and
    clamped to their range) and a fold's standardisation, is scored by that fold's critic
    :math:`f`, and the fold's log-partition :math:`\log \hat E_{p(x)p(y)}[e^f]` (on its test
    pairs) is subtracted: :math:`f - \log \hat E[e^f]` is the pointwise MI when the critic is
    the DV optimum, the pointwise MI plus a constant. (Critics trained with InfoNCE may add a
    function of ``x``, which this does not remove.) The mean of the result over a fold's
    test pairs, with ``fold`` set, is that fold's held-out DV bound.

    Args:
        result: a neural :class:`~mitools.estimate.MIEstimate` (from ``estimate_mi`` or
            :meth:`~mitools.estimate.MIEstimate.load`).
        x: ``(m, dx)`` array-like, the same columns as the fitted ``x``. When both the
            fitted ``x`` and this one are pandas DataFrames (or named Series), their columns
            are matched by name: reordered columns are put back in the fitted order, and
            other names are refused. Arrays, tensors and lists are taken by position.
        y: ``(m, dy)`` array-like, likewise.
        fold: use that fold's critic only; ``None`` (default): the mean over folds.

    Returns:
        ``(m,)`` float64 tensor (CPU), nats.

    Raises:
        TypeError: inputs that are not real numbers (text for a variable fitted as
            continuous), or numbers where the fit had text labels.
        ValueError: a result without critics, a fold out of range, different numbers of
            rows, a wrong number of columns, columns named otherwise than when fitting (the
            message lists both), NaN or infinite values, or a category (or text label) not
            seen when fitting.

    Example:
        >>> import mitools
        >>> x, y = mitools.CorrelatedGaussian(dim=1, mi=0.5).sample(400, generator=0)
        >>> r = mitools.estimate_mi(x, y, folds=2, max_steps=20, eval_every=10)
        >>> pmi = r.pointwise(x[:5], y[:5])
        >>> pmi.shape
        torch.Size([5])
    """
    result._neural("pointwise")
    if result.margins is None:
        raise ValueError("pointwise needs the fitted margins transforms, which this result lacks")
    k = len(result.folds)
    if fold is not None:  # a numpy int counts, a bool does not (True was fold 1)
        fold = check_int("fold", fold, 0, k - 1)
    x = align_columns(x, result.settings.get("x_columns"), "x")
    y = align_columns(y, result.settings.get("y_columns"), "y")
    # text labels get the codes of the fit (a label it did not see is refused)
    # (a discrete variable fitted on numbers: a category column is read as its values, as
    # when fitting, and text is refused)
    x = _discrete_values(x, "x", result.settings, "x_labels", "discrete_x")
    y = _discrete_values(y, "y", result.settings, "y_labels", "discrete_y")
    xa, ya = (as_sample_tensor(v, n, bool(result.settings.get(f"discrete_{n}")))
              for v, n in ((x, "x"), (y, "y")))
    for given, a, margin, name in ((x, xa, result.margins[0], "x"), (y, ya, result.margins[1],
                                                                        "y")):
        _check_columns(given, a, margin.dim_in, name)
    check_paired(xa, ya, "pairs")
    xt = result.margins[0].transform(xa, "x")
    yt = result.margins[1].transform(ya, "y")
    chosen = range(k) if fold is None else [fold]
    total = torch.zeros(xt.shape[0], dtype=torch.float64)
    for j in chosen:  # a loop over folds
        f = result.folds[j]
        s = f.standardization
        param = next(iter(f.critic.parameters()), None)
        dtype = param.dtype if param is not None else torch.float32
        device = param.device if param is not None else torch.device("cpu")
        xs = ((xt - s.x_mean) / s.x_scale).to(device=device, dtype=dtype)
        ys = ((yt - s.y_mean) / s.y_scale).to(device=device, dtype=dtype)
        with _no_autocast_anywhere():  # in the fitted dtype, as the fit (see estimate_mi)
            scores = torch.cat([
                f.critic(xs[i : i + CHUNK], ys[i : i + CHUNK]).diagonal()
                for i in range(0, xs.shape[0], CHUNK)  # blocks of rows, each vectorised
            ]) if xs.shape[0] else xs.new_zeros(0)
        total += scores.double().cpu() - f.log_partition
    return total / len(chosen)
