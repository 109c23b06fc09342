"""mitools.bounds against brute-force references, closed forms, gradients and bad inputs."""

from __future__ import annotations

import functools
import math
import re

import bounds_reference as ref
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mitools import bounds
from mitools.local import LocalMILoss
from mitools.tasks import CorrelatedGaussian

# name -> (vectorised call, reference call); each call takes (scores, offset, row_mask, col_mask)
# plus a per-row baseline list `a` that only TUBA and alpha-InfoNCE use.
CASES = {
    "infonce": (
        lambda s, a, **kw: bounds.infonce(s, **kw),
        lambda s, a, **kw: ref.infonce(s, **kw),
    ),
    "nwj": (lambda s, a, **kw: bounds.nwj(s, **kw), lambda s, a, **kw: ref.nwj(s, **kw)),
    "dv": (lambda s, a, **kw: bounds.dv(s, **kw), lambda s, a, **kw: ref.dv(s, **kw)),
    "jsd": (lambda s, a, **kw: bounds.jsd(s, **kw), lambda s, a, **kw: ref.jsd(s, **kw)),
    "js": (lambda s, a, **kw: bounds.js(s, **kw), lambda s, a, **kw: ref.js_value(s, **kw)),
    "smile5": (
        lambda s, a, **kw: bounds.smile(s, 5.0, **kw),
        lambda s, a, **kw: ref.smile_value(s, 5.0, **kw),
    ),
    "smile1": (
        lambda s, a, **kw: bounds.smile(s, 1.0, **kw),
        lambda s, a, **kw: ref.smile_value(s, 1.0, **kw),
    ),
    "smile_inf": (
        lambda s, a, **kw: bounds.smile(s, None, **kw),
        lambda s, a, **kw: ref.smile_value(s, None, **kw),
    ),
    "tuba": (
        lambda s, a, **kw: bounds.tuba(s, a, **kw),
        lambda s, a, **kw: ref.tuba(s, a.tolist(), **kw),
    ),
    "alpha0.01": (
        lambda s, a, **kw: bounds.alpha_infonce(s, a, 0.01, **kw),
        lambda s, a, **kw: ref.alpha_infonce(s, a.tolist(), 0.01, **kw),
    ),
    "alpha0.5": (
        lambda s, a, **kw: bounds.alpha_infonce(s, a, 0.5, **kw),
        lambda s, a, **kw: ref.alpha_infonce(s, a.tolist(), 0.5, **kw),
    ),
}


def reference_over_leading(name, scores, a, offset=0, row_mask=None, col_mask=None):
    """Apply the 2-D reference to every leading index of a batched problem."""
    _, ref_fn = CASES[name]
    lead = scores.shape[:-2]
    flat = scores.reshape(-1, *scores.shape[-2:])
    fa = a.reshape(-1, a.shape[-1])
    rm = None if row_mask is None else row_mask.reshape(-1, row_mask.shape[-1])
    cm = None if col_mask is None else col_mask.reshape(-1, col_mask.shape[-1])
    out = [
        ref_fn(
            flat[k].tolist(),
            fa[k],
            offset=offset,
            row_mask=None if rm is None else rm[k].tolist(),
            col_mask=None if cm is None else cm[k].tolist(),
        )
        for k in range(flat.shape[0])
    ]
    return torch.tensor(out, dtype=torch.float64).reshape(lead)


@st.composite
def problems(draw, with_masks=True):
    lead = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    n = draw(st.integers(1, 5))
    offset = draw(st.integers(0, 3))
    m = draw(st.integers(max(n + offset, 2), n + offset + 3))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([0.1, 1.0, 5.0, 30.0]))
    g = torch.Generator().manual_seed(seed)
    scores = scale * torch.randn(*lead, n, m, generator=g, dtype=torch.float64)
    a = torch.randn(*lead, n, generator=g, dtype=torch.float64)
    row_mask = col_mask = None
    if with_masks and draw(st.booleans()):
        row_mask = torch.rand(*lead, n, generator=g) < 0.7
        row_mask[..., 0] = True  # at least one anchor per problem
        col_mask = torch.rand(*lead, m, generator=g) < 0.7
        pos = col_mask[..., offset : offset + n]
        col_mask[..., offset : offset + n] = pos | row_mask  # positives of anchors are valid
        # at least two valid columns: the positive of row 0 and one more
        other = offset + 1 if offset + 1 < m else offset - 1
        col_mask[..., other] = True
    return scores, a, offset, row_mask, col_mask


@pytest.mark.parametrize("name", sorted(CASES))
@given(problem=problems())
def test_vectorised_equals_brute_force(name, problem):
    scores, a, offset, row_mask, col_mask = problem
    fn, _ = CASES[name]
    got = fn(scores, a, offset=offset, row_mask=row_mask, col_mask=col_mask)
    want = reference_over_leading(name, scores, a, offset, row_mask, col_mask)
    assert got.shape == scores.shape[:-2]
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("mi", [2.0, 4.0, 6.0, 8.0, 10.0])
@pytest.mark.parametrize("name", sorted(CASES))
def test_optimal_gaussian_critic_matches_reference(name, mi):
    task = CorrelatedGaussian(dim=20, mi=mi, dtype=torch.float64)
    x, y = task.sample(64, generator=torch.Generator().manual_seed(int(mi)))
    scores = task.optimal_critic(x, y)
    a = torch.zeros(64, dtype=torch.float64)
    fn, _ = CASES[name]
    got = fn(scores, a)
    want = reference_over_leading(name, scores, a)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


GRAD_FNS = {
    "infonce": lambda s, a, **kw: bounds.infonce(s, **kw),
    "nwj": lambda s, a, **kw: bounds.nwj(s, **kw),
    "dv": lambda s, a, **kw: bounds.dv(s, **kw),
    "jsd": lambda s, a, **kw: bounds.jsd(s, **kw),
    "tuba": lambda s, a, **kw: bounds.tuba(s, a, **kw),
    "alpha_infonce": lambda s, a, **kw: bounds.alpha_infonce(s, a, 0.3, **kw),
}


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("name", sorted(GRAD_FNS))
def test_gradcheck(name, masked):
    """Analytic = numerical gradients. js and smile are excluded by design: their value and
    gradient belong to different functions (checked against jsd's gradient below)."""
    g = torch.Generator().manual_seed(3)
    scores = torch.randn(2, 4, 6, generator=g, dtype=torch.float64, requires_grad=True)
    a = torch.randn(2, 4, generator=g, dtype=torch.float64, requires_grad=True)
    kw: dict = {"offset": 1}
    if masked:
        kw["row_mask"] = torch.tensor([[True, False, True, True], [True, True, True, False]])
        kw["col_mask"] = torch.tensor([[True, True, True, True, True, False]] * 2)
        kw["col_mask"][1, 3] = True
    fn = GRAD_FNS[name]
    assert torch.autograd.gradcheck(lambda s, b: fn(s, b, **kw), (scores, a))


def test_alpha_infonce_gradcheck_at_a_dominant_column():
    # One score far above the others: the argmax branch of the leave-one-out log-mean-exp.
    scores = torch.zeros(3, 3, dtype=torch.float64)
    scores[0, 0] = 40.0
    scores[1, 2] = -30.0
    scores.requires_grad_(True)
    a = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s, b: bounds.alpha_infonce(s, b, 0.2), (scores, a))
    value = bounds.alpha_infonce(scores, a, 0.2)
    want = ref.alpha_infonce(scores.tolist(), [0.0] * 3, 0.2)
    assert math.isclose(float(value.detach()), want, rel_tol=1e-12, abs_tol=1e-12)


# ---------------------------------------------------------------------------------------------
# Closed forms and known limits on the optimal Gaussian critic.
# ---------------------------------------------------------------------------------------------


def _batches(mi, n_batches, k=64, seed=0, dim=20):
    task = CorrelatedGaussian(dim=dim, mi=mi, dtype=torch.float64)
    x, y = task.sample(n_batches * k, generator=torch.Generator().manual_seed(seed))
    x = x.reshape(n_batches, k, dim)
    y = y.reshape(n_batches, k, dim)
    return task.optimal_critic(x, y)  # (n_batches, k, k)


@pytest.mark.parametrize("mi", [2.0, 6.0, 10.0])
def test_infonce_never_above_log_k(mi):
    scores = _batches(mi, 200)
    values = bounds.infonce(scores)
    assert bool((values <= math.log(64) + 1e-12).all())
    # A critic that separates perfectly hits the ceiling exactly.
    assert math.isclose(float(bounds.infonce(1e4 * torch.eye(64, dtype=torch.float64))),
                        math.log(64), rel_tol=1e-12)


@pytest.mark.parametrize("mi", [2.0, 4.0, 6.0])
def test_nwj_on_optimal_critic_plus_one_is_unbiased(mi):
    values = bounds.nwj(_batches(mi, 2000, seed=int(mi)) + 1.0)
    mean, se = float(values.mean()), float(values.std() / math.sqrt(values.numel()))
    assert abs(mean - mi) < 3 * se, (mean, se)


@pytest.mark.parametrize("mi", [2.0, 4.0])
def test_js_value_is_unbiased_at_the_js_optimum(mi):
    # The JS optimum is the PMI itself; js reads NWJ(S + 1), unbiased there.
    values = bounds.js(_batches(mi, 2000, seed=10 + int(mi)))
    mean, se = float(values.mean()), float(values.std() / math.sqrt(values.numel()))
    assert abs(mean - mi) < 3 * se, (mean, se)


def test_dv_on_optimal_critic_is_biased_upward_only_slightly_at_low_mi():
    # E[DV(f*)] >= I by Jensen (E log Z_hat <= log E Z_hat = 0); the bias is ~Var/(2n).
    values = bounds.dv(_batches(2.0, 1000, seed=5))
    mean, se = float(values.mean()), float(values.std() / math.sqrt(values.numel()))
    assert mean > 2.0 - 3 * se
    assert mean < 2.0 + 3 * se + 0.01


@pytest.mark.parametrize("clip", [1.0, 5.0])
@pytest.mark.parametrize("mi", [2.0, 10.0])
def test_smile_within_clip_limits(mi, clip):
    scores = _batches(mi, 200)
    values = bounds.smile(scores, clip)
    joint = torch.diagonal(scores, dim1=-2, dim2=-1).mean(-1)
    # lme of scores clipped to [-tau, tau] lies in [-tau, tau]
    assert bool((values >= joint - clip - 1e-12).all())
    assert bool((values <= joint + clip + 1e-12).all())


@pytest.mark.parametrize("alpha", [0.01, 0.5])
@pytest.mark.parametrize("mi", [2.0, 10.0])
def test_alpha_infonce_between_its_limits(mi, alpha):
    scores = _batches(mi, 200, seed=7)
    a = torch.zeros(64, dtype=torch.float64)  # the optimal log-baseline of f*: log E_y e^f* = 0
    values = bounds.alpha_infonce(scores, a, alpha)
    ceiling = 1.0 + math.log(64 / alpha)
    assert bool((values < ceiling).all())
    mean, se = float(values.mean()), float(values.std() / math.sqrt(values.numel()))
    assert mean < mi + 3 * se  # a lower bound on average
    # It improves on InfoNCE's log K ceiling at high MI when alpha is small.
    if mi == 10.0 and alpha == 0.01:
        assert mean > math.log(64) + 0.5


@pytest.mark.parametrize("name", ["infonce", "nwj", "js", "tuba"])
def test_lower_bounds_hold_on_average(name):
    scores = _batches(4.0, 500, seed=11)
    a = torch.zeros(64, dtype=torch.float64)
    values = CASES[name][0](scores, a)
    mean, se = float(values.mean()), float(values.std() / math.sqrt(values.numel()))
    assert mean < 4.0 + 3 * se


# ---------------------------------------------------------------------------------------------
# Stop-gradient constructions.
# ---------------------------------------------------------------------------------------------


def _grad(fn, scores):
    s = scores.clone().requires_grad_(True)
    fn(s).sum().backward()
    return s.grad


@pytest.mark.parametrize("offset", [0, 2])
def test_js_value_is_nwj_and_gradient_is_jsd(offset):
    scores = torch.randn(3, 5, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    kw = {"offset": offset}
    torch.testing.assert_close(bounds.js(scores, **kw), bounds.nwj(scores + 1.0, **kw))
    torch.testing.assert_close(
        _grad(lambda s: bounds.js(s, **kw), scores), _grad(lambda s: bounds.jsd(s, **kw), scores)
    )
    assert not torch.allclose(
        _grad(lambda s: bounds.js(s, **kw), scores), _grad(lambda s: bounds.nwj(s, **kw), scores)
    )


@pytest.mark.parametrize("clip", [1.0, 5.0, None])
def test_smile_value_is_clipped_dv_and_gradient_is_jsd(clip):
    scores = 4 * torch.randn(6, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    value = bounds.smile(scores, clip)
    clipped = scores if clip is None else scores.clamp(-clip, clip)
    want = torch.diagonal(scores).mean() - (
        torch.logsumexp(clipped.masked_fill(torch.eye(6, dtype=torch.bool), -math.inf), (0, 1))
        - math.log(30)
    )
    torch.testing.assert_close(value, want)
    if clip is None:
        torch.testing.assert_close(value, bounds.dv(scores))
    torch.testing.assert_close(
        _grad(lambda s: bounds.smile(s, clip), scores), _grad(bounds.jsd, scores)
    )


def test_jsd_optimum_is_the_pmi():
    # Gradient of the population JS objective vanishes at f = PMI: check the closed form of the
    # per-entry stationarity condition p * sigmoid(-f) = q * sigmoid(f) at f = log(p / q).
    p, q = 0.3, 0.05
    f = torch.tensor(math.log(p / q), dtype=torch.float64, requires_grad=True)
    objective = -p * torch.nn.functional.softplus(-f) - q * torch.nn.functional.softplus(f)
    objective.backward()
    assert abs(float(f.grad)) < 1e-12


# ---------------------------------------------------------------------------------------------
# Masks, dtypes, errors.
# ---------------------------------------------------------------------------------------------


def test_masked_entries_do_not_matter_even_if_nonfinite():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(5, 7, generator=g, dtype=torch.float64)
    row_mask = torch.tensor([True, True, False, True, True])
    col_mask = torch.tensor([True, True, True, True, True, False, True])
    dirty = scores.clone()
    dirty[2, :] = float("nan")
    dirty[:, 5] = float("inf")
    for name in ("infonce", "nwj", "dv", "jsd", "js", "smile5", "tuba", "alpha0.5"):
        fn, _ = CASES[name]
        a = torch.zeros(5, dtype=torch.float64)
        clean = fn(scores, a, row_mask=row_mask, col_mask=col_mask)
        s = dirty.clone().requires_grad_(True)
        out = fn(s, a, row_mask=row_mask, col_mask=col_mask)
        out.backward()
        torch.testing.assert_close(out, clean)
        assert bool(torch.isfinite(s.grad).all())
        assert float(s.grad[2].abs().sum()) == 0.0 and float(s.grad[:, 5].abs().sum()) == 0.0


def test_full_masks_equal_no_masks():
    scores = torch.randn(2, 4, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    rm = torch.ones(2, 4, dtype=torch.bool)
    cm = torch.ones(2, 6, dtype=torch.bool)
    for fn in (bounds.infonce, bounds.nwj, bounds.dv, bounds.jsd, bounds.js):
        torch.testing.assert_close(
            fn(scores, offset=1), fn(scores, offset=1, row_mask=rm, col_mask=cm)
        )


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", sorted(CASES))
def test_dtypes(name, dtype):
    scores = 3 * torch.randn(4, 16, 16, generator=torch.Generator().manual_seed(9))
    scores = scores.to(dtype)
    a = torch.zeros(16, dtype=dtype)
    fn, _ = CASES[name]
    out = fn(scores, a)
    want_dtype = torch.float32 if dtype in (torch.bfloat16, torch.float16) else dtype
    assert out.dtype == want_dtype
    # The same problem computed in float64 from the same (rounded) inputs.
    exact = fn(scores.double(), a.double())
    tol = 1e-12 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(out.double(), exact, rtol=tol, atol=tol)


@pytest.mark.parametrize(
    "fn",
    [
        bounds.infonce,
        bounds.nwj,
        bounds.dv,
        bounds.jsd,
        bounds.js,
        bounds.smile,
        lambda s, **kw: bounds.tuba(s, 0.0, **kw),
        lambda s, **kw: bounds.alpha_infonce(s, 0.0, 0.5, **kw),
    ],
)
def test_bad_inputs_raise_clear_errors(fn):
    with pytest.raises(ValueError, match="at least 2 columns"):
        fn(torch.zeros(3, 1))
    with pytest.raises(ValueError, match=r"N \+ offset <= M"):
        fn(torch.zeros(4, 4), offset=1)
    with pytest.raises(TypeError, match="floating-point"):
        fn(torch.zeros(3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        fn(torch.zeros(3))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        fn([[0.0, 1.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match="offset"):
        fn(torch.zeros(3, 3), offset=-1)
    with pytest.raises(ValueError, match="row_mask"):
        fn(torch.zeros(3, 3), row_mask=torch.ones(4, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"torch\.bool"):
        fn(torch.zeros(3, 3), row_mask=torch.ones(3))
    with pytest.raises(ValueError, match="no valid row"):
        fn(torch.zeros(3, 3), row_mask=torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="positive"):
        fn(torch.zeros(3, 3), col_mask=torch.tensor([True, False, True]))
    with pytest.raises(ValueError, match="fewer than 2 valid columns"):
        fn(
            torch.zeros(3, 3),
            row_mask=torch.tensor([True, False, False]),
            col_mask=torch.tensor([True, False, False]),
        )


def test_baseline_and_alpha_errors():
    s = torch.zeros(2, 4, 4)
    with pytest.raises(ValueError, match=r"log_baseline has shape \(3,\)"):
        bounds.tuba(s, torch.zeros(3))
    with pytest.raises(ValueError, match="log_baseline has shape"):
        bounds.alpha_infonce(s, torch.zeros(3, 4), 0.5)
    with pytest.raises(TypeError, match="log_baseline"):
        bounds.tuba(s, "zero")
    with pytest.raises(TypeError, match="floating point"):
        bounds.tuba(s, torch.zeros(4, dtype=torch.long))
    for alpha in (0.0, 1.0, -0.1, 1.5, True, float("nan")):
        with pytest.raises(ValueError, match=r"alpha_infonce: alpha must be a finite number in "
                                             r"\(0, 1\)"):
            bounds.alpha_infonce(s, 0.0, alpha)
    for clip in (0.0, -1.0, "5"):
        with pytest.raises(ValueError, match="clip"):
            bounds.smile(s, clip)
    # broadcasting baselines are accepted: one per row, shared across leading dims
    torch.testing.assert_close(bounds.tuba(s, torch.zeros(4)), bounds.tuba(s, 0.0))


# ---------------------------------------------------------------------------------------------
# Non-finite scores (issue 15, item 4): the bounds' contract.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_non_finite_scores_raise_naming_scores_and_the_first_bad_index(name):
    """``s[0, 0] = inf`` gave nan and ``s[0, 1] = inf`` gave -inf, silently."""
    fn, _ = CASES[name]
    a = torch.zeros(4)
    for index, value in (((0, 0), math.inf), ((0, 1), math.inf), ((2, 3), math.nan)):
        s = torch.randn(4, 4, generator=torch.Generator().manual_seed(0))
        s[index] = value
        s[3, 3] = value  # a later bad entry: the first one is named
        where = re.escape(f"at index {index}")
        with pytest.raises(ValueError, match=rf"scores hold a non-finite value .* {where}"):
            fn(s, a)


def test_check_finite_switches_the_check_off_and_restores_it():
    s = torch.randn(4, 4)
    s[0, 1] = math.inf
    with bounds.check_finite(False):
        assert bounds.infonce(s) == -math.inf
        assert not bounds.check_finite.is_enabled()
    assert bounds.check_finite.is_enabled()
    bounds.check_finite(False)
    try:
        assert bounds.dv(s) < 0 or not math.isfinite(float(bounds.dv(s)))
    finally:
        bounds.check_finite(True)
    with pytest.raises(ValueError, match="scores"):
        bounds.dv(s)
    with pytest.raises(ValueError, match="check_finite: enabled must be True or False, got 1"):
        bounds.check_finite(1)


EXP_BOUNDS = {  # the bounds whose partition term leaves log space, as exp(...)
    "nwj": lambda s: bounds.nwj(s),
    "tuba": lambda s: bounds.tuba(s, log_baseline=0.0),
    "js": lambda s: bounds.js(s),
    "flo": lambda s: bounds.flo(s, None),
}


@pytest.mark.parametrize("name", sorted(EXP_BOUNDS))
def test_a_partition_term_that_overflows_is_refused_by_name(name):
    """The review: nwj on float32 scores with one entry at 100 returned -inf and the gradient
    -inf on every other entry (the true one there is -exp(-1) / 12), with no message; an
    optimiser step then made every parameter NaN."""
    fn = EXP_BOUNDS[name]
    s = torch.zeros(4, 4)
    s[0, 1] = 100.0
    with pytest.raises(ValueError, match=rf"{name}: the partition term .* overflows "
                                         r"torch\.float32 \(its log is \d+\.\d, above 88\.7\)"
                                         r".*float64 scores"):
        fn(s)
    # representable in float64: a finite value and gradient, which the check leaves alone
    s64 = s.double().requires_grad_(True)
    fn(s64).backward()
    assert torch.isfinite(s64.grad).all()
    # just below the overflow, float32 agrees with float64
    s[0, 1] = 80.0
    assert torch.isclose(fn(s).double(), fn(s.double()), rtol=1e-5)
    with bounds.check_finite(False):  # the check off: the overflow as IEEE gives it
        assert not math.isfinite(float(fn(torch.where(s > 1, 100.0, s))))


#: the partition term each overflow message names: only TUBA (and alpha-InfoNCE) have a baseline
EXP_TERMS = {"nwj": "exp(lme(S) - 1)", "tuba": "exp(lme(S - a))", "js": "exp(lme(S))"}


@pytest.mark.parametrize("name", sorted(EXP_TERMS))
def test_the_overflow_message_names_the_term_of_the_bound_called(name):
    """A new user: js and nwj named "exp(lme(S - a))", a baseline they take none of."""
    with pytest.raises(ValueError, match=rf"{name}: the partition term "
                                         rf"{re.escape(EXP_TERMS[name])} overflows"):
        EXP_BOUNDS[name](torch.full((3, 3), 100.0))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("bound", ["tuba", "alpha_infonce"])
def test_a_non_finite_tensor_log_baseline_is_refused_like_a_float(bound, bad):
    """A new user: tuba(S, nan) was refused, tuba(S, tensor of nan) returned nan (a learned
    baseline that diverged) and of inf -inf."""
    s = torch.randn(5, 5, dtype=torch.float64)
    call = {"tuba": lambda a, **k: bounds.tuba(s, a, **k),
            "alpha_infonce": lambda a, **k: bounds.alpha_infonce(s, a, 0.5, **k)}[bound]
    with pytest.raises(ValueError, match=r"finite number"):
        call(bad)
    baseline = torch.zeros(5, dtype=torch.float64)
    baseline[3] = bad
    with pytest.raises(ValueError, match=rf"{bound}: log_baseline holds a non-finite value "
                                         rf"\({bad}\) at row 3 \(rows of shape \(5,\)\)"):
        call(baseline)
    # a masked row's baseline may hold anything; the check off leaves IEEE's answer (for
    # alpha-InfoNCE a baseline of -inf is the limit a = 0, finite: refused all the same)
    rows = torch.tensor([True, True, True, False, True])
    cols = rows.clone()
    assert math.isfinite(float(call(baseline, row_mask=rows, col_mask=cols)))
    with bounds.check_finite(False):
        assert math.isfinite(float(call(baseline))) == (bound == "alpha_infonce"
                                                        and bad == -math.inf)


def test_local_loss_refuses_an_overflowing_partition_term_alike():
    # the local paths call the same finishers: a dot-product critic on large features
    loss = LocalMILoss("nwj", None, x_pattern="b c h w", y_pattern="b c")
    x, y = torch.full((2, 4, 3, 3), 6.0), torch.full((2, 4), 6.0)  # every score 144
    with pytest.raises(ValueError, match=r"nwj: the partition term .* overflows"):
        loss(x, y)
    x, y = x / 3, y / 3  # scores 16: finite
    assert math.isfinite(float(loss(x, y).loss))


# ---------------------------------------------------------------------------------------------
# The row-wise form: statistics accumulated block by block, one finisher.
# ---------------------------------------------------------------------------------------------

ROWWISE = {
    "infonce": {},
    "dv": {},
    "nwj": {},
    "jsd": {},
    "js": {},
    "smile": {},
    "tuba": {"log_baseline": 0.4},
}


@pytest.mark.parametrize("name", sorted(ROWWISE))
@given(problem=problems())
def test_statistics_merged_over_column_blocks_equal_the_whole_bound(name, problem):
    """The update/compute split: any split of the columns, merged, finishes to the bound; and
    each statistic's block gradient is autograd's."""
    scores, _, offset, row_mask, col_mask = problem
    spec = bounds.rowwise_bound(getattr(bounds, name))
    whole = spec.finish(
        bounds.row_statistics(
            scores, spec.statistics, offset=offset, row_mask=row_mask, col_mask=col_mask
        ),
        **ROWWISE[name],
    )
    fn = getattr(bounds, name)
    args = (ROWWISE[name]["log_baseline"],) if name == "tuba" else ()
    kw = {"offset": offset, "row_mask": row_mask, "col_mask": col_mask}
    torch.testing.assert_close(whole, fn(scores, *args, **kw), atol=1e-12, rtol=0)

    p = bounds._prepare(scores, offset, row_mask, col_mask, name)
    cut = scores.shape[-1] // 2
    for stat in spec.statistics:
        valid = p.neg_valid if stat.over == "negatives" else p.col_valid
        pieces = [
            stat.reduce_block(p.scores[..., a:b], None if valid is None else valid[..., a:b])
            for a, b in ((0, cut), (cut, scores.shape[-1]))
        ]
        merged = stat.merge(*pieces)
        full = stat.reduce_block(p.scores, valid)
        torch.testing.assert_close(merged, full, atol=1e-12, rtol=0, equal_nan=True)
        s = p.scores.clone().requires_grad_()
        g = torch.randn(full.shape, dtype=full.dtype, generator=torch.Generator().manual_seed(1))
        if p.row_valid is not None:  # rows without an entry have result -inf: no gradient
            g = torch.where(p.row_valid, g, 0.0)
        (auto,) = torch.autograd.grad((stat.reduce_block(s, valid) * g).nan_to_num().sum(), [s])
        manual = stat.block_gradient(p.scores, valid, full, g)
        torch.testing.assert_close(manual, auto, atol=1e-12, rtol=1e-9)


def test_rowwise_bounds_and_statistics_reject_bad_specs():
    with pytest.raises(ValueError, match="reduce must be one of"):
        bounds.RowStatistic("mean", "columns")
    with pytest.raises(ValueError, match="over must be one of"):
        bounds.RowStatistic("sum", "rows")
    with pytest.raises(ValueError, match="softplus"):
        bounds.Transform("relu")
    with pytest.raises(ValueError, match="positive"):
        bounds.Transform("clip", 0.0)
    st = bounds.row_statistics(torch.zeros(3, 3), ())
    with pytest.raises(KeyError, match=r"sum over columns was not accumulated.*got none"):
        st.of(bounds.RowStatistic("sum", "columns"))
    assert bounds.rowwise_bound(bounds.alpha_infonce) is None


def test_row_statistics_have_readable_names():
    """Regression (minor-local): messages interpolating a statistic printed its field repr."""
    stat = bounds.RowStatistic("logsumexp", "negatives", bounds.Transform("clip", 5.0))
    assert stat.name == str(stat) == "logsumexp of clip(5) over negatives"
    assert str(bounds.RowStatistic("sum", "negatives", bounds.Transform("softplus"))) == (
        "sum of softplus over negatives")
    assert str(bounds.RowStatistic("logsumexp", "columns")) == "logsumexp over columns"
    assert repr(bounds.RowStatistic("sum", "columns")).startswith("RowStatistic(reduce='sum'")


# ---------------------------------------------------------------------------------------------
# One formula source: no bound's formula outside mitools/bounds/.
# ---------------------------------------------------------------------------------------------

# Reductions that make up the bounds' formulas. Outside mitools/bounds/ they may only appear in
# these places (file, function), each for a reason that is not a bound's formula.
FORMULA_CALLS = {"logsumexp", "logaddexp", "softplus", "log_softmax", "softmax", "sigmoid",
                 "logsigmoid", "expm1", "log1p"}  # fmt: skip
ALLOWED = {
    ("local/kernels.py", "_verify"),  # the kernel's self-check against float64 softmax
    ("estimators/mine.py", "_update"),  # MINE's moving average of the partition, in log space
    ("critics/pooled.py", "weights"),  # attention weights over positions (GLoRIA), not a bound
}


def _formula_calls(path):
    import ast

    tree = ast.parse(path.read_text())
    found = []

    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            name = function
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = child.name
            if isinstance(child, ast.Call):
                f = child.func
                called = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
                if called in FORMULA_CALLS:
                    found.append((function, called, child.lineno))
            visit(child, name)

    visit(tree, None)
    return found


def test_no_bound_formula_outside_mitools_bounds():
    """The execution paths (mitools/local/) and the estimators take every formula from
    mitools.bounds: its statistics, their merging and gradients, and the finishers."""
    from pathlib import Path

    root = Path(bounds.__file__).parents[1]
    offenders = []
    for package in ("local", "estimators", "critics", "negatives.py", "samplers.py"):
        target = root / package
        for path in [target] if target.is_file() else sorted(target.rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            for function, called, line in _formula_calls(path):
                if (rel, function) not in ALLOWED:
                    offenders.append(f"{rel}:{line} {function}() calls {called}")
    assert not offenders, "formulas outside mitools/bounds/: " + "; ".join(offenders)
    # The fused paths get their statistics from mitools.bounds.
    for module in ("blocked", "attention"):
        source = (root / "local" / f"{module}.py").read_text()
        assert "from mitools.bounds import RowStatistic" in source, module


def test_every_rowwise_estimator_finishes_with_a_finisher_of_mitools_bounds():
    from mitools.estimators import available_estimators, get_estimator

    required = {"ba": {"entropy_y": 1.0}}  # BA is no bound without H(Y)
    for name in available_estimators():
        est = get_estimator(name, **required.get(name, {}))
        if est.rowwise is not None:
            finish = est.rowwise.finish  # SMILE's: a partial (picklable) of a bounds function
            finish = finish.func if isinstance(finish, functools.partial) else finish
            assert finish.__module__.startswith("mitools.bounds"), name


def test_smile_clip_inf_is_no_clipping() -> None:
    """tryout: the docs say tau = inf is DV on a JS-trained critic, and SMILE(clip=inf)
    accepted it, but bounds.smile(scores, clip=inf) and smile_rowwise(inf) raised
    "Transform('clip'): param must be a finite positive number, got inf". Now inf means no
    clipping, as None."""
    import math

    import numpy as np

    s = torch.tensor([[9.0, 7.0, -8.0], [6.0, 1.0, 2.0]], dtype=torch.float64)
    expected = bounds.dv(s)  # the value of SMILE without clipping
    for clip in (math.inf, float("inf"), np.float64(np.inf)):
        assert torch.allclose(bounds.smile(s, clip=clip), expected, rtol=0, atol=1e-12)
        assert bounds.smile_rowwise(clip).statistics == bounds.smile_rowwise(None).statistics
    # the clipped value differs (7 and 6 clipped to 5), so the test would see a clip slip in
    assert not torch.allclose(bounds.smile(s, clip=5.0), expected)


def test_tuba_baseline_is_a_log_baseline_of_any_sign() -> None:
    """tryout: docs/theory.rst introduced TUBA's a(x) as a baseline "> 0" with the tangent
    log z <= z/a - 1 + log a, but its formula (and bounds.tuba) use a as a *log*-baseline,
    e^{f - a}, of any sign. The page now states the log-baseline form; tuba with a negative
    log-baseline follows it exactly."""
    from pathlib import Path

    s = torch.tensor([[2.0, -1.0, 0.5], [0.3, 1.0, -2.0], [1.5, 0.0, 3.0]], dtype=torch.float64)
    a = torch.tensor([-0.7, 0.2, -1.5], dtype=torch.float64)
    off = ~torch.eye(3, dtype=torch.bool)
    expected = 1.0 + (s.diagonal() - a).mean() - torch.exp(s - a[:, None])[off].mean()
    assert torch.allclose(bounds.tuba(s, a), expected, rtol=0, atol=1e-12)
    page = (Path(__file__).resolve().parents[1] / "docs" / "theory.rst").read_text()
    assert "a(x) > 0" not in page and "*log-baseline*" in page


@pytest.mark.parametrize("name", ["infonce", "nwj", "dv", "js", "jsd", "smile", "club", "l1out"])
def test_mask_errors_name_the_bound(name) -> None:
    """tryout: a bad mask's error read "row_mask must have dtype torch.bool, got torch.int64"
    or "col_mask has shape (3,), which does not broadcast ..." without the bound that refused
    it; inside a pipeline of several bounds that left the user guessing. Each now starts with
    the bound's name (and an int mask's says how to convert it)."""
    fn = getattr(bounds, name)
    s = torch.zeros(4, 4)
    with pytest.raises(TypeError, match=rf"^{name}: row_mask must have dtype torch\.bool, got "
                                        r"torch\.int64; convert with row_mask\.bool\(\)"):
        fn(s, row_mask=torch.tensor([1, 1, 1, 0]))
    with pytest.raises(ValueError, match=rf"^{name}: col_mask has shape \(3,\), which does not "
                                         r"broadcast to the expected shape \(4,\)"):
        fn(s, col_mask=torch.ones(3, dtype=torch.bool))
    with pytest.raises(TypeError, match=rf"^{name}: row_mask must be a torch\.Tensor"):
        fn(s, row_mask=[True] * 4)


@pytest.mark.parametrize("name", ["infonce", "nwj", "dv", "js", "jsd", "smile"])
def test_meta_scores_are_refused_by_name(name):
    """Regression (a sixth new user's tryout): scores on the 'meta' device raised torch's
    "Tensor.item() cannot be called on meta tensors" from inside the checks."""
    with pytest.raises(ValueError, match=rf"{name}: scores are on the 'meta' device.*\(4, 4\)"):
        getattr(bounds, name)(torch.empty(4, 4, device="meta"))


_EVERY_BOUND = {
    "infonce": bounds.infonce, "nwj": bounds.nwj, "dv": bounds.dv, "js": bounds.js,
    "jsd": bounds.jsd, "smile": bounds.smile,
    "tuba": lambda s, **kw: bounds.tuba(s, 0.0, **kw),
    "alpha_infonce": lambda s, **kw: bounds.alpha_infonce(s, 0.0, 0.5, **kw),
    "club": bounds.club, "l1out": bounds.l1out,
}


@pytest.mark.parametrize("name", sorted(_EVERY_BOUND))
def test_every_bound_raises_the_errors_the_module_docstring_lists(name):
    """The "Errors" convention of :mod:`mitools.bounds` (fifteenth tryout, which gave the lower
    bounds the Raises section the upper bounds had): each listed case raises the listed type,
    the message starting with the bound's name."""
    fn, s = _EVERY_BOUND[name], torch.zeros(4, 4)
    b = torch.ones(4, dtype=torch.bool)
    cases = [
        (TypeError, lambda: fn([[0.0, 0.0], [0.0, 0.0]])),          # not a tensor
        (TypeError, lambda: fn(torch.zeros(4, 4, dtype=torch.long))),  # not floating point
        (TypeError, lambda: fn(s, row_mask=torch.ones(4))),           # mask not bool
        (ValueError, lambda: fn(torch.zeros(4))),                     # fewer than 2 dims
        (ValueError, lambda: fn(torch.zeros(1, 1))),                  # fewer than 2 columns
        (ValueError, lambda: fn(s, offset=-1)),
        (ValueError, lambda: fn(s, offset=1.5)),
        (ValueError, lambda: fn(s, offset=1)),                        # N + offset > M
        (ValueError, lambda: fn(s, row_mask=b[:3])),                  # does not broadcast
        (ValueError, lambda: fn(s, col_mask=b[:3])),
        (ValueError, lambda: fn(s, row_mask=~b)),                     # no valid row
        (ValueError, lambda: fn(s, col_mask=torch.tensor([False, True, True, True]))),
    ]
    for i, (error, call) in enumerate(cases):
        with pytest.raises(error, match=rf"^{name}: ") as caught:
            call()
        assert caught.type is error, (i, caught.value)
