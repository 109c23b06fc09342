"""The bad-input matrix (issue 15, "Also"): every public entry point against inputs a user has.

Each case ends either in a clear error (its type, and a message that names the argument) or in
the correct finite value (against a reference: the contiguous tensor, the float32 result, the
shifted integers, a brute-force bound). ``device="meta"`` tensors stand in for a second device
on a machine without one. The issue's own regression inputs live with their fixes
(tests/test_estimate_inputs.py, test_local_backends.py, test_estimators.py, test_bounds.py).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable

import bounds_reference as ref
import numpy as np
import pytest
import torch

import mitools
from mitools import bounds, classical, samplers, tasks
from mitools.conditionals import DiagonalGaussian
from mitools.critics import BilinearCritic, ConcatCritic, QuadraticCritic, SeparableCritic
from mitools.estimators import get_estimator

pd = pytest.importorskip("pandas")

TINY = dict(folds=2, max_steps=5, eval_every=5, hidden=(4,), embed_dim=4, threads=1, seed=0)
META = "meta"


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _scores(n: int = 4, m: int | None = None, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, m or n, generator=_g(seed))


def _pairs(n: int = 40, d: int = 1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    return x, x + rng.standard_normal((n, d))


def _with(t: torch.Tensor, index: tuple, value: float) -> torch.Tensor:
    t = t.clone()
    t[index] = value
    return t


def _mask(*shape: int, false_at: tuple | None = None, device: str = "cpu") -> torch.Tensor:
    m = torch.ones(*shape, dtype=torch.bool, device=device)
    if false_at is not None:
        m[false_at] = False
    return m


def _local(**kw) -> mitools.LocalMILoss:
    return mitools.LocalMILoss("infonce", None, **kw)


def _grid(b: int = 4, c: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = _g(1)
    return torch.randn(b, c, 2, 2, generator=g), torch.randn(b, c, generator=g)


def _quiet(f: Callable, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*args, **kwargs)


# --- cases that must end in a clear error ---------------------------------------------------

ERRORS = {
    # bounds: scores and masks
    "bound/int-scores": (lambda: bounds.infonce(torch.ones(4, 4, dtype=torch.int64)),
                         TypeError, "scores"),
    "bound/bool-scores": (lambda: bounds.dv(torch.eye(4, dtype=torch.bool)), TypeError, "scores"),
    "bound/complex-scores": (lambda: bounds.club(torch.ones(4, 4, dtype=torch.complex64)),
                             TypeError, "scores"),
    "bound/1d-scores": (lambda: bounds.dv(torch.ones(4)), ValueError, "scores"),
    "bound/empty-scores": (lambda: bounds.infonce(torch.ones(0, 4)), ValueError, "scores"),
    "bound/one-column": (lambda: bounds.nwj(torch.ones(1, 1)), ValueError, "scores"),
    "bound/list-scores": (lambda: bounds.infonce([[1.0, 0.0], [0.0, 1.0]]), TypeError, "scores"),
    "bound/inf-score": (lambda: bounds.nwj(_with(_scores(), (2, 1), math.inf)), ValueError,
                        "scores"),
    "bound/nan-score": (lambda: bounds.smile(_with(_scores(), (0, 0), math.nan)), ValueError,
                        "scores"),
    "bound/int-mask": (lambda: bounds.infonce(_scores(), row_mask=torch.ones(4, dtype=torch.int64)),
                       TypeError, "row_mask"),
    "bound/mask-shape": (lambda: bounds.dv(_scores(), col_mask=_mask(3)), ValueError, "col_mask"),
    "bound/all-rows-masked": (lambda: bounds.infonce(_scores(), row_mask=_mask(4, false_at=...)),
                              ValueError, "row_mask"),
    "bound/mask-other-device": (lambda: bounds.infonce(_scores(), row_mask=_mask(4, device=META)),
                                ValueError, "row_mask"),
    "bound/baseline-other-device": (
        lambda: bounds.tuba(_scores(), torch.zeros(4, device=META)), ValueError, "log_baseline"),
    "bound/baseline-shape": (lambda: bounds.tuba(_scores(), torch.zeros(3)), ValueError,
                             "log_baseline"),
    # estimators
    "estimator/mine-int-scores": (lambda: get_estimator("mine")(torch.ones(4, 4, dtype=torch.long)),
                                  TypeError, "scores"),
    "estimator/col-mask-other-device": (
        lambda: get_estimator("infonce")(_scores(), col_mask=_mask(4, device=META)), ValueError,
        "col_mask"),
    "estimator/smile-inf": (lambda: get_estimator("smile")(_with(_scores(), (1, 2), -math.inf)),
                            ValueError, "scores"),
    # critics
    "critic/int-features": (lambda: SeparableCritic(3, 2, hidden=(4,))(
        torch.ones(5, 3, dtype=torch.int64), torch.randn(5, 2)), TypeError, "x"),
    "critic/other-device": (lambda: QuadraticCritic(3, 2)(
        torch.randn(5, 3, device=META), torch.randn(5, 2, device=META)), ValueError, "x"),
    "critic/x-and-y-devices": (lambda: BilinearCritic(3, 2).to(META)(
        torch.randn(5, 3, device=META), torch.randn(5, 2)), ValueError, "y"),
    "critic/wrong-features": (lambda: ConcatCritic(3, 2, hidden=(4,))(
        torch.randn(5, 3), torch.randn(5, 4)), ValueError, "y"),
    "critic/list": (lambda: BilinearCritic(3, 2)(torch.randn(5, 3), [[0.0, 1.0]]), TypeError, "y"),
    "critic/1d": (lambda: SeparableCritic(3, 2, hidden=())(torch.randn(3), torch.randn(2)),
                  ValueError, "x"),
    "critic/leading-dims": (lambda: SeparableCritic(3, 2, hidden=())(
        torch.randn(2, 5, 3), torch.randn(3, 5, 2)), ValueError, "x"),
    "conditional/int-y": (lambda: DiagonalGaussian(3, 2, hidden=(4,)).log_prob(
        torch.ones(5, 2, dtype=torch.int64), torch.randn(5, 3)), TypeError, "y"),
    # the local and global losses
    "loss/int-features": (lambda: _local()(*(t.long() for t in _grid())), TypeError, "x"),
    "loss/batch-sizes": (lambda: _local()(_grid()[0], _grid()[1][:3]), ValueError, "x"),
    "loss/other-device": (lambda: _local()(_grid()[0], _grid()[1].to(META)), ValueError, "y"),
    "loss/mixed-dtypes": (lambda: _local()(_grid()[0], _grid()[1].double()), TypeError, "x"),
    "loss/wrong-pattern": (lambda: _local(x_pattern="b c")(*_grid()), ValueError, "x_pattern"),
    "loss/int-mask": (lambda: _local()(*_grid(), torch.ones(4, 2, 2, dtype=torch.int64)),
                      TypeError, "x_mask"),
    "loss/mask-shape": (lambda: _local()(*_grid(), _mask(4, 3)), ValueError, "x_mask"),
    "loss/fully-masked-sample": (lambda: _local()(*_grid(), _mask(4, 2, 2, false_at=1)),
                                 ValueError, "x_mask"),
    "loss/one-sample": (lambda: mitools.GlobalMILoss("dv")(_grid(1)[0], _grid(1)[1]),
                        ValueError, "x"),
    "loss/empty-batch": (lambda: _local()(_grid(0)[0], _grid(0)[1]), ValueError, "x"),
    "loss/numpy": (lambda: _local()(_grid()[0].numpy(), _grid()[1]), TypeError, "x"),
    # samplers
    "sampler/k": (lambda: samplers.RandomPairs(0), ValueError, "k"),
    "sampler/radius": (lambda: samplers.Neighbourhood(-1), ValueError, "radius"),
    "sampler/empty-grid": (lambda: samplers.AllPairs()((2, 0), (2,), torch.device("cpu")),
                           ValueError, "grid_x"),
    "sampler/float-grid": (lambda: samplers.Matched()((2, 2), (2.0, 2), torch.device("cpu")),
                           ValueError, "grid_y"),
    # estimate_mi
    "estimate/complex": (lambda: mitools.estimate_mi(np.zeros(40), np.ones(40) * 1j, **TINY),
                         TypeError, "y"),
    "estimate/lengths": (lambda: mitools.estimate_mi(np.zeros(40), np.zeros(39), **TINY),
                         ValueError, "x"),
    "estimate/3d": (lambda: mitools.estimate_mi(np.zeros((40, 2, 2)), np.zeros(40), **TINY),
                    ValueError, "x"),
    "estimate/text-column": (lambda: mitools.estimate_mi(
        pd.DataFrame({"a": np.arange(40.0), "city": ["x"] * 40}), np.zeros(40), **TINY),
        TypeError, "city"),
    "estimate/missing-in-nullable": (lambda: mitools.estimate_mi(
        np.arange(40.0), pd.Series([1, None] * 20, dtype="Int64"), **TINY), ValueError, "y"),
    "estimate/inf-in-list": (lambda: mitools.estimate_mi([1.0, math.inf] * 20, np.zeros(40),
                                                         **TINY), ValueError, "x"),
    "estimate/empty": (lambda: mitools.estimate_mi(np.zeros((0, 1)), np.zeros((0, 1)), **TINY),
                       ValueError, "n"),
    "estimate/one-sample": (lambda: mitools.estimate_mi([1.0], [2.0], **TINY), ValueError, "n"),
    "estimate/dates": (lambda: mitools.estimate_mi(
        pd.Series(pd.date_range("2024", periods=40)), np.zeros(40), **TINY), TypeError, "x"),
    # classical
    "classical/nan-column": (lambda: classical.ksg(
        pd.DataFrame({"a": np.arange(20.0), "b": [math.nan] + [0.0] * 19}), np.arange(20.0)),
        ValueError, "'b'"),
    "classical/strings": (lambda: classical.gaussian_mi(["a", "b"] * 10, np.arange(20.0)),
                          TypeError, "x"),
    "classical/lengths": (lambda: classical.mixed_ksg(np.zeros(20), np.zeros(21)), ValueError,
                          "y"),
    "classical/object": (lambda: classical.ksg({"x": 1}, np.zeros(3)), TypeError, "x"),
    # tasks and training
    "task/int-samples": (lambda: tasks.CorrelatedGaussian(2, 0.5).optimal_critic(
        torch.ones(3, 2, dtype=torch.int64), torch.ones(3, 2)), TypeError, "x"),
    "task/devices": (lambda: tasks.CorrelatedGaussian(2, 0.5).conditional_log_prob(
        torch.ones(3, 2), torch.ones(3, 2, device=META)), ValueError, "y"),
    "task/list": (lambda: tasks.CorrelatedGaussian(2, 0.5).marginal_log_prob([[0.0, 1.0]]),
                  TypeError, "y"),
    "task/features": (lambda: tasks.CorrelatedGaussian(2, 0.5).optimal_critic(
        torch.ones(3, 2), torch.ones(3, 3)), ValueError, "y"),
    "task/n": (lambda: tasks.CorrelatedGaussian(2, 0.5).sample(0), ValueError, "n"),
    "task/cov": (lambda: tasks.gaussian_mutual_information(np.ones((2, 3)), [0], [1]),
                 ValueError, "cov"),
    "training/steps": (lambda: mitools.training.train_critic(
        BilinearCritic(2, 2), "dv", tasks.CorrelatedGaussian(2, 0.5), steps=0), ValueError,
        "steps"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_bad_input_is_refused_with_a_message_naming_it(case: str) -> None:
    call, error, argument = ERRORS[case]
    with pytest.raises(error) as info:
        _quiet(call)
    message = str(info.value)
    assert re.search(rf"(?<![\w]){re.escape(argument)}(?![\w])", message), (case, message)
    assert "Traceback" not in message and len(message) > 30, (case, message)


# --- cases that must give the right value ----------------------------------------------------


def _case_noncontiguous_scores():
    s = torch.randn(5, 10, generator=_g())[:, ::2]  # a strided view
    assert not s.is_contiguous()
    return bounds.infonce(s), torch.tensor(ref.infonce(s.tolist())), 1e-5


def _case_expanded_scores():
    s = torch.randn(1, 5, generator=_g()).expand(5, 5)  # stride 0 rows
    return bounds.dv(s), torch.tensor(ref.dv(s.tolist())), 1e-5


def _case_half_scores():
    s = 3 * _scores(6)
    return bounds.nwj(s.half()), bounds.nwj(s.half().float()), 0.0


def _case_bfloat16_scores():
    s = 3 * _scores(6)
    return bounds.infonce(s.bfloat16()), bounds.infonce(s.bfloat16().float()), 0.0


def _case_float64_scores():
    s = _scores(6).double()
    value = bounds.dv(s)
    assert value.dtype == torch.float64
    return value, torch.tensor(ref.dv(s.tolist()), dtype=torch.float64), 1e-12


def _case_one_sample_scores():
    s = torch.tensor([[2.0, -1.0]])  # one anchor, one negative
    return bounds.infonce(s), torch.tensor(ref.infonce(s.tolist())), 1e-6


def _case_masked_row_and_padding():
    s = _with(_with(_scores(5), (4, 0), math.inf), (4, 4), math.nan)  # padding may hold anything
    rows = _mask(5, false_at=4)
    cols = _mask(5, false_at=4)
    value = bounds.dv(s, row_mask=rows, col_mask=cols)
    return value, torch.tensor(ref.dv(s.tolist(), row_mask=rows.tolist(),
                                      col_mask=cols.tolist())), 1e-5


def _case_critic_noncontiguous():
    critic = SeparableCritic(3, 2, hidden=(4,), embed_dim=4)
    x, y = torch.randn(3, 7, generator=_g()).T, torch.randn(2, 7, generator=_g(1)).T
    assert not x.is_contiguous()
    return critic(x, y), critic(x.contiguous(), y.contiguous()), 0.0


def _case_critic_float64():
    torch.manual_seed(0)
    critic = SeparableCritic(3, 2, hidden=(4,), embed_dim=4)
    x, y = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    scores = critic(x, y)  # computed in float64 with the float32 parameters cast up exactly
    assert scores.dtype == torch.float64
    return scores, critic.double()(x, y), 1e-12


def _case_critic_half():
    critic = ConcatCritic(3, 2, hidden=(4,))
    x, y = 40 * torch.randn(5, 3, generator=_g()), torch.randn(5, 2, generator=_g(1))
    scores = critic(x.half(), y.half())
    assert scores.dtype == torch.float32
    return scores, critic(x.half().float(), y.half().float()), 0.0


def _case_critic_bfloat16_potentials():
    critic = mitools.critics.MarginalPotentials(SeparableCritic(3, 2, hidden=(4,)), 3, 2)
    x, y = torch.randn(5, 3, generator=_g()), torch.randn(5, 2, generator=_g(1))
    return critic(x.bfloat16(), y.bfloat16()), critic(x.bfloat16().float(),
                                                      y.bfloat16().float()), 0.0


def _case_conditional_float64_targets():
    torch.manual_seed(0)
    model = mitools.conditionals.FullGaussian(3, 2, hidden=(4,))
    x, y = torch.randn(4, 3, generator=_g()), torch.randn(5, 2, generator=_g(1)).double()
    value = model.log_prob(y, x)  # float32 model, float64 targets: computed in float64
    assert value.dtype == torch.float64  # (FullGaussian's einsum refused the two dtypes)
    return value, model.double().log_prob(y, x.double()), 1e-6  # q's float32 parameters


def _case_quadratic_expanded():
    critic = QuadraticCritic(3, 2, hidden=(4,))
    x = torch.randn(1, 3, generator=_g()).expand(4, 3)
    y = torch.randn(4, 2, generator=_g(1))
    return critic(x, y), critic(x.contiguous(), y), 0.0


def _case_loss_noncontiguous():
    x, y = _grid()
    x_nc = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)  # channels-last layout
    assert not x_nc.is_contiguous() and torch.equal(x_nc, x)
    loss = _local()
    return loss(x_nc, y).loss, loss(x, y).loss, 1e-6


def _case_loss_expanded():
    x, y = _grid()
    x_e = x[..., :1, :1].expand(4, 3, 2, 2)
    return _local()(x_e, y).loss, _local()(x_e.contiguous(), y).loss, 1e-6


def _case_loss_half():
    x, y = _grid()
    loss = _local()
    return loss(x.half(), y.half()).loss, loss(x.half().float(), y.half().float()).loss, 1e-6


def _case_loss_float64():
    x, y = _grid()
    value = mitools.GlobalMILoss("dv", x_pattern="b c h w", y_pattern="b c")(x.double(),
                                                                              y.double()).loss
    assert value.dtype == torch.float64
    return value, mitools.GlobalMILoss("dv")(x, y).loss.double(), 1e-5


def _case_loss_masked_positions():
    x, y = _grid()
    mask = _mask(4, 2, 2, false_at=(0, 1, 1))  # one padded cell; its value must not count
    garbage = _with(x, (0, slice(None), 1, 1), 1e6)
    loss = _local(reduction="mean")
    return loss(garbage, y, mask).loss, loss(x, y, mask).loss, 1e-6


def _case_sampler_list_grid():
    a = samplers.AllPairs()([2, 2], [3], torch.device("cpu"))
    b = samplers.AllPairs()((2, 2), (3,), "cpu")
    return a.x_index * 10 + a.y_index, b.x_index * 10 + b.y_index, 0


def _case_estimate_nullable_ints():
    x, y = _pairs()
    codes = np.round(3 * x[:, 0]).astype(np.int64)
    nullable = pd.Series(codes, dtype="Int64")
    a = _quiet(mitools.estimate_mi, nullable, y, **TINY).value
    b = _quiet(mitools.estimate_mi, codes, y, **TINY).value
    return torch.tensor(a), torch.tensor(b), 0.0


def _case_estimate_mixed_frame_timestamps():
    # an int64 nanosecond timestamp next to a float column: float64 would round the former
    x, y = _pairs(d=1)
    ts = 1_700_000_000_000_000_000 + np.argsort(np.argsort(x[:, 0])).astype(np.int64)
    frame = pd.DataFrame({"ts": ts, "noise": np.zeros(40) + 0.5})
    shifted = pd.DataFrame({"ts": ts - ts.min(), "noise": np.zeros(40) + 0.5})
    options = dict(TINY, margins="standardize")
    a = _quiet(mitools.estimate_mi, frame, y, **options).value
    b = _quiet(mitools.estimate_mi, shifted.astype(np.float64), y, **options).value
    return torch.tensor(a), torch.tensor(b), 1e-9


def _case_estimate_uint64():
    x, y = _pairs()
    big = np.uint64(2**63) + np.argsort(np.argsort(x[:, 0])).astype(np.uint64)  # > int64
    a = _quiet(mitools.estimate_mi, big, y, **TINY).value
    b = _quiet(mitools.estimate_mi, big - big.min(), y, **TINY).value
    return torch.tensor(a), torch.tensor(b), 0.0


def _case_classical_noncontiguous_half():
    x, y = _pairs(n=60, d=2)
    xt = torch.from_numpy(x).half().T.contiguous().T  # float16, column-major
    value = classical.ksg(xt, y, groups=0).value
    expect = classical.ksg(xt.double().numpy(), y, groups=0).value
    return torch.tensor(value), torch.tensor(expect), 0.0


def _case_classical_mixed_frame_timestamps():
    x, y = _pairs(n=60)
    ts = 1_700_000_000_000_000_000 + (1000 * x[:, 0]).astype(np.int64)
    frame = pd.DataFrame({"ts": ts, "z": x[:, 0]})
    value = classical.ksg(frame, y, groups=0).value
    expect = classical.ksg(np.column_stack([ts - ts.min(), x[:, 0]]), y, groups=0).value
    return torch.tensor(value), torch.tensor(expect), 0.0


def _case_task_half_samples():
    task = tasks.CorrelatedGaussian(4, 1.0)
    x, y = task.sample(6, generator=0)
    value = task.optimal_critic(x.half(), y.half())
    assert value.dtype == torch.float32
    return value, task.optimal_critic(x.half().float(), y.half().float()), 0.0


def _case_task_expanded_and_list_cov():
    task = tasks.CorrelatedGaussian(2, 1.0, dtype=torch.float64)
    y = torch.randn(1, 2, generator=_g(), dtype=torch.float64).expand(3, 2)
    assert torch.equal(task.marginal_log_prob(y), task.marginal_log_prob(y.contiguous()))
    mi = tasks.gaussian_mutual_information([[1.0, 0.8], [0.8, 1.0]], [0], [1])
    return torch.tensor(mi), torch.tensor(-0.5 * math.log(1 - 0.64)), 1e-12


VALUES = {name[len("_case_"):]: f for name, f in globals().items() if name.startswith("_case_")}


@pytest.mark.parametrize("case", sorted(VALUES))
def test_unusual_input_gives_the_reference_value(case: str) -> None:
    value, expect, tol = VALUES[case]()
    value, expect = value.detach(), expect.detach()
    assert bool(torch.isfinite(value).all()), (case, value)
    assert value.shape == expect.shape, case
    torch.testing.assert_close(value.to(expect.dtype), expect, rtol=0, atol=tol)


def test_the_matrix_covers_every_public_entry_point() -> None:
    kinds = {case.split("/")[0] for case in ERRORS}
    assert kinds >= {"bound", "estimator", "critic", "loss", "sampler", "estimate", "classical",
                     "task"}
    assert len(ERRORS) + len(VALUES) >= 25
