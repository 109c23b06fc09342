"""Extreme critic scores in float32 and float16 (tryout 19): values and gradients against
float64 arithmetic written out here (plain loops over the same inputs).

Each test holds the input that exposed a precision loss and its float64 value; the library
must give that value to the rounding of the result, not to the rounding of some larger
intermediate:

* the stop-gradient construction of SMILE, JS and DoE (``objective + (value -
  objective).detach()``) rounded the value at the scale of the objective: a SMILE estimate of
  0.123456 nats came out 0.123047 when the critic scored the negatives about 30000;
* FLO tied to the critic (``u = -S_pos``) rounded ``-u + lme`` at the scale of the positive:
  with positives of 30000 the gradient of the negatives was 1e-3 off, relative;
* ``reduce(..., "logsumexp")`` summed float16 exponentials in float16: 70000 zeros gave inf.
"""

from __future__ import annotations

import math

import pytest
import torch

from mitools import bounds
from mitools.local import GlobalMILoss
from mitools.reductions import reduce

F32_EPS = 2.0**-24  # float32's unit roundoff


def _as_features(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Features whose dot products are exactly ``scores (N, M)`` (``x`` the identity rows,
    ``y = scores^T``), so the local losses score the same matrix (N = M)."""
    n = scores.shape[0]
    return torch.eye(n, dtype=scores.dtype), scores.T.contiguous()


# SMILE (clip 5): positives 5.123456 (float32), negatives 30000 clipped to 5. Its value,
# mean(S_ii) - lme(clip(S_ij)) = 5.123456001281738 - 5, in float64:
SMILE_SCORES = [[5.123456, 3e4], [3e4, 5.123456]]
SMILE_VALUE = 0.12345600128173828


def test_smile_value_is_exact_when_its_objective_is_large():
    """The JSD objective is about -15000 here; the value used to come out 0.123046875."""
    s = torch.tensor(SMILE_SCORES)
    assert float(s[0, 0].double()) - 5.0 == SMILE_VALUE  # the float64 reference
    got = bounds.smile(s, clip=5.0)
    assert abs(float(got) - SMILE_VALUE) <= 4 * F32_EPS


@pytest.mark.parametrize("backend", ["dense", "blocked"])
def test_smile_value_is_exact_on_every_path(backend):
    """The local losses' paths call the same finisher (attention does not take SMILE)."""
    x, y = _as_features(torch.tensor(SMILE_SCORES))
    loss = GlobalMILoss("smile", None, x_pattern="b c", y_pattern="b c", backend=backend)
    got = loss(x, y).estimate
    assert abs(float(got) - SMILE_VALUE) <= 4 * F32_EPS


def test_smile_gradient_is_still_the_jensen_shannon_objectives():
    """The value changed its construction, not its gradient: that of JSD (float64 loops)."""
    s = torch.tensor(SMILE_SCORES, dtype=torch.float64)
    s[0, 1], s[1, 0] = 2.5, -1.5  # unsaturated softplus terms
    x = s.clone().requires_grad_()
    bounds.smile(x).backward()
    sigmoid = lambda t: 1.0 / (1.0 + math.exp(-t))  # noqa: E731
    want = [[sigmoid(-s[i, j].item()) / 2 if i == j else -sigmoid(s[i, j].item()) / 2
             for j in range(2)] for i in range(2)]  # fmt: skip
    torch.testing.assert_close(x.grad, torch.tensor(want, dtype=torch.float64), rtol=1e-12,
                               atol=0)  # fmt: skip


def test_doe_value_is_exact_when_log_densities_are_large():
    """Positives 30000.123046875 (float32), log q(y) = 30000: DoE = 0.123046875 exactly in
    float64; the objective (positive + log_marginal, 60000) rounded it to 0.125."""
    s = torch.tensor([[3e4 + 0.123, -1.0], [-1.0, 3e4 + 0.123]])
    want = sum(float(s[i, i].double()) - 3e4 for i in range(2)) / 2
    assert want == 0.123046875
    got = bounds.doe(s, torch.tensor([3e4, 3e4]))
    assert float(got) == want
    # the gradient is still that of the two log-likelihoods: 1/N on each positive
    x = s.clone().requires_grad_()
    bounds.doe(x, torch.tensor([3e4, 3e4])).backward()
    torch.testing.assert_close(x.grad, torch.eye(2) / 2)


# FLO tied to the critic (u = None, u = -S_ii): positives 30000, negatives of order 1.
FLO_SCORES = [[3e4, 0.3, -0.2], [0.1, 3e4, 0.7], [0.5, -0.4, 3e4]]


def _flo_reference(s: list[list[float]]) -> tuple[float, list[list[float]]]:
    """FLO with u = -S_ii in float64: 1 + mean_i (S_ii - mean_{j != i} e^{S_ij}), and its
    gradient (1/N on the positives, -e^{S_ij} / ((M - 1) N) on the negatives)."""
    n, m = len(s), len(s[0])
    value, grad = 0.0, [[0.0] * m for _ in range(n)]
    for i in range(n):
        value += s[i][i] - sum(math.exp(s[i][j]) for j in range(m) if j != i) / (m - 1)
        for j in range(m):
            grad[i][j] = 1.0 / n if j == i else -math.exp(s[i][j]) / ((m - 1) * n)
    return 1.0 + value / n, grad


@pytest.mark.parametrize("path", ["function", "dense", "blocked", "attention"])
def test_flo_gradient_of_the_negatives_with_dominant_positives(path):
    """The gradient of the negatives was 9.7e-4 off, relative, in float32 (the float32
    rounding of 30000 + lme, cancelled by - S_pos); it is now float32's rounding."""
    s = torch.tensor(FLO_SCORES)
    want_value, want_grad = _flo_reference(s.double().tolist())
    if path == "function":
        x = s.clone().requires_grad_()
        value = bounds.flo(x, None)
        value.backward()
        grad = x.grad
    else:  # the same scores from features; d/dy of the scores is x = I, so dy = grad^T
        x, y = _as_features(s)
        y.requires_grad_()
        loss = GlobalMILoss("flo", None, x_pattern="b c", y_pattern="b c", backend=path)
        out = loss(x, y)
        assert loss.last_backend == path
        value = out.estimate
        (-out.loss).backward()
        grad = y.grad.T
    negatives = ~torch.eye(3, dtype=torch.bool)
    want = torch.tensor(want_grad, dtype=torch.float64)
    rel = ((grad.double() - want).abs() / want.abs())[negatives].max()
    assert float(rel) <= 1e-5
    # the value: within one rounding of 30000 (its own scale)
    assert abs(float(value.detach()) - want_value) <= 2 * 3e4 * F32_EPS


def test_logsumexp_reduction_of_many_float16_values_is_finite():
    """70000 float16 zeros: log 70000 = 11.156 (float16 11.15625); torch's float16
    logsumexp summed the exponentials in float16 and gave inf, with a zero gradient."""
    k = 70000
    values = torch.zeros(k, dtype=torch.float16, requires_grad=True)
    active = torch.ones(k, dtype=torch.bool)
    out = reduce(values, active, "logsumexp")
    assert out.dtype == torch.float16
    assert abs(float(out.detach()) - math.log(k)) <= 2.0**-8  # half of float16's spacing at 11
    out.backward()
    assert values.grad is not None
    # 1/70000 is a float16 subnormal: within half its spacing, 2^-25
    torch.testing.assert_close(values.grad.float(), torch.full((k,), 1.0 / k), rtol=1e-3,
                               atol=2.0**-25)  # fmt: skip


def test_logsumexp_reduction_of_float16_matches_float64():
    """Mixed float16 values with a few inactive: against float64 log-sum-exp on the same
    values."""
    gen = torch.Generator().manual_seed(0)
    values = (8 * torch.randn(50000, generator=gen)).to(torch.float16)
    active = torch.rand(50000, generator=gen) > 0.1
    want = torch.logsumexp(values.double()[active], 0)
    got = reduce(values, active, "logsumexp")
    assert abs(float(got) - float(want)) <= 2.0**-11 * abs(float(want))


def test_float16_scores_at_the_top_of_their_range():
    """Documented (mitools.bounds): float16 scores up to 65504 are upcast and exact; one that
    overflowed float16 before the call is inf, refused by name and index."""
    s = torch.tensor([[3e4, 0.0], [0.0, 3e4]], dtype=torch.float16)
    # InfoNCE = mean_i (S_ii - log(e^{S_ii} + 1)) + log 2 = log 2 - log1p(e^-30000)
    assert float(bounds.infonce(s)) == pytest.approx(math.log(2.0), abs=F32_EPS)
    over = torch.tensor([[7e4, 0.0], [0.0, 1.0]]).half()  # 70000 -> inf in float16
    with pytest.raises(ValueError, match=r"infonce: scores hold a non-finite value \(inf\) at "
                                         r"index \(0, 0\)"):  # fmt: skip
        bounds.infonce(over)


def _alpha_infonce_reference(s: torch.Tensor, a: float, alpha: float) -> torch.Tensor:
    """alpha-InfoNCE (Poole et al. eq. 11) in float64, written out entry by entry from its
    definition (m_ij from the leave-one-out log-mean-exp of row i without column j)."""
    n, m = s.shape

    def lme(values: list[torch.Tensor]) -> torch.Tensor:
        return torch.logsumexp(torch.stack(values), 0) - math.log(len(values))

    def m_ij(i: int, j: int) -> torch.Tensor:
        loo = lme([s[i, k] for k in range(m) if k != j])
        return torch.logaddexp(loo + math.log(alpha), torch.tensor(a + math.log1p(-alpha),
                                                                   dtype=s.dtype))

    joint = [s[i, i] - m_ij(i, j) for i in range(n) for j in range(m) if j != i]
    marginal = [s[i, j] - m_ij(i, i) for i in range(n) for j in range(m) if j != i]
    return 1.0 + torch.stack(joint).mean() - torch.exp(lme(marginal))


ALPHA_CASES = {
    # rows of equal scores 10^4, a = 0, alpha = 0.01: -94.424 in float32, for -94.395
    "equal rows": (torch.full((6, 6), 1e4), 0.0, 0.01),
    # one dominant entry per row (the positives), negatives of order 1
    "dominant positives": (
        torch.randn(6, 6, generator=torch.Generator().manual_seed(0)).fill_diagonal_(1e4),
        0.0, 0.01,
    ),
    # a batch of one row, scores of both signs far apart, a at the scale of the third
    "one row": (torch.tensor([[1e4, -1e4, 0.0]]), 0.0, 0.5),
    # ties at the top of each row, baseline at the scores' scale
    "ties": (torch.tensor([[3e4, 3e4, 0.0], [3e4, 3e4, 3e4 - 1], [0.0, 3e4, 3e4]]), 3e4, 0.5),
}


@pytest.mark.parametrize("case", list(ALPHA_CASES))
def test_alpha_infonce_at_large_scores_is_exact_to_float32(case):
    """Its log-baseline m_ij (at the scale of the scores, 10^4) was formed and then subtracted
    from the scores: its float32 rounding, 1e-3, went into exp(S - m), so equal rows of 10^4
    gave -94.424 for -94.395 (the value's own rounding is 1e-5) and a row [10^4, -10^4, 0]
    1.72005 for 1.71963. Each difference is now formed from differences of the inputs."""
    scores, a, alpha = ALPHA_CASES[case]
    ref_in = scores.double().requires_grad_()
    want = _alpha_infonce_reference(ref_in, a, alpha)
    (want_grad,) = torch.autograd.grad(want, ref_in)
    x = scores.clone().requires_grad_()
    got = bounds.alpha_infonce(x, a, alpha)
    got.backward()
    want = want.detach()
    assert abs(float(got.detach()) - float(want)) <= 16 * F32_EPS * max(1.0, abs(float(want)))
    scale = float(want_grad.abs().max())
    assert float((x.grad.double() - want_grad).abs().max()) <= 1e-5 * scale
    if case == "equal rows":
        assert float(want.detach()) == pytest.approx(-94.39482981407755, abs=1e-9)


def test_infonce_precision_at_scores_of_ten_thousand_is_as_documented():
    """Documented (mitools.bounds, "Precision"): the log-sum-exps are held at the scale of the
    scores, so float32 rows of equal scores 10^4 give InfoNCE about 0.00034 for 0: within
    10^4 x 2^-24 x the sum of |gradient| (2 (1 - 1/M))."""
    s = torch.full((8, 8), 1e4)
    x = s.clone().requires_grad_()
    got = bounds.infonce(x)
    got.backward()
    grad_sum = float(x.grad.abs().sum())
    assert grad_sum == pytest.approx(2 * (1 - 1 / 8), rel=1e-3)
    assert abs(float(got.detach())) <= 1e4 * F32_EPS * grad_sum
    # float64 holds it to its own rounding, 10^4 x 2^-53
    assert abs(float(bounds.infonce(s.double()))) <= 1e4 * 2.0**-53 * grad_sum
