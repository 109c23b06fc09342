"""Which execution path scores a call, chosen from capabilities, device and sizes.

Three paths compute the same values (each bound's formula lives once, in :mod:`mitools.bounds`):

* ``"dense"`` (:mod:`mitools.local.dense`): score blocks of ``chunk_size`` pairs in full;
  any critic, any bound, derangement negatives. Memory ``chunk_size x N x M`` scores (the
  whole ``K x N x M`` without ``chunk_size``).
* ``"blocked"`` (:mod:`mitools.local.blocked`): per-row statistics over column blocks, a
  custom backward that recomputes each block; needs a separable critic and a row-wise bound.
  Memory one ``chunk_size x N x column_chunk_size`` block.
* ``"attention"`` (:mod:`mitools.local.attention`): fused attention kernels; needs a separable
  critic and a bound whose statistics are log-sum-exps (InfoNCE, DV, NWJ, TUBA, MINE, FLO) or
  plain sums (CLUB, by linearity) of the scores. Memory O(K N E) for factors of size E; on
  CUDA the fastest.

``"auto"`` picks: dense when the critic or the bound offers no fast path (or for derangement
negatives, or for a bound of the positives only, BA and DoE, whose dense path scores only the
positive pairs); otherwise attention on CUDA (when a kernel works for the dtype); otherwise blocked
when ``chunk_size`` or ``column_chunk_size`` is set or the dense scores would exceed
:data:`DENSE_BYTES`; otherwise dense (fastest for small problems). On CPU attention is never
picked by ``"auto"``: the CPU kernel's backward costs about twice the blocked path's, for a
memory saving the blocked path already gives (``benchmarks/local_loss.py`` measures both).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mitools.bounds import RowStatistics
from mitools.bounds.rowwise import row_bookkeeping
from mitools.estimators import Estimator
from mitools.estimators.base import checked_finish
from mitools.local import attention, kernels
from mitools.local.blocked import blocked_statistics
from mitools.local.dense import dense_values, side_inputs
from mitools.local.problems import Problems
from mitools.local.scoring import Scorer

__all__ = ["BACKENDS", "DENSE_BYTES", "check_backend", "choose_backend", "problem_values"]

BACKENDS = ("auto", "dense", "blocked", "attention")
"""The execution paths :class:`~mitools.local.LocalMILoss` accepts (``"auto"`` chooses)."""

DENSE_BYTES = 2**28
"""``"auto"`` leaves the dense path when its score tensor would exceed this (256 MiB)."""

BLOCK_BYTES = 2**25
"""The blocked path's score block without chunk sizes (32 MiB; a pass holds about three)."""

ATTENTION_BLOCK_BYTES = 2**27
"""The attention path's pairs per call without ``chunk_size``: a float32 ``(pairs, N, E)`` block
of at most this (128 MiB); its backward holds a few such blocks at once."""

ROWWISE_NAMES = "infonce, dv, mine, nwj, tuba, jsd, js, smile, ba, doe, club, flo"


def check_backend(
    backend: Any,
    estimator: Estimator,
    scorer: Scorer,
    negatives: str,
    column_chunk_size: int | None,
) -> str:
    """Validate ``backend`` against what the estimator and critic declare (at construction)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    rowwise = estimator.rowwise
    unmet = _unmet(estimator, scorer, negatives)
    if column_chunk_size is not None and unmet:
        raise ValueError(
            "column_chunk_size needs a separable critic (one with a factorisation, such as "
            "SeparableCritic, BilinearCritic, QuadraticCritic, DiagonalGaussian, FullGaussian or "
            f"None), a bound with per-row statistics ({ROWWISE_NAMES}) and negatives='all'; "
            f"{'; '.join(unmet)}; leave column_chunk_size=None"
        )
    if backend in ("blocked", "attention") and unmet:
        raise ValueError(
            f"backend={backend!r} needs a separable critic (one with a factorisation: "
            "SeparableCritic, BilinearCritic, QuadraticCritic, MarginalPotentials around one, "
            "DiagonalGaussian, FullGaussian, or None), a bound with per-row statistics "
            f"({ROWWISE_NAMES}; not vclub, l1out or alpha_infonce) and negatives='all'; "
            f"{'; '.join(unmet)}; use backend='dense'"
        )
    if backend == "attention":
        assert rowwise is not None
        if not attention.supports(rowwise.statistics):
            other = ", ".join(s.name for s in rowwise.statistics if s.transform is not None)
            raise ValueError(
                f"backend='attention' computes log-sum-exps and sums of the scores (infonce, "
                f"dv, mine, nwj, tuba, flo, club, ba, doe); the bound {estimator.name!r} needs "
                f"statistics of transformed scores ({other}); use backend='blocked'"
            )
    return backend


def _unmet(estimator: Estimator, scorer: Scorer, negatives: str) -> list[str]:
    """What keeps the fused (blocked, attention) paths out, one phrase each: which of the
    critic, the bound and the negatives fails, named by what was passed."""
    unmet = []
    if not scorer.separable:
        unmet.append(f"the critic {scorer.name} has no factorisation")
    if estimator.rowwise is None:
        unmet.append(f"the bound {estimator.name!r} has no per-row statistics")
    if negatives != "all":
        unmet.append(f"negatives={negatives!r}")
    return unmet


def choose_backend(
    requested: str,
    estimator: Estimator,
    scorer: Scorer,
    negatives: str,
    problems: Problems,
    dtype: torch.dtype,
    device: torch.device,
    chunked: bool,
) -> tuple[str, kernels.Kernel | None]:
    """The path for one call, and the attention kernel when that is the path."""
    rowwise = estimator.rowwise
    if requested == "dense" or not (
        scorer.separable and rowwise is not None and negatives == "all"
    ):
        return "dense", None
    if requested == "attention":
        kernel = kernels.find_kernel(device, dtype, warn=True)
        return ("attention", kernel) if kernel is not None else ("blocked", None)
    if requested == "blocked":
        return "blocked", None
    if not rowwise.statistics:  # the positives only: the dense path scores just those
        return "dense", None
    if device.type == "cuda" and attention.supports(rowwise.statistics):
        kernel = kernels.find_kernel(device, dtype, warn=False)
        if kernel is not None:
            return "attention", kernel
    dense_bytes = len(problems) * problems.batch * problems.columns * 4
    if chunked or dense_bytes > DENSE_BYTES:
        return "blocked", None
    return "dense", None


def problem_values(
    backend: str,
    kernel: kernels.Kernel | None,
    problems: Problems,
    scorer: Scorer,
    estimator: Estimator,
    xp: Tensor,
    yq: Tensor,
    chunk_size: int | None,
    column_chunk_size: int | None,
) -> tuple[Tensor, str]:
    """Per-pair values ``(K,)`` of every problem on ``backend``, and the path that ran.

    The path differs from ``backend`` only when ``"attention"`` finds no fused kernel for the
    dtype the critic's factors run in (a ``RuntimeWarning`` says so): then ``"blocked"``.

    Args:
        backend: ``"dense"``, ``"blocked"`` or ``"attention"`` (see :func:`choose_backend`).
        kernel: the attention kernel for ``"attention"``.
        problems: the pairs and masks.
        scorer: the critic.
        estimator: the bound.
        xp: ``(P, N, Cx)`` position-major anchor features.
        yq: ``(Q, M, Cy)`` position-major column features.
        chunk_size: pairs per block.
        column_chunk_size: columns per block (blocked path).
    """
    u, v = scorer.factors(xp, yq) if scorer.separable else (xp, yq)
    if backend == "dense":
        return dense_values(problems, scorer, estimator, xp, yq, u, v, chunk_size), backend
    rowwise = estimator.rowwise
    assert rowwise is not None
    # the critic can factorise in another dtype than its inputs (float32 factors of bfloat16
    # features): the kernel must be the one for the factors' dtype
    run_dtype = kernels.compute_dtype(u.device, u.dtype)
    if backend == "attention" and (kernel is None or kernel.dtype != run_dtype):
        kernel = kernels.find_kernel(u.device, u.dtype, warn=True)
        backend = "attention" if kernel is not None else "blocked"
    if backend == "attention":
        assert kernel is not None
        pair_chunk = chunk_size
        if pair_chunk is None:  # bound the backward's float32 blocks
            per_pair = u.shape[1] * (u.shape[-1] + kernel.multiple) * 4
            pair_chunk = max(1, min(len(problems), ATTENTION_BLOCK_BYTES // per_pair))
        positive, values = attention.attention_statistics(
            u, v, problems, rowwise.statistics, pair_chunk, kernel
        )
    else:
        dtype = torch.promote_types(u.dtype, torch.float32)
        pair_chunk, col_chunk = chunk_size, column_chunk_size
        if pair_chunk is None and col_chunk is None:  # "auto" chose it for memory
            per_pair = problems.batch * problems.columns * 4
            pair_chunk = max(1, min(len(problems), BLOCK_BYTES // per_pair))
            col_chunk = max(1, BLOCK_BYTES // (4 * problems.batch * pair_chunk))
        positive, values = blocked_statistics(
            u.to(dtype), v.to(dtype), problems, rowwise.statistics, pair_chunk, col_chunk
        )
    rows, cols = problems.masks.block(
        problems.pairs.x_index, problems.pairs.y_index, problems.offset, problems.batch,
        problems.active,
    )  # fmt: skip
    stats = RowStatistics(
        positive,
        dict(zip(rowwise.statistics, values, strict=True)),
        *row_bookkeeping(rows, cols, problems.batch, problems.columns, positive),
    )
    problems.check_finite(positive, values, stats.row_valid)
    estimates = checked_finish(
        estimator,
        stats,
        **side_inputs(estimator, xp, yq, problems)(0, len(problems), True),
        problems=problems.index() if estimator.per_problem_state else None,
    )
    return estimates, backend
