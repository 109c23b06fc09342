"""Tests of mitools.local: LocalMILoss against a naive loop, chunking, masks, errors, globals."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from local_reference import flatten_grid, naive_local_mi

from mitools import bounds
from mitools.critics import (
    BilinearCritic,
    ConcatCritic,
    MarginalPotentials,
    QuadraticCritic,
    SeparableCritic,
)
from mitools.estimators import MINE, get_estimator
from mitools.local import REDUCTIONS, GlobalMILoss, LocalMILoss
from mitools.samplers import (
    AllPairs,
    LocalToGlobal,
    Matched,
    NegativeQueue,
    Neighbourhood,
    RandomPairs,
)

F64 = torch.float64
X_PATTERNS = {1: "b l c", 2: "b c h w", 3: "b c t h w"}
CHANNEL_LAST = {0: "b c", 1: "b l c", 2: "b h w c", 3: "b t h w c"}
SAMPLERS = ("local_to_global", "all_pairs", "matched", "random_pairs", "neighbourhood")
BOUNDS = ("infonce", "dv", "nwj", "jsd", "js", "smile", "tuba", "mine", "alpha_infonce")
BLOCKED = ("infonce", "dv", "nwj", "jsd", "js", "smile", "tuba", "mine")  # row-wise bounds
ATTENTION = ("infonce", "dv", "nwj", "tuba", "mine")  # log-sum-exps of the scores
SEPARABLE = (None, "separable", "separable_cosine", "bilinear", "quadratic", "potentials")


def backends_for(bound: str, critic_name: str | None, negatives: str) -> list[str]:
    """The execution paths a configuration accepts."""
    fused = critic_name in SEPARABLE and bound in BLOCKED and negatives == "all"
    out = ["auto", "dense"]
    if fused:
        out.append("blocked")
        if bound in ATTENTION:
            out.append("attention")
    return out


def make_sampler(name: str, seed: int = 0):
    return {
        "local_to_global": lambda: LocalToGlobal(),
        "all_pairs": lambda: AllPairs(),
        "matched": lambda: Matched(),
        "random_pairs": lambda: RandomPairs(3, generator=torch.Generator().manual_seed(seed)),
        "neighbourhood": lambda: Neighbourhood(radius=1),
    }[name]()


def make_critic(name: str | None, c: int, seed: int):
    torch.manual_seed(seed)  # critic initialisation only; data use local generators
    critic = {
        None: lambda: None,
        "separable": lambda: SeparableCritic(c, c, hidden=(5,), embed_dim=4),
        "separable_cosine": lambda: SeparableCritic(
            c, c, hidden=(), embed_dim=4, cosine=True, temperature=0.5, learn_temperature=True
        ),
        "bilinear": lambda: BilinearCritic(c, c),
        "quadratic": lambda: _randomised(QuadraticCritic(c, c, hidden=(4,), embed_dim=2)),
        "potentials": lambda: MarginalPotentials(
            SeparableCritic(c, c, hidden=(4,), embed_dim=3), c, c, hidden=(3,)
        ),
        "concat": lambda: ConcatCritic(c, c, hidden=(5,)),
    }[name]()
    return critic.double() if critic is not None else None


def _randomised(critic):
    """Every parameter non-zero (the quadratic critic's residual starts at zero)."""
    with torch.no_grad():
        for p in critic.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return critic


def make_estimator(name: str):
    if name == "tuba":
        return get_estimator("tuba", baseline=0.3)
    if name == "alpha_infonce":
        return get_estimator("alpha_infonce", alpha=0.3, baseline=0.2)
    if name == "mine":
        return MINE(momentum=0.5)
    return get_estimator(name)


def per_pair(name: str):
    """The reference's estimator of each position pair: one MINE (own average) per pair."""
    if name != "mine":
        return None
    table: dict = {}
    return lambda p, q: table.setdefault((p, q), make_estimator(name))


def grid_for(sampler: str, grid_x: tuple[int, ...], q_len: int) -> tuple[int, ...]:
    if sampler == "local_to_global":
        return ()
    if sampler in ("matched", "neighbourhood"):
        return grid_x
    return (q_len,)


def random_mask(batch: int, grid: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    mask = torch.rand((batch, *grid), generator=gen) > 0.35
    flat = mask.reshape(batch, -1)
    first = torch.randint(0, flat.shape[1], (batch,), generator=gen)
    flat[torch.arange(batch), first] = True  # every sample keeps at least one position
    return flat.reshape(batch, *grid)


def to_pattern(t: torch.Tensor, grid_rank: int, pattern: str) -> torch.Tensor:
    """A channel-last tensor (B, *grid, C) laid out as ``pattern``."""
    src = CHANNEL_LAST[grid_rank]
    import einops

    return einops.rearrange(t, f"{src} -> {pattern}")


def grads(loss: torch.Tensor, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    out = torch.autograd.grad(loss, tensors, allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for g, t in zip(out, tensors, strict=True)]


def run_case(
    *,
    rank: int,
    grid_x: tuple[int, ...],
    q_len: int,
    batch: int,
    sampler: str,
    reduction: str,
    bound: str,
    critic_name: str | None,
    negatives: str,
    masked: bool,
    chunk_size: int | None,
    column_chunk_size: int | None,
    seed: int,
    backend: str = "auto",
    tol: float = 1e-9,
) -> None:
    c = 3
    gen = torch.Generator().manual_seed(seed)
    grid_y = grid_for(sampler, grid_x, q_len)
    x_cl = torch.randn((batch, *grid_x, c), generator=gen, dtype=F64)
    y_cl = torch.randn((batch, *grid_y, c), generator=gen, dtype=F64)
    x_pattern = X_PATTERNS[rank]
    y_pattern = CHANNEL_LAST[len(grid_y)]
    x = to_pattern(x_cl, rank, x_pattern).requires_grad_()
    y = y_cl.clone().requires_grad_()
    x_mask = random_mask(batch, grid_x, gen) if masked else None
    y_mask = random_mask(batch, grid_y, gen) if masked and grid_y else None
    critic = make_critic(critic_name, c, seed)
    params = list(critic.parameters()) if critic is not None else []
    estimator = make_estimator(bound)

    loss_fn = LocalMILoss(
        estimator,
        critic,
        make_sampler(sampler, seed),
        reduction,
        x_pattern=x_pattern,
        y_pattern=y_pattern,
        negatives=negatives,
        chunk_size=chunk_size,
        column_chunk_size=column_chunk_size,
        generator=torch.Generator().manual_seed(seed + 1),
        backend=backend,
    )
    ref, ref_estimates = naive_local_mi(
        estimator,
        critic,
        make_sampler(sampler, seed),
        reduction,
        x,
        y,
        x_pattern,
        y_pattern,
        x_mask,
        y_mask,
        negatives=negatives,
        generator=torch.Generator().manual_seed(seed + 1),
        estimator_of_pair=per_pair(bound),
    )
    if ref is None:  # every pair is padding
        with pytest.raises(ValueError, match="no position pair"):
            loss_fn(x, y, x_mask, y_mask)
        return
    out = loss_fn(x, y, x_mask, y_mask)
    assert out.loss.dtype == F64
    if backend != "auto":
        assert loss_fn.last_backend == backend
    torch.testing.assert_close(out.estimate, ref.detach(), atol=tol, rtol=0)
    torch.testing.assert_close(out.loss, -ref.detach(), atol=tol, rtol=0)
    torch.testing.assert_close(
        out.pair_estimates, torch.tensor(ref_estimates, dtype=F64), atol=tol, rtol=0, equal_nan=True
    )
    inputs = [x, y, *params]
    for got, want in zip(grads(out.loss, inputs), grads(-ref, inputs), strict=True):
        torch.testing.assert_close(got, want, atol=tol, rtol=0)


@st.composite
def cases(draw, bound: str):
    rank = draw(st.sampled_from([1, 2, 3]))
    hi = {1: 4, 2: 3, 3: 2}[rank]
    grid_x = tuple(draw(st.integers(1, hi)) for _ in range(rank))
    sampler = draw(st.sampled_from(SAMPLERS))
    row_partition = bound in ("infonce", "alpha_infonce")
    negatives = draw(st.sampled_from(["all", "derangement"])) if not row_partition else "all"
    critic_name = draw(st.sampled_from([None, "separable", "bilinear", "quadratic", "concat"]))
    backend = draw(st.sampled_from(backends_for(bound, critic_name, negatives)))
    fast = backend in ("auto", "blocked") and "blocked" in backends_for(
        bound, critic_name, negatives
    )
    return dict(
        backend=backend,
        rank=rank,
        grid_x=grid_x,
        q_len=draw(st.integers(1, 3)),
        batch=draw(st.integers(2, 5)),
        sampler=sampler,
        reduction=draw(st.sampled_from(REDUCTIONS)),
        bound=bound,
        critic_name=critic_name,
        negatives=negatives,
        masked=draw(st.booleans()),
        chunk_size=draw(st.sampled_from([None, 1, 2, 5])),
        column_chunk_size=draw(st.sampled_from([None, 1, 3])) if fast else None,
        seed=draw(st.integers(0, 2**16)),
    )


@pytest.mark.parametrize("bound", BOUNDS)  # per bound: every bound gets its own examples
@given(data=st.data())
def test_vectorised_equals_naive_loop(bound, data):
    """Value, per-pair estimates and gradients equal the loop reference to 1e-9 (float64)."""
    run_case(**data.draw(cases(bound)))


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_every_sampler_and_reduction_equals_naive_loop(sampler, reduction):
    """A fixed, masked rank-2 case for every sampler x reduction (hypothesis may skip some)."""
    run_case(
        rank=2, grid_x=(2, 3), q_len=2, batch=4, sampler=sampler, reduction=reduction,
        bound="dv", critic_name="separable", negatives="all", masked=True, chunk_size=2,
        column_chunk_size=None, seed=7,
    )  # fmt: skip


@pytest.mark.parametrize("bound", BOUNDS)
@pytest.mark.parametrize("critic_name", [None, "separable_cosine", "bilinear", "concat"])
def test_every_bound_and_critic_chunked_equals_naive_loop(bound, critic_name):
    fast = critic_name != "concat" and bound in BLOCKED
    run_case(
        rank=1, grid_x=(4,), q_len=3, batch=5, sampler="all_pairs", reduction="logsumexp",
        bound=bound, critic_name=critic_name, negatives="all", masked=True, chunk_size=3,
        column_chunk_size=2 if fast else None, seed=3,
    )  # fmt: skip


BACKEND_CASES = [
    (backend, bound, critic)
    for bound in BOUNDS
    for critic in (None, "separable_cosine", "bilinear", "quadratic", "potentials", "concat")
    for backend in backends_for(bound, critic, "all")
    if backend != "auto"
]


@pytest.mark.parametrize(("backend", "bound", "critic_name"), BACKEND_CASES)
def test_every_backend_equals_naive_loop(backend, bound, critic_name):
    """Every path a configuration accepts, forced, with masks: values and gradients to 1e-9."""
    run_case(
        rank=2, grid_x=(2, 2), q_len=3, batch=5, sampler="all_pairs", reduction="logsumexp",
        bound=bound, critic_name=critic_name, negatives="all", masked=True, chunk_size=3,
        column_chunk_size=2 if backend == "blocked" else None, seed=5, backend=backend,
    )  # fmt: skip


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("backend", ["blocked", "attention"])
def test_fused_paths_with_every_sampler_equal_naive_loop(sampler, backend):
    run_case(
        rank=2, grid_x=(3, 2), q_len=2, batch=6, sampler=sampler, reduction="max",
        bound="dv", critic_name="quadratic", negatives="all", masked=True, chunk_size=None,
        column_chunk_size=None, seed=13, backend=backend,
    )  # fmt: skip


@pytest.mark.parametrize("bound", ["dv", "nwj", "jsd", "smile"])
def test_derangement_equals_naive_loop(bound):
    run_case(
        rank=2, grid_x=(2, 2), q_len=1, batch=5, sampler="local_to_global", reduction="mean",
        bound=bound, critic_name="separable", negatives="derangement", masked=True,
        chunk_size=None, column_chunk_size=None, seed=11,
    )  # fmt: skip


def test_derangement_dv_is_mean_positive_minus_log_mean_exp_partner():
    """Closed form of the paper's shuffled-pair DV/MINE objective."""
    gen = torch.Generator().manual_seed(0)
    b = 6
    x = torch.randn(b, 4, dtype=F64, generator=gen)
    y = torch.randn(b, 4, dtype=F64, generator=gen)
    loss_fn = LocalMILoss(
        "dv", None, x_pattern="b c", y_pattern="b c", negatives="derangement",
        generator=torch.Generator().manual_seed(5),
    )  # fmt: skip
    out = loss_fn(x, y)
    from mitools.samplers import random_derangement

    partner = random_derangement(
        torch.ones(1, b, dtype=torch.bool), torch.Generator().manual_seed(5)
    )[0]
    assert not bool((partner == torch.arange(b)).any())
    pos = (x * y).sum(-1)
    neg = (x * y[partner]).sum(-1)
    expected = pos.mean() - (torch.logsumexp(neg, 0) - math.log(b))
    torch.testing.assert_close(out.estimate, expected, atol=1e-12, rtol=0)


def test_derangement_rejects_infonce():
    with pytest.raises(ValueError, match="derangement"):
        LocalMILoss("infonce", negatives="derangement")


# ---------------------------------------------------------------------------------------------
# Chunked = unchunked in float32, and the blocked autograd function.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bound", ["infonce", "dv", "nwj", "jsd", "smile", "tuba"])
@pytest.mark.parametrize("reduction", ["mean", "max"])
def test_chunked_equals_unchunked_float32(bound, reduction):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(32, 16, 6, 6, generator=gen, requires_grad=True)
    y = torch.randn(32, 8, generator=gen, requires_grad=True)
    x_mask = torch.rand(32, 6, 6, generator=gen) > 0.2
    x_mask[:, 0, 0] = True
    torch.manual_seed(0)
    critic = SeparableCritic(16, 8, hidden=(32,), embed_dim=16)
    results = []
    variants = [{}, {"chunk_size": 5}]
    if bound in BLOCKED:
        variants.append({"chunk_size": 7, "column_chunk_size": 10})
    for kw in variants:
        loss_fn = LocalMILoss(bound, critic, reduction=reduction, **kw)
        out = loss_fn(x, y, x_mask)
        results.append((out.loss, *grads(out.loss, [x, y, *critic.parameters()])))
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


# ---------------------------------------------------------------------------------------------
# Properties.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", ["local_to_global", "all_pairs", "matched"])
def test_mean_is_invariant_to_permuting_grid_positions(sampler):
    gen = torch.Generator().manual_seed(4)
    grid = (3, 4)
    x = torch.randn(6, 3, *grid, dtype=F64, generator=gen)
    y_grid = grid_for(sampler, grid, 2)
    y = torch.randn(6, *y_grid, 3, dtype=F64, generator=gen)
    y_pattern = CHANNEL_LAST[len(y_grid)] if sampler != "all_pairs" else "b l c"
    if sampler == "all_pairs":
        y = torch.randn(6, 5, 3, dtype=F64, generator=gen)
    critic = make_critic("separable", 3, 0)
    loss_fn = LocalMILoss("infonce", critic, make_sampler(sampler), "mean", y_pattern=y_pattern)
    perm = torch.randperm(12, generator=gen)
    xp = x.flatten(2)[..., perm].reshape_as(x)
    if sampler == "matched":  # the same permutation on both sides keeps pairs matched
        yp = y.flatten(1, 2)[:, perm].reshape_as(y)
    elif sampler == "all_pairs":
        yp = y[:, torch.randperm(5, generator=gen)]
    else:
        yp = y
    base = loss_fn(x, y)
    permuted = loss_fn(xp, yp)
    torch.testing.assert_close(base.estimate, permuted.estimate, atol=1e-12, rtol=0)
    assert not torch.equal(base.local, permuted.local) or sampler == "all_pairs"


def test_local_map_has_grid_shape_and_nan_for_padding_only_cells():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 8, 4, 4, generator=gen)
    y = torch.randn(5, 8, generator=gen)
    x_mask = torch.ones(5, 4, 4, dtype=torch.bool)
    x_mask[:, 3, 3] = False  # padding in every sample
    out = LocalMILoss("infonce", None, reduction="max")(x, y, x_mask)
    assert out.local.shape == (4, 4)
    assert math.isnan(float(out.local[3, 3]))
    assert bool(torch.isfinite(out.local.flatten()[:-1]).all())
    assert float(out.estimate) == pytest.approx(float(torch.nanquantile(out.local, 1.0)))


def test_max_trains_only_the_best_cell():
    """The paper's objective: gradient reaches only the cell with the highest estimate."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 4, 3, 3, generator=gen, requires_grad=True)
    y = torch.randn(8, 4, generator=gen)
    for chunk in (None, 2):
        out = LocalMILoss("dv", None, reduction="max", chunk_size=chunk)(x, y)
        (gx,) = torch.autograd.grad(out.loss, [x])
        best = int(torch.argmax(out.local.flatten()))
        touched = gx.abs().sum((0, 1)).flatten() > 0
        assert touched.tolist() == [i == best for i in range(9)]


def test_padding_values_never_leak():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 5, generator=gen)  # b l c
    y = torch.randn(4, 2, 5, generator=gen)
    x_mask = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 1, 1]], dtype=torch.bool)
    poisoned = x.clone()
    poisoned[~x_mask] = math.nan
    poisoned.requires_grad_()
    clean = x.clone().requires_grad_()
    for chunk in (None, 2):
        loss_fn = LocalMILoss(
            "nwj", SeparableCritic(5, 5, hidden=(4,)), AllPairs(), x_pattern="b l c",
            y_pattern="b l c", chunk_size=chunk,
        )  # fmt: skip
        a = loss_fn(poisoned, y, x_mask)
        b = loss_fn(clean, y, x_mask)
        torch.testing.assert_close(a.loss, b.loss)
        (ga,) = torch.autograd.grad(a.loss, [poisoned])
        (gb,) = torch.autograd.grad(b.loss, [clean])
        torch.testing.assert_close(ga, gb)
        assert bool((ga[~x_mask] == 0).all())


def test_queue_adds_past_features_as_negatives():
    gen = torch.Generator().manual_seed(0)
    y_old = torch.randn(3, 4, dtype=F64, generator=gen)
    x = torch.randn(5, 4, 2, 2, dtype=F64, generator=gen)
    y = torch.randn(5, 4, dtype=F64, generator=gen)
    queue = NegativeQueue(size=3)
    queue.extend(y_old[:, None], torch.ones(3, 1, dtype=torch.bool))
    for kw in ({}, {"chunk_size": 2, "column_chunk_size": 3}):
        loss_fn = LocalMILoss("infonce", None, queue=queue, **kw).eval()
        out = loss_fn(x, y)
        cols = torch.cat([y, y_old])
        scores = torch.einsum("bchw,mc->hwbm", x, cols).reshape(4, 5, 8)
        torch.testing.assert_close(out.pair_estimates, bounds.infonce(scores), atol=1e-12, rtol=0)
    assert len(queue) == 3  # eval mode does not extend
    loss_fn.train()
    loss_fn(x, y)
    torch.testing.assert_close(queue.features()[:, 0], y[-3:])


def test_batch_of_one_with_queue_is_allowed():
    queue = NegativeQueue(4)
    queue.extend(torch.randn(4, 1, 3), torch.ones(4, 1, dtype=torch.bool))
    out = LocalMILoss("infonce", None, queue=queue)(torch.randn(1, 3, 2, 2), torch.randn(1, 3))
    assert torch.isfinite(out.loss)


def test_mine_runs_chunked_with_one_average_per_cell():
    """MINE's average is per position pair, so chunking (once refused) changes nothing."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, 2, 2, generator=gen, dtype=F64)
    y = torch.randn(6, 3, generator=gen, dtype=F64)
    runs = []
    for kw in ({}, {"chunk_size": 3}, {"chunk_size": 1, "backend": "dense"}):
        loss_fn = LocalMILoss(MINE(momentum=0.5), None, reduction="max", **kw)
        grads_per_step = []
        for step in range(3):
            xs = (x + step).requires_grad_()
            out = loss_fn(xs, y)
            (g,) = torch.autograd.grad(out.loss, [xs])
            grads_per_step.append(g)
        assert loss_fn.estimator.log_partition_ema.shape == (2, 2)
        assert bool(torch.isfinite(loss_fn.estimator.log_partition_ema).all())
        runs.append((grads_per_step, loss_fn.estimator.log_partition_ema))
    for grads_other, ema in runs[1:]:
        torch.testing.assert_close(ema, runs[0][1], atol=1e-12, rtol=0)
        for a, b in zip(grads_other, runs[0][0], strict=True):
            torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_learned_baseline_network_gets_anchor_features():
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1)
    est = get_estimator("tuba", baseline=net)
    x = torch.randn(5, 2, 3, requires_grad=True)  # b l c
    y = torch.randn(5, 3)
    out = LocalMILoss(est, None, x_pattern="b l c", chunk_size=1)(x, y)
    out.loss.backward()
    assert net.weight.grad is not None and bool(net.weight.grad.abs().sum() > 0)


# ---------------------------------------------------------------------------------------------
# GlobalMILoss.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pool", ["mean", "max"])
def test_global_loss_pools_valid_positions(pool):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, 3, 3, dtype=F64, generator=gen)
    y = torch.randn(6, 5, 4, dtype=F64, generator=gen)  # b l c
    x_mask = random_mask(6, (3, 3), gen)
    y_mask = random_mask(6, (5,), gen)
    out = GlobalMILoss("dv", None, y_pattern="b l c", pool=pool)(x, y, x_mask, y_mask)
    xs, _ = flatten_grid(x, "b c h w")
    xg, yg = [], []
    for i in range(6):
        xv, yv = xs[i][x_mask[i].flatten()], y[i][y_mask[i]]
        xg.append(xv.mean(0) if pool == "mean" else xv.max(0).values)
        yg.append(yv.mean(0) if pool == "mean" else yv.max(0).values)
    expected = bounds.dv(torch.stack(xg) @ torch.stack(yg).T)
    torch.testing.assert_close(out.estimate, expected, atol=1e-12, rtol=0)
    assert out.local.shape == () and out.pairs is None


# ---------------------------------------------------------------------------------------------
# Errors.
# ---------------------------------------------------------------------------------------------


def test_error_batch_sizes_differ():
    with pytest.raises(ValueError, match=r"batch size 4.*has 3"):
        LocalMILoss()(torch.randn(4, 3, 2, 2), torch.randn(3, 3))


def test_error_pattern_does_not_match():
    with pytest.raises(ValueError, match=r"x has shape \(4, 3, 2\).*'b c h w' names 4 axes"):
        LocalMILoss()(torch.randn(4, 3, 2), torch.randn(4, 3))
    with pytest.raises(ValueError, match="y_pattern"):
        LocalMILoss(y_pattern="b c c")


def test_error_pattern_without_b_or_c_suggests_one():
    """Regression (minor-local tryout): sentences ``(B, S, D)`` described as ``"b s d"`` were
    told to write e.g. 'b c h w', a pattern of another rank."""
    with pytest.raises(ValueError, match=r"y_pattern='b s d' must name.*e\.g\. 'b s c' "
                       r"\(channels last\)"):
        LocalMILoss(y_pattern="b s d")
    with pytest.raises(ValueError, match=r"e\.g\. 'b c h w'$"):
        LocalMILoss(x_pattern="n c h w")
    with pytest.raises(ValueError, match=r"e\.g\. 'b c'$"):
        LocalMILoss(y_pattern="n d")


def test_error_sample_with_every_position_masked():
    x_mask = torch.ones(4, 2, 2, dtype=torch.bool)
    x_mask[2] = False
    with pytest.raises(
        ValueError,
        match=r"x_mask \(shape \(4, 4\)\) masks out every position of "
        r"sample 2",
    ):
        LocalMILoss()(torch.randn(4, 3, 2, 2), torch.randn(4, 3), x_mask)
    with pytest.raises(ValueError, match="y_mask"):
        GlobalMILoss(y_pattern="b l c")(
            torch.randn(4, 3, 2, 2), torch.randn(4, 2, 3), None, torch.zeros(4, 2, dtype=bool)
        )


def test_error_batch_of_one():
    with pytest.raises(ValueError, match=r"batch of one.*\(1, 3, 2, 2\)"):
        LocalMILoss()(torch.randn(1, 3, 2, 2), torch.randn(1, 3))
    with pytest.raises(ValueError, match="batch of one"):
        GlobalMILoss()(torch.randn(1, 3, 2, 2), torch.randn(1, 3))


def test_error_masks():
    with pytest.raises(ValueError, match=r"x_mask has shape \(4, 3\).*\(4, 2, 2\)"):
        LocalMILoss()(torch.randn(4, 3, 2, 2), torch.randn(4, 3), torch.ones(4, 3, dtype=bool))
    with pytest.raises(TypeError, match=r"x_mask must have dtype torch\.bool"):
        LocalMILoss()(torch.randn(4, 3, 2, 2), torch.randn(4, 3), torch.ones(4, 2, 2))


def test_error_mixed_dtypes_name_each_argument_and_the_cast():
    """Regression (minor-local): float32 image features with float64 text features raised
    "x and y must share a dtype, got torch.float32 and torch.float64", without the shapes or
    what to do; a float16 mask "must have dtype torch.bool, got torch.float16"."""
    x, y = torch.randn(4, 3, 2, 2), torch.randn(4, 5, 3, dtype=F64)
    kw = dict(sampler=AllPairs(), x_pattern="b c h w", y_pattern="b l c")
    for loss_fn in (LocalMILoss("infonce", None, **kw),
                    GlobalMILoss("infonce", None, x_pattern="b c h w", y_pattern="b l c")):
        with pytest.raises(TypeError, match=r"x of shape \(4, 3, 2, 2\), dtype torch\.float32.*"
                           r"y of shape \(4, 5, 3\), dtype torch\.float64.*cast.*"
                           r"y\.to\(x\.dtype\)"):
            loss_fn(x, y)
    with pytest.raises(TypeError, match=r"x of shape \(4, 3, 2, 2\), dtype torch\.float16.*"
                       r"y of shape \(4, 3\), dtype torch\.float32"):
        LocalMILoss()(x.half(), torch.randn(4, 3))
    mask = torch.ones(4, 5, dtype=torch.float16)
    with pytest.raises(TypeError, match=r"y_mask of shape \(4, 5\), dtype torch\.float16.*"
                       r"\(B, \*grid\) = \(4, 5\).*y_mask\.bool\(\)"):
        LocalMILoss("infonce", None, **kw)(x, y.float(), y_mask=mask)
    with pytest.raises(TypeError, match=r"x_mask must be a torch\.Tensor.*got list.*as_tensor"):
        LocalMILoss()(x, torch.randn(4, 3), [[True] * 4] * 4)
    with pytest.raises(TypeError, match=r"x must be floating point, got x of shape "
                       r"\(4, 3, 2, 2\), dtype torch\.int64"):
        LocalMILoss()(x.long(), torch.randn(4, 3))


def test_error_empty_grid_or_channels_named_by_pattern():
    """Regression (minor-local tryout): a report with no sentence (``y`` of shape (4, 0, 3))
    raised "grid_y must be a tuple of positive ints, got (0,)" from the sampler, and
    GlobalMILoss a non-finite-score error (the mean over no position is NaN); empty
    features (``c`` of size 0) estimated 0.0 nats silently."""
    x = torch.randn(4, 3, 2, 2)
    with pytest.raises(ValueError, match=r"y has shape \(4, 0, 3\): y_pattern 'b l c' gives it "
                       r"an empty grid axis \(l = 0\).*y_mask"):
        LocalMILoss(sampler=AllPairs(), y_pattern="b l c")(x, torch.randn(4, 0, 3))
    with pytest.raises(ValueError, match=r"empty grid axis \(l = 0\)"):
        GlobalMILoss(y_pattern="b l c")(x, torch.randn(4, 0, 3))
    with pytest.raises(ValueError, match=r"x has shape \(4, 3, 0, 2\).*\(h = 0\)"):
        LocalMILoss()(x[:, :, :0], torch.randn(4, 3))
    with pytest.raises(ValueError, match=r"x has shape \(4, 2, 0\).*'c' at dimension 2, of "
                       r"size 0.*at least one channel"):
        LocalMILoss(x_pattern="b l c")(torch.randn(4, 2, 0), torch.randn(4, 0))


def test_non_finite_error_raises_without_an_autograd_warning():
    """Regression (minor-local tryout): the non-finite-score error read its value with
    ``float()`` from a tensor that required grad, so a UserWarning preceded it."""
    import warnings

    x = torch.full((4, 3, 2, 2), math.nan, requires_grad=True)
    y = torch.randn(4, 3, requires_grad=True)
    for backend in ("dense", "blocked", "attention"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ValueError, match=r"not finite|non-finite"):
                LocalMILoss("infonce", None, backend=backend)(x, y)


def test_error_token_mask_passed_as_x_mask_is_pointed_to_y_mask():
    """Regression (minor-local tryout): ``loss(images, tokens, token_mask)`` passes the token
    mask as ``x_mask``; the error gave the expected shapes only."""
    loss_fn = LocalMILoss(sampler=AllPairs(), y_pattern="b l c")
    mask = torch.ones(4, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"x_mask has shape \(4, 5\).*fits the grid of y: "
                       r"pass it as y_mask="):
        loss_fn(torch.randn(4, 3, 2, 2), torch.randn(4, 5, 3), mask)
    with pytest.raises(ValueError) as info:
        loss_fn(torch.randn(4, 3, 2, 2), torch.randn(4, 5, 3), torch.ones(4, 7, dtype=bool))
    assert "y_mask=" not in str(info.value)


def test_error_sampler_grids():
    with pytest.raises(ValueError, match=r"LocalToGlobal.*shape \(5,\)"):
        LocalMILoss(y_pattern="b l c")(torch.randn(4, 3, 2, 2), torch.randn(4, 5, 3))
    with pytest.raises(ValueError, match="Matched needs grids of the same shape"):
        LocalMILoss(sampler=Matched(), y_pattern="b l c")(
            torch.randn(4, 3, 2, 2), torch.randn(4, 5, 3)
        )


def test_error_options():
    with pytest.raises(ValueError, match="reduction"):
        LocalMILoss(reduction="median")
    with pytest.raises(ValueError, match="chunk_size"):
        LocalMILoss(chunk_size=0)
    with pytest.raises(ValueError, match="column_chunk_size needs a separable critic"):
        LocalMILoss("alpha_infonce", column_chunk_size=8)  # tuba is row-wise now
    with pytest.raises(ValueError, match="dot product"):
        LocalMILoss()(torch.randn(4, 3, 2, 2), torch.randn(4, 5))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("bound", ["infonce", "dv", "jsd"])
def test_cuda_matches_cpu(bound):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 8, 4, 4, generator=gen, dtype=F64)
    y = torch.randn(16, 8, generator=gen, dtype=F64)
    x_mask = random_mask(16, (4, 4), gen)
    critic = make_critic("separable", 8, 0)
    for kw in (
        {},
        {"chunk_size": 3, "column_chunk_size": 5} if bound != "jsd" else {"chunk_size": 3},
    ):
        loss_fn = LocalMILoss(bound, critic, reduction="max", **kw)
        cpu = loss_fn(x, y, x_mask)
        gpu = loss_fn.cuda()(x.cuda(), y.cuda(), x_mask.cuda())
        torch.testing.assert_close(gpu.loss.cpu(), cpu.loss)
        loss_fn.cpu()


def test_user_guide_examples_run():
    """The code blocks of docs/guide/local_mi.rst run as written, in order."""
    import re
    import textwrap
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "guide" / "local_mi.rst").read_text()
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:(?:   .*)?\n)+)", text)
    assert len(blocks) >= 5
    namespace: dict = {}
    for block in blocks:
        exec(compile(textwrap.dedent(block), "local_mi.rst", "exec"), namespace)


def test_derangement_estimates_a_pair_with_one_valid_anchor():
    """Regression (core review): the partners were drawn among the valid anchors, so a pair
    with one valid anchor (and valid columns) came out NaN and was left out of the reduction
    silently, where negatives="all" estimates it; with every pair so, the error said the
    pairs were all padding."""
    torch.manual_seed(0)
    x, y = torch.randn(4, 3, 2, dtype=F64), torch.randn(4, 3, dtype=F64)
    x_mask = torch.tensor([[True, True], [False, True], [False, True], [False, True]])
    kw = dict(x_pattern="b c l", y_pattern="b c")
    everything = LocalMILoss("dv", None, **kw)(x, y, x_mask=x_mask).pair_estimates
    out = LocalMILoss("dv", None, negatives="derangement", generator=torch.Generator()
                      .manual_seed(3), **kw)(x, y, x_mask=x_mask)  # fmt: skip
    assert bool(torch.isfinite(everything).all()) and bool(torch.isfinite(out.pair_estimates).all())
    # pair 0 has the single anchor 0: DV = S(x0, y0) - S(x0, y_partner), partner in 1..3
    s = x[0, :, 0] @ y.T
    assert any(math.isclose(float(out.pair_estimates[0]), float(s[0] - s[j]), abs_tol=1e-12)
               for j in (1, 2, 3))  # fmt: skip
    one_anchor_each = torch.tensor([[True, False], [False, True]])
    pair_values = LocalMILoss("dv", None, negatives="derangement", **kw)(
        x[:2], y[:2], x_mask=one_anchor_each).pair_estimates
    assert bool(torch.isfinite(pair_values).all())


def test_an_int_seed_draws_new_derangements_at_each_call():
    """Regression (review): generator=3 was passed as a seed to each call's draw, so every
    step used the same derangement; a seed now makes one generator, as a Generator of that
    seed does; a generator of another type is refused at construction."""
    from mitools.negatives import random_derangement

    torch.manual_seed(0)
    x, y = torch.randn(12, 3, 2, dtype=F64), torch.randn(12, 3, dtype=F64)
    kw = dict(x_pattern="b c l", y_pattern="b c", negatives="derangement")
    seeded = LocalMILoss("dv", None, generator=3, **kw)
    first, second = (seeded(x, y).pair_estimates for _ in range(2))
    assert not torch.equal(first, second)
    # the same draws as a generator seeded alike, and as the derangements drawn by hand
    gen = torch.Generator().manual_seed(3)
    same = LocalMILoss("dv", None, generator=gen, **kw)
    assert torch.equal(same(x, y).pair_estimates, first)
    assert torch.equal(same(x, y).pair_estimates, second)
    by_hand = torch.Generator().manual_seed(3)
    valid = torch.ones(2, 12, dtype=torch.bool)
    for got in (first, second):
        partner = random_derangement(valid, by_hand)  # (pairs, B)
        s = torch.einsum("bcl,nc->lbn", x, y)  # (pairs, anchors, columns)
        pos = s.diagonal(dim1=1, dim2=2)  # (pairs, B)
        neg = s.gather(2, partner[:, :, None])[..., 0]
        want = pos.mean(1) - (neg.exp().mean(1)).log()  # DV on each pair's rows
        torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
    with pytest.raises(TypeError, match=r"generator must be a torch.Generator, an int seed or "
                                        r"None, got float"):
        LocalMILoss("dv", None, generator=3.0, **kw)
