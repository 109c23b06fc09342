"""The extension API as a user who writes their own pieces meets it (sixteenth tryout).

A bound of one's own (an :class:`~mitools.estimators.Estimator` declaring a
:class:`~mitools.bounds.RowwiseBound`, or overriding ``finish``), a critic of one's own (a plain
module, or a :class:`~mitools.critics.Critic` with ``factorise``) and a pair sampler of one's
own (a :class:`~mitools.samplers.PairSampler` with ``_pairs``) give the values of a float64
brute-force loop on every execution path; pieces that return the wrong shape are named.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import mitools
from mitools.bounds import RowStatistic, RowwiseBound, rows_logsumexp, rows_mean
from mitools.critics import Critic, dot_scores
from mitools.estimators import Estimator
from mitools.local import GlobalMILoss, LocalMILoss
from mitools.samplers import PairSampler, PositionPairs
from mitools.training import train_critic

COLUMNS = RowStatistic("logsumexp", "columns")
NEGATIVES = RowStatistic("logsumexp", "negatives")
B, C = 6, 4
PATHS = [
    {"backend": "dense"},
    {"backend": "dense", "chunk_size": 4},
    {"backend": "blocked", "chunk_size": 2, "column_chunk_size": 4},
    {"backend": "blocked"},
    {"backend": "attention"},
]


class InfoNCEMinusBaseline(Estimator):
    """InfoNCE with a fixed log-baseline subtracted: a new finisher of the declared statistic."""

    name = "infonce_minus_b"

    def __init__(self, b: float):
        super().__init__()
        self.b = b
        self.rowwise = RowwiseBound("infonce_minus_b", (COLUMNS,), self._finish)

    def _finish(self, st):
        n_cols = st.n_cols.expand_as(st.positive)
        return rows_mean(st.positive - st.of(COLUMNS) + torch.log(n_cols) - self.b, st)


class NWJWithBaseline(Estimator):
    """NWJ with a fixed log-baseline ``a``: ``finish`` overridden, as for a module's state."""

    name = "nwj_a"
    rowwise = RowwiseBound("nwj_a", (NEGATIVES,), lambda st: st.positive)  # finish overrides

    def __init__(self, a: float):
        super().__init__()
        self.a = a

    def finish(self, stats, *, anchors=None, problems=None):
        neg = rows_logsumexp(stats.of(NEGATIVES), stats) - torch.log(stats.n_neg)
        return rows_mean(stats.positive, stats) - self.a + 1 - torch.exp(neg - self.a)


def loop_infonce_minus_b(s, b):
    n, m = s.shape
    return sum(s[i, i] - torch.logsumexp(s[i], 0) + math.log(m) - b for i in range(n)) / n


def loop_nwj(s, a):
    n, m = s.shape
    pos = sum(s[i, i] for i in range(n)) / n
    neg = [torch.exp(s[i, j] - a) for i in range(n) for j in range(m) if j != i]
    return pos - a + 1 - sum(neg) / len(neg)


ESTIMATORS = [
    (lambda: InfoNCEMinusBaseline(0.5), lambda s: loop_infonce_minus_b(s, 0.5)),
    (lambda: NWJWithBaseline(0.3), lambda s: loop_nwj(s, 0.3)),
]


def _features(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, C, 2, 3, generator=g, dtype=torch.float64)
    y = torch.randn(B, C, generator=g, dtype=torch.float64)
    return x, y


@pytest.mark.parametrize("make, loop", ESTIMATORS)
def test_an_estimator_of_ones_own_equals_the_loop_on_every_path(make, loop):
    x, y = _features()
    reference = torch.stack(
        [loop(x[:, :, h, w] @ y.T) for h in range(2) for w in range(3)]
    ).reshape(2, 3)
    s = x[:, :, 0, 0] @ y.T
    torch.testing.assert_close(make()(s), loop(s), rtol=0, atol=1e-12)
    grads = []
    for kw in PATHS:
        xx = x.clone().requires_grad_()
        loss_fn = LocalMILoss(make(), None, **kw)
        out = loss_fn(xx, y)
        assert loss_fn.last_backend == kw["backend"]
        torch.testing.assert_close(out.local, reference, rtol=0, atol=1e-12)
        out.loss.backward()
        grads.append(xx.grad)
    for g in grads[1:]:
        torch.testing.assert_close(g, grads[0], rtol=0, atol=1e-12)
    pooled = GlobalMILoss(make(), None, pool="mean")(x, y)
    torch.testing.assert_close(pooled.estimate, loop(x.flatten(2).mean(-1) @ y.T),
                               rtol=0, atol=1e-12)


@pytest.mark.filterwarnings("ignore:estimate_mi.*ran to max_steps:RuntimeWarning")
def test_estimate_mi_takes_an_estimator_of_ones_own():
    """InfoNCE minus a baseline of 0 is InfoNCE: estimate_mi gives the named bound's result."""
    x, y = mitools.CorrelatedGaussian(dim=1, mi=0.5).sample(200, torch.Generator().manual_seed(0))
    kw = {"critic": "bilinear", "seed": 0, "max_steps": 30, "folds": 2}
    own = mitools.estimate_mi(x, y, bound=InfoNCEMinusBaseline(0.0), **kw)
    named = mitools.estimate_mi(x, y, bound="infonce", **kw)
    assert own.value == pytest.approx(named.value, abs=1e-9)


# -- an estimator of one's own that returns the wrong thing is named ----------------------------

class ScalarFinish(Estimator):
    name = "scalar"
    rowwise = RowwiseBound("scalar", (NEGATIVES,), lambda st: st.positive.mean())


class PerRowFinish(Estimator):
    name = "per_row"
    rowwise = RowwiseBound("per_row", (NEGATIVES,), lambda st: st.positive - st.of(NEGATIVES))


class FloatFinish(Estimator):
    name = "float"
    rowwise = RowwiseBound("float", (NEGATIVES,), lambda st: 1.0)


class ScalarForward(Estimator):
    name = "scalar_forward"

    def forward(self, scores, **kwargs):
        return scores.diagonal(dim1=-2, dim2=-1).mean()


@pytest.mark.parametrize("kw", PATHS, ids=lambda kw: "-".join(map(str, kw.values())))
@pytest.mark.parametrize("estimator, error, got", [
    (ScalarFinish(), ValueError, r"returned shape \(\)"),
    (PerRowFinish(), ValueError, r"returned shape \(6, 6\)"),
    (FloatFinish(), TypeError, "returned a float"),
])
def test_a_finisher_of_the_wrong_shape_is_named_on_every_path(kw, estimator, error, got):
    # before: "reduce: values must have shape (K,)", or torch's ones_like() on a float
    x, y = _features()
    name = type(estimator).__name__
    with pytest.raises(error, match=rf"{name} \('\w+'\)\.finish {got}.*shape \(6,\)"):
        LocalMILoss(estimator, None, **kw)(x, y)


def test_a_forward_of_the_wrong_shape_is_named():
    x, y = _features()
    with pytest.raises(ValueError, match=r"ScalarForward.*forward returned shape \(\) for scores "
                                         r"of shape \(6, 6, 6\).*shape \(6,\)"):
        LocalMILoss(ScalarForward(), None)(x, y)
    with pytest.raises(ValueError, match=r"ScalarForward.*shape \(\).*shape \(3,\)"):
        ScalarForward()(torch.zeros(3, 4, 4))
    with pytest.raises(ValueError, match=r"ScalarFinish.*finish returned shape \(\).*\(2,\)"):
        ScalarFinish()(torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match=r"ScalarFinish.*finish returned shape \(\).*\(1,\)"):
        GlobalMILoss(ScalarFinish(), None, pool="mean")(x, y)


def test_an_estimator_declaring_nothing_usable_is_refused_at_construction():
    class Forgot(Estimator):
        name = "forgot"

    class WrongRowwise(Estimator):
        name = "wrong"
        rowwise = "infonce"

    with pytest.raises(TypeError, match="Forgot declares no rowwise bound and does not "
                                        "override forward"):
        LocalMILoss(Forgot(), None)
    with pytest.raises(TypeError, match="Forgot declares no rowwise"):
        mitools.get_estimator(Forgot())
    with pytest.raises(TypeError, match=r"WrongRowwise.rowwise must be None or a "
                                        r"mitools.bounds.RowwiseBound.*got str 'infonce'"):
        LocalMILoss(WrongRowwise(), None)
    with pytest.raises(NotImplementedError, match="Forgot must implement forward, or declare "
                                                  "rowwise"):
        Forgot()(torch.zeros(3, 3))
    with pytest.raises(TypeError, match="statistics must be a tuple of RowStatistic"):
        RowwiseBound("bad", ("logsumexp",), lambda st: st.positive)
    with pytest.raises(TypeError, match="finish must be a function"):
        RowwiseBound("bad", (COLUMNS,), None)
    # a single statistic is a tuple of one (a missing comma)
    assert RowwiseBound("one", COLUMNS, lambda st: st.positive).statistics == (COLUMNS,)


# -- a critic of one's own ------------------------------------------------------------------------

W = torch.randn(C, C, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(W.clone())

    def forward(self, x, y):
        return x @ self.w @ y.transpose(-1, -2)


class Factorised(Critic):
    separable = True
    dim_x = dim_y = C

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(W.clone())

    def forward(self, x, y):
        return dot_scores(*self.factorise(x, y))

    def factorise(self, x, y):
        return x @ self.w, y


@pytest.mark.parametrize("make, paths", [(Plain, PATHS[:2]), (Factorised, PATHS)])
def test_a_critic_of_ones_own_equals_the_loop_on_every_path(make, paths):
    x, y = _features()
    reference = torch.stack([loop_infonce_minus_b(x[:, :, h, w] @ W @ y.T, 0.0)
                             for h in range(2) for w in range(3)]).reshape(2, 3)
    for kw in paths:
        loss_fn = LocalMILoss("infonce", make(), **kw)
        out = loss_fn(x, y)
        assert loss_fn.last_backend == kw["backend"]
        torch.testing.assert_close(out.local, reference, rtol=0, atol=1e-12)


class DropsARow(nn.Module):  # (N - 1, M): a valid-looking score matrix with one anchor less
    def forward(self, x, y):
        return (x @ y.transpose(-1, -2))[..., :-1, :]


class Reduced(nn.Module):
    def forward(self, x, y):
        return (x @ y.transpose(-1, -2)).sum(-1)


class FactorsDropARow(Factorised):
    def factorise(self, x, y):
        return x[..., :-1, :] @ self.w, y


class FactorsOfOtherWidths(Factorised):
    def factorise(self, x, y):
        return x[..., :2], y


class OneFactor(Factorised):
    def factorise(self, x, y):
        return x


def test_a_critic_of_the_wrong_shape_is_named():
    # before: DropsARow and FactorsDropARow gave a value (one anchor silently left out)
    x, y = _features()
    for critic in (DropsARow(), Reduced()):
        name = type(critic).__name__
        for kw in PATHS[:2]:
            with pytest.raises(ValueError, match=rf"the critic {name} returned shape .* for x "
                                                 r"of shape .*of shape \(\d, 6, 6\) with N=6.*"
                                                 r"blocks of \(position pairs, samples"):
                LocalMILoss("infonce", critic, **kw)(x, y)
        with pytest.raises(ValueError, match=rf"the critic {name} returned shape .*\(6, 6\)"):
            GlobalMILoss("infonce", critic, pool="mean")(x, y)
    for kw in PATHS:
        with pytest.raises(ValueError, match=r"the critic FactorsDropARow's factorise returned "
                                             r"u of shape \(6, 5, 4\) .*u of shape \(6, 6, E\)"):
            LocalMILoss("infonce", FactorsDropARow(), **kw)(x, y)
        with pytest.raises(ValueError, match="FactorsOfOtherWidths's factorise returned u of "
                                             r"shape \(6, 6, 2\) and v of shape \(1, 6, 4\)"):
            LocalMILoss("infonce", FactorsOfOtherWidths(), **kw)(x, y)
        with pytest.raises(TypeError, match=r"OneFactor's factorise returned a single tensor "
                                            r"of shape .* a pair of tensors"):
            LocalMILoss("infonce", OneFactor(), **kw)(x, y)


def test_train_critic_and_estimate_mi_name_a_critic_of_the_wrong_shape():
    # before: train_critic trained on the (15, 16) scores silently; estimate_mi failed in a
    # matmul of its jackknife ("mat1 and mat2 shapes cannot be multiplied")
    task = mitools.CorrelatedGaussian(dim=4, mi=0.5)
    with pytest.raises(ValueError, match=r"the critic DropsARow returned shape \(15, 16\) for x "
                                         r"of shape \(16, 4\).*N=16.*M=16"):
        train_critic(DropsARow(), "infonce", task, steps=2, batch_size=16, generator=0,
                     optimizer=torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1))
    x, y = task.sample(120, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"the critic Reduced returned shape \(\d+,\) for x"):
        mitools.estimate_mi(x.double(), y.double(), critic=Reduced(), seed=0, max_steps=5)


# -- a pair sampler of one's own ------------------------------------------------------------------

class Modulo(PairSampler):
    """x position p against y position p mod Q."""

    def _pairs(self, grid_x, grid_y, device):
        x_index = torch.arange(math.prod(grid_x), device=device)
        return PositionPairs(x_index, x_index % math.prod(grid_y), grid_x, x_index)


def test_a_sampler_of_ones_own_equals_the_loop_on_every_path():
    x, _ = _features()
    y = torch.randn(B, C, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    xf = x.flatten(2)
    reference = torch.stack([loop_infonce_minus_b(xf[:, :, p] @ y[:, :, p % 5].T, 0.0)
                             for p in range(6)]).reshape(2, 3)
    for kw in PATHS:
        out = LocalMILoss("infonce", None, Modulo(), y_pattern="b c l", **kw)(x, y)
        torch.testing.assert_close(out.local, reference, rtol=0, atol=1e-12)


def _sampler(x_index, y_index, shape, where):
    class Returns(PairSampler):
        def _pairs(self, grid_x, grid_y, device):
            return PositionPairs(x_index, y_index, shape, where)

    return Returns()


def test_a_sampler_returning_bad_pairs_is_named():
    x, _ = _features()
    y = torch.randn(B, C, 5, dtype=torch.float64)
    k = torch.arange(6)
    cases = [
        # before: IndexError "index out of range in self"
        (_sampler(k, k, (2, 3), k), ValueError, r"y_index from 0 to 5; it must lie in \[0, 5\)"),
        # before: the map held one estimate and five NaN while the mean took six
        (_sampler(k, k % 5, (2, 3), k * 0), ValueError, "where with repeated entries"),
        (_sampler(k, k % 5, (2, 3), k + 3), ValueError, r"where from 3 to 8.*\[0, 6\)"),
        (_sampler(k, k[:4], (2, 3), k), ValueError, r"x_index \(6,\), y_index \(4,\)"),
        (_sampler(k.double(), k % 5, (2, 3), k), TypeError, "x_index of dtype torch.float64"),
    ]
    for sampler, error, match in cases:
        with pytest.raises(error, match="the sampler Returns returned " + match):
            LocalMILoss("infonce", None, sampler, y_pattern="b c l")(x, y)

    class Tuple(PairSampler):
        def _pairs(self, grid_x, grid_y, device):
            return (torch.arange(6), torch.arange(6) % 5)

    class Forgot(PairSampler):
        pass

    with pytest.raises(TypeError, match="the sampler Tuple returned a tuple"):
        LocalMILoss("infonce", None, Tuple(), y_pattern="b c l")(x, y)
    with pytest.raises(NotImplementedError, match=r"Forgot must implement _pairs"):
        LocalMILoss("infonce", None, Forgot(), y_pattern="b c l")(x, y)
