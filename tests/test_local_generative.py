"""The generative estimators and upper bounds in LocalMILoss and GlobalMILoss.

Against the naive loop of ``local_reference.py`` in float64 (1e-9): values, per-pair
estimates and gradients of ``loss`` and ``model_loss``, on every path each configuration
accepts, with masks and samplers; vCLUB's random draws; the refused combinations.
"""

from __future__ import annotations

import einops
import pytest
import torch
from local_reference import flatten_grid, naive_local_mi

from mitools import bounds
from mitools.conditionals import (
    DiagonalGaussian,
    FullGaussian,
    GaussianMarginal,
    MixtureOfGaussians,
)
from mitools.critics import ConcatCritic, SeparableCritic, mlp
from mitools.estimators import BA, CLUB, FLO, VCLUB, DoE, Estimator, L1Out
from mitools.local import GlobalMILoss, LocalMILoss
from mitools.samplers import AllPairs, LocalToGlobal, Matched, Neighbourhood, RandomPairs

F64 = torch.float64
C = 3  # channels of x and y
SEPARABLE = ("diagonal", "full", "separable")
ROWWISE = ("ba", "doe", "club", "flo", "flo_net")
ATTENTION_OK = ROWWISE  # log-sum-exps and sums of the scores


def make_critic(name: str, seed: int):
    torch.manual_seed(seed)
    critic = {
        "diagonal": lambda: DiagonalGaussian(C, C, hidden=(4,)),
        "full": lambda: FullGaussian(C, C, hidden=(4,), min_scale=0.3),
        "mixture": lambda: MixtureOfGaussians(C, C, components=2, hidden=(4,)),
        "separable": lambda: SeparableCritic(C, C, hidden=(4,), embed_dim=3),
        "concat": lambda: ConcatCritic(C, C, hidden=(4,)),
    }[name]()
    return critic.double()


def make_estimator(name: str, seed: int) -> Estimator:
    torch.manual_seed(seed + 100)
    if name == "ba":
        return BA(entropy_y=0.7)
    if name == "doe":
        marginal = GaussianMarginal(C).double()
        with torch.no_grad():
            marginal.mean.add_(0.3 * torch.randn(C, dtype=F64))
        return DoE(marginal)
    if name == "flo_net":
        return FLO(u_network=mlp(2 * C, (4,), 1).double())
    return {"club": CLUB, "vclub": VCLUB, "l1out": L1Out, "flo": FLO}[name]()


def make_sampler(name: str, seed: int):
    return {
        "local_to_global": LocalToGlobal,
        "all_pairs": AllPairs,
        "matched": Matched,
        "neighbourhood": lambda: Neighbourhood(radius=1),
        "random_pairs": lambda: RandomPairs(3, generator=torch.Generator().manual_seed(seed)),
    }[name]()


class _LogLikelihood(Estimator):
    """The reference's model objective: the log-likelihood of the positives of each pair."""

    def __init__(self, min_rows: int):
        super().__init__()
        self.min_rows = min_rows

    def forward(self, scores, **kw):
        return bounds.log_likelihood(scores, **kw)


def grads(loss, tensors):
    out = torch.autograd.grad(loss, tensors, allow_unused=True, retain_graph=True)
    return [torch.zeros_like(t) if g is None else g for g, t in zip(out, tensors, strict=True)]


def _close(got, want, tol=1e-9):
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=tol, rtol=0)


def _inputs(sampler: str, grid: tuple[int, ...], batch: int, masked: bool, seed: int):
    """``x (B, C, *grid)``, ``y`` laid out for the sampler, their patterns and masks."""
    gen = torch.Generator().manual_seed(seed)
    grid_y = {"local_to_global": (), "all_pairs": (2,)}.get(sampler, grid)
    x = torch.randn(batch, *grid, C, generator=gen, dtype=F64)
    y = torch.randn(batch, *grid_y, C, generator=gen, dtype=F64)
    x_pattern = {1: "b l c", 2: "b c h w"}[len(grid)]
    y_pattern = {0: "b c", 1: "b l c", 2: "b h w c"}[len(grid_y)]
    x = einops.rearrange(x, f"{'b l c' if len(grid) == 1 else 'b h w c'} -> {x_pattern}")
    x_mask = y_mask = None
    if masked:
        x_mask = torch.rand(batch, *grid, generator=gen) > 0.3
        x_mask.reshape(batch, -1)[:, 0] = True
        if grid_y:
            y_mask = torch.rand(batch, *grid_y, generator=gen) > 0.3
            y_mask.reshape(batch, -1)[:, 0] = True
    return (x.contiguous().requires_grad_(), y.requires_grad_(), x_pattern, y_pattern, x_mask,
            y_mask)  # fmt: skip


def run_case(
    bound: str,
    critic_name: str,
    *,
    backend: str = "auto",
    sampler: str = "all_pairs",
    reduction: str = "logsumexp",
    masked: bool = True,
    negatives: str = "all",
    chunk_size: int | None = 2,
    column_chunk_size: int | None = None,
    grid: tuple[int, ...] = (2, 2),
    batch: int = 5,
    seed: int = 0,
) -> None:
    """LocalMILoss against the naive loop: values, pair estimates, both losses' gradients."""
    x, y, x_pattern, y_pattern, x_mask, y_mask = _inputs(sampler, grid, batch, masked, seed)
    critic = make_critic(critic_name, seed)
    estimator = make_estimator(bound, seed)
    loss_fn = LocalMILoss(
        estimator, critic, make_sampler(sampler, seed), reduction, x_pattern=x_pattern,
        y_pattern=y_pattern, negatives=negatives, chunk_size=chunk_size,
        column_chunk_size=column_chunk_size, backend=backend,
        generator=torch.Generator().manual_seed(seed + 1),
    )  # fmt: skip
    ref, ref_estimates = naive_local_mi(
        estimator, critic, make_sampler(sampler, seed), reduction, x, y, x_pattern, y_pattern,
        x_mask, y_mask, negatives=negatives, generator=torch.Generator().manual_seed(seed + 1),
    )  # fmt: skip
    assert ref is not None
    out = loss_fn(x, y, x_mask, y_mask)
    if backend != "auto":
        assert loss_fn.last_backend == backend
    upper = estimator.direction == "upper"
    torch.testing.assert_close(out.estimate, ref.detach(), atol=1e-9, rtol=0)
    torch.testing.assert_close(out.loss, (ref if upper else -ref).detach(), atol=1e-9, rtol=0)
    torch.testing.assert_close(out.pair_estimates, torch.tensor(ref_estimates, dtype=F64),
                               atol=1e-9, rtol=0, equal_nan=True)  # fmt: skip
    features = [x, y, *estimator.parameters()]
    params = list(critic.parameters())
    if not upper:  # loss trains the critic, the features and the estimator's networks
        _close(grads(out.loss, features + params), grads(-ref, features + params))
        assert float(out.model_loss) == 0.0 and not out.model_loss.requires_grad
        return
    # upper bound: loss reaches the features only; model_loss the critic only (features
    # detached), as minus the mean log-likelihood over the pairs the bound counts
    _close(grads(out.loss, features), grads(ref, features))
    assert all(float(g.abs().max()) == 0.0 for g in grads(out.loss, params))
    min_rows = estimator.min_rows if negatives == "all" else 2
    ref_model, _ = naive_local_mi(
        _LogLikelihood(min_rows), critic, make_sampler(sampler, seed), "mean", x.detach(),
        y.detach(), x_pattern, y_pattern, x_mask, y_mask,
    )  # fmt: skip
    assert ref_model is not None
    torch.testing.assert_close(out.model_loss, -ref_model.detach(), atol=1e-9, rtol=0)
    _close(grads(out.model_loss, params), grads(-ref_model, params))
    assert all(float(g.abs().max()) == 0.0 for g in grads(out.model_loss, [x, y]))


def _cases() -> list[tuple[str, str, str]]:
    """(bound, critic, backend): every path each configuration accepts."""
    cases = []
    for bound in ("ba", "doe", "club", "vclub", "l1out", "flo", "flo_net"):
        critics = ("separable", "concat") if bound.startswith("flo") else (
            "diagonal", "full", "mixture")
        for critic in critics:
            backends = ["dense"]
            if critic in SEPARABLE and bound in ROWWISE:
                backends.append("blocked")
                if bound in ATTENTION_OK:
                    backends.append("attention")
            cases += [(bound, critic, b) for b in backends]
    return cases


@pytest.mark.parametrize(("bound", "critic_name", "backend"), _cases())
def test_every_generative_estimator_and_path_equals_naive_loop(bound, critic_name, backend):
    """Forced paths, masks on both grids, chunks (columns too on the blocked path)."""
    if bound == "vclub":  # random draws: exact only where every negative of a row is equal
        run_case(bound, critic_name, backend=backend, negatives="derangement",
                 sampler="matched", reduction="mean")  # fmt: skip
        return
    run_case(bound, critic_name, backend=backend,
             column_chunk_size=2 if backend == "blocked" else None)  # fmt: skip


@pytest.mark.parametrize("sampler", ["local_to_global", "matched", "neighbourhood", "random_pairs"])
@pytest.mark.parametrize("bound", ["club", "l1out", "flo_net"])
def test_samplers_and_reductions_equal_naive_loop(sampler, bound):
    critic = "separable" if bound == "flo_net" else "diagonal"
    for reduction in ("mean", "sum", "max"):
        run_case(bound, critic, sampler=sampler, reduction=reduction, chunk_size=None, seed=3)


@pytest.mark.parametrize("backend", ["blocked", "attention"])
@pytest.mark.parametrize("bound", ["club", "flo_net"])
def test_fused_paths_with_columns_shared_by_every_pair(bound, backend):
    """Cells against one vector: every pair shares its columns (one factor block for all)."""
    critic = "separable" if bound == "flo_net" else "diagonal"
    run_case(bound, critic, backend=backend, sampler="local_to_global", reduction="max",
             chunk_size=3, column_chunk_size=2 if backend == "blocked" else None, seed=8)


def test_every_path_agrees_in_float32():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, 5, 5, generator=gen, requires_grad=True)
    y = torch.randn(32, 3, generator=gen, requires_grad=True)
    x_mask = torch.rand(32, 5, 5, generator=gen) > 0.2
    x_mask[:, 0, 0] = True
    torch.manual_seed(0)
    q = DiagonalGaussian(4, 3, hidden=(8,))
    runs = []
    for kw in ({"backend": "dense"}, {"backend": "blocked", "column_chunk_size": 7},
               {"backend": "attention", "chunk_size": 6}):  # fmt: skip
        out = LocalMILoss("club", q, reduction="mean", **kw)(x, y, x_mask)
        runs.append([out.loss, out.model_loss, *grads(out.loss + out.model_loss,
                                                      [x, y, *q.parameters()])])
    for other in runs[1:]:
        _close(other, runs[0], tol=2e-5)


@pytest.mark.parametrize("bound", ["club", "ba", "doe", "flo"])
def test_derangement_negatives_equal_naive_loop(bound):
    """CLUB on deranged partners is vCLUB at O(N); the positives-only bounds ignore them."""
    critic = "separable" if bound == "flo" else "full"
    run_case(bound, critic, negatives="derangement", sampler="local_to_global",
             reduction="mean", seed=4)  # fmt: skip


def test_club_with_derangement_equals_vclub_on_the_partners():
    x, y, xp, yp, _, _ = _inputs("local_to_global", (2,), 6, False, 5)
    q = make_critic("diagonal", 5)
    kw = dict(x_pattern=xp, y_pattern=yp, negatives="derangement")
    club = LocalMILoss("club", q, **kw, generator=torch.Generator().manual_seed(9))(x, y)
    vclub = LocalMILoss(VCLUB(torch.Generator().manual_seed(3)), q, **kw,
                        generator=torch.Generator().manual_seed(9))(x, y)  # fmt: skip
    torch.testing.assert_close(club.pair_estimates, vclub.pair_estimates, atol=1e-12, rtol=0)


# ---------------------------------------------------------------------------------------------
# vCLUB with every negative: the draws of the estimator's generator, and no recomputation.
# ---------------------------------------------------------------------------------------------


def _recorded_scores(critic, x, y, x_pattern, y_pattern, sampler):
    """The reference's score matrix of every pair, stacked ``(K, N, M)``, with its graph."""
    record = []

    class Recorder(Estimator):
        def forward(self, scores, **kw):
            record.append(scores)
            return scores.sum()

    naive_local_mi(Recorder(), critic, sampler, "mean", x, y, x_pattern, y_pattern)
    return torch.stack(record)


@pytest.mark.parametrize("chunk_size", [None, 2])
def test_vclub_draws_with_its_generator_and_keeps_the_graph_of_its_draws(chunk_size):
    """Each block of pairs is one bounds.vclub call with the estimator's generator; with
    chunk_size the blocks are not recomputed (a recomputation would draw again, and its
    gradient would belong to other negatives)."""
    x, y, xp, yp, _, _ = _inputs("all_pairs", (2,), 5, False, 6)
    q = make_critic("diagonal", 6)
    loss_fn = LocalMILoss(VCLUB(torch.Generator().manual_seed(11)), q, AllPairs(), "mean",
                          x_pattern=xp, y_pattern=yp, chunk_size=chunk_size)  # fmt: skip
    out = loss_fn(x, y)
    scores = _recorded_scores(q, x, y, xp, yp, AllPairs())
    gen = torch.Generator().manual_seed(11)
    step = chunk_size or len(scores)
    want = torch.cat([bounds.vclub(scores[i : i + step], generator=gen)
                      for i in range(0, len(scores), step)])  # fmt: skip
    torch.testing.assert_close(out.pair_estimates, want.detach(), atol=1e-12, rtol=0)
    _close(grads(out.loss, [x, y]), grads(want.mean(), [x, y]))


# ---------------------------------------------------------------------------------------------
# GlobalMILoss: the estimator on the pooled features, every path.
# ---------------------------------------------------------------------------------------------


GLOBAL_CASES = [(b, c, p) for b, c, p in _cases() if c in ("full", "mixture", "separable")]


@pytest.mark.parametrize(("bound", "critic_name", "backend"), GLOBAL_CASES)
def test_global_loss_is_the_estimator_on_pooled_features(bound, critic_name, backend):
    x, y, xp, yp, x_mask, y_mask = _inputs("matched", (3,), 6, True, 7)
    critic = make_critic(critic_name, 7)
    estimator = make_estimator(bound, 7)
    if bound == "vclub":
        estimator.generator = torch.Generator().manual_seed(2)
    out = GlobalMILoss(estimator, critic, x_pattern=xp, y_pattern=yp, backend=backend,
                       column_chunk_size=2 if backend == "blocked" else None)(
        x, y, x_mask, y_mask)  # fmt: skip
    xs, _ = flatten_grid(x, xp)
    xg = (xs * x_mask[..., None]).sum(1) / x_mask.sum(1, keepdim=True)
    yg = (y * y_mask[..., None]).sum(1) / y_mask.sum(1, keepdim=True)
    if bound == "vclub":
        estimator.generator = torch.Generator().manual_seed(2)
    side = {"anchors": xg} if estimator.needs_anchors else {}
    if estimator.needs_targets:
        side["targets"] = yg
    want = estimator(critic(xg, yg), **side)
    sign = 1.0 if estimator.direction == "upper" else -1.0
    torch.testing.assert_close(out.estimate, want.detach(), atol=1e-9, rtol=0)
    _close(grads(out.loss, [x, y]), grads(sign * want, [x, y]))
    if estimator.direction == "upper":
        ll = bounds.log_likelihood(critic(xg.detach(), yg.detach()))
        params = list(critic.parameters())
        _close(grads(out.model_loss, params), grads(-ll, params))


# ---------------------------------------------------------------------------------------------
# The convention, capabilities and refusals.
# ---------------------------------------------------------------------------------------------


def test_one_optimiser_on_loss_plus_model_loss_is_the_two_player_step():
    """The convention: a step of one optimiser over the encoder and q on
    ``task + beta * out.loss + out.model_loss`` is the two-player step of Cheng et al.: q on
    its negative log-likelihood of detached features, the encoder on task + beta * CLUB with
    q held fixed."""
    gen = torch.Generator().manual_seed(0)
    data, s, target = (torch.randn(8, 4, 2, 2, generator=gen), torch.randn(8, 2, generator=gen),
                       torch.randn(8, 3, generator=gen))  # fmt: skip
    torch.manual_seed(0)
    encoder, q = torch.nn.Conv2d(4, 3, 1), DiagonalGaussian(3, 2, hidden=(8,))
    twin_encoder, twin_q = torch.nn.Conv2d(4, 3, 1), DiagonalGaussian(3, 2, hidden=(8,))
    twin_encoder.load_state_dict(encoder.state_dict())
    twin_q.load_state_dict(q.state_dict())
    beta = 0.5

    def task(z):
        return ((z.mean((-2, -1)) - target) ** 2).mean()

    # one call, one optimiser
    loss_fn = LocalMILoss("club", q, reduction="max", y_pattern="b c")
    opt = torch.optim.SGD([*encoder.parameters(), *q.parameters()], lr=0.1)
    z = encoder(data)
    out = loss_fn(z, s)
    (task(z) + beta * out.loss + out.model_loss).backward()
    opt.step()
    # two players by hand, on the same scores: per cell, q(s | z[cell]) against every s
    cells = twin_encoder(data).flatten(2).transpose(1, 2).transpose(0, 1)  # (4, 8, 3)
    club = torch.stack([bounds.club(twin_q(c, s)) for c in cells]).max()
    fit = -torch.stack([bounds.log_likelihood(twin_q(c.detach(), s)) for c in cells]).mean()
    q_grads = torch.autograd.grad(fit, list(twin_q.parameters()))
    z_twin = twin_encoder(data)
    cells = z_twin.flatten(2).transpose(1, 2).transpose(0, 1)
    club = torch.stack([bounds.club(twin_q(c, s)) for c in cells]).max()
    e_grads = torch.autograd.grad(task(z_twin) + beta * club, list(twin_encoder.parameters()))
    with torch.no_grad():
        for param, g in zip([*twin_q.parameters(), *twin_encoder.parameters()],
                            [*q_grads, *e_grads], strict=True):  # fmt: skip
            param -= 0.1 * g
    for a, b in zip([*q.parameters(), *encoder.parameters()],
                    [*twin_q.parameters(), *twin_encoder.parameters()], strict=True):  # fmt: skip
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_capabilities_reach_the_losses():
    q = make_critic("diagonal", 0)
    assert LocalMILoss("club", q)._scorer.detach_parameters
    assert not LocalMILoss(BA(entropy_y=1.0), q)._scorer.detach_parameters
    assert LocalMILoss("club", q)._model_estimator is not None
    assert LocalMILoss(BA(entropy_y=1.0), q)._model_estimator is None
    assert DiagonalGaussian.separable and FullGaussian.separable
    assert not MixtureOfGaussians.separable
    auto = LocalMILoss(BA(entropy_y=1.0), q, chunk_size=1)  # positives only: dense
    auto(torch.randn(4, C, 2, 2, dtype=F64), torch.randn(4, C, dtype=F64))
    assert auto.last_backend == "dense"


def test_refusals_name_the_reason():
    q = make_critic("diagonal", 0)
    x, y = torch.randn(4, C, 2, 2, dtype=F64), torch.randn(4, C, dtype=F64)
    for bound in ("club", "vclub", "l1out", "doe"):
        with pytest.raises(ValueError, match="needs log conditional densities"):
            LocalMILoss(bound, SeparableCritic(C, C))
        with pytest.raises(ValueError, match="log_density = True"):
            GlobalMILoss(bound, None)
    with pytest.raises(ValueError, match="needs log conditional densities"):
        LocalMILoss(BA(entropy_y=1.0), None)
    LocalMILoss("flo", SeparableCritic(C, C))  # FLO takes any critic
    with pytest.raises(ValueError, match="custom reduction of upper bounds"):
        LocalMILoss("club", q, reduction=lambda v, a: v[a].mean())
    LocalMILoss("flo", None, reduction=lambda v, a: v[a].mean())  # fine for lower bounds
    with pytest.raises(ValueError, match=r"derangement.*l1out"):
        LocalMILoss("l1out", q, negatives="derangement")
    for bound in ("vclub", "l1out"):
        with pytest.raises(ValueError, match="per-row statistics"):
            LocalMILoss(bound, q, backend="blocked")
        with pytest.raises(ValueError, match="column_chunk_size"):
            LocalMILoss(bound, q, column_chunk_size=2)
    with pytest.raises(ValueError, match="DoE"):
        LocalMILoss(DoE(), q)(x, y)
    # every pair has one valid anchor: L1Out's mixture over the other anchors is empty
    x_mask = torch.eye(4, dtype=torch.bool).reshape(4, 2, 2)  # sample i: cell i only
    with pytest.raises(ValueError, match="2 valid anchors"):
        LocalMILoss("l1out", q)(x, y, x_mask)

    class Sideways(Estimator):
        direction = "sideways"

    with pytest.raises(ValueError, match="direction='sideways'"):
        LocalMILoss(Sideways(), None)


def test_a_critic_declaring_log_density_is_accepted():
    class TrueConditional(torch.nn.Module):
        """log N(y; x, I): a fixed conditional, declared as log-densities."""

        log_density = True

        def forward(self, x, y):
            return -0.5 * ((x[..., :, None, :] - y[..., None, :, :]) ** 2).sum(-1)

    x, y = torch.randn(6, C, dtype=F64), torch.randn(6, C, dtype=F64)
    out = GlobalMILoss("l1out", TrueConditional(), x_pattern="b c", y_pattern="b c")(x, y)
    want = bounds.l1out(TrueConditional()(x, y))
    torch.testing.assert_close(out.estimate, want)
    assert not out.model_loss.requires_grad  # nothing to fit


@pytest.mark.parametrize("fn", [bounds.club, bounds.l1out, bounds.vclub])
def test_an_upper_bound_given_as_a_function_is_minimised_and_fits_q(fn):
    """Regression (core review): ``LocalMILoss(bounds.club, q)`` maximised CLUB (loss = -0.2396
    where "club" gives +0.2396), q got the bound's gradient and no likelihood (model_loss 0),
    and ``LocalMILoss(bounds.club, None)`` was accepted."""
    torch.manual_seed(0)
    q = DiagonalGaussian(3, 3, hidden=(8,)).double()
    x = torch.randn(8, 3, 2, 2, dtype=F64, requires_grad=True)
    y = torch.randn(8, 3, dtype=F64)
    by_name, by_function = LocalMILoss(fn.__name__, q), LocalMILoss(fn, q)
    assert by_function.estimator.direction == "upper"
    a, b = by_name(x, y), by_function(x, y)
    if fn is not bounds.vclub:  # vCLUB draws its negatives
        torch.testing.assert_close(b.loss, a.loss)
        torch.testing.assert_close(b.model_loss, a.model_loss)
    assert float(b.model_loss.detach()) > 0  # minus the log-likelihood of 3 Gaussian dims, not 0
    grads = torch.autograd.grad(b.loss, [x, *q.parameters()], allow_unused=True)
    assert float(grads[0].abs().max()) > 0  # the bound reaches the features ...
    assert all(g is None or float(g.abs().max()) == 0 for g in grads[1:])  # ... and not q
    with pytest.raises(ValueError, match="log_density"):
        LocalMILoss(fn, None)(x, y)
