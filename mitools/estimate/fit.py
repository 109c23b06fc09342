"""Fitting one fold's critic: build it, train it with early stopping, evaluate it held out."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from mitools.critics import MarginalPotentials, QuadraticCritic, get_critic
from mitools.estimate.data import Standardization, _standardize
from mitools.estimate.folds import Split
from mitools.estimate.result import FoldResult, HistoryPoint
from mitools.estimators import Estimator


@torch.no_grad()
def _evaluate(estimator: Estimator, critic: nn.Module, x: Tensor, y: Tensor) -> float:
    """The bound on all pairs of ``(x, y)``."""
    return float(estimator(critic(x, y), anchors=x))


@torch.no_grad()
def _evaluate_leaving_groups_out(estimator: Estimator, critic: nn.Module, x: Tensor, y: Tensor,
                                 group_of: Tensor, groups: int) -> tuple[float, Tensor]:
    """The bound on all pairs of ``(x, y)``, and ``(groups,)`` values of it without the samples
    of group ``g`` for each ``g < groups`` (``group_of`` gives each sample's group); the scores
    are computed once for all of them."""
    scores = critic(x, y)
    value = float(estimator(scores, anchors=x))
    values = []
    for g in range(groups):  # a loop over groups (20), each a full vectorised evaluation
        keep = group_of != g
        values.append(float(estimator(scores, row_mask=keep, col_mask=keep, anchors=x)))
    return value, torch.tensor(values, dtype=torch.float64)


def _build_critic(critic: str | nn.Module, dim_x: int, dim_y: int, hidden: Sequence[int],
                  embed_dim: int, potentials: bool) -> nn.Module:
    if isinstance(critic, nn.Module):
        return copy.deepcopy(critic)
    name = critic.lower() if isinstance(critic, str) else critic
    kwargs: dict[str, Any] = {}
    if name in ("separable", "concat"):
        kwargs["hidden"] = tuple(hidden)
    if name == "quadratic":
        kwargs["hidden"] = tuple(hidden) if len(hidden) else None
    if name in ("separable", "quadratic"):
        kwargs["embed_dim"] = embed_dim
    model = get_critic(critic, dim_x, dim_y, **kwargs)
    if potentials and not isinstance(model, QuadraticCritic):
        model = MarginalPotentials(model, dim_x, dim_y)
    return model


def _fit_fold(xt: Tensor, yt: Tensor, split: Split, model: nn.Module, estimator: Estimator, *,
              init: str, report: str, dtype: torch.dtype, device: torch.device,
              batch_size: int, max_steps: int, lr: float, weight_decay: float,
              eval_every: int, patience: int, gen: torch.Generator, bar: Any,
              group_of: Tensor, groups: int) -> tuple[FoldResult, Tensor]:
    """Train one fold's critic with early stopping; evaluate it held out and in sample, also
    with each jackknife group left out (``(groups,)``, the fold's value without group g)."""
    fit = torch.cat([split.train, split.val])
    x_mean, x_scale = _standardize(xt, fit)
    y_mean, y_scale = _standardize(yt, fit)
    xs = ((xt - x_mean) / x_scale).to(device)
    ys = ((yt - y_mean) / y_scale).to(device)
    train, val, test = (p.to(device) for p in split)
    model = model.to(device=device, dtype=dtype)
    estimator = estimator.to(device=device, dtype=dtype)
    if init == "gaussian":
        model.init_gaussian_(xs[train], ys[train])
    optimizer = torch.optim.AdamW(
        [
            {"params": list(model.parameters()), "weight_decay": float(weight_decay)},
            {"params": list(estimator.parameters()), "weight_decay": 0.0},
        ],
        lr=lr,
    )
    batch = min(batch_size, len(train))

    def snapshot() -> tuple[dict, dict]:
        return copy.deepcopy(model.state_dict()), copy.deepcopy(estimator.state_dict())

    model.eval()
    estimator.eval()
    best_val = _evaluate(estimator, model, xs[val], ys[val])
    history = [HistoryPoint(0, math.nan, best_val)]
    best_step, best_state, since_best = 0, snapshot(), 0
    running, running_n, step = 0.0, 0, 0
    for step in range(1, max_steps + 1):
        model.train()
        estimator.train()
        idx = train[torch.randperm(len(train), generator=gen)[:batch].to(device)]
        xb, yb = xs[idx], ys[idx]
        value = estimator(model(xb, yb), anchors=xb)
        optimizer.zero_grad(set_to_none=True)
        (-value).backward()
        optimizer.step()
        running += float(value.detach())
        running_n += 1
        if bar is not None:
            bar.update(1)
        if step % eval_every == 0 or step == max_steps:
            model.eval()
            estimator.eval()
            val_value = _evaluate(estimator, model, xs[val], ys[val])
            history.append(HistoryPoint(step, running / running_n, val_value))
            running, running_n = 0.0, 0
            if bar is not None:
                bar.set_postfix(val=f"{val_value:.3f}")
            if val_value > best_val:
                best_val, best_step, best_state, since_best = val_value, step, snapshot(), 0
            else:
                since_best += 1
                if since_best >= patience:
                    break
    if bar is not None:
        bar.update(max_steps - step)  # early stopping: count the steps not run as done
    model.load_state_dict(best_state[0])
    estimator.load_state_dict(best_state[1])
    model.eval()
    estimator.eval()
    # the bounds, and the fold's value with each jackknife group left out of its evaluations
    held_out, loo = _evaluate_leaving_groups_out(estimator, model, xs[test], ys[test],
                                                 group_of[test], groups)
    own = train[: len(test)]
    corrected = report == "corrected"
    in_sample, own_loo = _evaluate_leaving_groups_out(estimator, model, xs[own], ys[own],
                                                      group_of[own], groups if corrected else 0)
    value = (held_out + in_sample) / 2 if corrected else held_out
    if corrected:
        loo = (loo + own_loo) / 2
    return FoldResult(
        held_out=held_out,
        in_sample=in_sample,
        value=value,
        history=history,
        best_step=best_step,
        steps=step,
        split=split,
        critic=model,
        estimator=estimator,
        standardization=Standardization(x_mean, x_scale, y_mean, y_scale),
    ), loo
