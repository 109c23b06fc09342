"""Brute-force float64 reference implementations of the bounds, written from the formulas.

Plain Python loops over rows and columns with ``math`` functions: slow, obvious and
independent of the vectorised code in :mod:`mitools.bounds`. Each takes one 2-D problem as a
list of lists, an offset and optional validity masks, and returns a float.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Matrix = Sequence[Sequence[float]]


def _lse(values: list[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return -math.inf
    return top + math.log(sum(math.exp(v - top) for v in values))


def _softplus(v: float) -> float:
    return max(v, 0.0) + math.log1p(math.exp(-abs(v)))


def _layout(s: Matrix, offset: int, row_mask, col_mask):
    n, m = len(s), len(s[0])
    rows = [i for i in range(n) if row_mask is None or row_mask[i]]
    cols = [j for j in range(m) if col_mask is None or col_mask[j]]
    negatives = [(i, j) for i in rows for j in cols if j != i + offset]
    return rows, cols, negatives


def _lme_neg(s: Matrix, negatives, shift=lambda i, j: 0.0) -> float:
    vals = [s[i][j] - shift(i, j) for i, j in negatives]
    return _lse(vals) - math.log(len(vals))


def infonce(s, offset=0, row_mask=None, col_mask=None):
    rows, cols, _ = _layout(s, offset, row_mask, col_mask)
    total = 0.0
    for i in rows:
        total += s[i][i + offset] - _lse([s[i][j] for j in cols]) + math.log(len(cols))
    return total / len(rows)


def tuba(s, a, offset=0, row_mask=None, col_mask=None):
    rows, _, neg = _layout(s, offset, row_mask, col_mask)
    joint = sum(s[i][i + offset] - a[i] for i in rows) / len(rows)
    marg = math.exp(_lme_neg(s, neg, lambda i, j: a[i]))
    return 1.0 + joint - marg


def nwj(s, offset=0, row_mask=None, col_mask=None):
    return tuba(s, [1.0] * len(s), offset, row_mask, col_mask)


def dv(s, offset=0, row_mask=None, col_mask=None):
    rows, _, neg = _layout(s, offset, row_mask, col_mask)
    return sum(s[i][i + offset] for i in rows) / len(rows) - _lme_neg(s, neg)


def jsd(s, offset=0, row_mask=None, col_mask=None):
    rows, _, neg = _layout(s, offset, row_mask, col_mask)
    joint = sum(-_softplus(-s[i][i + offset]) for i in rows) / len(rows)
    marg = sum(_softplus(s[i][j]) for i, j in neg) / len(neg)
    return joint - marg


def js_value(s, offset=0, row_mask=None, col_mask=None):
    """NWJ on scores + 1."""
    shifted = [[v + 1.0 for v in row] for row in s]
    return nwj(shifted, offset, row_mask, col_mask)


def smile_value(s, clip, offset=0, row_mask=None, col_mask=None):
    rows, _, neg = _layout(s, offset, row_mask, col_mask)
    c = (lambda v: v) if clip is None else (lambda v: min(max(v, -clip), clip))
    clipped = [[c(v) for v in row] for row in s]
    return sum(s[i][i + offset] for i in rows) / len(rows) - _lme_neg(clipped, neg)


def alpha_infonce(s, a, alpha, offset=0, row_mask=None, col_mask=None):
    _, cols, neg = _layout(s, offset, row_mask, col_mask)

    def m(i, j):
        others = [s[i][k] for k in cols if k != j]
        loo = _lse(others) - math.log(len(others))
        return _lse([math.log(alpha) + loo, math.log(1.0 - alpha) + a[i]])

    joint = sum(s[i][i + offset] - m(i, j) for i, j in neg) / len(neg)
    marg = math.exp(_lme_neg(s, neg, lambda i, j: m(i, i + offset)))
    return 1.0 + joint - marg
