"""``torch.autocast``: the critics' networks may run in half precision, the library's own
score arithmetic may not (tryout 12).

Under ``torch.autocast("cpu", dtype=torch.bfloat16)`` the product of a separable critic's
factors, the bilinear and quadratic critics, the Gaussian densities' expansions and the local
losses' blocked and attention paths ran in bfloat16: the scores were rounded to 8 significant
bits (an InfoNCE of scores offset by 1000 lost every nat; the dense path of a diagonal Gaussian
was a nat off the attention path's), and the blocked path failed with torch's "Index put
requires the source and destination dtypes match". Every reference below is float64 arithmetic
on the same inputs (for the networks: on the factors they give under autocast).
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import mitools
from mitools import bounds
from mitools.conditionals import DiagonalGaussian, FullGaussian
from mitools.critics import (
    BilinearCritic,
    ConcatCritic,
    QuadraticCritic,
    SeparableCritic,
    dot_scores,
)
from mitools.local import GlobalMILoss, LocalMILoss
from mitools.training import train_critic

F64 = torch.float64
AUTOCAST = [torch.bfloat16, torch.float16]
#: autocast is most used on GPUs: the same checks run there (benchmarks/gpu_check.sh)
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs CUDA"))]


def _offset_features(b: int = 12, c: int = 6, hw: int = 3):
    """Features whose every score ``x[:, :, p] . y`` carries an offset of 1000: a constant
    channel (1 in ``x``, 1000 in ``y``). In bfloat16 a score near 1000 is a multiple of 8."""
    g = torch.Generator().manual_seed(12)
    x = torch.randn(b, c, hw, hw, generator=g)
    y = 2 * x.mean((2, 3)) + 0.5 * torch.randn(b, c, generator=g)
    x = torch.cat([x, torch.ones(b, 1, hw, hw)], dim=1)
    y = torch.cat([y, torch.full((b, 1), 1000.0)], dim=1)
    return x, y


def _local_infonce_reference(x: torch.Tensor, y: torch.Tensor) -> float:
    """Cells against the vector with the dot product, InfoNCE averaged over cells: a plain
    float64 loop (independent of the library)."""
    x, y = x.to(F64), y.to(F64)
    b = x.shape[0]
    values = []
    for cell in x.flatten(2).unbind(-1):  # (B, C) per cell
        s = cell @ y.T
        rows = [float(s[i, i] - torch.logsumexp(s[i], 0)) for i in range(b)]
        values.append(sum(rows) / b + math.log(b))
    return sum(values) / len(values)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("amp", AUTOCAST)
def test_dot_scores_stay_float32_under_autocast(amp, device):
    u = torch.full((2, 64), 40.0)
    u[1, 0] = 40.25  # 102416.0: not a float16 number, nor a bfloat16 one
    with torch.autocast(device, dtype=amp):
        s = dot_scores(u.to(device), u.to(device))
    assert s.dtype == torch.float32
    ref = u.to(F64) @ u.to(F64).T
    assert torch.equal(s.cpu().to(F64), ref)


@pytest.mark.parametrize("amp", AUTOCAST)
@pytest.mark.parametrize(
    "backend, options",
    [("dense", {}), ("dense", {"chunk_size": 4}), ("blocked", {"column_chunk_size": 5}),
     ("blocked", {"chunk_size": 2}), ("attention", {})],
)  # fmt: skip
@pytest.mark.parametrize("device", DEVICES)
def test_local_infonce_under_autocast_keeps_offset_scores(amp, backend, options, device):
    x, y = _offset_features()
    ref = _local_infonce_reference(x, y)
    x, y = x.to(device), y.to(device)
    loss_fn = LocalMILoss("infonce", None, backend=backend, **options)
    xg = x.clone().requires_grad_()
    with torch.autocast(device, dtype=amp):
        out = loss_fn(xg, y)
    out.loss.backward()  # outside autocast, as torch recommends
    assert loss_fn.last_backend == backend
    assert out.estimate.dtype == out.loss.dtype == torch.float32
    # bfloat16 scores were multiples of 8 here: the estimate was off by nats (or raised)
    assert float(out.estimate) == pytest.approx(ref, abs=1e-4)
    x64 = x.cpu().to(F64).requires_grad_()
    LocalMILoss("infonce", None, backend="dense")(x64, y.cpu().to(F64)).loss.backward()
    assert xg.grad is not None
    # float32's own error: the constant channel's gradient is 1000 * (1 - sum of a softmax)
    torch.testing.assert_close(xg.grad.cpu().to(F64), x64.grad, atol=1e-3, rtol=1e-4)
    if backend != "dense":  # the fused paths' backward keeps float32 even inside autocast
        inside = x.clone().requires_grad_()
        with torch.autocast(device, dtype=amp):
            loss_fn(inside, y).loss.backward()
        torch.testing.assert_close(inside.grad, xg.grad)


@pytest.mark.parametrize("bound", ["dv", "nwj", "smile", "js", "mine"])
def test_every_path_agrees_under_autocast(bound):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(10, 5, 2, 2, generator=g)
    y = x.mean((2, 3)) + 0.3 * torch.randn(10, 5, generator=g) + 0.7  # scores of about 1
    ref = LocalMILoss(bound, None, backend="dense")(x.to(F64), y.to(F64)).estimate
    paths = ["dense", "blocked"] + (["attention"] if bound in ("dv", "nwj", "mine") else [])
    for backend in paths:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = LocalMILoss(bound, None, backend=backend, column_chunk_size=4)(x, y)
        assert out.estimate.dtype == torch.float32
        assert float(out.estimate) == pytest.approx(float(ref), abs=1e-5), backend


def test_global_loss_under_autocast():
    x, y = _offset_features()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = GlobalMILoss("infonce", None, x_pattern="b c h w", y_pattern="b c")(x, y)
    s = x.to(F64).mean((2, 3)) @ y.to(F64).T
    ref = float((s.diagonal() - torch.logsumexp(s, 1)).mean()) + math.log(x.shape[0])
    assert float(out.estimate) == pytest.approx(ref, abs=1e-4)


@pytest.mark.parametrize("amp", AUTOCAST)
def test_parameter_only_critics_are_not_rounded_by_autocast(amp):
    g = torch.Generator().manual_seed(5)
    x, y = 4 * torch.randn(7, 3, generator=g), 4 * torch.randn(9, 4, generator=g)
    bil, quad = BilinearCritic(3, 4), QuadraticCritic(3, 4)
    with torch.no_grad():
        bil.bias.fill_(500.0)
        quad.weight.normal_(generator=g)
        quad.bias.fill_(500.0)
    for critic in (bil, quad):
        with torch.autocast("cpu", dtype=amp):
            s = critic(x, y)
        assert s.dtype == torch.float32
        ref = critic.to(F64)(x.to(F64), y.to(F64))
        critic.float()
        torch.testing.assert_close(s.to(F64), ref.detach(), atol=2e-3, rtol=1e-5)


def test_separable_and_concat_critics_give_float32_scores_under_autocast():
    g = torch.Generator().manual_seed(6)
    x, y = torch.randn(8, 3, generator=g), torch.randn(8, 3, generator=g)
    sep = SeparableCritic(3, 3, hidden=(8,), embed_dim=4, temperature=0.01)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        u, v = sep.factorise(x, y)  # the networks run in bfloat16
        s = sep(x, y)
    assert s.dtype == torch.float32
    # the product of those factors in float64: bfloat16 rounded scores of ~100 by up to 0.25
    torch.testing.assert_close(s.to(F64), u.detach().to(F64) @ v.detach().to(F64).T,
                               atol=1e-4, rtol=1e-6)  # fmt: skip
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert ConcatCritic(3, 3, hidden=(8,))(x, y).dtype == torch.float32


def _diagonal_log_density(y, mean, scale):
    y, mean, scale = y.to(F64), mean.to(F64), scale.to(F64)
    z = (y[None, :, :] - mean[:, None, :]) / scale[:, None, :]
    return (-0.5 * z**2 - torch.log(scale)[:, None, :] - 0.5 * math.log(2 * math.pi)).sum(-1)


def test_gaussian_densities_are_not_expanded_in_bfloat16():
    g = torch.Generator().manual_seed(8)
    x = torch.randn(16, 3, generator=g)
    y = 20 + x + 0.1 * torch.randn(16, 3, generator=g)  # far from 0: the expansion cancels
    diag = DiagonalGaussian(3, 3, hidden=(8,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mean, scale = diag.parameters_of(x)
        s = diag(x, y)
    ref = _diagonal_log_density(y, mean.detach(), scale.detach())
    # the bfloat16 expansion was off by up to 16 nats here
    torch.testing.assert_close(s.detach().to(F64), ref, atol=2e-2, rtol=1e-5)

    full = FullGaussian(3, 3, hidden=(8,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mean, factor = full.parameters_of(x)
        s = full(x, y)
        u, v = full.factorise(x, y)
    mean, factor = mean.detach().to(F64), factor.detach().to(F64)
    z = torch.einsum("nkl,nmk->nml", factor, y.to(F64)[None] - mean[:, None])
    log_det = torch.log(torch.diagonal(factor, dim1=-2, dim2=-1)).sum(-1, keepdim=True)
    ref = -1.5 * math.log(2 * math.pi) + log_det - 0.5 * (z * z).sum(-1)
    torch.testing.assert_close(s.detach().to(F64), ref, atol=2e-2, rtol=1e-5)
    torch.testing.assert_close(dot_scores(u, v).detach().to(F64), ref, atol=5e-2, rtol=1e-4)


def test_bounds_under_autocast_compute_in_float32():
    g = torch.Generator().manual_seed(9)
    s = torch.randn(4096, 4096, generator=g) + 1000.0
    s.diagonal().add_(4.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = bounds.infonce(s)
    s64 = s.to(F64)
    ref = float((s64.diagonal() - torch.logsumexp(s64, 1)).mean()) + math.log(4096)
    assert value.dtype == torch.float32
    assert float(value) == pytest.approx(ref, abs=1e-3)


def test_dot_scores_on_a_device_autocast_does_not_know():
    u = torch.ones(3, 4, device="meta")  # autocast has no "meta": the check must not raise
    assert dot_scores(u, u).shape == (3, 3)


class _OwnCritic(torch.nn.Module):
    """A critic of the user's own: one ``nn.Linear``, which takes its own dtype only."""

    def __init__(self, c: int):
        super().__init__()
        self.lin = torch.nn.Linear(c, c)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.lin(x) @ y.transpose(-1, -2)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
@pytest.mark.parametrize("loss", ["local", "global"])
def test_own_critic_of_another_dtype_is_named_with_both_dtypes(dtype, loss):
    g = torch.Generator().manual_seed(10)
    x, y = torch.randn(8, 4, 2, 2, generator=g), torch.randn(8, 4, generator=g)
    critic = _OwnCritic(4)
    cls = LocalMILoss if loss == "local" else GlobalMILoss
    # torch said only "mat1 and mat2 must have the same dtype, but got BFloat16 and Float"
    with pytest.raises(TypeError, match=rf"_OwnCritic failed on features of dtype {dtype}"
                                        r" while its parameters are torch.float32"):
        cls("infonce", critic)(x.to(dtype), y.to(dtype))
    if dtype == torch.bfloat16:  # the hint for half features: autocast casts for the critic
        with torch.autocast("cpu", dtype=dtype):
            assert cls("infonce", critic)(x.to(dtype), y.to(dtype)).estimate.isfinite()
    # the same critic in the features' dtype computes
    value = cls("infonce", critic.to(dtype))(x.to(dtype), y.to(dtype)).estimate
    critic.to(F64)
    ref = cls("infonce", critic)(x.to(dtype).to(F64), y.to(dtype).to(F64)).estimate
    tol = 1e-9 if dtype == F64 else 0.05  # bfloat16 parameters round the critic itself
    assert float(value) == pytest.approx(float(ref), abs=tol)


# Training loops inside one autocast region: autocast caches its half-precision copies of the
# weights until the region ends, so every step after the first computed with the first step's
# weights. train_critic stayed at 0.04 nats (0.96 without autocast, true MI 1.0) and
# estimate_mi reported -0.05 nats for 0.99.


def test_train_critic_learns_inside_an_autocast_region():
    task = mitools.CorrelatedGaussian(dim=2, mi=1.0)
    traces = []
    for enabled in (False, True):
        torch.manual_seed(0)
        critic = SeparableCritic(2, 2, hidden=(32,), embed_dim=8)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
            traces.append(train_critic(critic, "infonce", task, steps=150, batch_size=64,
                                       lr=3e-3, generator=0))  # fmt: skip
    plain, amp = (float(t[-30:].mean()) for t in traces)
    assert plain > 0.7  # the task's MI is 1 nat, InfoNCE at B = 64 sits a little below
    assert amp == pytest.approx(plain, abs=0.05)


def test_estimate_mi_and_pointwise_mi_compute_in_their_dtype_under_autocast():
    task = mitools.CorrelatedGaussian(dim=2, mi=1.0)
    x, y = task.sample(400, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plain = mitools.estimate_mi(x, y, critic="separable", seed=0, max_steps=300)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            amp = mitools.estimate_mi(x, y, critic="separable", seed=0, max_steps=300)
            pointwise = amp.pointwise(x[:50], y[:50])
    # its diagnostics (max_steps is short here) still point at the caller's line
    assert caught and {w.filename for w in caught} == {__file__}
    assert plain.value > 0.5  # the true MI is 1 nat
    assert amp.value == plain.value
    assert pointwise.dtype == plain.pointwise(x[:50], y[:50]).dtype
    # float32 to its rounding: in a full run this differed by 2.7e-8 relative once (the float32
    # products of MKL may depend on the memory's alignment, which differs from call to call;
    # alone it was equal in 4 of 4 runs); in bfloat16, the fault, it differs by 0.2 relative
    torch.testing.assert_close(pointwise, plain.pointwise(x[:50], y[:50]), rtol=1e-6, atol=0)
