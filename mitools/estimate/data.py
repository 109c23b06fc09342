"""Inputs of :func:`~mitools.estimate.estimate_mi`: coercion, margins, standardisation."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

__all__ = ["Standardization", "gaussianize_margins"]


class Standardization(NamedTuple):
    """Per-column location and scale (from a fold's training and validation samples).

    That fold's critic expects ``(x - x_mean) / x_scale`` and ``(y - y_mean) / y_scale``.
    """

    x_mean: Tensor
    x_scale: Tensor
    y_mean: Tensor
    y_scale: Tensor



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
