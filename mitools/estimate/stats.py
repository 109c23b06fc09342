"""Uncertainty of :func:`~mitools.estimate.estimate_mi`: the jackknife and Student's t quantile."""

from __future__ import annotations

import math

from torch import Tensor

#: groups of the delete-a-group jackknife (fewer when n is small)
JACKKNIFE_GROUPS = 20


def _t_quantile(p: float, dof: int) -> float:
    """Quantile of Student's t distribution: bisection on its CDF, integrated by Simpson's rule
    (error below 1e-5 for dof >= 1 and p <= 0.9995)."""
    if not 0.5 <= p < 1.0:
        raise ValueError(f"p must lie in [0.5, 1), got {p}")
    v = float(dof)
    log_norm = math.lgamma((v + 1) / 2) - math.lgamma(v / 2) - 0.5 * math.log(v * math.pi)

    def cdf(t: float) -> float:
        intervals = 2 * max(1000, math.ceil(100 * t))
        h = t / intervals
        total = 0.0
        for i in range(intervals + 1):  # scalar quadrature, a few thousand points, once
            u = i * h
            w = 1 if i in (0, intervals) else (4 if i % 2 else 2)
            total += w * math.exp(log_norm - (v + 1) / 2 * math.log1p(u * u / v))
        return 0.5 + total * h / 3

    lo, hi = 0.0, 1.0
    while cdf(hi) < p:
        lo, hi = hi, 2 * hi
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return (lo + hi) / 2



def jackknife_stderr(leave_out: Tensor) -> float:
    """Standard error from a delete-a-group jackknife.

    Args:
        leave_out: ``(G,)`` the statistic recomputed with each of ``G`` groups left out.

    Returns:
        :math:`\\sqrt{\tfrac{G-1}{G} \\sum_g (\theta_{(g)} - \bar\theta)^2}`.
    """
    groups = leave_out.numel()
    centred = leave_out - leave_out.mean()
    return math.sqrt((groups - 1) / groups * float((centred**2).sum()))
