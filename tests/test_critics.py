"""mitools.critics: brute-force pair loops, gradcheck, chunking, shapes and errors."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn
from torch.func import functional_call

from mitools.critics import (
    BilinearCritic,
    ConcatCritic,
    MarginalPotentials,
    QuadraticCritic,
    SeparableCritic,
    available_critics,
    dot_scores,
    get_critic,
    mlp,
)


def _xy(n=5, m=4, dx=3, dy=2, lead=(), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*lead, n, dx, generator=g, dtype=torch.float64)
    y = torch.randn(*lead, m, dy, generator=g, dtype=torch.float64)
    return x, y


def _brute(critic, x, y):
    """Score every pair with a Python loop, the obvious way."""
    n, m = x.shape[-2], y.shape[-2]
    out = torch.empty(n, m, dtype=x.dtype)
    for i in range(n):
        for j in range(m):
            if isinstance(critic, SeparableCritic):
                gx, hy = critic.embed(x[i : i + 1], y[j : j + 1])
                out[i, j] = (gx[0] @ hy[0]) / torch.exp(critic.log_temperature)
            elif isinstance(critic, BilinearCritic):
                out[i, j] = x[i] @ critic.weight @ y[j] + critic.bias
            elif isinstance(critic, QuadraticCritic):
                px, py = critic.quad_x @ x[i], critic.quad_y @ y[j]
                out[i, j] = (x[i] @ critic.weight @ y[j] - px @ px - py @ py
                             + critic.lin_x @ x[i] + critic.lin_y @ y[j] + critic.bias)
                if critic.residual is not None:
                    r = critic.residual
                    gx, hy = r.embed(x[i : i + 1], y[j : j + 1])
                    out[i, j] += (gx[0] @ hy[0]) / torch.exp(r.log_temperature)
            else:
                layer1 = critic.first_x(x[i]) + critic.first_y(y[j])
                out[i, j] = critic.rest(layer1)[0]
    return out


def _randomised(critic):
    """Every parameter non-zero, so the brute-force loop checks every term."""
    with torch.no_grad():
        for p in critic.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return critic


CRITICS = {
    "separable": lambda: SeparableCritic(3, 2, hidden=(8, 8), embed_dim=4),
    "cosine": lambda: SeparableCritic(3, 2, hidden=(8,), embed_dim=4, cosine=True,
                                      temperature=0.2, learn_temperature=True),
    "bilinear": lambda: BilinearCritic(3, 2),
    "quadratic": lambda: _randomised(QuadraticCritic(3, 2)),
    "quadratic_residual": lambda: _randomised(QuadraticCritic(3, 2, hidden=(8,), embed_dim=4)),
    "concat": lambda: ConcatCritic(3, 2, hidden=(8, 8)),
    "concat_chunked": lambda: ConcatCritic(3, 2, hidden=(8, 8), chunk_size=2),
    "concat_checkpoint": lambda: ConcatCritic(3, 2, hidden=(8,), chunk_size=3, checkpoint=True),
}


@pytest.mark.parametrize("name", sorted(CRITICS))
def test_equals_brute_force_pair_loop(name):
    torch.manual_seed(0)
    critic = CRITICS[name]().double()
    x, y = _xy()
    torch.testing.assert_close(critic(x, y), _brute(critic, x, y))


@pytest.mark.parametrize("name", sorted(CRITICS))
def test_gradcheck_inputs_and_parameters(name):
    torch.manual_seed(1)
    critic = CRITICS[name]().double()
    x, y = _xy(n=3, m=4)
    params = {k: v.detach().clone().requires_grad_(True) for k, v in critic.named_parameters()}
    names = list(params)

    def fn(x, y, *flat):
        return functional_call(critic, dict(zip(names, flat, strict=True)), (x, y))

    inputs = (x.requires_grad_(True), y.requires_grad_(True), *params.values())
    assert torch.autograd.gradcheck(fn, inputs)


@pytest.mark.parametrize("name", sorted(CRITICS))
def test_leading_dimensions_broadcast(name):
    torch.manual_seed(2)
    critic = CRITICS[name]().double()
    x, y = _xy(lead=(2, 3))
    out = critic(x, y)
    assert out.shape == (2, 3, 5, 4)
    torch.testing.assert_close(out[1, 2], critic(x[1, 2], y[1, 2]))
    # x with leading dims against a shared y
    out2 = critic(x, y[0, 0])
    assert out2.shape == (2, 3, 5, 4)
    torch.testing.assert_close(out2[1, 1], critic(x[1, 1], y[0, 0]))


def test_concat_chunked_equals_unchunked_in_value_and_gradient():
    torch.manual_seed(3)
    full = ConcatCritic(3, 2, hidden=(16, 16)).double()
    for chunk, ckpt in ((1, False), (3, False), (4, True), (100, True)):
        chunked = ConcatCritic(3, 2, hidden=(16, 16), chunk_size=chunk, checkpoint=ckpt).double()
        chunked.load_state_dict(full.state_dict())
        x, y = _xy(n=7, m=5)
        a = full(x, y)
        b = chunked(x, y)
        torch.testing.assert_close(a, b)
        ga = torch.autograd.grad(a.square().sum(), list(full.parameters()))
        gb = torch.autograd.grad(b.square().sum(), list(chunked.parameters()))
        for u, v in zip(ga, gb, strict=True):
            torch.testing.assert_close(u, v)


def test_temperature_scales_scores():
    torch.manual_seed(4)
    a = SeparableCritic(3, 2, hidden=(8,), temperature=1.0).double()
    b = SeparableCritic(3, 2, hidden=(8,), temperature=0.5).double()
    b.g.load_state_dict(a.g.state_dict())
    b.h.load_state_dict(a.h.state_dict())
    x, y = _xy()
    torch.testing.assert_close(b(x, y), 2 * a(x, y))


def test_cosine_scores_are_bounded_by_inverse_temperature():
    critic = SeparableCritic(3, 2, hidden=(8,), cosine=True, temperature=0.1).double()
    x, y = _xy(n=20, m=20)
    assert float(critic(x, y).detach().abs().max()) <= 10.0 + 1e-9


def test_bad_inputs_raise_clear_errors():
    critic = SeparableCritic(3, 2, hidden=(4,))
    with pytest.raises(ValueError, match=r"x has 4 features .* dim_x=3"):
        critic(torch.randn(5, 4), torch.randn(5, 2))
    with pytest.raises(ValueError, match=r"y has 3 features"):
        critic(torch.randn(5, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="at least 2 dims"):
        critic(torch.randn(3), torch.randn(5, 2))
    with pytest.raises(TypeError, match="floating point"):
        critic(torch.ones(5, 3, dtype=torch.long), torch.randn(5, 2))
    with pytest.raises(ValueError, match="do not broadcast"):
        critic(torch.randn(2, 5, 3), torch.randn(3, 5, 2))
    with pytest.raises(ValueError, match="temperature"):
        SeparableCritic(3, 2, temperature=0.0)
    with pytest.raises(ValueError, match="hidden layer"):
        ConcatCritic(3, 2, hidden=())
    with pytest.raises(ValueError, match="chunk_size"):
        ConcatCritic(3, 2, chunk_size=0)
    with pytest.raises(ValueError, match="dim_in"):
        mlp(0, (4,), 2)
    with pytest.raises(ValueError, match="unknown critic"):
        get_critic("attention", 3, 2)


def test_get_critic():
    assert available_critics() == ["separable", "bilinear", "quadratic", "concat"]
    assert isinstance(get_critic("concat", 3, 2, hidden=(4,)), ConcatCritic)
    c = BilinearCritic(3, 2)
    assert get_critic(c, 3, 2) is c


@pytest.mark.parametrize("shift", [0.0, 2.5])
def test_quadratic_gaussian_init_is_the_pointwise_mi_of_the_fitted_gaussian(shift):
    from mitools.tasks import CorrelatedGaussian

    task = CorrelatedGaussian(3, mi=1.5)
    x, y = task.sample(200_000, generator=0)
    x, y = x.double(), y.double()
    critic = QuadraticCritic(3, 3).double().init_gaussian_(x + shift, y - shift)
    xt, yt = task.sample(50, generator=1)
    xt, yt = xt.double(), yt.double()
    with torch.no_grad():
        got = critic(xt + shift, yt - shift)
    # the exact pointwise MI, constant included (what NWJ/TUBA need too)
    torch.testing.assert_close(got, task.optimal_critic(xt, yt), atol=0.05, rtol=0.02)


def test_quadratic_gaussian_init_of_independent_data_is_about_zero():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(50_000, 2, generator=g), torch.randn(50_000, 3, generator=g)
    critic = QuadraticCritic(2, 3).init_gaussian_(x, y)
    with torch.no_grad():
        assert critic(x[:200], y[:200]).abs().mean() < 0.02


def test_quadratic_gaussian_init_rejects_bad_samples():
    critic = QuadraticCritic(2, 3)
    with pytest.raises(ValueError, match=r"paired samples.*\(10, 2\).*\(9, 3\)"):
        critic.init_gaussian_(torch.randn(10, 2), torch.randn(9, 3))
    with pytest.raises(ValueError, match="more samples than features"):
        critic.init_gaussian_(torch.randn(5, 2), torch.randn(5, 3))


def test_quadratic_residual_starts_at_zero():
    torch.manual_seed(0)
    plain, with_residual = QuadraticCritic(3, 2), QuadraticCritic(3, 2, hidden=(8,))
    with_residual.load_state_dict(plain.state_dict(), strict=False)
    x, y = _xy()
    torch.testing.assert_close(with_residual(x.float(), y.float()), plain(x.float(), y.float()))


# ---------------------------------------------------------------------------------------------
# Factorisation: the capability the local losses' fast paths use.
# ---------------------------------------------------------------------------------------------

SEPARABLE = {
    "separable": CRITICS["separable"],
    "cosine": CRITICS["cosine"],
    "bilinear": CRITICS["bilinear"],
    "bilinear_no_bias": lambda: BilinearCritic(3, 2, bias=False),
    "quadratic": CRITICS["quadratic"],
    "quadratic_residual": CRITICS["quadratic_residual"],
    "potentials": lambda: MarginalPotentials(SeparableCritic(3, 2, hidden=(4,)), 3, 2),
}


@pytest.mark.parametrize("name", sorted(SEPARABLE))
def test_factors_give_the_scores(name):
    """``forward(x, y) == u @ vᵀ``, the two sides factorised independently (any leading
    shapes), gradients included."""
    torch.manual_seed(0)
    critic = SEPARABLE[name]().double()
    assert critic.separable
    x, y = _xy(lead=(2,))
    u, v = critic.factorise(x[:1], y)  # different leading shapes: (1, ...) and (2, ...)
    assert u.shape[:-1] == (1, 5) and v.shape[:-1] == (2, 4) and u.shape[-1] == v.shape[-1]
    torch.testing.assert_close(u @ v.mT, critic(x[:1], y), atol=1e-12, rtol=0)
    params = list(critic.parameters())
    g1 = torch.autograd.grad(dot_scores(*critic.factorise(x, y)).sum(), params, allow_unused=True)
    g2 = torch.autograd.grad(critic(x, y).sum(), params, allow_unused=True)
    for a, b in zip(g1, g2, strict=True):
        if a is not None or b is not None:
            torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_non_separable_critics_and_overriding_subclasses_have_no_factorisation():
    assert not ConcatCritic(3, 2, hidden=(4,)).separable
    assert not MarginalPotentials(ConcatCritic(3, 2, hidden=(4,)), 3, 2).separable

    class Shifted(SeparableCritic):  # a new forward: its factors are unknown
        def forward(self, x, y):
            return super().forward(x, y) + 1.0

    class Renamed(SeparableCritic):  # nothing changed: still separable
        pass

    assert not Shifted(3, 2).separable and Renamed(3, 2).separable
    with pytest.raises(TypeError, match="not separable"):
        ConcatCritic(3, 2, hidden=(4,)).factorise(*_xy())
    with pytest.raises(TypeError, match="not separable"):
        MarginalPotentials(ConcatCritic(3, 2, hidden=(4,)), 3, 2).factorise(*_xy())


@pytest.mark.parametrize("name", ["separable", "bilinear", "quadratic_residual"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_are_scored_in_float32(name, dtype):
    """A positive pair's dot product passes float16's 65504 long before its factors do."""
    torch.manual_seed(0)
    critic = {
        "separable": lambda: SeparableCritic(64, 64, hidden=(), embed_dim=64),
        "bilinear": lambda: BilinearCritic(64, 64),
        "quadratic_residual": lambda: QuadraticCritic(64, 64, hidden=(8,), embed_dim=4),
    }[name]()
    if name == "separable":
        with torch.no_grad():
            critic.g[0].weight.copy_(torch.eye(64))
            critic.h[0].weight.copy_(torch.eye(64))
    if name == "bilinear":
        with torch.no_grad():
            critic.weight.copy_(torch.eye(64))
    x = 40 * torch.randn(4, 64, generator=torch.Generator().manual_seed(1))
    scores = critic.to(dtype)(x.to(dtype), x.to(dtype))
    assert scores.dtype == torch.float32 and bool(torch.isfinite(scores).all())
    critic.float()
    with torch.no_grad():
        want = critic(x.to(dtype).float(), x.to(dtype).float())
    # the critic's own layers run in half precision: their rounding, not the product's
    torch.testing.assert_close(scores.detach(), want, rtol=0, atol=0.02 * float(want.abs().max()))
    assert float(want.diagonal().min()) > 65504 or name == "quadratic_residual"


# --- issue 15: any floating dtype, and inputs on the critic's device --------------------------


def _every_critic():
    torch.manual_seed(0)
    return [
        SeparableCritic(3, 2, hidden=(4,), embed_dim=4),
        ConcatCritic(3, 2, hidden=(4, 4)),
        BilinearCritic(3, 2),
        QuadraticCritic(3, 2, hidden=(4,)),
        MarginalPotentials(SeparableCritic(3, 2, hidden=(4,)), 3, 2),
    ]


@pytest.mark.parametrize("index", range(5))
def test_critics_take_half_and_double_features(index: int) -> None:
    # float16 / bfloat16 / float64 features met float32 weights in nn.Linear: "mat1 and mat2
    # must have the same dtype". Half is widened (exact), float64 casts the weights up (exact).
    critic = _every_critic()[index]
    g = torch.Generator().manual_seed(1)
    x, y = 30 * torch.randn(5, 3, generator=g), torch.randn(6, 2, generator=g)
    for half in (torch.float16, torch.bfloat16):
        s = critic(x.to(half), y.to(half))
        assert s.dtype == torch.float32
        torch.testing.assert_close(s, critic(x.to(half).float(), y.to(half).float()), rtol=0,
                                   atol=0)
    s64 = critic(x.double(), y.double())
    assert s64.dtype == torch.float64
    s64.sum().backward()  # the gradient reaches the float32 parameters
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in critic.parameters())
    torch.testing.assert_close(s64, critic.double()(x.double(), y.double()), rtol=1e-12,
                               atol=1e-10)


def test_critics_name_an_input_on_another_device() -> None:
    for critic in _every_critic():
        with pytest.raises(ValueError, match=r"x is on meta but the critic's parameters are on "
                                             r"cpu; move the critic"):
            critic(torch.randn(5, 3, device="meta"), torch.randn(6, 2, device="meta"))


@pytest.mark.parametrize("chunk_size", [None, 2])
def test_concat_critic_scores_no_rows_as_the_others(chunk_size) -> None:
    """tryout 7: ConcatCritic on x with no rows failed with "range() arg 3 must not be zero",
    where every other critic returns the (0, M) scores."""
    critic = ConcatCritic(3, 2, hidden=(4,), chunk_size=chunk_size)
    assert critic(torch.randn(0, 3), torch.randn(5, 2)).shape == (0, 5)
    assert critic(torch.randn(2, 0, 3), torch.randn(5, 2)).shape == (2, 0, 5)


def test_get_critic_refuses_what_it_would_ignore() -> None:
    """tryout 7: get_critic(module, dim_x, dim_y, **kwargs) returned the module, the keyword
    arguments and the widths ignored silently (get_estimator refuses keywords with an
    object); a name with spaces around was unknown, where get_estimator takes it."""
    critic = SeparableCritic(3, 2, hidden=(4,))
    assert get_critic(critic, 3, 2) is critic
    with pytest.raises(ValueError, match=r"keyword arguments \['hidden'\] only apply to a "
                                         "critic given by name"):
        get_critic(critic, 3, 2, hidden=(8,))
    with pytest.raises(ValueError, match="built with dim_x=3, but dim_x=4 was asked for"):
        get_critic(critic, 4, 2)
    assert isinstance(get_critic(" Bilinear ", 3, 2), BilinearCritic)


def test_marginal_potentials_refuse_widths_other_than_the_critics() -> None:
    """tryout 7: MarginalPotentials(SeparableCritic(3, 2), 4, 2) was built, with potentials
    of 4 features around a critic of 3; the first call then failed in the critic."""
    with pytest.raises(ValueError, match="dim_x=4 but the wrapped SeparableCritic was built "
                                         "with dim_x=3"):
        MarginalPotentials(SeparableCritic(3, 2, hidden=(4,)), 4, 2)


def test_init_gaussian_names_arrays_and_non_finite_samples() -> None:
    """tryout 7: init_gaussian_ on numpy arrays failed with "'numpy.ndarray' object has no
    attribute 'dim'", and on a NaN with the eigensolver's "failed to converge"."""
    critic = QuadraticCritic(3, 2)
    x, y = torch.randn(100, 3), torch.randn(100, 2)
    with pytest.raises(TypeError, match=r"QuadraticCritic: x must be a torch\.Tensor, got "
                                        r"ndarray"):
        critic.init_gaussian_(x.numpy(), y.numpy())
    x[7, 1] = float("nan")
    with pytest.raises(ValueError, match=r"init_gaussian_: x holds a non-finite value \(row 7 "
                                         r"of \(100, 3\)\)"):
        critic.init_gaussian_(x, y)


def test_dot_scores_and_marginal_potentials_name_bad_inputs():
    """Fifteenth tryout: ``dot_scores`` let torch's errors escape, naming neither factor
    ("mat1 and mat2 shapes cannot be multiplied (3x4 and 3x5)", an IndexError for 1-D
    factors, an AttributeError for a list); ``MarginalPotentials(3, 2, 2)`` was built, and
    its first call failed with "'int' object is not callable"."""
    from mitools.critics import dot_scores

    with pytest.raises(ValueError, match=r"dot_scores: u \(\.\.\., N, E\) and v \(\.\.\., M, E\) "
                                         r"need the same E, got u of shape \(3, 4\) and v of "
                                         r"shape \(5, 3\)"):
        dot_scores(torch.randn(3, 4), torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"dot_scores: v must have shape .* got \(4,\)"):
        dot_scores(torch.randn(3, 4), torch.randn(4))
    with pytest.raises(TypeError, match="dot_scores: u must be a tensor, got list"):
        dot_scores([[1.0]], torch.ones(1, 1))
    u, v = torch.randn(2, 3, 4, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    expected = torch.einsum("bne,me->bnm", u, v)  # leading dimensions still broadcast
    torch.testing.assert_close(dot_scores(u, v), expected)
    with pytest.raises(TypeError, match=r"MarginalPotentials: critic must be a critic .*got int"):
        MarginalPotentials(3, 2, 2)


@pytest.mark.parametrize("build", [
    lambda h: mlp(3, h, 2),
    lambda h: SeparableCritic(3, 2, hidden=h),
    lambda h: ConcatCritic(3, 2, hidden=h),
    lambda h: MarginalPotentials(SeparableCritic(3, 2), 3, 2, hidden=h),
])
@pytest.mark.parametrize("hidden", [64, "64", (64.0,), (8, 0), None])
def test_hidden_that_is_not_a_sequence_of_widths_is_named(build, hidden) -> None:
    """hidden=64 for (64,) failed in iteration ("'int' object is not iterable"); every
    critic reads hidden= through one check, as estimate_mi does."""
    with pytest.raises(ValueError, match=r"hidden must be a sequence of positive ints .*, got "
                                         + re.escape(repr(hidden))):
        build(hidden)


def test_mlp_takes_an_activation_class_and_names_an_instance() -> None:
    import numpy as np

    net = mlp(3, np.array([4, 5]), 2, activation=nn.GELU)  # numpy widths, any module class
    assert [type(m).__name__ for m in net] == ["Linear", "GELU", "Linear", "GELU", "Linear"]
    assert net[1] is not net[3]  # one module per layer
    for bad, said in ((nn.ReLU(), r"got ReLU\(\), an instance: pass the class, ReLU"),
                      (3, r"activation must be an nn.Module class such as nn.ReLU .*got 3$")):
        for build in (lambda a: mlp(3, (4,), 2, activation=a),
                      lambda a: SeparableCritic(3, 2, activation=a),
                      lambda a: ConcatCritic(3, 2, activation=a)):
            with pytest.raises(TypeError, match=said):
                build(bad)
    with pytest.raises(TypeError, match=r"activation\(\) must return an nn.Module, got int"):
        mlp(3, (4,), 2, activation=lambda: 3)


class _SlopeFromTheRNG(nn.Module):
    """An activation that draws its initial weight from the global RNG (a learned slope)."""

    def __init__(self) -> None:
        super().__init__()
        self.slope = nn.Parameter(torch.rand(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x > 0, x, self.slope * x)


def test_a_seed_gives_the_same_networks_as_layers_built_in_order() -> None:
    """(review) mlp built each activation before its Linear, and ConcatCritic its tail before
    its first activation: an activation drawing from the RNG changed every initial weight for
    a given seed. The expected networks are built here by hand, in the documented order."""
    torch.manual_seed(0)
    expected = [nn.Linear(3, 4), _SlopeFromTheRNG(), nn.Linear(4, 5), _SlopeFromTheRNG(),
                nn.Linear(5, 2)]
    torch.manual_seed(0)
    net = mlp(3, (4, 5), 2, activation=_SlopeFromTheRNG)
    for got, want in zip(net, expected, strict=True):
        for (name, a), (_, b) in zip(got.named_parameters(), want.named_parameters(), strict=True):
            assert torch.equal(a, b), name
    torch.manual_seed(0)
    parts = [nn.Linear(3, 4), nn.Linear(2, 4, bias=False), _SlopeFromTheRNG(),
             nn.Linear(4, 5), _SlopeFromTheRNG(), nn.Linear(5, 1)]
    want_values = [p for part in parts for p in part.parameters()]
    torch.manual_seed(0)
    critic = ConcatCritic(3, 2, hidden=(4, 5), activation=_SlopeFromTheRNG)
    got_values = list(critic.parameters())
    assert len(got_values) == len(want_values)
    for a, b in zip(got_values, want_values, strict=True):
        assert torch.equal(a, b)


def test_mlp_refuses_its_arguments_in_order() -> None:
    """(review) dim_out is refused before the widths, as before the shared hidden check."""
    with pytest.raises(ValueError, match="dim_out"):
        mlp(3, (0,), 0)


def _learned_below_floor() -> tuple[SeparableCritic, torch.Tensor, torch.Tensor]:
    """A cosine critic whose learned temperature, 0.001, lies below its floor of 0.01."""
    import math

    torch.manual_seed(0)
    critic = SeparableCritic(3, 3, hidden=(8,), embed_dim=4, cosine=True, temperature=0.5,
                             learn_temperature=True)
    with torch.no_grad():
        critic.log_temperature.fill_(math.log(0.001))
    return critic, torch.randn(5, 3), torch.randn(5, 3)


def test_the_temperature_floor_holds_under_functional_call() -> None:
    # the local losses' upper bounds evaluate the critic with its parameters detached, through
    # torch.func.functional_call, which passes plain tensors: the floor keyed on
    # isinstance(log_temperature, nn.Parameter) was skipped there, and the scores were those of
    # T = 0.001 (up to 999.7) where the critic itself gave those of T = 0.01 (up to 99.97)
    from mitools.local.scoring import Scorer

    critic, x, y = _learned_below_floor()
    gx, hy = critic.embed(x, y)
    expected = (gx.double() @ hy.double().T) / 0.01  # float64, T at its floor
    direct = critic(x, y)
    params = {n: p.detach() for n, p in critic.named_parameters()}
    torch.testing.assert_close(direct.double(), expected, rtol=1e-5, atol=1e-4)
    for scores in (functional_call(critic, params, (x, y)),
                   Scorer(critic, detach_parameters=True)._call("forward", x, y)):
        torch.testing.assert_close(scores.double(), expected, rtol=1e-5, atol=1e-4)


def test_a_critic_pickled_before_the_floor_keeps_scoring_without_one() -> None:
    # torch.save(critic) of a SeparableCritic made before min_temperature existed has no such
    # attribute: its call raised AttributeError; it scores as it did, with no floor
    import pickle

    critic, x, y = _learned_below_floor()
    old = pickle.loads(pickle.dumps(critic))
    del old.__dict__["min_temperature"]  # as the object's state was pickled then
    gx, hy = critic.embed(x, y)
    expected = (gx.double() @ hy.double().T) / 0.001  # the learned T, unfloored
    torch.testing.assert_close(old(x, y).double(), expected, rtol=1e-5, atol=1e-3)


def test_loading_a_pre_floor_state_below_the_floor_warns() -> None:
    # a state_dict saved before the floor (module version 1) scored with its learned T as it
    # was; a new critic floors it at 0.01, so its scores differ from the saved critic's
    # (10 times smaller here): loading says so, and how to keep them
    import warnings

    critic, x, y = _learned_below_floor()
    state = critic.state_dict()
    state._metadata[""]["version"] = 1  # type: ignore[attr-defined]
    fresh = SeparableCritic(3, 3, hidden=(8,), embed_dim=4, cosine=True, temperature=0.5,
                            learn_temperature=True)
    with pytest.warns(RuntimeWarning, match=r"min_temperature=0\.01.*min_temperature=0 ") as rec:
        fresh.load_state_dict(state)
    assert rec[0].filename == __file__
    unfloored = SeparableCritic(3, 3, hidden=(8,), embed_dim=4, cosine=True, temperature=0.5,
                                learn_temperature=True, min_temperature=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        unfloored.load_state_dict(state)  # no floor: the saved scores, nothing to say
        fresh.load_state_dict(critic.state_dict())  # saved with the floor: as it was
    torch.testing.assert_close(unfloored(x, y), critic(x, y) * 10, rtol=1e-4, atol=1e-3)


def test_stacked_critics_under_vmap_keep_the_floor_and_its_gradient() -> None:
    # torch.func.stack_module_state + vmap(functional_call): one critic below its floor, one
    # above; each scores (and its log T gets the gradient) as the critic called on its own
    import copy
    import math

    from mitools import bounds

    below, x, y = _learned_below_floor()
    above = copy.deepcopy(below)
    with torch.no_grad():
        above.log_temperature.fill_(math.log(0.5))
    critics = [below, above]
    params, buffers = torch.func.stack_module_state(critics)  # type: ignore[arg-type]
    base = copy.deepcopy(below).to("meta")

    def loss(p: dict, b: dict) -> torch.Tensor:
        return -bounds.infonce(functional_call(base, (p, b), (x, y)))

    scores = torch.func.vmap(lambda p, b: functional_call(base, (p, b), (x, y)))(params, buffers)
    with bounds.check_finite(False):  # vmap cannot read the values the check reads
        grads = torch.func.vmap(torch.func.grad(loss))(params, buffers)["log_temperature"]
    for k, critic in enumerate(critics):
        torch.testing.assert_close(scores[k], critic(x, y), rtol=1e-5, atol=1e-4)
        critic.zero_grad()
        (-bounds.infonce(critic(x, y))).backward()
        torch.testing.assert_close(grads[k], critic.log_temperature.grad, rtol=1e-4, atol=1e-6)
