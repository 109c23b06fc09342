"""The checked intermediate of every bound: scores, positives and which entries are valid.

:func:`_prepare` validates a score tensor ``(..., N, M)`` and its masks once, upcasts half
precision, refuses non-finite scores where they count, and returns the bookkeeping every bound
needs (positives, valid negatives, counts). The masked reductions below are shared by all
bounds, so each formula reads the same way.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch
from torch import Tensor

from mitools.option_checks import check_flag, check_int, check_number

__all__ = ["check_finite"]


class _FiniteCheck:
    enabled = True
    #: whether :func:`exp_of_log_term` refuses an overflow (see :func:`partition_overflow_allowed`)
    refuse_overflow = True


class partition_overflow_allowed:
    """Within this context, :func:`exp_of_log_term` returns ``inf`` on an overflow instead
    of raising, whatever :class:`check_finite` says: for callers that treat a non-finite
    bound as a diverged fit (:func:`~mitools.estimate.estimate_mi` keeps the fold's initial
    critic and flags it). Not public API."""

    def __enter__(self) -> partition_overflow_allowed:
        self.previous = _FiniteCheck.refuse_overflow
        _FiniteCheck.refuse_overflow = False
        return self

    def __exit__(self, *exc: Any) -> None:
        _FiniteCheck.refuse_overflow = self.previous


class check_finite:
    """Switch the bounds' check for non-finite scores on or off (on by default).

    Every bound refuses a score tensor holding ``inf`` or ``nan`` in an entry that counts (a
    valid row against a valid column; masked entries may hold anything) with a ``ValueError``
    naming ``scores`` and the first bad index. TUBA, NWJ, JS and FLO, whose partition term
    leaves log space, also refuse finite scores whose term ``exp(...)`` overflows the dtype
    (above about 88.7 in float32): their value and gradient would not be finite. The check
    costs one pass over the scores and one host synchronisation; switch it off in a hot loop
    once the pipeline is known to be sound. Under :func:`torch.func.vmap`, which cannot read
    values, the bounds raise a ``RuntimeError`` unless the check is off (and no mask is given).
    Like :func:`torch.set_grad_enabled`, it acts at once when called and, used as a context
    manager, restores the previous setting on exit. The local losses' fused paths, which never
    form the scores, check the statistics they accumulate under the same setting.

    Args:
        enabled: ``True`` to check, ``False`` to skip the check.

    Example:
        >>> import torch
        >>> from mitools import bounds
        >>> s = torch.zeros(3, 3)
        >>> s[0, 1] = float("inf")
        >>> bounds.infonce(s)
        Traceback (most recent call last):
        ...
        ValueError: infonce: scores hold a non-finite value (inf) at index (0, 1) ...
        >>> with bounds.check_finite(False):
        ...     float(bounds.infonce(s))
        -inf
    """

    def __init__(self, enabled: bool):
        enabled = check_flag("check_finite: enabled", enabled)
        self.previous = _FiniteCheck.enabled
        _FiniteCheck.enabled = enabled

    def __enter__(self) -> check_finite:
        return self

    def __exit__(self, *exc: Any) -> None:
        _FiniteCheck.enabled = self.previous

    @staticmethod
    def is_enabled() -> bool:
        """Whether the check is on."""
        return _FiniteCheck.enabled


def _raise_non_finite(name: str, scores: Tensor, bad: Tensor, what: str = "scores") -> None:
    """Raise the error of the finiteness contract for the first ``True`` entry of ``bad``."""
    index = tuple(int(i) for i in bad.nonzero()[0])
    value = float(scores[index].detach())  # no autograd warning from float()
    raise ValueError(
        f"{name}: {what} hold a non-finite value ({value}) at index {index} (shape "
        f"{tuple(scores.shape)}); every unmasked score must be finite. Mask padding (the "
        "bounds' row_mask/col_mask, LocalMILoss's and GlobalMILoss's x_mask/y_mask: masked "
        "entries may hold anything), check the features and the critic, or switch the check "
        "off in a hot loop with mitools.bounds.check_finite(False)"
    )


def _refused_non_finite(value: Tensor) -> tuple[tuple[int, ...], float] | None:
    """The index and value of the first NaN or inf entry of a side input (a log-baseline,
    ``entropy_y``, ...) when the finiteness check refuses them (:class:`check_finite`, and
    not under :class:`partition_overflow_allowed`); ``None`` when there is none to refuse."""
    if not (_FiniteCheck.enabled and _FiniteCheck.refuse_overflow):
        return None
    bad = ~torch.isfinite(value)
    if not bool(bad.any()):
        return None
    index = tuple(int(i) for i in bad.nonzero()[0])
    return index, float(value[index].detach())


def exp_of_log_term(log_term: Tensor, name: str, term: str) -> Tensor:
    """``exp(log_term)``, the partition term of a bound that leaves log space (TUBA, NWJ, FLO).

    Under :class:`check_finite` (on by default), a finite ``log_term`` whose ``exp`` overflows
    the dtype (above about 88.7 in float32, 709.8 in float64) is refused: the bound's value
    and its gradient are then infinite or NaN, and one optimiser step would silently turn
    every parameter into NaN. (JS reports the NWJ value of ``S + 1``, so it is refused alike,
    although its gradient, the Jensen-Shannon objective's, stays finite.)

    Raises:
        ValueError: the overflow; the message names the bound, ``term`` and the largest
            ``log_term``, and says what to do.
    """
    out = torch.exp(log_term)
    if _FiniteCheck.enabled and _FiniteCheck.refuse_overflow:
        over = torch.isinf(out) & torch.isfinite(log_term)
        if bool(over.any()):
            largest = float(log_term[over].max())
            limit = math.log(torch.finfo(out.dtype).max)
            raise ValueError(
                f"{name}: the partition term {term} overflows {out.dtype} (its log is "
                f"{largest:.1f}, above {limit:.1f}), so the bound is not finite, nor its "
                "gradient where it is trained through this term. The critic's scores are far "
                "too large for this bound: use float64 scores, a bound that stays in log "
                "space (dv, infonce), or bound the critic's scores (a larger temperature, a "
                "clip)"
            )
    return out


def with_gradient_of(value: Tensor, objective: Tensor) -> Tensor:
    """``value``, carrying the gradient of ``objective`` (the stop-gradient construction of
    JS, SMILE, DoE and MINE's bias-corrected gradient).

    Built as ``value.detach() + (objective - objective.detach())``: the second term is exactly
    0 in any dtype for a finite objective, so the value is ``value`` to the last bit (an
    infinite or NaN objective gives NaN, as the textbook form did; the gradient is the
    objective's, bit for bit, as it was). The textbook form
    ``objective + (value - objective).detach()`` rounds ``value - objective`` at the scale of
    ``objective``: in float32, SMILE's 0.123456 nats came out 0.123047 when the critic scored
    the negatives about 30000 (JSD objective -30000), and DoE's value was off by one ulp of
    ``positive + log_marginal``.
    """
    return value.detach() + (objective - objective.detach())


def _under_vmap(t: Tensor) -> bool:
    """Whether ``t`` is a tensor batched by :func:`torch.func.vmap` (whose values cannot be
    read: the checks below would fail with torch's "data-dependent control flow")."""
    # torch.compile cannot trace functorch's wrapper test, and warned "Dynamo does not know
    # how to trace the builtin ...is_functorch_wrapped_tensor" on every compiled bound: under
    # compile the test runs eagerly, outside the graph, and still sees vmap's batched tensors.
    # (torch._disable_dynamo imports torch._dynamo at its first call under compile;
    # torch.compiler.disable imported it with mitools, a second more on every import)
    if _is_compiling():
        return _vmap_test_outside_graph(t)
    return _vmap_test(t)


def _vmap_test(t: Tensor) -> bool:
    """:func:`_under_vmap`'s test, run eagerly."""
    functorch = getattr(torch._C, "_functorch", None)
    try:  # under vmap(grad(f)) the batched tensor sits under a grad wrapper: unwrap them
        while functorch.is_functorch_wrapped_tensor(t):  # type: ignore[union-attr]
            if functorch.is_batchedtensor(t):  # type: ignore[union-attr]
                return True
            t = functorch.get_unwrapped(t)  # type: ignore[union-attr]
    except (AttributeError, RuntimeError):  # another torch: no check, torch's own error
        return False
    return False


# torch.compiler.is_compiling is torch >= 2.3: before, the test is traced (and warned about)
_is_compiling = getattr(torch.compiler, "is_compiling", lambda: False)
_vmap_test_outside_graph = torch._disable_dynamo(_vmap_test)


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
        raise TypeError(f"{name} must have dtype torch.bool, got {mask.dtype}; convert with "
                        f"{name.rsplit(': ', 1)[-1]}.bool()")
    if mask.device != scores.device:
        arg = name.rsplit(": ", 1)[-1]
        raise ValueError(
            f"{name} is on {mask.device} but the scores are on {scores.device}; move it with "
            f"{arg}.to(scores.device)"
        )
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
    min_cols: int = 2,
) -> _Prepared:
    """Check a score tensor and its masks; ``min_cols``: 2 for a bound that needs a negative
    per row, 1 for one of the positives alone (BA, DoE, the log-likelihood)."""
    if not isinstance(scores, Tensor):
        raise TypeError(f"{name}: scores must be a torch.Tensor, got {type(scores).__name__}")
    if not scores.is_floating_point():
        raise TypeError(
            f"{name}: scores must have a floating-point dtype, got {scores.dtype}; "
            "convert with scores.float()"
        )
    if scores.is_meta:
        raise ValueError(
            f"{name}: scores are on the 'meta' device, which has shapes but no values "
            f"(shape {tuple(scores.shape)}); the bounds check values (finite scores, valid "
            "rows), so pass real scores, on the CPU or a GPU"
        )
    if scores.dim() < 2:
        raise ValueError(
            f"{name}: scores must have shape (..., N, M) with at least 2 dimensions, "
            f"got shape {tuple(scores.shape)}"
        )
    offset = check_int(f"{name}: offset", offset, 0)
    n, m = scores.shape[-2], scores.shape[-1]
    if m < min_cols:
        need = ("at least 2 columns (one positive and one negative per row)" if min_cols == 2
                else "at least 1 column (the positive of each row)")
        raise ValueError(f"{name}: scores need {need}, got shape {tuple(scores.shape)}")
    if n < 1:
        raise ValueError(f"{name}: scores need at least 1 row, got shape {tuple(scores.shape)}")
    if n + offset > m:
        raise ValueError(
            f"{name}: the positive of row i sits at column i + offset, so N + offset <= M is "
            f"required; got N={n}, offset={offset}, M={m} (scores shape {tuple(scores.shape)})"
        )
    if scores.dtype in (torch.float16, torch.bfloat16):
        scores = scores.float()
    check = _FiniteCheck.enabled
    if (check or row_mask is not None or col_mask is not None) and _under_vmap(scores):
        raise RuntimeError(
            f"{name}: called under torch.func.vmap, which cannot read the values the bounds "
            "check (finite scores; with row_mask/col_mask, that every problem keeps valid "
            "rows and columns). The bounds batch over leading dimensions already: pass the "
            f"stacked scores (..., N, M) (here {tuple(scores.shape)} per call) instead of "
            "vmap; or, without masks, switch the check off with "
            "mitools.bounds.check_finite(False)"
        )

    lead = scores.shape[:-2]
    device = scores.device
    cols = torch.arange(m, device=device)
    rows = torch.arange(n, device=device)
    is_pos = cols[None, :] == (rows[:, None] + offset)  # (N, M)

    if row_mask is None and col_mask is None:
        if check:
            bad = ~torch.isfinite(scores)
            if bool(bad.any()):
                _raise_non_finite(name, scores, bad)
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

    rv = _check_mask(row_mask, f"{name}: row_mask", torch.Size((*lead, n)), scores)
    cv = _check_mask(col_mask, f"{name}: col_mask", torch.Size((*lead, m)), scores)
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
    if bool((n_cols_int < min_cols).any()):
        raise ValueError(
            f"{name}: col_mask leaves an estimation problem with fewer than {min_cols} valid "
            f"column{'s' if min_cols > 1 else ''} (col_mask shape {tuple(cv.shape)}); each row "
            f"needs a positive{' and a negative' if min_cols > 1 else ''}"
        )
    valid = rv[..., :, None] & cv[..., None, :]  # (..., N, M)
    if check:
        bad = ~torch.isfinite(scores) & valid
        if bool(bad.any()):
            _raise_non_finite(name, scores, bad)
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


class _ValidRows(Protocol):
    """Which rows are valid and how many: a :class:`_Prepared`, or the row statistics of
    :mod:`mitools.bounds.rowwise`."""

    @property
    def row_valid(self) -> Tensor | None: ...  # (..., N) bool, None when every row is valid

    @property
    def n_rows(self) -> Tensor: ...  # (...) number of valid rows


def _row_mean(values: Tensor, p: _ValidRows) -> Tensor:
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


def _check_baseline(log_baseline: Tensor | float, p: Any, name: str) -> Tensor:
    """Broadcast a per-row log-baseline to ``(..., N)``.

    ``p`` is a :class:`_Prepared` or the row statistics of :mod:`mitools.bounds.rowwise`
    (anything with ``positive (..., N)`` and ``row_valid``).
    """
    expected = p.positive.shape
    if isinstance(log_baseline, (numbers.Real, np.bool_)):  # a bool is refused by name
        value = check_number(f"{name}: log_baseline", log_baseline, None)
        return p.positive.new_full(expected, value)
    if not isinstance(log_baseline, Tensor):
        raise TypeError(
            f"{name}: log_baseline must be a float or a torch.Tensor broadcastable to "
            f"{tuple(expected)}, got {type(log_baseline).__name__}"
        )
    if not log_baseline.is_floating_point():
        raise TypeError(f"{name}: log_baseline must be floating point, got {log_baseline.dtype}")
    if log_baseline.device != p.positive.device:
        raise ValueError(
            f"{name}: log_baseline is on {log_baseline.device} but the scores are on "
            f"{p.positive.device}; move the estimator (or the loss holding it) with "
            f".to({str(p.positive.device)!r})"
        )
    try:
        out = torch.broadcast_to(log_baseline, expected)
    except RuntimeError:
        raise ValueError(
            f"{name}: log_baseline has shape {tuple(log_baseline.shape)} but must broadcast to "
            f"the rows of the scores, shape {tuple(expected)}; give one log-baseline per row"
        ) from None
    out = out.to(p.positive.dtype)
    if p.row_valid is not None:
        out = out.masked_fill(~p.row_valid, 0.0)
    # as a float's is refused: a diverged baseline network turned the bound into NaN or -inf
    # with no word (callers that read a non-finite bound as a diverged fit allow it, as they
    # allow an overflowing partition term)
    refused = _refused_non_finite(out)
    if refused is not None:
        index, value = refused
        raise ValueError(
            f"{name}: log_baseline holds a non-finite value ({value}) at row "
            f"{index[0] if len(index) == 1 else index} (rows of shape {tuple(expected)}); "
            "every valid row's log-baseline must be finite: a learned baseline has "
            "diverged (lower the learning rate), or mask the row (row_mask)")
    return out
