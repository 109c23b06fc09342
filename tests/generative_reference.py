"""Brute-force float64 references of the generative and upper bounds, written from the formulas.

Plain loops with ``math``; each takes one 2-D problem (a list of lists of log-densities or
critic scores), an offset and optional masks, and returns a float.
"""

from __future__ import annotations

import math

from bounds_reference import _layout, _lse


def log_likelihood(s, offset=0, row_mask=None, col_mask=None):
    rows, _, _ = _layout(s, offset, row_mask, col_mask)
    return sum(s[i][i + offset] for i in rows) / len(rows)


def ba(s, entropy_y, offset=0, row_mask=None, col_mask=None):
    return entropy_y + log_likelihood(s, offset, row_mask, col_mask)


def doe(s, log_marginal, offset=0, row_mask=None, col_mask=None):
    rows, _, _ = _layout(s, offset, row_mask, col_mask)
    return sum(s[i][i + offset] - log_marginal[i + offset] for i in rows) / len(rows)


def club(s, offset=0, row_mask=None, col_mask=None):
    rows, _, neg = _layout(s, offset, row_mask, col_mask)
    joint = sum(s[i][i + offset] for i in rows) / len(rows)
    return joint - sum(s[i][j] for i, j in neg) / len(neg)


def vclub(s, negatives, offset=0, row_mask=None, col_mask=None):
    rows, _, _ = _layout(s, offset, row_mask, col_mask)
    return sum(s[i][i + offset] - s[i][negatives[i]] for i in rows) / len(rows)


def l1out(s, offset=0, row_mask=None, col_mask=None):
    rows, _, _ = _layout(s, offset, row_mask, col_mask)
    total = 0.0
    for i in rows:
        others = [s[j][i + offset] for j in rows if j != i]  # log q(y_{i+o} | x_j), j != i
        total += s[i][i + offset] - (_lse(others) - math.log(len(others)))
    return total / len(rows)


def flo(s, u, offset=0, row_mask=None, col_mask=None):
    rows, _, neg = _layout(s, offset, row_mask, col_mask)
    total = 0.0
    for i in rows:
        row_neg = [s[i][j] for r, j in neg if r == i]
        mean_ratio = sum(math.exp(v - s[i][i + offset]) for v in row_neg) / len(row_neg)
        total += -u[i] - math.exp(-u[i]) * mean_ratio
    return 1.0 + total / len(rows)
