"""How many rows of an all-pairs computation are formed at once.

Scoring every pair ``(x_i, y_j)`` of ``N`` rows against ``M`` columns forms ``N * M * width``
intermediate elements (pair differences, hidden units). Blocks of rows keep that at most
:data:`PAIR_BLOCK_ELEMENTS`, so the memory is that of the ``(N, M)`` output whatever ``N * M``.
Used by the residual critic of :func:`~mitools.estimate.estimate_mi`
(``mitools.estimate.critic.JointResidual``) and by the Gaussian tasks' all-pairs scores
(:class:`mitools.tasks.CorrelatedGaussian`).
"""

from __future__ import annotations

__all__ = ["PAIR_BLOCK_ELEMENTS", "rows_per_block"]

#: The most elements (rows x columns x width) formed at once. Blocks of about 1 MB stay in
#: cache, 8x faster on a CPU than blocks of 16 MB.
PAIR_BLOCK_ELEMENTS = 1 << 18


def rows_per_block(columns: int, width: int) -> int:
    """Rows per block so that ``rows * columns * width`` stays within
    :data:`PAIR_BLOCK_ELEMENTS`; at least 1 (a single row wider than that is one block).

    Example:
        >>> rows_per_block(columns=512, width=64)
        8
        >>> rows_per_block(columns=10**6, width=64)
        1
    """
    return max(1, PAIR_BLOCK_ELEMENTS // max(1, columns * width))
