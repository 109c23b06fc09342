"""The library's modules inside the PyTorch machinery a researcher wraps them in.

Serialization (``state_dict``, ``torch.load`` with its default ``weights_only=True``,
``copy.deepcopy``, ``pickle``), dtype moves, ``torch.compile`` (the ``eager`` and ``aot_eager``
backends here; inductor in a slow test), ``no_grad`` / ``inference_mode`` and deterministic
algorithms. Values are checked against the naive references of ``tests/`` or closed forms.
"""

from __future__ import annotations

import copy
import io
import math
import pickle
import warnings
from collections.abc import Callable

import bounds_reference as ref
import pytest
import torch
from local_reference import naive_local_mi
from torch import nn

from mitools import bounds, conditionals, critics, estimators
from mitools.local import GlobalMILoss, LocalMILoss
from mitools.samplers import AllPairs, LocalToGlobal, PositionPairs, RandomPairs

X = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
Y = torch.randn(6, 2, generator=torch.Generator().manual_seed(1))
XP = torch.randn(6, 5, 3, generator=torch.Generator().manual_seed(2))
SCORES = torch.randn(2, 6, 6, generator=torch.Generator().manual_seed(3))


def _separable() -> critics.SeparableCritic:
    return critics.SeparableCritic(3, 2, hidden=(8,), embed_dim=4)


def _trained_mine_loss() -> LocalMILoss:
    loss = LocalMILoss("mine", _separable(), x_pattern="b l c", y_pattern="b c")
    loss(XP, Y).loss.backward()  # one training step: per-pair moving averages exist
    return loss


def _trained_queue_loss() -> LocalMILoss:
    loss = LocalMILoss("infonce", _separable(), x_pattern="b l c", y_pattern="b c", queue=9)
    loss(XP, Y).loss.backward()  # the queue holds this batch's columns
    return loss


#: every public module: a factory (seeded by the test) and the call whose output is compared
MODULES: dict[str, tuple[Callable[[], nn.Module], Callable[[nn.Module], torch.Tensor]]] = {
    "SeparableCritic": (
        lambda: critics.SeparableCritic(3, 2, hidden=(8,), embed_dim=4, cosine=True,
                                        learn_temperature=True),
        lambda m: m(X, Y)),
    "BilinearCritic": (lambda: critics.BilinearCritic(3, 2), lambda m: m(X, Y)),
    "QuadraticCritic": (lambda: critics.QuadraticCritic(3, 2, hidden=(8,), embed_dim=4),
                        lambda m: m(X, Y)),
    "ConcatCritic": (lambda: critics.ConcatCritic(3, 2, hidden=(8,)), lambda m: m(X, Y)),
    "MaxPoolCritic": (lambda: critics.MaxPoolCritic(_separable()), lambda m: m(XP, Y)),
    "AttentionPoolCritic": (lambda: critics.AttentionPoolCritic(_separable()),
                            lambda m: m(XP, Y)),
    "MarginalPotentials": (lambda: critics.MarginalPotentials(_separable(), 3, 2, hidden=(8,)),
                           lambda m: m(X, Y)),
    "DiagonalGaussian": (lambda: conditionals.DiagonalGaussian(3, 2, hidden=(8,)),
                         lambda m: m.log_prob(Y, X)),
    "FullGaussian": (lambda: conditionals.FullGaussian(3, 2, hidden=(8,)),
                     lambda m: m.log_prob(Y, X)),
    "MixtureOfGaussians": (
        lambda: conditionals.MixtureOfGaussians(3, 2, components=3, hidden=(8,)),
        lambda m: m.log_prob(Y, X)),
    "GaussianMarginal": (lambda: conditionals.GaussianMarginal(2), lambda m: m.log_prob(Y)),
    "TUBA": (lambda: estimators.TUBA(), lambda m: m(SCORES)),
    "TUBA(network)": (lambda: estimators.TUBA(nn.Linear(3, 1)),
                      lambda m: m(SCORES, anchors=X)),
    "AlphaInfoNCE": (lambda: estimators.AlphaInfoNCE(0.3), lambda m: m(SCORES)),
    "SMILE": (lambda: estimators.SMILE(clip=1.0), lambda m: m(SCORES)),
    "LocalMILoss(smile)": (
        lambda: LocalMILoss("smile", _separable(), x_pattern="b l c", y_pattern="b c"),
        lambda m: m(XP, Y).local),
    "LocalMILoss(mine)": (_trained_mine_loss, lambda m: m(XP, Y).local),
    "LocalMILoss(queue)": (_trained_queue_loss, lambda m: m(XP, Y).local),
    "GlobalMILoss": (
        lambda: GlobalMILoss("nwj", _separable(), x_pattern="b l c", y_pattern="b c"),
        lambda m: m(XP, Y).estimate),
}


def _build(name: str, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return MODULES[name][0]().eval()


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_survives_state_dict_torch_load_deepcopy_and_pickle(name: str) -> None:
    module = _build(name, 0)
    call = MODULES[name][1]
    expected = call(module)
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer)  # torch's default weights_only=True
    fresh = _build(name, 1)  # other initial weights; the same architecture
    fresh.load_state_dict(state)
    copies = {
        "load_state_dict": fresh,
        "deepcopy": copy.deepcopy(module),
        "pickle": pickle.loads(pickle.dumps(module)),
    }
    whole = io.BytesIO()
    torch.save(module, whole)  # the whole module: needs pickle (a SMILE could not be pickled)
    whole.seek(0)
    copies["torch.save(module)"] = torch.load(whole, weights_only=False)
    for how, other in copies.items():
        torch.testing.assert_close(call(other), expected, rtol=0, atol=0, equal_nan=True,
                                   msg=f"{name} after {how}")


def test_smile_pickles_and_keeps_its_clipped_value() -> None:
    # SMILE's finisher was a closure: pickle.dumps(SMILE()) raised "Can't pickle local object
    # 'smile_rowwise.<locals>.finish'", and so did any LocalMILoss built on "smile"
    scores = torch.randn(5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    for clip in (1.0, 5.0, None):
        smile = pickle.loads(pickle.dumps(estimators.SMILE(clip=clip)))
        expected = ref.smile_value(scores.tolist(), clip)
        assert float(smile(scores)) == pytest.approx(expected, abs=1e-12)
        assert float(bounds.smile(scores, clip=clip)) == pytest.approx(expected, abs=1e-12)
    loss = LocalMILoss(bounds.smile, _separable(), x_pattern="b l c", y_pattern="b c")
    pickle.loads(pickle.dumps(loss))


@pytest.mark.parametrize("name", sorted(MODULES))
def test_double_gives_float64_outputs_matching_a_float64_reference(name: str) -> None:
    module = _build(name, 0).double()
    floating = [k for k, v in [*module.named_parameters(), *module.named_buffers()]
                if v.is_floating_point() and v.dtype != torch.float64]
    assert floating == [], f"{name}.double() left {floating} out of float64"
    call = MODULES[name][1]
    global X, Y, XP, SCORES
    saved = X, Y, XP, SCORES
    try:
        X, Y, XP, SCORES = (t.double() for t in saved)
        out = call(module)
    finally:
        X, Y, XP, SCORES = saved
    assert out.dtype == torch.float64
    # the float32 module on the float32 inputs: the same function, to float32 rounding
    torch.testing.assert_close(out.float(), call(_build(name, 0)), rtol=1e-4, atol=1e-5,
                               equal_nan=True)


def test_double_gives_the_float64_temperature_not_its_float32_rounding() -> None:
    # a fixed temperature was a float32 buffer: after .double() the scores were g(x)·h(y)
    # divided by exp(float32(log 0.07)) = 0.07000000017, off by 2e-9 relative (3e-8 absolute)
    torch.manual_seed(0)
    critic = critics.SeparableCritic(3, 2, hidden=(8,), embed_dim=4, cosine=True,
                                     temperature=0.07).double()
    x, y = X.double(), Y.double()
    gx, hy = critic.embed(x, y)
    expected = torch.einsum("ne,me->nm", gx, hy) / 0.07  # float64 throughout
    torch.testing.assert_close(critic(x, y), expected, rtol=1e-14, atol=1e-14)
    assert critic.float().log_temperature.dtype == torch.float32
    # a state saved with another fixed temperature brings that temperature along, and so does
    # a value written by hand (an annealed temperature), through later moves
    other = critics.SeparableCritic(3, 2, hidden=(8,), embed_dim=4, temperature=0.5)
    critic.load_state_dict(other.state_dict())
    assert math.exp(critic.double().log_temperature.item()) == pytest.approx(0.5, rel=1e-7)
    with torch.no_grad():
        critic.log_temperature.fill_(math.log(0.2))
    assert math.exp(critic.float().double().log_temperature.item()) == pytest.approx(0.2, rel=1e-7)
    with torch.device("meta"):
        lazy = critics.SeparableCritic(3, 2, hidden=(8,), embed_dim=4, temperature=0.07)
    assert lazy.to_empty(device="cpu").double().log_temperature.item() == math.log(0.07)


def test_share_memory_keeps_the_fixed_temperature_in_shared_memory() -> None:
    """(review) SeparableCritic._apply replaced its buffer after every move, so after
    share_memory() the temperature was the one tensor of the module not in shared memory."""
    critic = critics.SeparableCritic(3, 2, hidden=(8,), embed_dim=4, temperature=0.07)
    critic.share_memory()
    assert critic.log_temperature.is_shared()
    assert critic.log_temperature.item() == float(torch.tensor(math.log(0.07)))  # float32
    critic = critics.SeparableCritic(3, 2, hidden=(8,), embed_dim=4, temperature=0.07)
    critic.bfloat16().double().share_memory()  # refilled on the widening move, then shared
    assert critic.log_temperature.is_shared()
    assert critic.log_temperature.item() == math.log(0.07)


def test_position_pairs_replace_and_make_count_fields_not_pairs() -> None:
    # PositionPairs.__len__ is the number of pairs; the namedtuple's _make checked its field
    # count with len(), so _replace (and torch.compile, which rebuilds a namedtuple with
    # _make) refused 6 pairs: "Expected 4 arguments, got 6"
    pairs = AllPairs()((2, 3), (1,))
    assert len(pairs) == 6
    moved = pairs._replace(shape=(6,))
    assert isinstance(moved, PositionPairs) and len(moved) == 6 and moved.shape == (6,)
    assert torch.equal(moved.x_index, torch.arange(6))
    assert PositionPairs._make(tuple(pairs)) == pairs
    with pytest.raises(TypeError, match="Expected 4 arguments, got 3"):
        PositionPairs._make((pairs.x_index, pairs.y_index, pairs.shape))


def _untraceable(caught: list[warnings.WarningMessage]) -> list[str]:
    """torch.compile's warnings about a function of mitools it cannot trace."""
    return [str(w.message) for w in caught if "does not know how to trace" in str(w.message)]


def _naive_and_grads(loss: LocalMILoss, sampler, x, y, x_mask=None):
    objective, _ = naive_local_mi(loss.estimator, loss.critic, sampler, "mean", x, y,
                                  "b l c", "b c", x_mask=x_mask)
    assert objective is not None
    params = list(loss.parameters())
    return -objective, torch.autograd.grad(-objective, params)


@pytest.mark.parametrize(("backend", "compile_backend"),
                         [("dense", "eager"), ("blocked", "aot_eager")])
def test_compiled_local_loss_on_six_positions_matches_the_naive_loop(
        backend: str, compile_backend: str) -> None:
    # torch.compile(LocalMILoss(...)) raised "TypeError: Expected 4 arguments, got 6" on a
    # grid of 6 positions (any number of pairs but 4)
    torch._dynamo.reset()
    x = torch.randn(6, 6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    y = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    mask = torch.ones(6, 6, dtype=torch.bool)
    mask[1, 4:] = False
    torch.manual_seed(0)
    loss = LocalMILoss("infonce", _separable().double(), x_pattern="b l c", y_pattern="b c",
                       backend=backend)
    compiled = torch.compile(loss, backend=compile_backend)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = compiled(x, y, x_mask=mask)
    assert not _untraceable(caught)
    grads = torch.autograd.grad(out.loss, list(loss.parameters()))
    expected, expected_grads = _naive_and_grads(loss, LocalToGlobal(), x, y, mask)
    torch.testing.assert_close(out.loss, expected, rtol=1e-10, atol=1e-12)
    for g, e in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-8, atol=1e-10)


def test_compiled_local_loss_with_random_pairs_matches_the_naive_loop() -> None:
    torch._dynamo.reset()
    x = torch.randn(5, 4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    y = torch.randn(5, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    torch.manual_seed(0)
    loss = LocalMILoss("nwj", _separable().double(),
                       RandomPairs(5, generator=torch.Generator().manual_seed(9)),
                       x_pattern="b l c", y_pattern="b l c")
    value = torch.compile(loss, backend="eager")(x, y).loss
    objective, _ = naive_local_mi(loss.estimator, loss.critic,
                                  RandomPairs(5, generator=torch.Generator().manual_seed(9)),
                                  "mean", x, y, "b l c", "b l c")
    assert objective is not None
    torch.testing.assert_close(value, -objective, rtol=1e-10, atol=1e-12)


def test_compiled_bound_warns_nothing_and_keeps_its_errors() -> None:
    # compiling a bound warned "Dynamo does not know how to trace the builtin
    # ...is_functorch_wrapped_tensor" (the vmap test of the finiteness check)
    torch._dynamo.reset()
    scores = torch.randn(6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(10))
    compiled = torch.compile(bounds.infonce, backend="eager")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = compiled(scores)
    assert not _untraceable(caught)
    assert float(value) == pytest.approx(ref.infonce(scores.tolist()), abs=1e-12)
    bad = scores.clone()
    bad[0, 1] = math.inf
    with pytest.raises(ValueError, match=r"non-finite value \(inf\) at index \(0, 1\)"):
        compiled(bad)
    with pytest.raises(RuntimeError, match=r"infonce: called under torch\.func\.vmap"):
        torch.compile(torch.func.vmap(bounds.infonce), backend="eager")(scores[None])


def test_dense_path_breaks_the_graph_only_at_value_checks() -> None:
    # "not rowwise.statistics" (a tuple) broke the graph at every call of the dense path:
    # torch.compile cannot trace "not" of it
    torch._dynamo.reset()
    loss = LocalMILoss("infonce", _separable(), x_pattern="b l c", y_pattern="b c",
                       backend="dense")
    with bounds.check_finite(False):
        explained = torch._dynamo.explain(lambda x, y: loss(x, y).loss)(XP, Y)
    where = [f"{frame.filename}:{frame.lineno}" for b in explained.break_reasons
             for frame in b.user_stack[-1:]]
    assert not [w for w in where if "local/dense.py" in w.replace("\\", "/")], where


def _mine_step(mine: estimators.MINE, scores: torch.Tensor) -> tuple[torch.Tensor, ...]:
    s = scores.clone().requires_grad_(True)
    value = mine(s)
    (grad,) = torch.autograd.grad(value.sum(), s)
    return value.detach(), grad


def test_mine_state_round_trips_and_follows_a_float64_reference() -> None:
    steps = [torch.randn(3, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(s))
             for s in range(4)]
    mine = estimators.MINE(0.9).double().train()
    for s in steps[:2]:
        _mine_step(mine, s)
    buffer = io.BytesIO()
    torch.save(mine.state_dict(), buffer)
    buffer.seek(0)
    loaded = estimators.MINE(0.9).train()
    loaded.load_state_dict(torch.load(buffer))
    others = [loaded, copy.deepcopy(mine), pickle.loads(pickle.dumps(mine))]
    # evaluation under no_grad / inference_mode returns DV and leaves the averages alone
    for context in (torch.no_grad, torch.inference_mode):
        before = mine.log_partition_ema.clone()
        with context():
            assert torch.equal(mine(steps[2]), bounds.dv(steps[2]))
        assert torch.equal(mine.log_partition_ema, before)
    for s in steps[2:]:
        expected = _mine_step(mine, s)
        for other in others:
            for got, want in zip(_mine_step(other, s), expected, strict=True):
                assert torch.equal(got, want)
    # the averages against a float64 recursion of Belghazi et al.'s moving average
    log_z = None
    off = ~torch.eye(6, dtype=torch.bool)
    for s in steps:
        batch = torch.logsumexp(s[:, off], -1) - math.log(30)
        log_z = batch if log_z is None else torch.logaddexp(
            log_z + math.log(0.9), batch + math.log(0.1))
    assert mine.log_partition_ema.dtype == torch.float64
    torch.testing.assert_close(mine.log_partition_ema, log_z, rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", ["dense", "blocked", "attention"])
def test_local_loss_under_deterministic_algorithms_and_inference_mode(backend: str) -> None:
    x = torch.randn(6, 5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(11))
    y = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(12))
    torch.manual_seed(0)
    loss = LocalMILoss("mine", _separable().double(), x_pattern="b l c", y_pattern="b c",
                       backend=backend)
    with torch.inference_mode():  # an evaluation before training: no state, no error later
        loss(x, y)
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        runs = []
        for _ in range(2):
            out = loss(x, y)
            runs.append((out.loss.detach(), torch.autograd.grad(out.loss, list(loss.parameters()))))
    finally:
        torch.use_deterministic_algorithms(previous)
    assert torch.equal(runs[0][0], runs[1][0])
    # MINE's value is DV's: the naive loop with DV on every pair
    objective, _ = naive_local_mi(estimators.DV(), loss.critic, LocalToGlobal(), "mean", x, y,
                                  "b l c", "b c")
    assert objective is not None
    torch.testing.assert_close(runs[0][0], -objective.detach(), rtol=1e-10, atol=1e-12)


@pytest.mark.slow
def test_inductor_compiled_local_loss_matches_the_naive_loop() -> None:
    torch._dynamo.reset()
    x = torch.randn(8, 6, 3, generator=torch.Generator().manual_seed(13))
    y = torch.randn(8, 2, generator=torch.Generator().manual_seed(14))
    torch.manual_seed(0)
    loss = LocalMILoss("infonce", _separable(), x_pattern="b l c", y_pattern="b c",
                       backend="blocked")
    out = torch.compile(loss)(x, y)
    grads = torch.autograd.grad(out.loss, list(loss.parameters()))
    expected, expected_grads = _naive_and_grads(loss, LocalToGlobal(), x, y)
    torch.testing.assert_close(out.loss, expected, rtol=1e-5, atol=1e-6)
    for g, e in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-5)
    with bounds.check_finite(False):  # without the value checks: one graph
        scores = torch.randn(4, 8, 8, generator=torch.Generator().manual_seed(15))
        fullgraph = torch.compile(bounds.infonce, fullgraph=True)
        torch.testing.assert_close(fullgraph(scores), bounds.infonce(scores))


def test_importing_mitools_and_an_eager_bound_leave_dynamo_unimported() -> None:
    """(review) the bounds' vmap test was decorated with torch.compiler.disable, which imports
    torch._dynamo: ``import mitools`` took a second longer (1.3 s to 2.4 s) for everyone, and
    every spawned worker paid it, for a fix that only torch.compile needs."""
    import subprocess
    import sys

    code = ("import sys, torch; before = 'torch._dynamo' in sys.modules; import mitools; "
            "mitools.bounds.infonce(torch.randn(4, 4)); "
            "print(before, 'torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    if out[0] == "True":
        pytest.skip("this torch imports torch._dynamo itself")
    assert out == ["False", "False"]
