"""How the rows of ``x`` and ``y`` pair: by position, so both need as many rows
(:func:`check_paired`); two pandas objects with different indexes are paired by position all
the same, with a warning (:func:`warn_if_unaligned`); and ``(x, y)`` rows repeated exactly,
which continuous estimators read as structure, are counted (:func:`repeated_rows`) and warned
about (:func:`warn_repeated_rows`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["CONTINUOUS_MIN_VALUES", "HASH_BLOCK_ROWS", "REPEATS_READ_AS_STRUCTURE", "check_paired",
           "repeated_rows", "warn_if_unaligned", "warn_repeated_rows"]

#: fewest distinct values of a column that :func:`repeated_rows` takes as continuous
CONTINUOUS_MIN_VALUES = 20
#: rows hashed at a time by :func:`repeated_rows` (bounds its float64 working memory)
HASH_BLOCK_ROWS = 65536


def check_paired(x: Any, y: Any, what: str = "samples") -> None:
    """Refuse two variables with different numbers of rows (they are paired row by row).

    Raises:
        ValueError: ``x.shape[0] != y.shape[0]``, with both shapes.

    Example:
        >>> import numpy as np
        >>> check_paired(np.zeros((3, 1)), np.zeros((4, 2)))
        Traceback (most recent call last):
        ...
        ValueError: x and y must hold the same number of samples (paired rows): got x of ...
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must hold the same number of {what} (paired rows): got x of shape "
            f"{tuple(x.shape)} and y of shape {tuple(y.shape)}"
        )


def warn_if_unaligned(x: Any, y: Any, who: str, stacklevel: int = 3) -> None:
    """Warn when ``x`` and ``y`` are both pandas objects whose indexes differ: the estimators
    pair rows by position, and a shuffled or filtered frame paired with another gives the MI
    of unrelated rows (0.0009 nats for 1.01) without an error.

    Example:
        >>> import pandas as pd, warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_if_unaligned(pd.Series([1.0, 2.0], index=[1, 0]),
        ...                       pd.Series([3.0, 4.0]), "f")
        >>> "pairs rows by position" in str(caught[0].message)
        True
    """
    ix, iy = getattr(x, "index", None), getattr(y, "index", None)
    if ix is None or iy is None or not hasattr(ix, "equals") or not hasattr(iy, "equals"):
        return
    if len(ix) == len(iy) and not ix.equals(iy):
        warnings.warn(
            f"{who}: x and y are pandas objects with different indexes; {who} pairs rows by "
            "position, not by index. If the rows belong together by index, align them first "
            "(e.g. y = y.loc[x.index]); if by position, drop the indexes "
            "(.reset_index(drop=True)) to silence this warning",
            UserWarning, stacklevel=stacklevel)


def _row_hashes(a: Tensor, multipliers: Tensor) -> Tensor:
    """``(n,)`` int64 hashes of the rows of ``a``: the float64 bit patterns of each row times
    odd ``multipliers``, summed with wrap-around. Integer arithmetic is exact and does not
    depend on where a row sits, so equal rows always hash equal; computed in blocks of rows
    (no float64 copy of all of ``a``)."""
    out = torch.empty(a.shape[0], dtype=torch.int64, device=a.device)
    for start in range(0, a.shape[0], HASH_BLOCK_ROWS):  # a loop over blocks of rows
        block = a[start:start + HASH_BLOCK_ROWS]
        bits = (block.reshape(len(block), -1).double() + 0.0).view(torch.int64)  # -0.0 is 0.0
        out[start:start + HASH_BLOCK_ROWS] = (bits * multipliers).sum(dim=1)
    return out


def repeated_rows(x: np.ndarray | Tensor, y: np.ndarray | Tensor) -> int:
    """How many of the ``(x, y)`` rows repeat an earlier row exactly, where the data look
    continuous: every column holds more distinct values than half the number of distinct
    rows, and more than ``CONTINUOUS_MIN_VALUES`` (20; 0 otherwise: with a column of a few
    values, a label or a count, repeated rows are the data).

    Continuous estimators read a repeated row as a sample at distance 0 from another (KSG) or
    as a pair seen in training and in testing (a fitted critic): rows repeated by
    oversampling or a join inflated the MI of a 1.02-nat sample to 2.9 (neural) and 5.7 (KSG).

    Rows are first compared by a hash of their bits (equal rows hash equal; distinct rows
    rarely do), so that only rows sharing a hash are compared exactly: a pass over the data
    and a sort of ``n`` numbers in the common case of no repeats.

    Example:
        >>> import numpy as np
        >>> x = np.arange(30.0)[:, None]  # 30 distinct values: continuous-looking
        >>> rows = list(range(30)) + [0]  # row 0 twice
        >>> repeated_rows(x[rows], 2 * x[rows])
        1
    """
    xt, yt = (torch.as_tensor(a) for a in (x, y))
    n = len(xt)
    if n < 2 or xt.numel() == 0 or yt.numel() == 0:
        return 0
    yt = yt.to(xt.device)
    dx, dy = xt.numel() // n, yt.numel() // n
    multipliers = (torch.randint(0, 2**62, (dx + dy,), generator=torch.Generator().manual_seed(0))
                   * 2 + 1).to(xt.device)  # odd
    hashes = _row_hashes(xt, multipliers[:dx]) + _row_hashes(yt, multipliers[dx:])
    ordered, order = hashes.sort()
    same = ordered[1:] == ordered[:-1]
    if not bool(same.any()):
        return 0
    # rows whose hash another row shares: only these can repeat one another
    shared = torch.zeros(n, dtype=torch.bool, device=xt.device)
    shared[order[1:][same]] = True
    shared[order[:-1][same]] = True
    candidates = torch.cat([xt[shared].reshape(-1, dx).double(),
                            yt[shared].reshape(-1, dy).double()], dim=1)
    repeats = int(candidates.shape[0] - torch.unique(candidates, dim=0).shape[0])
    if repeats == 0:
        return 0
    rows = n - repeats
    joint = torch.cat([xt.reshape(n, dx), yt.reshape(n, dy)], dim=1)
    ordered_columns = joint.sort(dim=0).values
    distinct = 1 + (ordered_columns[1:] != ordered_columns[:-1]).sum(dim=0)  # per column
    # a column of few values (a label, a count) makes repeated rows part of the data
    if bool((distinct <= max(rows / 2, CONTINUOUS_MIN_VALUES)).any()):
        return 0
    return repeats


#: what :func:`warn_repeated_rows` says repeated rows do, unless its caller says otherwise
REPEATS_READ_AS_STRUCTURE = ("Repeated samples (oversampling, a join, copies) are read as "
                             "structure, and the estimate can be far too high.")


def warn_repeated_rows(x: np.ndarray | Tensor, y: np.ndarray | Tensor, who: str,
                       advice: str, stacklevel: int = 3, *,
                       consequence: str = REPEATS_READ_AS_STRUCTURE) -> int:
    """Warn when :func:`repeated_rows` finds repeated rows, saying what they do to ``who``'s
    result (``consequence``: by default that they are read as structure and inflate the
    estimate) and ending with ``advice``; return their number (0: none, or none that look
    like copies). The one rule of every estimator's repeated-row warning."""
    repeats = repeated_rows(x, y)
    if repeats:
        warnings.warn(
            f"{who}: {repeats} of {len(x)} (x, y) rows repeat an earlier row exactly, in data "
            f"whose columns otherwise look continuous. {consequence} Remove them "
            "(e.g. np.unique(np.hstack([x, y]), axis=0)) unless they are part of the data; "
            f"{advice}",
            UserWarning, stacklevel=stacklevel)
    return repeats
