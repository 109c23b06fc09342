"""Faults reported against peer MI libraries, each checked on mitools (twenty-first tryout).

Every test names the peer report it comes from, holds the input that triggered it there and a
value computed independently here (float64 brute force with numpy, a closed form, or the
paper's formula written out), so that the fault stays absent from mitools.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter

import numpy as np
import pytest
import torch
from scipy.special import digamma

from mitools import GlobalMILoss, LocalMILoss, bounds, samplers
from mitools.classical import ksg, mixed_ksg
from mitools.conditionals import DiagonalGaussian
from mitools.critics import SeparableCritic
from mitools.estimators import MINE
from mitools.negatives import random_derangement


def _lse(a: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    m = a.max()
    return float(m + np.log(np.exp(a - m).sum()))


def _infonce_ref(s: np.ndarray, offset: int = 0) -> float:
    """van den Oord et al. eq. 4 with one positive per anchor, in float64: the positive is in
    the denominator, every column of the row too, and log M is added back."""
    n, m = s.shape
    return float(np.mean([s[i, i + offset] - _lse(s[i]) for i in range(n)]) + math.log(m))


# ---------------------------------------------------------------------------------------------
# InfoNCE / CPC / CLIP losses
# ---------------------------------------------------------------------------------------------


def test_infonce_rows_of_very_different_scales_match_float64() -> None:
    # AdaptiveMotorControlLab/CEBRA issue #48: the max subtracted for a stable log-sum-exp was
    # broadcast along the wrong axis, so rows of different scales gave a wrong InfoNCE.
    s = np.array([[50.0, 0.0, -3.0], [0.0, -40.0, 1.0], [2.0, 3.0, 1000.0]])
    ref = _infonce_ref(s)  # -12.672474940504632
    got = bounds.infonce(torch.tensor(s))
    assert float(got) == pytest.approx(ref, abs=1e-12)
    assert float(bounds.infonce(torch.tensor(s, dtype=torch.float32))) == pytest.approx(
        ref, rel=1e-6)


def test_infonce_denominator_holds_the_positive_and_every_negative() -> None:
    # KevinMusgrave/pytorch-metric-learning issue #699: is the denominator all items of the
    # row (the positive included) with a single positive per anchor? It must be, for the
    # log M ceiling to hold.
    s = np.array([[2.0, 0.5, -1.0, 0.0], [0.3, 1.0, 0.2, -0.4], [0.0, 0.0, 0.0, 0.0],
                  [1.5, -2.0, 0.7, 3.0]])
    ref = _infonce_ref(s)
    assert float(bounds.infonce(torch.tensor(s))) == pytest.approx(ref, abs=1e-12)
    # the ceiling log M on a perfect critic: the positive's own exp is in the denominator
    assert float(bounds.infonce(torch.tensor(1e4 * np.eye(4)))) == pytest.approx(math.log(4))


def test_infonce_on_large_scores_stays_in_log_space() -> None:
    # HKUDS/LightGCL issue #10: exp(score / temperature) summed outside log space; scores of
    # a few hundred overflow float32 and the loss becomes inf or NaN.
    s = np.array([[1000.0, 990.0], [995.0, 1000.0]])
    ref = _infonce_ref(s)  # 0.6897668068657462
    got = bounds.infonce(torch.tensor(s, dtype=torch.float32))
    assert math.isfinite(float(got))
    assert float(got) == pytest.approx(ref, abs=1e-5)
    # DV / MINE's log-partition likewise (the mean over the two off-diagonal entries)
    dv_ref = float(np.mean(np.diag(s)) - (_lse(np.array([990.0, 995.0])) - math.log(2)))
    assert float(bounds.dv(torch.tensor(s, dtype=torch.float32))) == pytest.approx(dv_ref,
                                                                                   abs=1e-4)


def test_nwj_refuses_an_overflowing_partition_instead_of_returning_inf() -> None:
    # sungyubkim/MINE-Mutual-Information-Neural-Estimation- issue #3 (and every f-MINE / NWJ
    # written as mean(exp(t - 1))): the partition term leaves log space; at scores near 100
    # it is inf in float32 and one optimiser step turns the critic into NaN.
    s = torch.tensor([[100.0, 95.0], [92.0, 100.0]])
    with pytest.raises(ValueError, match=r"overflows torch\.float32"):
        bounds.nwj(s)
    # in float64 the value is the formula: mean diag - exp(lme_off - 1)
    s64 = s.double()
    ref = 100.0 - math.exp(_lse(np.array([95.0, 92.0])) - math.log(2) - 1.0)
    assert float(bounds.nwj(s64)) == pytest.approx(ref, rel=1e-12)


def test_duplicate_samples_keep_their_positive_by_index() -> None:
    # fartashf/vsepp issue #6 and moein-shariatnia/OpenAI-CLIP PR #28 (issues #16, #27): with
    # the same image twice in a batch, targets read from the model's similarities (or from
    # equal features) put both positives on the first copy. The positive of row i is the pair
    # drawn with it, column i, whatever the other rows hold: on a batch where rows 0 and 2 are
    # the same x (and so score alike), the value is the formula with positives at (i, i).
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(4, 3, dtype=torch.float64, generator=gen)
    x[2] = x[0]
    y = torch.randn(4, 3, dtype=torch.float64, generator=gen)
    s = x @ y.T
    assert torch.equal(s[0], s[2])
    ref = _infonce_ref(s.numpy())
    first_match = float(np.mean([s[i, j].item() - _lse(s[i].numpy())
                                 for i, j in enumerate([0, 1, 0, 3])]) + math.log(4))
    assert float(bounds.infonce(s)) == pytest.approx(ref, abs=1e-12)
    assert abs(ref - first_match) > 0.1  # the fault's value, for the record


@pytest.mark.parametrize("rank", [0, 1, 2])
def test_gathered_columns_put_the_positive_at_rank_times_n(rank: int) -> None:
    # RElbers/info-nce-pytorch issue #13 (labels = arange(N): the positive on the diagonal)
    # and mlfoundations/open_clip issue #894 (local loss over gathered features: the labels
    # of rank r are arange(N) + r * N). A rank scoring its N rows against all 3N columns
    # must put row i's positive at column r * N + i, and the ranks' mean equals the loss of
    # one process on the concatenated batch.
    gen = torch.Generator().manual_seed(4)
    n = 3
    full = torch.randn(3 * n, 3 * n, dtype=torch.float64, generator=gen) * 2
    local = full[rank * n:(rank + 1) * n]
    ref = _infonce_ref(local.numpy(), offset=rank * n)
    assert float(bounds.infonce(local, offset=rank * n)) == pytest.approx(ref, abs=1e-12)
    ranks = [float(bounds.infonce(full[r * n:(r + 1) * n], offset=r * n)) for r in range(3)]
    assert float(np.mean(ranks)) == pytest.approx(float(bounds.infonce(full)), abs=1e-12)


def test_a_masked_column_does_not_underflow_the_valid_ones() -> None:
    # emadeldeen24/TS-TCC issue #25 (SupConLoss): the row max was taken over every column,
    # masked ones included; the valid entries, far below it, underflowed exp() to 0 in
    # float32 and the loss was log(0) = inf, then NaN.
    s = torch.tensor([[-200.0, -205.0, 1000.0], [-203.0, -201.0, 1000.0],
                      [0.0, 0.0, 0.0]])
    valid = torch.tensor([True, True, False])
    sn = s.double().numpy()[:2, :2]
    ref = _infonce_ref(sn)
    s.requires_grad_(True)
    got = bounds.infonce(s, row_mask=valid, col_mask=valid)
    got.backward()
    assert float(got.detach()) == pytest.approx(ref, abs=1e-5)
    assert s.grad is not None and bool(torch.isfinite(s.grad).all())
    assert float(s.grad[:, 2].abs().sum() + s.grad[2].abs().sum()) == 0.0


def test_nan_padding_leaves_every_bound_and_its_gradient_finite() -> None:
    # allenai/allennlp PR #105 and tinygrad PR #17853: masked entries set to 0 or left as
    # -inf (or garbage) leak into the log-sum-exp and its gradient as NaN.
    gen = torch.Generator().manual_seed(0)
    s = torch.randn(4, 4, dtype=torch.float64, generator=gen)
    s[3, :] = float("nan")
    s[:, 3] = float("inf")
    valid = torch.tensor([True, True, True, False])
    inner = s[:3, :3].numpy()
    for bound in (bounds.infonce, bounds.dv, bounds.nwj, bounds.jsd):
        x = s.clone().requires_grad_(True)
        value = bound(x, row_mask=valid, col_mask=valid)
        value.backward()
        assert x.grad is not None and bool(torch.isfinite(x.grad).all()), bound.__name__
        assert float(x.grad[3].abs().sum() + x.grad[:, 3].abs().sum()) == 0.0
    assert float(bounds.infonce(s, row_mask=valid, col_mask=valid)) == pytest.approx(
        _infonce_ref(inner), abs=1e-12)


def test_learned_temperature_stops_at_clips_logit_scale_of_100() -> None:
    # openai/CLIP issue #46 (and PR #530; mlfoundations/open_clip issue #214): the paper
    # clips the learned logit scale at 100 (temperature 0.01) "to prevent training
    # instability"; without the clip the learned temperature of a cosine critic falls for as
    # long as the positives can be separated. mitools had no bound: from T = 0.07, 3000 Adam
    # steps (lr 0.05) on y = x took it to 0.0111, still falling (scores up to 89.3).
    torch.manual_seed(0)
    critic = SeparableCritic(4, 4, hidden=(16,), embed_dim=8, cosine=True, temperature=0.07,
                             learn_temperature=True)
    opt = torch.optim.Adam(critic.parameters(), lr=0.5)
    x = torch.randn(64, 4)
    for _ in range(300):
        loss = -bounds.infonce(critic(x, x))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        scores = critic(x, x)
    # |cos| <= 1, so the scores are bounded by the logit scale 1 / T <= 100
    assert float(scores.abs().max()) <= 100.0 * (1 + 1e-5)
    assert float(critic.effective_log_temperature().detach()) == pytest.approx(math.log(0.01))


def test_a_floored_temperature_can_rise_again_and_the_floor_can_be_lifted() -> None:
    # the fix above, as open_clip does it (the logit scale clamped after each step, so it
    # can come down again): below its floor, a gradient that would raise log T still
    # reaches it; one that would lower it does not.
    critic = SeparableCritic(2, 2, hidden=(), embed_dim=2, cosine=True, temperature=0.05,
                             learn_temperature=True)
    with torch.no_grad():
        critic.log_temperature.fill_(math.log(0.001))  # below the floor of 0.01
    for sign, reaches in ((1.0, False), (-1.0, True)):
        critic.zero_grad()
        (sign * critic.effective_log_temperature()).backward()
        grad = critic.log_temperature.grad
        assert grad is not None and (float(grad) == sign if reaches else float(grad) == 0.0)
    unbounded = SeparableCritic(2, 2, hidden=(), embed_dim=2, temperature=0.001,
                                learn_temperature=True, min_temperature=0)
    lowest = float(unbounded.effective_log_temperature().detach())
    assert lowest == pytest.approx(math.log(0.001))
    with pytest.raises(ValueError, match=r"min_temperature=0\.01"):
        SeparableCritic(2, 2, temperature=0.001, learn_temperature=True)
    fixed = SeparableCritic(2, 2, hidden=(), temperature=0.001)  # a fixed T is not floored
    fixed_log_t = float(fixed.effective_log_temperature().detach())
    assert fixed_log_t == pytest.approx(math.log(0.001), rel=1e-6)


@pytest.mark.parametrize("backend", ["dense", "blocked", "attention"])
@pytest.mark.parametrize("bound", ["infonce", "dv", "nwj"])
def test_padding_garbage_never_reaches_a_local_loss(bound: str, backend: str) -> None:
    # the same NaN-with-masks fault, on feature grids (TS-TCC issue #25, allennlp PR #105):
    # padded cells and tokens holding 0, 1e30 or NaN give one loss and finite gradients.
    torch.manual_seed(0)
    x0 = torch.randn(5, 6, 2, 2, dtype=torch.float64)
    y0 = torch.randn(5, 3, 4, dtype=torch.float64)
    x_mask = torch.ones(5, 2, 2, dtype=torch.bool)
    x_mask[1, 0, 0] = False
    y_mask = torch.ones(5, 3, dtype=torch.bool)
    y_mask[0, 2] = y_mask[3, 0] = False
    critic = SeparableCritic(6, 4, hidden=(), embed_dim=3).double()
    losses = []
    for fill in (0.0, 1e30, float("nan")):
        x, y = x0.clone(), y0.clone()
        x[1, :, 0, 0] = y[0, 2] = y[3, 0] = fill
        x.requires_grad_(True)
        y.requires_grad_(True)
        loss_fn = LocalMILoss(bound, critic, samplers.AllPairs(), x_pattern="b c h w",
                              y_pattern="b l c", backend=backend)
        loss = loss_fn(x, y, x_mask=x_mask, y_mask=y_mask).loss
        loss.backward()
        assert x.grad is not None and y.grad is not None
        assert bool(torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all())
        losses.append(float(loss.detach()))
    assert losses[1] == pytest.approx(losses[0], abs=1e-12)
    assert losses[2] == pytest.approx(losses[0], abs=1e-12)


@pytest.mark.parametrize("pool", ["mean", "max"])
def test_global_pooling_leaves_padded_positions_out(pool: str) -> None:
    # dbiir/UER-py PR #190 ("mean-pooling includes pad embedding"): a sentence's pooled
    # feature changed with the longest sentence of its batch. GlobalMILoss pools valid
    # positions only: equal to pooling each sample's valid positions by hand.
    torch.manual_seed(0)
    x0 = torch.randn(5, 6, 4, dtype=torch.float64)
    y = torch.randn(5, 3, dtype=torch.float64)
    mask = torch.ones(5, 4, dtype=torch.bool)
    mask[0, 3] = False
    mask[2, 1:] = False
    critic = SeparableCritic(6, 3, hidden=(), embed_dim=3).double()
    pooled = torch.stack([x0[i][:, mask[i]].mean(-1) if pool == "mean"
                          else x0[i][:, mask[i]].max(-1).values for i in range(5)])
    with torch.no_grad():
        ref = -float(bounds.infonce(critic(pooled, y)))
        for fill in (0.0, 1e6):
            x = x0.clone()
            x[~mask[:, None, :].expand_as(x)] = fill
            loss = GlobalMILoss("infonce", critic, x_pattern="b c l", y_pattern="b c",
                                pool=pool)(x, y, x_mask=mask).loss
            assert float(loss) == pytest.approx(ref, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# MINE, SMILE, CLUB and the shuffled marginals
# ---------------------------------------------------------------------------------------------


def test_mine_moving_average_starts_at_the_first_batch_and_follows_eq_12() -> None:
    # gtegner/mine-pytorch issue #1 (the running mean starts at 0 and the first batch's
    # gradient is scaled by 1 / 0) and sungyubkim/MINE-...-Estimation- issue #3 (which
    # term carries the 1 / moving-average factor). Belghazi et al. eq. 12: the gradient of
    # log E_q[e^S] is E_q[e^S grad S] / Zbar, Zbar the moving average, started at the first
    # batch's partition estimate.
    gen = torch.Generator().manual_seed(2)
    mine = MINE(momentum=0.9).train()
    s1 = torch.randn(6, 6, dtype=torch.float64, generator=gen).requires_grad_(True)
    mine(s1).backward()
    assert s1.grad is not None
    first = s1.grad.clone()
    s1.grad = None
    bounds.dv(s1).backward()  # the first batch: Zbar is its own estimate, DV's gradient
    assert torch.allclose(first, s1.grad, atol=1e-15)
    s2 = torch.randn(6, 6, dtype=torch.float64, generator=gen).requires_grad_(True)
    value = mine(s2)
    value.backward()
    off = ~np.eye(6, dtype=bool)
    z1 = np.exp(s1.detach().numpy()[off]).mean()
    z2 = np.exp(s2.detach().numpy()[off]).mean()
    zbar = 0.9 * z1 + 0.1 * z2
    ref = np.eye(6) / 6 - off * np.exp(s2.detach().numpy()) / 30 / zbar
    assert s2.grad is not None
    np.testing.assert_allclose(s2.grad.numpy(), ref, atol=1e-15)
    # and its value is DV's, not the surrogate's
    dv_ref = np.mean(np.diag(s2.detach().numpy())) - math.log(z2)
    assert float(value.detach()) == pytest.approx(dv_ref, abs=1e-12)


def test_shuffled_partners_are_a_derangement() -> None:
    # gtegner/mine-pytorch issue #5: torch.randperm is not a derangement; its fixed points
    # pair a sample with its own partner inside the "marginal" batch.
    valid = torch.ones(200, 7, dtype=torch.bool)
    partner = random_derangement(valid, generator=0)
    assert bool((partner != torch.arange(7)).all())
    assert all(sorted(row) == list(range(7)) for row in partner.tolist())


def test_smile_clips_the_partition_only() -> None:
    # Song & Ermon's smile_lower_bound (ermongroup/smile-mi-estimator, estimators.py): the
    # clip applies inside the log-mean-exp of the off-diagonal scores; the positive term is
    # the unclipped diagonal. Clipping the diagonal too (as some ports do) lowers the value.
    s = np.array([[9.0, -7.0, 1.0], [6.0, 8.0, -0.5], [0.2, 2.5, -9.0]])
    tau = 2.0
    off = ~np.eye(3, dtype=bool)
    ref = float(np.mean(np.diag(s)) - (_lse(np.clip(s, -tau, tau)[off]) - math.log(6)))
    assert float(bounds.smile(torch.tensor(s), clip=tau)) == pytest.approx(ref, abs=1e-12)


def test_club_is_the_diagonal_mean_minus_the_off_diagonal_mean() -> None:
    # Linear95/CLUB issues #7 and #9 (negative CLUB estimates from a poorly fitted q): the
    # value itself is the paper's eq. 7, mean log q(y_i|x_i) - mean_{i != j} log q(y_j|x_i);
    # with the true conditional of unit Gaussians, rho = 0.6, it is rho^2/(1 - rho^2) = 0.5625
    # in expectation, above I = 0.2231.
    s = np.array([[-0.5, -2.0, -1.0], [-3.0, -0.2, -0.8], [-1.1, -0.9, -0.4]])
    off = ~np.eye(3, dtype=bool)
    ref = float(np.mean(np.diag(s)) - np.mean(s[off]))
    assert float(bounds.club(torch.tensor(s))) == pytest.approx(ref, abs=1e-12)
    rho = 0.6
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(3000, dtype=torch.float64, generator=gen)
    y = rho * x + math.sqrt(1 - rho**2) * torch.randn(3000, dtype=torch.float64, generator=gen)
    var = 1 - rho**2
    logq = -0.5 * (y[None, :] - rho * x[:, None]) ** 2 / var - 0.5 * math.log(2 * math.pi * var)
    assert float(bounds.club(logq)) == pytest.approx(rho**2 / (1 - rho**2), abs=0.04)


def test_the_gaussian_conditional_keeps_its_normalising_terms() -> None:
    # Linear95/CLUB issue #7: why does CLUB's log-likelihood subtract logvar? Because the
    # Gaussian density's normaliser holds the variance; dropped, q is not fitted by maximum
    # likelihood. mitools' DiagonalGaussian is the full log-density, -D/2 log 2 pi included,
    # equal to torch.distributions.Normal's.
    torch.manual_seed(0)
    q = DiagonalGaussian(2, 3, hidden=(4,)).double()
    x = torch.randn(5, 2, dtype=torch.float64)
    y = torch.randn(5, 3, dtype=torch.float64)
    mean, scale = q.parameters_of(x)
    with torch.no_grad():
        ref = torch.distributions.Normal(mean[:, None], scale[:, None]).log_prob(y[None]).sum(-1)
        assert torch.allclose(q.log_prob(y, x), ref, atol=1e-12)
        assert torch.allclose(q.log_prob_pairs(y, x), ref.diagonal(), atol=1e-12)


# ---------------------------------------------------------------------------------------------
# k-NN estimators (KSG, the mixed estimator)
# ---------------------------------------------------------------------------------------------


def _std(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    return (a - a.mean(0)) / a.std(0)


def _ksg_ref(x: np.ndarray, y: np.ndarray, k: int, estimator: int, p: float = np.inf) -> float:
    """KSG eqs. 8 and 9 by brute force in float64 (p = inf: the max-norm of the paper)."""
    x, y = _std(x), _std(y)
    n = len(x)
    dx = np.linalg.norm(x[:, None] - x[None], ord=p, axis=-1)
    dy = np.linalg.norm(y[:, None] - y[None], ord=p, axis=-1)
    dz = np.maximum(dx, dy)
    for d in (dx, dy, dz):
        np.fill_diagonal(d, np.inf)
    total = 0.0
    for i in range(n):
        nearest = np.argsort(dz[i], kind="stable")[:k]
        if estimator == 1:
            eps = dz[i, nearest[-1]]
            total += digamma((dx[i] < eps).sum() + 1) + digamma((dy[i] < eps).sum() + 1)
        else:
            total += (digamma((dx[i] <= dx[i, nearest].max()).sum())
                      + digamma((dy[i] <= dy[i, nearest].max()).sum()))
    return float(digamma(k) + digamma(n) - (1.0 / k if estimator == 2 else 0.0) - total / n)


def _two_dim_sample(n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, 2))
    y = np.c_[0.8 * x[:, 0] + 0.6 * rng.standard_normal(n), rng.standard_normal(n)]
    return x, y


@pytest.mark.parametrize("estimator", [1, 2])
@pytest.mark.parametrize("algorithm", ["kdtree", "brute"])
def test_ksg_counts_and_digamma_terms_match_the_paper(estimator: int, algorithm: str) -> None:
    # paulbrodersen/entropy_estimators issue #11 (sklearn's KSG line: which count gets the +1
    # inside the digamma) and scikit-learn issue #25580 (unstable n_neighbors). Eq. 8 counts
    # strictly inside eps and adds 1; eq. 9 counts within the x- and y-extents, minus 1/k.
    x, y = _two_dim_sample()
    ref = _ksg_ref(x, y, 3, estimator)  # 0.351358441501465 (eq. 8), 0.384903514392179 (eq. 9)
    got = ksg(x, y, k=3, estimator=estimator, noise=0, algorithm=algorithm, groups=0).value
    assert got == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("k", [1, 5])
def test_ksg_reads_k(k: int) -> None:
    # scikit-learn issue #8173: n_neighbors was not passed on, so every k gave k = 3's value.
    x, y = _two_dim_sample()
    got = ksg(x, y, k=k, noise=0, groups=0).value
    assert got == pytest.approx(_ksg_ref(x, y, k, 1), abs=1e-12)
    assert abs(got - _ksg_ref(x, y, 3, 1)) > 1e-3


def test_ksg_does_not_depend_on_units() -> None:
    # neurodata/treeple issue #193: the neighbour radius of unscaled data spanned every sample
    # of the small-scale variable. Columns are standardised first: rescaling one changes
    # nothing but rounding.
    x, y = _two_dim_sample()
    rescaled = x * np.array([1e4, 1e-3])
    got = ksg(rescaled, y, noise=0, groups=0).value
    assert got == pytest.approx(ksg(x, y, noise=0, groups=0).value, abs=1e-9)


def test_ksg_uses_the_max_norm_not_the_euclidean() -> None:
    # cbg-ethz/bmi PR #6 (KSG with other metrics; the max-norm one followed) and
    # JuliaDynamics/DelayEmbeddings.jl issue #10 (a Euclidean tree beside a max-norm formula):
    # KSG's digamma terms assume the max-norm in the joint space and in each marginal space.
    x, y = _two_dim_sample()
    got = ksg(x, y, k=3, noise=0, groups=0).value
    assert got == pytest.approx(_ksg_ref(x, y, 3, 1, p=np.inf), abs=1e-12)
    assert abs(got - _ksg_ref(x, y, 3, 1, p=2)) > 0.01  # 0.3514 against 0.3722 Euclidean


def test_a_large_offset_and_a_rare_class_add_no_spurious_mi() -> None:
    # scikit-learn issue #30772: features scaled without centring, then noise sized by the
    # mean magnitude: on 1e6 + N(0, 1) against a rare label, ties in distance multiplied and
    # the estimate grew with n, up to 210 H(Y). mitools centres and scales before any noise:
    # the estimate does not see the offset, and stays near 0 (true I = 0).
    rng = np.random.default_rng(0)
    n = 20000
    x = rng.standard_normal(n)
    label = (rng.random(n) < 0.01).astype(int)
    shifted = mixed_ksg(1e6 + x, label, discrete_y=True, groups=0).value
    assert shifted == pytest.approx(mixed_ksg(x, label, discrete_y=True, groups=0).value,
                                    abs=1e-9)
    counts = np.bincount(label) / n
    entropy = float(-(counts * np.log(counts)).sum())
    assert abs(shifted) < 0.05 * entropy * 30  # 0.0010 nats; H(Y) = 0.056


def test_a_single_class_target_gives_exactly_zero() -> None:
    # scikit-learn issue #16355: mutual_info_classif returned negative values for a target
    # with one class (true I = 0, H(Y) = 0).
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 3))
    with pytest.warns(RuntimeWarning, match="y is constant"):
        assert mixed_ksg(x, np.ones(100), discrete_y=True, groups=0).value == 0.0


def test_mixed_estimator_on_two_labels_follows_its_counts() -> None:
    # jlizier/jidt issues #26, #42, #63 (repeated values break KSG's assumptions; noise added
    # by default) and polsys/ennemi issue #87 (discrete-discrete MI): Gao et al.'s estimator
    # reads ties as data. On two discrete variables, each sample's k~ is its cell's count,
    # n_x + 1 its x-class's count and n_y + 1 its y-class's count:
    # mean[psi(n_xy) + log N - psi(n_x) - psi(n_y)], close to the plug-in estimate.
    rng = np.random.default_rng(0)
    n = 2000
    a = rng.integers(0, 4, n)
    b = (a + (rng.random(n) < 0.2) * rng.integers(1, 4, n)) % 4
    cell, ca, cb = Counter(zip(a, b, strict=True)), Counter(a), Counter(b)
    ref = float(np.mean([digamma(cell[(i, j)]) + math.log(n) - digamma(ca[i]) - digamma(cb[j])
                         for i, j in zip(a, b, strict=True)]))
    got = mixed_ksg(a, b, discrete_x=True, discrete_y=True, groups=0).value
    assert got == pytest.approx(ref, abs=1e-12)
    plug_in = sum(c / n * math.log(c * n / (ca[i] * cb[j])) for (i, j), c in cell.items())
    assert got == pytest.approx(plug_in, abs=0.01)  # 0.6547 against 0.6567


def test_mixed_estimator_on_a_separating_feature_is_bounded_by_counts() -> None:
    # cbueth/infomeasure issue #7: KSG on continuous latents against a binary label gave
    # negative values, and the kernel estimate exceeded H(Y). Where x separates the classes,
    # each sample's k neighbours lie in its class: the estimate is log N - mean psi(n_c),
    # n_c the sample's class size, within 1/(2 n_c) of H(Y).
    rng = np.random.default_rng(3)
    label = np.repeat([0, 1, 2], [300, 200, 100])
    x = 10.0 * label + 0.1 * rng.standard_normal(600)
    sizes = np.bincount(label)[label]
    ref = float(math.log(600) - np.mean(digamma(sizes)))
    got = mixed_ksg(x, label, discrete_y=True, groups=0).value
    assert got == pytest.approx(ref, abs=1e-12)
    p = np.bincount(label) / 600
    entropy = float(-(p * np.log(p)).sum())
    assert 0.0 < got - entropy < 0.01


def test_an_exact_relation_warns_that_the_estimate_is_a_lower_figure() -> None:
    # gregversteeg/NPEET issues #16 and #26: I(X; X) came out above H(X) (7.95 nats on
    # 10,000 Gaussian samples), read as a bug; for a continuous X it is infinite, and a k-NN
    # estimate is set by n and k alone (the ceiling psi(n) - psi(k) of estimator 1).
    rng = np.random.default_rng(0)
    x = rng.standard_normal(2000)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        got = ksg(x, x, groups=0).value
    assert got <= float(digamma(2000) - digamma(3)) + 1e-12
    assert any("lower figure" in str(w.message) for w in seen)
