"""Scoring a critic on held-out pairs: the bound, its values with each jackknife group left
out, and the log-partition, from one pass over the scores."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mitools.critics.base import checked_scores
from mitools.estimate.pointwise import log_partition
from mitools.estimate.stats import JACKKNIFE_GROUPS
from mitools.estimators import DV, MINE, NWJ, Estimator

__all__: list[str] = []

#: bounds whose positive term is the mean of the positive scores, so that a batch's value is
#: the bound on one row holding that mean and the sampled negatives (see _batch_value)
SAMPLED_NEGATIVES_BOUNDS = (DV, MINE, NWJ)
#: a set's sum of negatives' ``exp``, shifted by the largest negative of all samples, below
#: this is recomputed shifted by its own largest: entries more than ~708 nats below the shift
#: underflow to 0 in float64, and above it their share of the sum is below e^-100 n^2
UNDERFLOW_GUARD = math.exp(-600.0)


def _summarisable(estimator: Estimator) -> bool:
    """Whether the bound is a function of the mean positive score and the mean exponentiated
    negative score alone (:data:`SAMPLED_NEGATIVES_BOUNDS`, without row-side inputs such as a
    learned baseline), so that a row of those two summaries stands for any set of pairs."""
    return isinstance(estimator, SAMPLED_NEGATIVES_BOUNDS) and not estimator.needs_anchors


@torch.no_grad()
def _evaluate(estimator: Estimator, critic: nn.Module, x: Tensor, y: Tensor) -> float:
    """The bound on all pairs of ``(x, y)``."""
    return float(estimator(checked_scores(critic, x, y), anchors=x))


@torch.no_grad()
def _evaluate_leaving_groups_out(estimator: Estimator, critic: nn.Module, x: Tensor, y: Tensor,
                                 group_of: Tensor, groups: int
                                 ) -> tuple[float, Tensor, float]:
    """The bound on all pairs of ``(x, y)``, ``(groups,)`` values of it without the samples
    of group ``g`` for each ``g < groups`` (``group_of`` gives each sample's group), and the
    log-partition of the scores; the scores are computed once for all of them.

    For the bounds of :data:`SAMPLED_NEGATIVES_BOUNDS` (functions of the mean positive score
    and the mean exponentiated negative score) all of them come from one pass over the
    scores (:func:`_summaries_leaving_groups_out`): each set of samples is passed to the
    estimator as a row of two entries, the mean positive score and the log-mean-exp of the
    negatives, and the latter over all samples is the log-partition. Other bounds are
    evaluated once on all pairs, then once per group with masks."""
    scores = checked_scores(critic, x, y)
    if _summarisable(estimator):
        rows = _summaries_leaving_groups_out(scores, group_of, groups)  # (1 + groups, 1, 2)
        values = estimator(rows.to(scores.dtype)).double().cpu()
        return float(values[0]), values[1:], float(rows[0, 0, 1])
    value = float(estimator(scores, anchors=x))
    out = []
    for g in range(groups):  # a loop over groups (20), each a full vectorised evaluation
        keep = group_of != g
        out.append(float(estimator(scores, row_mask=keep, col_mask=keep, anchors=x)))
    return value, torch.tensor(out, dtype=torch.float64), log_partition(scores)


def _summaries_leaving_groups_out(scores: Tensor, group_of: Tensor, groups: int) -> Tensor:
    """``(1 + groups, 1, 2)``: for all samples (row 0) and for the samples outside each
    group g (row 1 + g), the mean of the positive (diagonal) scores and the log of the mean
    of ``exp`` over the negative (off-diagonal) scores, from one pass over the scores
    (group-by-group block sums, float64)."""
    # one float64 copy of the scores, turned in place into the negatives' exponentials
    negatives = scores.to(torch.float64, copy=True)
    n = negatives.shape[0]
    diagonal = negatives.diagonal().clone()
    # the negatives alone, shifted by their largest (the positives may exceed them by more
    # than exp can span; they get no exp here)
    negatives.diagonal().fill_(-math.inf)
    peak = negatives.max()
    e = negatives.sub_(peak).exp_()
    total = e.sum()
    one_hot = (torch.nn.functional.one_hot(group_of, groups).to(e.dtype) if groups
               else e.new_zeros(n, 0))  # (n, groups)
    blocks = one_hot.T @ e @ one_hot  # (groups, groups): sums of exp over group pairs
    # without group g: the blocks of the other groups, summed as they are (all >= 0; taking
    # g's row and column from the total cancels away a small rest when one pair dominates)
    others = 1.0 - torch.eye(groups, dtype=e.dtype, device=e.device)
    kept = torch.cat([total[None], (others @ blocks @ others).diagonal()])
    size = torch.cat([e.new_full((1,), n), n - one_hot.sum(0)])  # samples in each set
    pos = torch.cat([diagonal.sum()[None], diagonal.sum() - one_hot.T @ diagonal]) / size
    log_kept = torch.log(kept) + peak
    # a set whose largest negative lies far below the peak (the group left out holds the
    # largest negatives, at very high MI) lost its sum to underflow: its log-sum-exp again,
    # from the scores, shifted by its own largest (rare: a loop over such groups only)
    for g in (torch.nonzero(kept[1:] < UNDERFLOW_GUARD).flatten() + 1).tolist():
        keep = group_of != g - 1
        rest = scores[keep][:, keep].to(torch.float64)
        rest.diagonal().fill_(-math.inf)
        log_kept[g] = torch.logsumexp(rest.flatten(), dim=0)
    log_mean_exp = log_kept - torch.log(size * (size - 1))
    return torch.stack([pos, log_mean_exp], dim=-1)[:, None, :]


def _validation_groups(n: int, gen: torch.Generator,
                       device: torch.device | None = None) -> tuple[Tensor, int] | None:
    """Random delete-a-group jackknife groups for ``n`` validation samples: ``(group_of,
    groups)`` (``group_of`` on ``device``) with :data:`~mitools.estimate.stats.JACKKNIFE_GROUPS`
    groups or fewer, of at least 2 samples each, so that leaving one out keeps a negative
    pair; ``None`` below 4 samples."""
    if n < 4:
        return None
    groups = min(JACKKNIFE_GROUPS, n // 2)
    return (torch.randperm(n, generator=gen) % groups).to(device), groups
