"""Fit a conditional density q(y|x) by maximum likelihood with early stopping (benchmarks only)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mitools.bounds import club, doe, l1out
from mitools.conditionals import DiagonalGaussian, GaussianMarginal


def fit_q(x: Tensor, y: Tensor, seed: int, max_steps: int, batch: int = 256, lr: float = 1e-3,
          eval_every: int = 100, patience: int = 5) -> DiagonalGaussian:
    """A 2 x 256 diagonal Gaussian fitted on 4/5 of ``(x, y)``, early-stopped on the rest."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(x), generator=g)
    n_val = len(x) // 5
    val, tr = perm[:n_val], perm[n_val:]
    torch.manual_seed(seed)
    q = DiagonalGaussian(x.shape[1], y.shape[1], hidden=(256, 256))
    opt = torch.optim.Adam(q.parameters(), lr=lr)
    best, best_state, bad = -math.inf, None, 0
    for step in range(max_steps):
        idx = tr[torch.randint(len(tr), (batch,), generator=g)]
        opt.zero_grad()
        q.learning_loss(y[idx], x[idx]).backward()
        opt.step()
        if (step + 1) % eval_every == 0:
            with torch.no_grad():
                ll = float(q.log_prob_pairs(y[val], x[val]).mean())
            if ll > best:
                best, bad = ll, 0
                best_state = {k: v.clone() for k, v in q.state_dict().items()}
            else:
                bad += 1
                if bad >= patience:
                    break
    if best_state is not None:
        q.load_state_dict(best_state)
    return q


def held_out_generative(x: Tensor, y: Tensor, seed: int = 0, max_steps: int = 2000,
                        test_fraction: float = 0.2) -> dict[str, float]:
    """CLUB, L1Out and DoE held out, with q and a Gaussian marginal fitted on the rest."""
    n_test = int(len(x) * test_fraction)
    x_tr, y_tr, x_te, y_te = x[n_test:], y[n_test:], x[:n_test], y[:n_test]
    q = fit_q(x_tr, y_tr, seed, max_steps)
    marginal = GaussianMarginal(y.shape[1]).fit_(y_tr)
    with torch.no_grad():
        s = q.log_prob(y_te, x_te).double()
        lm = marginal.log_prob(y_te).double()
    return {"club": float(club(s)), "l1out": float(l1out(s)), "doe": float(doe(s, lm))}
