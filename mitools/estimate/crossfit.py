"""Cross-fitting with the screen: one critic per fold, trained on the fold's training part and
scored on its test part, the first fold deciding whether the others train at all.

With ``init="gaussian"`` and ``screen=True`` the first fold's trained critic is compared with
the Gaussian start on the fold's test part (:data:`~mitools.estimate.fit.SCREEN_SE` paired
standard errors). Where training gains no more than that, the other folds keep the start
untrained; where it gains more, they replace the start on any validation gain (at low MI,
:data:`~mitools.estimate.fit.AFTER_GAIN_MAX_NATS`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from mitools.bounds._scores import partition_overflow_allowed
from mitools.estimate.fit import SCREEN_SE, _fit_fold
from mitools.estimate.folds import Split
from mitools.estimate.progress import Progress
from mitools.estimate.result import FoldResult
from mitools.estimators import Estimator, get_estimator

__all__: list[str] = []


def fit_folds(xt: Tensor, yt: Tensor, splits: Sequence[Split], *,
              make_critic: Callable[[], nn.Module], bound: str | Estimator,
              bound_kwargs: dict[str, Any], init: str, screen: bool, seed: int, max_steps: int,
              bar: Progress, **fit_options: Any) -> tuple[list[FoldResult], list[Tensor]]:
    """Fit and evaluate one critic per split, in order, with the screen.

    Args:
        xt: ``(n, dim_x)`` the transformed x samples.
        yt: ``(n, dim_y)`` the transformed y samples.
        splits: the cross-fitting splits (:func:`~mitools.estimate.folds.fold_indices`).
        make_critic: builds a fold's fresh critic (:func:`~mitools.estimate.critic.build_critic`
            with the call's settings); called under the fold's seed.
        bound: the bound's name (built with ``bound_kwargs``) or an estimator, deep-copied
            for each fold.
        init: ``"gaussian"`` or ``"random"``; the screen needs the Gaussian start.
        screen: whether the first fold decides if the others train.
        seed: the call's seed; fold ``k`` builds its critic under ``seed * 1009 + k``.
        max_steps: the training steps of a fold that trains.
        bar: the progress bar, told of each fold's start, evaluations and end.
        **fit_options: the rest of :func:`~mitools.estimate.fit._fit_fold`'s keywords.

    Returns:
        Each fold's :class:`~mitools.estimate.result.FoldResult` and its ``(G,)`` values with
        each jackknife group left out.
    """
    results, leave_out = [], []
    screening = screen and init == "gaussian"
    steps = max_steps  # 0 once screening has found nothing for training to gain
    shown_gain = False  # whether it has found a gain (the other folds' margin)
    for k, split in enumerate(splits):
        with torch.random.fork_rng(devices=[]):
            # the CPU generator alone (the critic is built on the CPU), which fork_rng
            # restores: torch.manual_seed reseeded the caller's CUDA generators for good
            torch.random.default_generator.manual_seed(seed * 1009 + k)
            model = make_critic()
            estimator = (copy.deepcopy(bound) if isinstance(bound, Estimator)
                         else get_estimator(bound, **bound_kwargs))
        bar.start_fold(k)
        # a partition term that overflows (NWJ, TUBA, JS, FLO) is a diverged fit here, not an
        # error: the fold keeps its initial critic and is flagged
        with partition_overflow_allowed():
            fold, loo = _fit_fold(xt, yt, split, model, estimator, init=init, max_steps=steps,
                                  on_eval=bar.evaluated, screen_on_test=screening and k == 0,
                                  shown_gain=shown_gain, **fit_options)
        results.append(fold)
        leave_out.append(loo)
        if screening and k == 0:
            if fold.stopped_at_check or fold.held_out_gain <= SCREEN_SE:
                steps = 0
            elif fold.held_out_gain > SCREEN_SE:  # (not NaN)
                # training beats the start held out, on samples the other folds train and
                # validate on: they replace it on any validation gain, at low MI
                # (AFTER_GAIN_MAX_NATS). The first fold's own choice stays with its
                # validation part: revisiting it after this gain, read on its test part,
                # would select on the samples it reports.
                shown_gain = True
        bar.end_fold(fold.value, fold.steps)
    return results, leave_out

