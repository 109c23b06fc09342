"""mitools.bounds.generative and its estimators: brute force, gradients, closed forms, errors."""

from __future__ import annotations

import math

import generative_reference as ref
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mitools import bounds
from mitools.estimators import (
    BA,
    CLUB,
    FLO,
    VCLUB,
    DoE,
    GenerativeEstimator,
    L1Out,
    get_estimator,
)
from mitools.tasks import CorrelatedGaussian


def _valid_negatives(scores, offset, row_mask, col_mask, g):
    """One valid negative column per row (any column for masked rows), drawn with ``g``."""
    n, m = scores.shape[-2:]
    cols = torch.arange(m)
    ok = (cols[None, :] != (torch.arange(n)[:, None] + offset)).expand(*scores.shape)
    if col_mask is not None:
        ok = ok & col_mask[..., None, :]
    weights = ok.double().reshape(-1, m)
    weights = weights + (weights.sum(-1, keepdim=True) == 0).double()
    return torch.multinomial(weights, 1, generator=g).reshape(scores.shape[:-1])


# name -> (vectorised, reference); both take (scores, extra, **kw) where extra holds the
# per-problem side inputs of that bound (entropy, log-marginal, u or negatives).
CASES = {
    "log_likelihood": (lambda s, e, **kw: bounds.log_likelihood(s, **kw),
                       lambda s, e, **kw: ref.log_likelihood(s, **kw)),
    "ba": (lambda s, e, **kw: bounds.ba(s, e["h"], **kw),
           lambda s, e, **kw: ref.ba(s, float(e["h"]), **kw)),
    "doe": (lambda s, e, **kw: bounds.doe(s, e["lm"], **kw),
            lambda s, e, **kw: ref.doe(s, e["lm"].tolist(), **kw)),
    "club": (lambda s, e, **kw: bounds.club(s, **kw),
             lambda s, e, **kw: ref.club(s, **kw)),
    "vclub": (lambda s, e, **kw: bounds.vclub(s, negatives=e["neg"], **kw),
              lambda s, e, **kw: ref.vclub(s, e["neg"].tolist(), **kw)),
    "l1out": (lambda s, e, **kw: bounds.l1out(s, **kw),
              lambda s, e, **kw: ref.l1out(s, **kw)),
    "flo": (lambda s, e, **kw: bounds.flo(s, e["u"], **kw),
            lambda s, e, **kw: ref.flo(s, e["u"].tolist(), **kw)),
}


@st.composite
def problems(draw):
    lead = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    n = draw(st.integers(2, 5))
    offset = draw(st.integers(0, 3))
    m = draw(st.integers(n + offset, n + offset + 3))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([0.1, 1.0, 5.0, 30.0]))
    g = torch.Generator().manual_seed(seed)
    scores = scale * torch.randn(*lead, n, m, generator=g, dtype=torch.float64)
    row_mask = col_mask = None
    if draw(st.booleans()):
        row_mask = torch.rand(*lead, n, generator=g) < 0.7
        row_mask[..., :2] = True  # L1Out needs two anchors
        col_mask = torch.rand(*lead, m, generator=g) < 0.7
        col_mask[..., offset : offset + n] |= row_mask
    extra = {
        "h": torch.randn(lead, generator=g, dtype=torch.float64),
        "lm": torch.randn(*lead, m, generator=g, dtype=torch.float64),
        "u": torch.randn(*lead, n, generator=g, dtype=torch.float64),
        "neg": _valid_negatives(scores, offset, row_mask, col_mask, g),
    }
    return scores, extra, offset, row_mask, col_mask


def _reference(name, scores, extra, offset, row_mask, col_mask):
    lead = scores.shape[:-2]
    flat = scores.reshape(-1, *scores.shape[-2:])
    count = flat.shape[0]

    def pick(t, k, trailing):
        return t.reshape(count, *t.shape[t.dim() - trailing:])[k] if trailing else (
            t.reshape(count)[k])

    out = []
    for k in range(count):
        e = {"h": pick(extra["h"], k, 0), "lm": pick(extra["lm"], k, 1),
             "u": pick(extra["u"], k, 1), "neg": pick(extra["neg"], k, 1)}
        rm = None if row_mask is None else row_mask.reshape(count, -1)[k].tolist()
        cm = None if col_mask is None else col_mask.reshape(count, -1)[k].tolist()
        out.append(CASES[name][1](flat[k].tolist(), e, offset=offset, row_mask=rm, col_mask=cm))
    return torch.tensor(out, dtype=torch.float64).reshape(lead)


@pytest.mark.parametrize("name", sorted(CASES))
@given(problem=problems())
def test_vectorised_equals_brute_force(name, problem):
    scores, extra, offset, row_mask, col_mask = problem
    got = CASES[name][0](scores, extra, offset=offset, row_mask=row_mask, col_mask=col_mask)
    want = _reference(name, scores, extra, offset, row_mask, col_mask)
    assert got.shape == scores.shape[:-2] and got.dtype == torch.float64
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("name", sorted(set(CASES) - {"doe"}))
def test_gradcheck(name, masked):
    g = torch.Generator().manual_seed(3)
    scores = torch.randn(2, 4, 6, generator=g, dtype=torch.float64, requires_grad=True)
    u = torch.randn(2, 4, generator=g, dtype=torch.float64, requires_grad=True)
    kw: dict = {"offset": 1}
    if masked:
        kw["row_mask"] = torch.tensor([[True, False, True, True], [True, True, True, False]])
        kw["col_mask"] = torch.tensor([[True, True, True, True, True, False]] * 2)
        kw["col_mask"][1, 4] = False
    neg = _valid_negatives(scores, 1, kw.get("row_mask"), kw.get("col_mask"), g)
    h = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)

    def fn(s, b, e):
        return CASES[name][0](s, {"h": e, "u": b, "neg": neg}, **kw)

    assert torch.autograd.gradcheck(fn, (scores, u, h))


def test_doe_value_and_gradient():
    """DoE's value is the difference of cross-entropies, its gradient that of both likelihoods."""
    g = torch.Generator().manual_seed(4)
    s = torch.randn(3, 5, 5, generator=g, dtype=torch.float64, requires_grad=True)
    lm = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    value = bounds.doe(s, lm)
    diag = torch.diagonal(s, dim1=-2, dim2=-1)
    torch.testing.assert_close(value, (diag - lm).mean(-1))
    gs, gl = torch.autograd.grad(value.sum(), (s, lm))
    want_s, want_l = torch.autograd.grad((diag + lm).mean(-1).sum(), (s, lm))
    torch.testing.assert_close(gs, want_s)
    torch.testing.assert_close(gl, want_l)


def test_vclub_draws_are_valid_and_average_to_club():
    g = torch.Generator().manual_seed(5)
    s = torch.randn(4, 6, generator=g, dtype=torch.float64)
    row_mask = torch.tensor([True, True, False, True])
    col_mask = torch.tensor([False, True, True, True, True, True])
    draws = torch.stack([bounds.vclub(s, generator=g, offset=1, row_mask=row_mask,
                                      col_mask=col_mask) for _ in range(4000)])
    want = bounds.club(s, offset=1, row_mask=row_mask, col_mask=col_mask)
    assert abs(float(draws.mean() - want)) < 4 * float(draws.std()) / math.sqrt(len(draws))


# ---------------------------------------------------------------------------------------------
# The true conditional of the d = 20 Gaussian: what each bound gives at the exact model.
# ---------------------------------------------------------------------------------------------


def _true_scores(mi, n_batches=200, k=64, seed=0, transform=None):
    task = CorrelatedGaussian(dim=20, mi=mi, transform=transform, dtype=torch.float64)
    x, y = task.sample(n_batches * k, generator=torch.Generator().manual_seed(seed))
    x, y = x.reshape(n_batches, k, 20), y.reshape(n_batches, k, 20)
    return task, x, y, task.conditional_log_prob(x, y)


def _mean_se(values):
    return float(values.mean()), float(values.std()) / math.sqrt(values.numel())


@pytest.mark.parametrize("mi", [2.0, 4.0, 6.0, 8.0, 10.0])
def test_club_and_l1out_are_above_the_mi_and_club_is_mi_plus_lautum(mi):
    task, _, _, s = _true_scores(mi)
    club_mean, club_se = _mean_se(bounds.club(s))
    closed = task.mutual_information() + task.lautum_information()  # rho^2/(1-rho^2) per dim
    rho2 = task.rho**2
    assert math.isclose(closed, 20 * rho2 / (1 - rho2), rel_tol=1e-9)
    assert abs(club_mean - closed) < 3 * club_se
    assert club_mean + 3 * club_se >= mi
    l1_mean, l1_se = _mean_se(bounds.l1out(s))
    assert l1_mean + 3 * l1_se >= mi


@pytest.mark.parametrize("mi", [2.0, 6.0, 10.0])
def test_ba_with_the_true_entropy_is_below_the_mi_and_tight_at_the_true_conditional(mi):
    task, _, _, s = _true_scores(mi)
    ba_mean, ba_se = _mean_se(bounds.ba(s, task.entropy_y()))
    assert ba_mean - 3 * ba_se <= mi and abs(ba_mean - mi) < 3 * ba_se  # tight: q = p(y|x)
    # A wrong model (conditional variance doubled) loses KL(p || q) > 0 nats.
    one_minus = 1 - task.rho**2
    _, x, y, _ = _true_scores(mi)
    diff = y[..., None, :, :] - task.rho * x[..., :, None, :]
    var = 2.0 * one_minus
    wrong = (-0.5 * torch.log(2 * math.pi * torch.tensor(var)) - diff**2 / (2 * var)).sum(-1)
    kl = 20 * 0.5 * (math.log(2.0) + 0.5 - 1.0)  # KL(N(0, v) || N(0, 2v)) per dim
    w_mean, w_se = _mean_se(bounds.ba(wrong, task.entropy_y()))
    assert abs(w_mean - (mi - kl)) < 3 * w_se and w_mean < mi


@pytest.mark.parametrize("mi", [2.0, 4.0, 6.0, 8.0, 10.0])
def test_flo_is_below_the_mi_and_tight_at_its_optimum(mi):
    task, x, y, _ = _true_scores(mi, n_batches=400)
    pmi = task.optimal_critic(x, y)
    u_opt = -torch.diagonal(pmi, dim1=-2, dim2=-1)  # u* = -g(x, y) at g = PMI
    mean, se = _mean_se(bounds.flo(pmi, u_opt))
    if mi <= 8.0:
        assert abs(mean - mi) < 3 * se  # tight (unbiased) at the optimum
    else:
        # At 10 nats the mean of e^PMI over negatives is so heavy-tailed (variance ~ e^I)
        # that 1.6 M negatives still underestimate it, and the sample SE with it: the
        # expectation is exact, the sample overshoots by a few tenths (as NWJ's would).
        assert abs(mean - mi) < 0.5
    for shift in (-1.0, 0.5):  # any other u (or critic) is below, by E[e^-du - 1 + du]
        m_shift, se_shift = _mean_se(bounds.flo(pmi, u_opt + shift))
        assert m_shift - 3 * se_shift <= mi
    low_mean, low_se = _mean_se(bounds.flo(0.5 * pmi, -0.5 * torch.diagonal(pmi, dim1=-2,
                                                                          dim2=-1)))
    assert low_mean - 3 * low_se <= mi


@pytest.mark.parametrize("transform", [None, "cubic"])
def test_doe_with_true_models_is_unbiased(transform):
    task, _, y, s = _true_scores(4.0, n_batches=100, transform=transform)
    mean, se = _mean_se(bounds.doe(s, task.marginal_log_prob(y)))
    assert abs(mean - 4.0) < 3 * se


def test_generative_bounds_equal_on_pmi_differences():
    """CLUB and L1Out depend on log q(y|x) only through differences within a column/row."""
    task, x, y, s = _true_scores(3.0, n_batches=4)
    pmi = task.optimal_critic(x, y)  # = s - log p(y_j): a per-column shift
    torch.testing.assert_close(bounds.l1out(pmi), bounds.l1out(s))
    # CLUB is not invariant to per-column shifts in general, but p(y) enters both terms
    # with the same mean in expectation; on a batch they differ by mean(diag) - mean(off).
    assert torch.isfinite(bounds.club(pmi)).all()


# ---------------------------------------------------------------------------------------------
# Estimator modules: registry, traits, learning objectives, errors.
# ---------------------------------------------------------------------------------------------


def test_registry_and_traits():
    for name, cls, direction in [("ba", BA, "lower"), ("doe", DoE, "neither"),
                                 ("club", CLUB, "upper"), ("vclub", VCLUB, "upper"),
                                 ("l1out", L1Out, "upper"), ("flo", FLO, "lower")]:
        kwargs = {"entropy_y": 1.0} if name == "ba" else {}
        est = get_estimator(name, **kwargs)
        assert isinstance(est, cls) and isinstance(est, GenerativeEstimator)
        assert est.direction == direction
        assert est.needs_log_density == (name != "flo")


def test_modules_equal_functions_and_learning_objectives():
    g = torch.Generator().manual_seed(6)
    s = torch.randn(2, 5, 7, generator=g, dtype=torch.float64)
    kw = {"offset": 2}
    torch.testing.assert_close(BA(entropy_y=1.5)(s, **kw), bounds.ba(s, 1.5, **kw))
    torch.testing.assert_close(CLUB()(s, **kw), bounds.club(s, **kw))
    torch.testing.assert_close(L1Out()(s, **kw), bounds.l1out(s, **kw))
    for est in (BA(entropy_y=0.0), CLUB(), VCLUB(), L1Out()):
        torch.testing.assert_close(est.learning_objective(s, **kw),
                                   bounds.log_likelihood(s, **kw))
    a, b = VCLUB(torch.Generator().manual_seed(1)), VCLUB(torch.Generator().manual_seed(1))
    torch.testing.assert_close(a(s, **kw), b(s, **kw))
    lm = torch.randn(2, 7, generator=g, dtype=torch.float64)
    torch.testing.assert_close(DoE()(s, log_marginal=lm, **kw), bounds.doe(s, lm, **kw))
    u = torch.randn(2, 5, generator=g, dtype=torch.float64)
    torch.testing.assert_close(FLO()(s, u=u, **kw), bounds.flo(s, u, **kw))
    torch.testing.assert_close(FLO().learning_objective(s, u=u, **kw), bounds.flo(s, u, **kw))


def test_flo_without_a_network_ties_u_to_the_critic():
    s = torch.randn(2, 4, 6, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    tied = FLO()(s, offset=1)
    torch.testing.assert_close(tied, bounds.flo(s, -torch.diagonal(s, offset=1, dim1=-2,
                                                                     dim2=-1), offset=1))
    torch.testing.assert_close(tied, bounds.nwj(s + 1.0, offset=1))  # NWJ on S + 1


def test_flo_and_doe_with_networks():
    from mitools.conditionals import GaussianMarginal
    from mitools.critics import mlp

    torch.manual_seed(0)
    net = mlp(5, (8,), 1).double()
    est = FLO(u_network=net)
    assert est.needs_targets
    x = torch.randn(4, 2, dtype=torch.float64)
    y = torch.randn(6, 3, dtype=torch.float64)
    s = torch.randn(4, 6, dtype=torch.float64)
    u = net(torch.cat([x, y[1:5]], -1)).squeeze(-1)
    torch.testing.assert_close(est(s, anchors=x, targets=y, offset=1), bounds.flo(s, u, offset=1))
    marginal = GaussianMarginal(3).double()
    doe = DoE(marginal)
    torch.testing.assert_close(doe(s, targets=y, offset=1),
                               bounds.doe(s, marginal.log_prob(y), offset=1))


def test_errors():
    s = torch.zeros(3, 3)
    with pytest.raises(ValueError, match="entropy_y"):
        get_estimator("ba")
    with pytest.raises(ValueError, match="finite"):
        BA(entropy_y=float("nan"))
    with pytest.raises(ValueError, match="log_marginal"):
        DoE()(s)
    with pytest.raises(ValueError, match="needs anchors"):
        FLO(u_network=torch.nn.Linear(2, 1))(s)
    with pytest.raises(TypeError, match="u_network"):
        FLO(u_network="mlp")
    with pytest.raises(ValueError, match=r"entropy_y has shape \(2,\)"):
        bounds.ba(torch.zeros(3, 3, 3), torch.zeros(2))
    with pytest.raises(TypeError, match="entropy_y"):
        bounds.ba(s, "3")
    with pytest.raises(ValueError, match=r"log_marginal has shape \(2,\)"):
        bounds.doe(s, torch.zeros(2))
    with pytest.raises(ValueError, match=r"u has shape \(4,\)"):
        bounds.flo(s, torch.zeros(4))
    with pytest.raises(TypeError, match="u must be"):
        bounds.flo(s, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="at least 2 rows"):
        bounds.l1out(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="fewer than 2 rows"):
        bounds.l1out(s, row_mask=torch.tensor([True, False, False]))
    with pytest.raises(ValueError, match="positive column"):
        bounds.vclub(s, negatives=torch.tensor([0, 0, 0]))
    with pytest.raises(ValueError, match=r"lie in \[0, 3\)"):
        bounds.vclub(s, negatives=torch.tensor([1, 5, 0]))
    with pytest.raises(TypeError, match="integer"):
        bounds.vclub(s, negatives=torch.zeros(3))
    with pytest.raises(ValueError, match=r"negatives has shape \(2,\)"):
        bounds.vclub(s, negatives=torch.tensor([1, 0]))
    for fn in (bounds.club, bounds.l1out, bounds.vclub, bounds.log_likelihood):
        with pytest.raises(ValueError, match=r"N \+ offset <= M"):
            fn(torch.zeros(4, 4), offset=1)
        with pytest.raises(TypeError, match="floating-point"):
            fn(torch.zeros(3, 3, dtype=torch.long))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_half_precision_is_upcast(dtype):
    s = torch.randn(4, 8, 8, generator=torch.Generator().manual_seed(2)).to(dtype)
    for fn in (bounds.club, bounds.l1out, lambda t: bounds.flo(t, torch.zeros(8, dtype=dtype))):
        out = fn(s)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out.double(), fn(s.double()).double(), rtol=1e-4, atol=1e-4)


def test_a_batch_of_one_sample():
    """Regression: BA, DoE and the log-likelihood need the positives alone, yet scores of one
    sample ``(1, 1)`` raised "scores need at least 2 columns (one positive and one negative
    per row)". They now give the one-sample value; the bounds that need negatives still
    refuse it, and a ``(3,)`` (squeezed) score tensor is refused by name."""
    s = torch.tensor([[-1.25]], dtype=torch.float64)
    lm = torch.tensor([-2.0], dtype=torch.float64)
    assert float(bounds.ba(s, entropy_y=3.0)) == 1.75  # H(Y) + log q(y_1 | x_1)
    assert float(bounds.log_likelihood(s)) == -1.25
    assert float(bounds.doe(s, lm)) == 0.75  # log q(y_1 | x_1) - log q(y_1)
    assert float(BA(entropy_y=3.0)(s)) == 1.75
    assert float(DoE()(s, log_marginal=lm)) == 0.75
    assert float(CLUB().learning_objective(s)) == -1.25
    batched = torch.full((4, 1, 1), -1.25, requires_grad=True)
    out = bounds.ba(batched, entropy_y=3.0)
    assert out.shape == (4,)
    out.sum().backward()
    torch.testing.assert_close(batched.grad, torch.ones(4, 1, 1))
    for fn in (bounds.club, bounds.vclub, bounds.l1out, lambda t: bounds.flo(t, None)):
        with pytest.raises(ValueError, match="at least 2 columns"):
            fn(s)
    for fn in (lambda t: bounds.ba(t, 3.0), bounds.log_likelihood, lambda t: bounds.doe(t, lm)):
        with pytest.raises(ValueError, match=r"at least 2 dimensions, got shape \(3,\)"):
            fn(torch.zeros(3))
        with pytest.raises(ValueError, match=r"N \+ offset <= M"):  # 3 rows, one column
            fn(torch.zeros(3, 1))


def test_doe_refuses_a_log_marginal_without_the_column_axis():
    """Regression: a log-marginal squeezed to ``()`` (a marginal model given a 1-D ``y``)
    was broadcast to every column: ``DoE(marginal=GaussianMarginal(2))`` on ``(3, 3)``
    scores with ``targets`` of shape ``(2,)`` gave 1.8398 nats, silently; 1-D ``targets``
    for one feature raised ``IndexError: tuple index out of range``."""
    from mitools.conditionals import GaussianMarginal

    s = torch.zeros(3, 3)
    with pytest.raises(ValueError, match=r"doe: log_marginal has shape \(\) but must be "
                                         r"\(\.\.\., M\) with M = 3"):
        bounds.doe(s, torch.tensor(-1.0))
    with pytest.raises(ValueError, match=r"log_marginal has shape \(3, 1\) .* M = 3"):
        bounds.doe(s, torch.zeros(3, 1))
    torch.testing.assert_close(bounds.doe(torch.zeros(2, 3, 3), torch.zeros(1, 3)),
                               torch.zeros(2))  # leading dimensions still broadcast
    doe = DoE(marginal=GaussianMarginal(2))
    with pytest.raises(ValueError, match=r"doe: targets has shape \(2,\) but must be "
                                         r"\(\.\.\., M, Dy\) with M = 3"):
        doe(s, targets=torch.zeros(2))
    with pytest.raises(ValueError, match=r"targets has shape \(4, 2\) .* M = 3"):
        doe(s, targets=torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"y\[:, None\]"):
        DoE(marginal=GaussianMarginal(1))(s, targets=torch.zeros(3))

    class Squeezing(torch.nn.Module):
        def log_prob(self, y):
            return y.new_zeros(())

    with pytest.raises(ValueError, match=r"marginal\.log_prob\(targets\) returned shape \(\)"):
        DoE(marginal=Squeezing())(s, targets=torch.zeros(3, 2))
    stats = bounds.row_statistics(s, ())
    with pytest.raises(ValueError, match=r"marginal\.log_prob\(targets\) returned shape \(\)"):
        DoE(marginal=Squeezing()).finish(stats, targets=torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"targets has shape \(3,\) .* N = 3"):
        DoE(marginal=GaussianMarginal(1)).finish(stats, targets=torch.zeros(3))
    with pytest.raises(ValueError, match=r"targets has shape \(3,\) but must be \(\.\.\., M, Dy\)"):
        FLO(u_network=torch.nn.Linear(2, 1))(s, anchors=torch.zeros(3, 1), targets=torch.zeros(3))


def test_doe_refuses_a_marginal_without_log_prob_at_construction():
    """Fifteenth tryout: ``DoE(marginal=nn.Linear(2, 1))`` was accepted, and its first call
    escaped as "AttributeError: 'Linear' object has no attribute 'log_prob'"; the docstring
    asks for a model with ``log_prob(targets)``. A TypeError at construction names it."""
    for bad in (torch.nn.Linear(2, 1), 3):
        with pytest.raises(TypeError, match=r"DoE: marginal must be a model of p\(y\) with a "
                                            r"log_prob\(targets\).* got (Linear|int)"):
            DoE(marginal=bad)
        with pytest.raises(TypeError, match="DoE: marginal must"):
            get_estimator("doe", marginal=bad)
    # a model with log_prob still works: exact value, log q(y) = 0 for every column
    class Flat(torch.nn.Module):
        def log_prob(self, y):
            return y.new_zeros(y.shape[:-1])

    s = torch.full((3, 3), -1.0)
    assert float(DoE(marginal=Flat())(s, targets=torch.zeros(3, 2))) == -1.0  # -1 - 0


# ---------------------------------------------------------------------------------------------
# The tenth tryout.
# ---------------------------------------------------------------------------------------------


def test_vclub_takes_an_int_seed() -> None:
    """Regression: bounds.vclub(s, generator=0) and VCLUB(generator=0)(s) failed in
    torch.multinomial ("argument 'generator' must be torch.Generator, not int"), where the
    tasks, the samplers and ConditionalDensity.sample take int seeds; VCLUB(generator="a")
    was built. A seed draws what a generator seeded alike draws; the module's seed is one
    generator, so its calls draw new negatives."""
    s = torch.randn(3, 6, 6, generator=torch.Generator().manual_seed(0))
    want = bounds.vclub(s, generator=torch.Generator().manual_seed(7))
    assert torch.equal(bounds.vclub(s, generator=7), want)
    est = VCLUB(generator=7)
    assert isinstance(est.generator, torch.Generator)
    assert torch.equal(est(s), want)
    assert not torch.equal(est(s), want)  # the second call draws on
    with pytest.raises(TypeError, match=r"VCLUB: generator must be a torch\.Generator, an int"):
        VCLUB(generator="a")
    with pytest.raises(TypeError, match="vclub: generator must be"):
        bounds.vclub(s, generator=1.5)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_side_inputs_are_refused_by_name(bad) -> None:
    """Regression: a float entropy_y of NaN was refused, but a tensor one, a log_marginal or
    a u holding NaN or inf gave a NaN bound with no word (the scores and a learned baseline
    are refused alike). Masked rows may hold anything."""
    s = torch.randn(4, 4, generator=torch.Generator().manual_seed(0))
    side = torch.tensor([0.0, bad, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"ba: entropy_y holds a non-finite value .* index \(1,\)"):
        bounds.ba(s.expand(4, 4, 4), side)
    with pytest.raises(ValueError, match=r"doe: log_marginal holds a non-finite value"):
        bounds.doe(s, side)
    with pytest.raises(ValueError, match=r"flo: u holds a non-finite value"):
        bounds.flo(s, side)
    with pytest.raises(ValueError, match=r"doe: log_marginal holds a non-finite value"):
        DoE()(s, log_marginal=side)
    rows = torch.tensor([True, False, True, True])
    want = bounds.doe(s, torch.zeros(4), row_mask=rows)
    assert torch.equal(bounds.doe(s, side, row_mask=rows), want)
    assert torch.isfinite(bounds.flo(s, side, row_mask=rows))
    with bounds.check_finite(False):  # the check's switch turns this check off too
        assert not torch.isfinite(bounds.doe(s, side))
    with pytest.raises(TypeError, match=r"got dtype torch\.int64"):
        bounds.ba(s, torch.tensor(3))


def test_flo_names_bad_inputs_of_its_pair_network() -> None:
    """Regression (tenth tryout): with a u_network, numpy anchors failed with "'numpy.ndarray'
    object has no attribute 'expand'", 5 anchors for 6 rows with torch's "Attempting to
    broadcast a dimension of length 6", and anchors of the wrong width in the network's
    "mat1 and mat2 shapes cannot be multiplied"; TUBA's baseline names all three."""
    from mitools.bounds.lower import NEGATIVES_LSE
    from mitools.critics import mlp

    est = FLO(u_network=mlp(4, (8,), 1))
    s, y = torch.zeros(6, 6), torch.randn(6, 2)
    with pytest.raises(TypeError, match=r"FLO: anchors must be a floating-point torch\.Tensor, "
                                        r"got ndarray"):
        est(s, anchors=torch.randn(6, 2).numpy(), targets=y)
    with pytest.raises(ValueError, match=r"FLO: anchors has shape \(5, 2\) but the scores have "
                                         r"6 rows"):
        est(s, anchors=torch.randn(5, 2), targets=y)
    with pytest.raises(ValueError, match=r"u_network failed on the pairs .* shape \(6, 5\).*"
                                         r"Dx \+ Dy = 5 features"):
        est(s, anchors=torch.randn(6, 3), targets=y)
    with pytest.raises(TypeError, match="FLO: targets must be a floating-point"):
        est.finish(bounds.row_statistics(s, (NEGATIVES_LSE,)), anchors=torch.randn(6, 2),
                   targets=torch.ones(6, 2, dtype=torch.long))
    # float64 anchors with float32 targets: one pair in the promoted dtype
    assert torch.isfinite(est(s, anchors=torch.randn(6, 2, dtype=torch.float64), targets=y))


def test_side_inputs_on_another_device_are_named() -> None:
    """Regression (tenth tryout): a log_marginal, entropy_y or u on another device than the
    scores failed inside torch (on the meta device: "Tensor.item() cannot be called on meta
    tensors"), where a learned baseline's is named; a 0-dim entropy_y goes anywhere."""
    s = torch.randn(3, 3)
    for call, arg in ((lambda t: bounds.doe(s, t), "log_marginal"),
                      (lambda t: bounds.flo(s, t), "u"),
                      (lambda t: bounds.ba(s.expand(3, 3, 3), t), "entropy_y")):
        with pytest.raises(ValueError, match=f"{arg} is on meta but the scores are on cpu"):
            call(torch.zeros(3, device="meta"))
    with pytest.raises(ValueError, match="vclub: negatives is on meta but the scores are on cpu"):
        bounds.vclub(s, negatives=torch.tensor([1, 2, 0], device="meta"))
    assert float(bounds.ba(s, torch.tensor(1.0))) == pytest.approx(
        1.0 + float(s.diagonal().mean()), rel=1e-6)
