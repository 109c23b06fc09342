"""mitools.estimators: modules agree with the functions, MINE's log-space moving average."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mitools import bounds
from mitools.estimators import (
    DV,
    JS,
    JSD,
    MINE,
    NWJ,
    SMILE,
    TUBA,
    AlphaInfoNCE,
    Estimator,
    FunctionalEstimator,
    InfoNCE,
    LogBaseline,
    ProblemIndex,
    available_estimators,
    get_estimator,
)


def _scores(*shape, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(*shape, generator=g, dtype=torch.float64)


@pytest.mark.parametrize(
    ("module", "fn"),
    [
        (InfoNCE(), bounds.infonce),
        (NWJ(), bounds.nwj),
        (DV(), bounds.dv),
        (JS(), bounds.js),
        (JSD(), bounds.jsd),
        (SMILE(clip=2.0), lambda s, **kw: bounds.smile(s, 2.0, **kw)),
        (TUBA(baseline=0.5), lambda s, **kw: bounds.tuba(s, 0.5, **kw)),
        (AlphaInfoNCE(0.1, baseline=0.5), lambda s, **kw: bounds.alpha_infonce(s, 0.5, 0.1, **kw)),
    ],
)
def test_modules_equal_functions(module, fn):
    s = _scores(3, 4, 7)
    kw = {"offset": 2, "row_mask": torch.tensor([True, True, False, True])}
    torch.testing.assert_close(module(s, **kw), fn(s, **kw))


# Estimators that cannot be built or called on scores alone, and what they need: BA needs the
# entropy H(Y), DoE the log marginal density of the columns (mitools.estimators.generative).
REQUIRED_INIT = {"ba": {"entropy_y": 1.0}}
REQUIRED_CALL = {"doe": {"log_marginal": torch.zeros(5)}}


def test_every_name_resolves_and_round_trips():
    for name in available_estimators():
        est = get_estimator(name, **REQUIRED_INIT.get(name, {}))
        assert isinstance(est, Estimator)
        assert est.name == name
        out = est(_scores(5, 5), **REQUIRED_CALL.get(name, {}))
        assert out.shape == ()
    assert get_estimator("InfoNCE").name == "infonce"
    assert get_estimator("alpha-infonce").name == "alpha_infonce"
    obj = SMILE(1.0)
    assert get_estimator(obj) is obj
    wrapped = get_estimator(bounds.dv)
    assert isinstance(wrapped, DV)  # a public bound function resolves to its estimator
    torch.testing.assert_close(wrapped(_scores(4, 4)), bounds.dv(_scores(4, 4)))
    own = get_estimator(lambda s, **kw: bounds.dv(s, **kw))
    assert isinstance(own, FunctionalEstimator)
    torch.testing.assert_close(own(_scores(4, 4)), bounds.dv(_scores(4, 4)))


def test_a_bound_function_returning_the_wrong_shape_is_refused_by_name():
    """A new user: a function reducing all of the scores (scores.mean()) was accepted, and
    LocalMILoss failed in a scatter ("Expected index [4] to be no larger than self [4]")."""
    from mitools.local import LocalMILoss

    def bad(scores, offset=0, row_mask=None, col_mask=None):
        return scores.mean()

    message = (r"the bound function 'bad' returned shape \(\) for scores of shape "
               r"\(2, 4, 4\): a bound returns one estimate per leading index, a tensor of "
               r"shape \(2,\)")
    with pytest.raises(ValueError, match=message):
        get_estimator(bad)(torch.randn(2, 4, 4))
    with pytest.raises(ValueError, match=r"'bad' returned shape \(\) .* shape \(4,\)"):
        LocalMILoss(bad, None)(torch.randn(6, 4, 2, 2), torch.randn(6, 4))
    with pytest.raises(ValueError, match=r"'half' returned a float"):
        FunctionalEstimator(lambda s, **k: 0.5, name="half")(torch.randn(3, 3))
    good = get_estimator(lambda s, **k: bounds.dv(s, **k))
    assert good(torch.randn(2, 4, 4)).shape == (2,)


@pytest.mark.parametrize("fn", [bounds.infonce, bounds.nwj, bounds.dv, bounds.js, bounds.jsd,
                                bounds.smile, bounds.club, bounds.vclub, bounds.l1out])
def test_a_bound_function_resolves_to_the_estimator_of_its_name(fn):
    """Regression (core review): ``bounds.club`` given as a function was wrapped as a lower
    bound, so LocalMILoss maximised the upper bound, sent its gradient to q, fitted q by no
    likelihood (model_loss 0) and accepted an unnormalised critic; ``bounds.jsd`` said nats."""
    by_function, by_name = get_estimator(fn), get_estimator(fn.__name__)
    assert type(by_function) is type(by_name)
    for attr in ("direction", "needs_log_density", "nats", "model_objective"):
        assert getattr(by_function, attr) == getattr(by_name, attr), attr
    scores = _scores(5, 5)
    if fn is not bounds.vclub:  # vCLUB draws its negatives
        torch.testing.assert_close(by_function(scores), fn(scores))


def test_bound_functions_that_need_their_own_arguments_are_refused_when_given():
    """Regression (core review): ``bounds.tuba`` / ``ba`` / ``doe`` / ``alpha_infonce`` / ``flo``
    were accepted and failed at the first forward with an internal TypeError."""
    for fn, arg, cls in [(bounds.tuba, "log_baseline", "TUBA"), (bounds.ba, "entropy_y", "BA"),
                         (bounds.doe, "log_marginal", "DoE"), (bounds.flo, "u", "FLO"),
                         (bounds.alpha_infonce, "log_baseline, alpha", "AlphaInfoNCE")]:
        with pytest.raises(TypeError, match=rf"bounds\.{fn.__name__} needs {arg}, .* by name "
                                            rf"\('{fn.__name__}'\) or as mitools\.estimators\."
                                            rf"{cls}\(\.\.\.\)"):
            get_estimator(fn)
        with pytest.raises(TypeError, match=rf"bounds\.{fn.__name__} needs {arg}"):
            FunctionalEstimator(fn)
    with pytest.raises(TypeError, match="log_likelihood is the objective that fits the model"):
        get_estimator(bounds.log_likelihood)
    with pytest.raises(TypeError, match=r"bounds\.club is an upper bound .* maximise as a lower "
                                        r"bound .* get_estimator\('club'\)"):
        FunctionalEstimator(bounds.club)
    with pytest.raises(TypeError, match=r"'mine' is called as fn\(scores, offset=, row_mask=, "
                                        r"col_mask=\), but it requires baseline and it does "
                                        r"not take offset: .*functools\.partial"):
        def mine(scores, baseline, *, row_mask=None, col_mask=None):
            return scores.mean()
        get_estimator(mine)
    assert FunctionalEstimator(bounds.jsd).nats is False and get_estimator(bounds.jsd).nats is False
    assert FunctionalEstimator(bounds.jsd, nats=True).nats is True
    assert FunctionalEstimator(lambda *a, **k: a[0].mean()).nats is True


def test_get_estimator_errors():
    with pytest.raises(ValueError, match="Did you mean 'infonce'"):
        get_estimator("infonse")
    with pytest.raises(ValueError, match="only apply to a bound given by name"):
        get_estimator(InfoNCE(), clip=1.0)
    with pytest.raises(TypeError, match="bound must be"):
        get_estimator(3)
    with pytest.raises(TypeError):
        get_estimator("smile", tau=1.0)
    with pytest.raises(ValueError, match="momentum"):
        MINE(momentum=1.0)
    with pytest.raises(ValueError, match="clip"):
        SMILE(clip=0.0)
    with pytest.raises(ValueError, match="alpha"):
        AlphaInfoNCE(alpha=1.0)
    with pytest.raises(ValueError, match="baseline"):
        TUBA(baseline="learned")


def test_jsd_is_flagged_as_not_nats():
    assert not JSD().nats
    assert all(get_estimator(n, **REQUIRED_INIT.get(n, {})).nats
               for n in available_estimators() if n != "jsd")


def test_mine_value_is_dv_and_gradient_uses_moving_average():
    mine = MINE(momentum=0.9)
    n = 6
    off = ~torch.eye(n, dtype=torch.bool)
    history = []
    for step in range(4):
        s = _scores(n, n, seed=step).requires_grad_(True)
        value = mine(s)
        torch.testing.assert_close(value, bounds.dv(s))  # the value is DV's
        value.backward()
        # Reference: EMA of the batch partition estimates, in plain (non-log) arithmetic.
        z = float(torch.exp(s.detach()[off]).mean())
        history.append(z)
        ema = history[0]
        for z_k in history[1:]:
            ema = 0.9 * ema + 0.1 * z_k
        assert math.isclose(float(mine.log_partition_ema.exp()), ema, rel_tol=1e-10)
        want = torch.eye(n, dtype=torch.float64) / n
        want -= torch.where(off, torch.exp(s.detach()), 0.0) / (n * (n - 1)) / ema
        torch.testing.assert_close(s.grad, want)


def test_mine_with_zero_momentum_has_dv_gradient():
    s = _scores(2, 5, 5, seed=1).requires_grad_(True)
    MINE(momentum=0.0)(s).sum().backward()
    g_mine = s.grad.clone()
    s.grad = None
    DV()(s).sum().backward()
    torch.testing.assert_close(g_mine, s.grad)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_mine_moving_average_is_log_space_safe_at_1e4(sign):
    mine = MINE(momentum=0.99)
    for step in range(5):
        s = (sign * 1e4 + _scores(8, 8, seed=step)).requires_grad_(True)
        value = mine(s)
        value.backward()
        assert bool(torch.isfinite(value))
        assert bool(torch.isfinite(s.grad).all())
        assert bool(torch.isfinite(mine.log_partition_ema))
        assert abs(float(mine.log_partition_ema) - sign * 1e4) < 10
    # float32 too
    mine32 = MINE()
    s32 = (1e4 + torch.randn(8, 8)).requires_grad_(True)
    mine32(s32).backward()
    assert bool(torch.isfinite(s32.grad).all())


def test_mine_eval_mode_does_not_update_and_shape_changes_need_reset():
    mine = MINE()
    mine(_scores(2, 4, 4).requires_grad_(True))
    before = mine.log_partition_ema.clone()
    mine.eval()
    torch.testing.assert_close(mine(_scores(2, 4, 4, seed=3)), bounds.dv(_scores(2, 4, 4, seed=3)))
    torch.testing.assert_close(mine.log_partition_ema, before)
    mine.train()
    with pytest.raises(ValueError, match="reset"):
        mine(_scores(3, 4, 4).requires_grad_(True))
    mine.reset()
    mine(_scores(3, 4, 4).requires_grad_(True))
    assert mine.log_partition_ema.shape == (3,)
    # state round-trips through state_dict
    fresh = MINE()
    fresh.load_state_dict(mine.state_dict())
    torch.testing.assert_close(fresh.log_partition_ema, mine.log_partition_ema)
    assert bool(fresh.initialized)


def test_learned_constant_baseline_receives_gradient_and_improves_tuba():
    torch.manual_seed(0)
    est = TUBA()  # constant log-baseline, starts at 0
    s = _scores(16, 16, scale=0.5) + 3.0  # scores far from the TUBA optimum a = log E e^S
    opt = torch.optim.SGD(est.parameters(), lr=0.1)
    start = float(est(s).detach())
    for _ in range(200):
        opt.zero_grad()
        (-est(s)).backward()
        opt.step()
    assert float(est(s).detach()) > start + 1.0
    # the optimal constant is log of the mean of exp over negatives
    off = ~torch.eye(16, dtype=torch.bool)
    want = float(torch.logsumexp(s[off], 0) - math.log(off.sum()))
    assert abs(float(est.log_baseline.constant.detach()) - want) < 1e-2


def test_network_baseline_needs_anchors():
    net = nn.Linear(3, 1)
    est = AlphaInfoNCE(alpha=0.5, baseline=net)
    x = torch.randn(5, 3)
    s = torch.randn(5, 5)
    out = est(s, anchors=x)
    torch.testing.assert_close(out, bounds.alpha_infonce(s, net(x).squeeze(-1), 0.5))
    with pytest.raises(ValueError, match="anchors"):
        est(s)
    bad = LogBaseline(nn.Linear(3, 2))
    with pytest.raises(ValueError, match=r"\(\.\.\., N\)"):
        bad(s, anchors=x)


@pytest.mark.parametrize("make", [lambda b: TUBA(baseline=b),
                                  lambda b: AlphaInfoNCE(alpha=0.5, baseline=b)])
def test_baseline_errors_start_with_the_estimators_name(make):
    """Regression: TUBA's baseline errors ("a learned baseline network needs the row-side
    inputs ...", "baseline must be 'constant' ...") did not say which estimator spoke, where
    its bound's own errors start "tuba: "; anchors of another number of rows reached the
    network (5 rows scored with anchors of 4 gave the network's shape error)."""
    name = make(0.0).name
    net = nn.Linear(3, 1)
    est, s = make(net), torch.randn(5, 5)
    with pytest.raises(ValueError, match=rf"^{name}: a learned baseline network needs the "
                                         r"row-side inputs: pass anchors=x"):
        est(s)
    with pytest.raises(ValueError, match=rf"^{name}: anchors has shape \(4, 3\) but must be "
                                         r"\(\.\.\., N, D\) with N = 5"):
        est(s, anchors=torch.randn(4, 3))
    with pytest.raises(ValueError, match=rf"^{name}: anchors has shape \(5,\)"):
        est(s, anchors=torch.randn(5))
    with pytest.raises(ValueError, match=rf"^{name}: the baseline network returned shape "
                                         r"\(5, 2\) for anchors \(5, 3\)"):
        make(nn.Linear(3, 2))(s, anchors=torch.randn(5, 3))
    with pytest.raises(ValueError, match=rf"^{name}: baseline must be 'constant'"):
        make("learned")
    with pytest.raises(TypeError, match=rf"^{name}: baseline must be 'constant'"):
        make([1.0])
    with pytest.raises(ValueError, match=rf"^{name}: baseline must be a finite number"):
        make(float("nan"))
    torch.testing.assert_close(est(s, anchors=torch.zeros(5, 3)),
                               make(float(net.bias.detach()))(s))  # right anchors: unchanged


# ---------------------------------------------------------------------------------------------
# Declared capabilities and MINE's per-problem averages.
# ---------------------------------------------------------------------------------------------


def test_estimators_declare_what_they_need():
    required = {"ba": {"entropy_y": 1.0}}  # BA is no bound without H(Y)
    every = {n: get_estimator(n, **required.get(n, {})) for n in available_estimators()}
    rowwise = {n for n, est in every.items() if est.rowwise is not None}
    assert rowwise == {"infonce", "dv", "nwj", "js", "jsd", "smile", "tuba", "mine",
                       "ba", "doe", "club", "flo"}  # fmt: skip
    assert {n for n, est in every.items() if est.needs_row_partition} == {
        "infonce", "alpha_infonce", "l1out"
    }
    assert [n for n, est in every.items() if est.per_problem_state] == ["mine"]
    assert not TUBA(baseline=0.0).needs_anchors and TUBA(baseline=nn.Linear(2, 1)).needs_anchors
    assert FunctionalEstimator(bounds.dv).rowwise is bounds.rowwise_bound(bounds.dv)
    assert FunctionalEstimator(lambda s, **kw: s.mean((-2, -1))).rowwise is None


@pytest.mark.parametrize("name", ["infonce", "dv", "nwj", "js", "jsd", "smile", "tuba", "mine"])
def test_finish_on_statistics_equals_forward_on_scores(name):
    est = get_estimator(name).eval()
    s = _scores(3, 5, 7)
    kw = {"offset": 2, "row_mask": torch.tensor([True, False, True, True, True])}
    stats = bounds.row_statistics(s, est.rowwise.statistics, **kw)
    torch.testing.assert_close(est.finish(stats), est(s, **kw))


def test_tuba_network_baseline_takes_the_statistics_path_with_anchors():
    torch.manual_seed(0)
    est = TUBA(baseline=nn.Linear(3, 1).double())
    s, x = _scores(2, 4, 4), _scores(2, 4, 3, seed=1)
    stats = bounds.row_statistics(s, est.rowwise.statistics)
    torch.testing.assert_close(
        est.finish(stats, anchors=x), bounds.tuba(s, est.log_baseline.network(x).squeeze(-1))
    )


def test_mine_keeps_one_average_per_problem_of_the_index():
    """Problems are identified by the index, not by their slot in the batch; inactive ones
    keep their average."""
    mine = MINE(momentum=0.5)
    a, b = _scores(1, 6, 6, seed=1), _scores(1, 6, 6, seed=2)
    off = ~torch.eye(6, dtype=torch.bool)

    def log_z(s):
        return float(torch.logsumexp(s.detach()[0][off], 0) - math.log(30))

    mine(a.requires_grad_(), problems=ProblemIndex(torch.tensor([4]), (2, 3), None))
    mine(b.requires_grad_(), problems=ProblemIndex(torch.tensor([1]), (2, 3), None))
    assert mine.log_partition_ema.shape == (2, 3)
    assert mine.seen.flatten().tolist() == [False, True, False, False, True, False]
    assert float(mine.log_partition_ema.flatten()[4]) == pytest.approx(log_z(a))
    assert float(mine.log_partition_ema.flatten()[1]) == pytest.approx(log_z(b))
    mine(b, problems=ProblemIndex(torch.tensor([4]), (2, 3), torch.tensor([False])))
    assert float(mine.log_partition_ema.flatten()[4]) == pytest.approx(log_z(a))  # inactive
    mine(b, problems=ProblemIndex(torch.tensor([4]), (2, 3), torch.tensor([True])))
    want = math.log(0.5 * math.exp(log_z(a)) + 0.5 * math.exp(log_z(b)))
    assert float(mine.log_partition_ema.flatten()[4]) == pytest.approx(want)
    with pytest.raises(ValueError, match="reset"):
        mine(b, problems=ProblemIndex(torch.tensor([0]), (4,), None))


def test_mine_loads_a_state_saved_before_per_problem_averages():
    old = {"log_partition_ema": torch.tensor([0.5, 1.5]), "initialized": torch.tensor(True)}
    mine = MINE()
    mine.load_state_dict(old)
    assert mine.seen.tolist() == [True, True]
    torch.testing.assert_close(mine.log_partition_ema, old["log_partition_ema"])


def test_mine_load_keeps_the_modules_device():
    """A checkpoint's averages take the module's device, as every other buffer does: a CPU
    state loaded into MINE on another device left them on the CPU (``initialized`` alone
    stayed), so the next training step indexed across devices."""
    import warnings

    trained = MINE(0.9)
    trained(torch.randn(2, 5, 5, requires_grad=True)).sum().backward()
    state = trained.state_dict()
    elsewhere = MINE(0.9).to("meta")  # a device other than the checkpoint's, without a GPU
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # copying into meta tensors is a no-op, and says so
        elsewhere.load_state_dict(state)
    assert {t.device.type for t in elsewhere.buffers()} == {"meta"}
    assert elsewhere.log_partition_ema.shape == (2,)


@pytest.mark.parametrize("name, kwargs", [
    ("infonce", {}), ("dv", {}), ("nwj", {}), ("js", {}), ("mine", {}),
    ("tuba", {}), ("tuba", {"baseline": 0.7}), ("tuba", {"baseline": -1.5}),
    # alpha-InfoNCE's offset was 0 whatever its baseline: -0.842 nats at baseline -1.5 and
    # alpha 0.01, where the truth is 1 and the baseline as offset gives 1.022
    ("alpha_infonce", {"alpha": 0.01, "baseline": -1.5}),
    ("alpha_infonce", {"alpha": 0.5, "baseline": 0.7}), ("alpha_infonce", {"alpha": 0.01}),
])
def test_optimal_offset_is_the_best_constant_on_the_pointwise_mi(name, kwargs) -> None:
    """The declared offset c maximises the bound over constants added to the pointwise MI
    (on a large sample, in float64): estimate_mi starts the Gaussian fit there. Before, the
    start of bound='nwj' was the pointwise MI itself, 1/e = 0.37 nats below the truth."""
    from mitools.estimators import get_estimator
    from mitools.tasks import CorrelatedGaussian

    task = CorrelatedGaussian(dim=2, mi=1.0, dtype=torch.float64)
    x, y = task.sample(1500, generator=3)
    pmi = task.optimal_critic(x, y)
    est = get_estimator(name, **kwargs).double().eval()
    c = est.optimal_offset
    best = float(est(pmi + c).detach())  # TUBA's learned baseline carries a graph
    # a wrong offset costs NWJ and TUBA e^d - 1 - d: 0.02 at d = 0.2, 0.37 at d = 1 (SMILE,
    # not a bound, is left out: its clip of DV's scores moves it by ~1e-3 per 0.5 of shift)
    for delta in (-0.5, -0.2, 0.2, 0.5):
        assert best >= float(est(pmi + c + delta).detach()) - 1e-9, (name, kwargs, delta)
    assert abs(best - task.mutual_information()) < 0.08


def test_network_baseline_takes_float64_anchors_and_broadcast_leading_dims() -> None:
    """tryout 7: a float32 baseline network given float64 anchors (a float64 task in
    train_critic) failed with torch's "mat1 and mat2 must have the same dtype"; anchors
    (N, D) shared by scores (K, N, N) were refused as not "(..., N) or (..., N, 1)" although
    the network returned (N, 1); numpy anchors were said to have "shape ndarray"."""
    torch.manual_seed(0)
    net = nn.Linear(3, 1)
    scores = torch.randn(2, 4, 4, dtype=torch.float64)
    x = torch.randn(4, 3, dtype=torch.float64)
    a = net(x.float()).squeeze(-1).double()  # the baseline of each row, in the network's dtype
    for est, bound in ((TUBA(baseline=net), lambda s: bounds.tuba(s, a)),
                       (AlphaInfoNCE(alpha=0.3, baseline=net),
                        lambda s: bounds.alpha_infonce(s, a, 0.3))):
        got = est(scores, anchors=x)  # one x for both problems
        torch.testing.assert_close(got, bound(scores))
        torch.testing.assert_close(got, est(scores, anchors=x.expand(2, 4, 3)))
        with pytest.raises(TypeError, match=r"anchors must be a torch.Tensor \(\.\.\., N, D\), "
                                            r"got ndarray"):
            est(scores, anchors=x.numpy())
    with pytest.raises(ValueError, match=r"log_baseline has shape \(3, 4\) but must broadcast"):
        TUBA(baseline=net)(scores, anchors=torch.randn(3, 4, 3))


def test_alpha_infonce_checks_the_scores_before_its_baseline() -> None:
    """tryout 7: AlphaInfoNCE computed its log-baseline before the bound checked the scores,
    so numpy scores failed in torch's ``.to()`` and 0-dim scores with "too many indices";
    both are the bound's own errors now, as TUBA's."""
    with pytest.raises(TypeError, match=r"alpha_infonce: scores must be a torch\.Tensor, got "
                                        r"ndarray"):
        AlphaInfoNCE()(torch.zeros(3, 3).numpy())
    with pytest.raises(ValueError, match=r"alpha_infonce: scores must have shape \(\.\.\., N, "
                                         r"M\) with at least 2 dimensions, got shape \(\)"):
        AlphaInfoNCE()(torch.tensor(1.0))
