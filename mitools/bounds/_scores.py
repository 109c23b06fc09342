"""The checked intermediate of every bound: scores, positives and which entries are valid.

:func:`_prepare` validates a score tensor ``(..., N, M)`` and its masks once, upcasts half
precision, and returns the bookkeeping every bound needs (positives, valid negatives, counts).
The masked reductions below are shared by all bounds, so each formula reads the same way.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor


class _Prepared(NamedTuple):
    """Scores after validation, upcasting and masking, plus the bookkeeping every bound needs."""

    scores: Tensor  # (..., N, M), float32/float64, masked entries set to 0 (finite)
    positive: Tensor  # (..., N) scores of the positive pairs
    row_valid: Tensor | None  # (..., N) bool, None when every row is valid
    neg_valid: Tensor  # (..., N, M) bool: valid off-positive entries (the negatives)
    col_valid: Tensor | None  # (..., N, M) bool: valid columns for valid rows; None if all valid
    n_rows: Tensor  # (...) number of valid rows (as the scores' dtype)
    n_cols: Tensor  # (..., N) number of valid columns per row (as the scores' dtype)
    n_neg: Tensor  # (...) number of valid negatives


def _check_mask(mask: Tensor | None, name: str, expected: torch.Size, scores: Tensor) -> Tensor:
    if mask is None:
        return torch.ones(expected, dtype=torch.bool, device=scores.device)
    if not isinstance(mask, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of booleans, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(f"{name} must have dtype torch.bool, got {mask.dtype}")
    try:
        return torch.broadcast_to(mask, expected)
    except RuntimeError:
        raise ValueError(
            f"{name} has shape {tuple(mask.shape)}, which does not broadcast to the expected "
            f"shape {tuple(expected)} (scores have shape {tuple(scores.shape)})"
        ) from None


def _prepare(
    scores: Tensor,
    offset: int,
    row_mask: Tensor | None,
    col_mask: Tensor | None,
    name: str,
) -> _Prepared:
    if not isinstance(scores, Tensor):
        raise TypeError(f"{name}: scores must be a torch.Tensor, got {type(scores).__name__}")
    if not scores.is_floating_point():
        raise TypeError(
            f"{name}: scores must have a floating-point dtype, got {scores.dtype}; "
            "convert with scores.float()"
        )
    if scores.dim() < 2:
        raise ValueError(
            f"{name}: scores must have shape (..., N, M) with at least 2 dimensions, "
            f"got shape {tuple(scores.shape)}"
        )
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"{name}: offset must be a non-negative int, got {offset!r}")
    n, m = scores.shape[-2], scores.shape[-1]
    if m < 2:
        raise ValueError(
            f"{name}: scores need at least 2 columns (one positive and one negative per row), "
            f"got shape {tuple(scores.shape)}"
        )
    if n < 1:
        raise ValueError(f"{name}: scores need at least 1 row, got shape {tuple(scores.shape)}")
    if n + offset > m:
        raise ValueError(
            f"{name}: the positive of row i sits at column i + offset, so N + offset <= M is "
            f"required; got N={n}, offset={offset}, M={m} (scores shape {tuple(scores.shape)})"
        )
    if scores.dtype in (torch.float16, torch.bfloat16):
        scores = scores.float()

    lead = scores.shape[:-2]
    device = scores.device
    cols = torch.arange(m, device=device)
    rows = torch.arange(n, device=device)
    is_pos = cols[None, :] == (rows[:, None] + offset)  # (N, M)

    if row_mask is None and col_mask is None:
        neg_valid = (~is_pos).expand(*lead, n, m)
        positive = torch.diagonal(scores, offset=offset, dim1=-2, dim2=-1)
        ones = scores.new_ones(())
        return _Prepared(
            scores=scores,
            positive=positive,
            row_valid=None,
            neg_valid=neg_valid,
            col_valid=None,
            n_rows=ones * n,
            n_cols=ones * m,
            n_neg=ones * (n * (m - 1)),
        )

    rv = _check_mask(row_mask, "row_mask", torch.Size((*lead, n)), scores)
    cv = _check_mask(col_mask, "col_mask", torch.Size((*lead, m)), scores)
    pos_col_valid = cv[..., offset : offset + n]
    if bool((rv & ~pos_col_valid).any()):
        raise ValueError(
            f"{name}: a valid row (row_mask True) has its positive column i + offset masked out "
            "by col_mask; the positive of every valid row must be valid"
        )
    n_rows_int = rv.sum(-1)
    if bool((n_rows_int < 1).any()):
        raise ValueError(
            f"{name}: row_mask leaves an estimation problem with no valid row "
            f"(row_mask shape {tuple(rv.shape)})"
        )
    n_cols_int = cv.sum(-1)
    if bool((n_cols_int < 2).any()):
        raise ValueError(
            f"{name}: col_mask leaves an estimation problem with fewer than 2 valid columns "
            f"(col_mask shape {tuple(cv.shape)}); each row needs a positive and a negative"
        )
    valid = rv[..., :, None] & cv[..., None, :]  # (..., N, M)
    # Zero out invalid entries so that garbage (even inf/nan) in padding cannot leak into values
    # or gradients; every reduction below also masks them explicitly.
    scores = scores.masked_fill(~valid, 0.0)
    neg_valid = valid & ~is_pos
    positive = torch.diagonal(scores, offset=offset, dim1=-2, dim2=-1)
    dtype = scores.dtype
    return _Prepared(
        scores=scores,
        positive=positive,
        row_valid=rv,
        neg_valid=neg_valid,
        col_valid=cv[..., None, :].expand(*lead, n, m),
        n_rows=n_rows_int.to(dtype),
        n_cols=n_cols_int.to(dtype)[..., None].expand(*lead, n),
        n_neg=neg_valid.sum((-2, -1)).to(dtype),
    )


def _row_mean(values: Tensor, p: _Prepared) -> Tensor:
    """Mean over valid rows of a per-row quantity ``(..., N) -> (...)``."""
    if p.row_valid is None:
        return values.mean(-1)
    return torch.where(p.row_valid, values, torch.zeros_like(values)).sum(-1) / p.n_rows


def _lme_negatives(shifted: Tensor, p: _Prepared) -> Tensor:
    """Log of the mean of ``exp`` over the valid negatives, reduced over the last two axes."""
    masked = shifted.masked_fill(~p.neg_valid, -math.inf)
    return torch.logsumexp(masked.flatten(-2), dim=-1) - torch.log(p.n_neg)


def _mean_negatives(values: Tensor, p: _Prepared) -> Tensor:
    """Arithmetic mean over the valid negatives, reduced over the last two axes."""
    return torch.where(p.neg_valid, values, torch.zeros_like(values)).sum((-2, -1)) / p.n_neg


def _check_baseline(log_baseline: Tensor | float, p: _Prepared, name: str) -> Tensor:
    """Broadcast a per-row log-baseline to ``(..., N)``."""
    expected = p.scores.shape[:-1]
    if isinstance(log_baseline, (int, float)) and not isinstance(log_baseline, bool):
        return p.scores.new_full(expected, float(log_baseline))
    if not isinstance(log_baseline, Tensor):
        raise TypeError(
            f"{name}: log_baseline must be a float or a torch.Tensor broadcastable to "
            f"{tuple(expected)}, got {type(log_baseline).__name__}"
        )
    if not log_baseline.is_floating_point():
        raise TypeError(f"{name}: log_baseline must be floating point, got {log_baseline.dtype}")
    try:
        out = torch.broadcast_to(log_baseline, expected)
    except RuntimeError:
        raise ValueError(
            f"{name}: log_baseline has shape {tuple(log_baseline.shape)} but must broadcast to "
            f"the rows of the scores, shape {tuple(expected)} (scores shape "
            f"{tuple(p.scores.shape)}); give one log-baseline per row"
        ) from None
    out = out.to(p.scores.dtype)
    if p.row_valid is not None:
        out = out.masked_fill(~p.row_valid, 0.0)
    return out
