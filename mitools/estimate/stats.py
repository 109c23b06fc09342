r"""Uncertainty of :func:`~mitools.estimate.estimate_mi`: the jackknife and Student's t quantile."""

from __future__ import annotations

import math

from torch import Tensor

#: groups of the delete-a-group jackknife (fewer when n is small)
JACKKNIFE_GROUPS = 20


def t_quantile(p: float, dof: int) -> float:
    """The ``p`` quantile of Student's t distribution with ``dof`` degrees of freedom
    (:func:`scipy.special.stdtrit`, the inverse of its distribution function).

    Raises:
        ValueError: ``p`` outside (0, 1) or ``dof < 1``.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie in (0, 1), got {p}")
    if dof < 1:
        raise ValueError(f"dof must be at least 1, got {dof}")
    from scipy.special import stdtrit  # a runtime dependency, imported where it is needed

    return float(stdtrit(dof, p))


def jackknife_stderr(leave_out: Tensor) -> float:
    r"""Standard error from a delete-a-group jackknife.

    Args:
        leave_out: ``(G,)`` the statistic recomputed with each of ``G`` groups left out.

    Returns:
        :math:`\sqrt{\tfrac{G-1}{G} \sum_g (\theta_{(g)} - \bar\theta)^2}`.
    """
    groups = leave_out.numel()
    centred = leave_out - leave_out.mean()
    return math.sqrt((groups - 1) / groups * float((centred**2).sum()))


def confidence_bounds(value: float, stderr: float, sided: str, level: float,
                      dof: int) -> tuple[float, float, str]:
    """The interval of ``value`` with standard error ``stderr``: a one-sided Student's t lower
    bound (``sided="lower"``: the upper end is ``inf``) or a two-sided interval, at ``level``
    with ``dof`` degrees of freedom. Returns ``(low, high, kind)``, ``kind`` in words."""
    if sided == "lower":
        return (value - t_quantile(level, dof) * stderr, math.inf,
                f"a one-sided Student's t lower bound ({dof} degrees of freedom)")
    half = t_quantile(0.5 + level / 2, dof) * stderr
    return (value - half, value + half,
            f"a two-sided Student's t interval ({dof} degrees of freedom)")
