"""Every execution path of the local losses on CUDA, in float32 and bfloat16 (skipped without a
GPU). Run by ``benchmarks/gpu_check.sh``; the CPU twins of these checks are in
``test_local.py`` and ``test_local_backends.py``."""

from __future__ import annotations

import pytest
import torch

from mitools.critics import QuadraticCritic, SeparableCritic
from mitools.estimators import MINE, get_estimator
from mitools.local import GlobalMILoss, LocalMILoss
from mitools.samplers import AllPairs

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

# (dtype, tolerance against float64 on the CPU, tolerance between the paths in that dtype):
# in bfloat16 the critic's own layers round to 3 significant digits (forward and backward), so
# against float64 only the rough agreement is checked; the paths, which share those factors and
# score in float32, must agree closely with each other.
DTYPES = {
    "float32": (torch.float32, 1e-4, 1e-4),
    "bfloat16": (torch.bfloat16, 3e-1, 2e-2),
}
PATHS = {
    "infonce": ("dense", "blocked", "attention"),
    "dv": ("dense", "blocked", "attention"),
    "nwj": ("dense", "blocked", "attention"),
    "mine": ("dense", "blocked", "attention"),
    "js": ("dense", "blocked"),
    "jsd": ("dense", "blocked"),
    "alpha_infonce": ("dense",),
}


def _case(critic_name: str, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(24, 16, 4, 4, generator=gen)
    y = torch.randn(24, 3, 16, generator=gen)
    x_mask = torch.rand(24, 4, 4, generator=gen) > 0.2
    y_mask = torch.rand(24, 3, generator=gen) > 0.2
    x_mask[:, 0, 0] = True
    y_mask[:, 0] = True
    torch.manual_seed(seed)
    critic = {
        "none": lambda: None,
        "separable": lambda: SeparableCritic(16, 16, hidden=(32,), embed_dim=24),
        "quadratic": lambda: QuadraticCritic(16, 16, hidden=(16,), embed_dim=8),
    }[critic_name]()
    return x, y, x_mask, y_mask, critic


def _estimator(bound: str):
    return MINE(momentum=0.5) if bound == "mine" else get_estimator(bound)


@pytest.mark.parametrize("dtype_name", sorted(DTYPES))
@pytest.mark.parametrize("critic_name", ["none", "separable", "quadratic"])
@pytest.mark.parametrize("bound", sorted(PATHS))
def test_every_path_on_cuda_equals_float64_on_cpu(bound, critic_name, dtype_name):
    dtype, tol, tol_paths = DTYPES[dtype_name]
    x, y, x_mask, y_mask, critic = _case(critic_name)
    x, y = x.to(dtype), y.to(dtype)  # the same rounded inputs on both devices
    kw = dict(sampler=AllPairs(), reduction="logsumexp", y_pattern="b l c")
    ref_critic = critic.double() if critic is not None else None
    xr, yr = x.double().requires_grad_(), y.double().requires_grad_()
    ref = LocalMILoss(_estimator(bound), ref_critic, backend="dense", **kw)(xr, yr, x_mask, y_mask)
    ref_grads = torch.autograd.grad(ref.loss, [xr, yr])
    first = None
    for backend in PATHS[bound]:
        gpu_critic = critic.to("cuda", dtype) if critic is not None else None
        loss_fn = LocalMILoss(_estimator(bound), gpu_critic, backend=backend, chunk_size=7, **kw)
        loss_fn.to("cuda")  # the estimator's own parameters (alpha-InfoNCE's baseline) too
        xc, yc = x.cuda().requires_grad_(), y.cuda().requires_grad_()
        out = loss_fn(xc, yc, x_mask.cuda(), y_mask.cuda())
        assert loss_fn.last_backend == backend  # attention must not have fallen back
        grads = torch.autograd.grad(out.loss, [xc, yc])
        torch.testing.assert_close(out.estimate.cpu().double(), ref.estimate, rtol=tol, atol=tol)
        for got, want in zip(grads, ref_grads, strict=True):
            scale = float(want.abs().max())
            torch.testing.assert_close(got.cpu().double(), want, rtol=0, atol=tol * scale)
        if first is None:  # the dense path in this dtype, on this device
            first = (out.estimate, grads)
        else:
            torch.testing.assert_close(out.estimate, first[0], rtol=tol_paths, atol=tol_paths)
            for got, want in zip(grads, first[1], strict=True):
                scale = float(want.abs().max())
                torch.testing.assert_close(got, want, rtol=0, atol=tol_paths * scale)
        if critic is not None:
            critic.to("cpu", torch.float64)


@pytest.mark.parametrize("dtype_name", sorted(DTYPES))
def test_auto_takes_attention_on_cuda_and_global_loss_agrees(dtype_name):
    dtype, tol, _ = DTYPES[dtype_name]
    x, y, _, _, _ = _case("none")
    x, y = x.to(dtype), y[:, 0].to(dtype)
    loss_fn = LocalMILoss("infonce", None)
    got = loss_fn(x.cuda(), y.cuda()).estimate.cpu().double()
    assert loss_fn.last_backend == "attention"
    want = LocalMILoss("infonce", None)(x.double(), y.double()).estimate
    torch.testing.assert_close(got, want, rtol=tol, atol=tol)
    glob = GlobalMILoss("infonce", None)
    torch.testing.assert_close(
        glob(x.cuda(), y.cuda()).estimate.cpu().double(),
        GlobalMILoss("infonce", None)(x.double(), y.double()).estimate,
        rtol=tol, atol=tol,
    )  # fmt: skip


def test_attention_memory_grows_linearly_with_the_batch():
    """Issue 13's case: 16 x 16 cells x 1 sentence, 128-d, bfloat16, forward + backward. The
    attention path's peak memory grows linearly in B and stays within 4 GB at B = 4096 (the
    dense score tensor alone is 256 x 4096 x 4096 x 2 bytes = 8.6 GB)."""
    peaks = {}
    for batch in (1024, 4096):
        x = torch.randn(batch, 128, 16, 16, device="cuda", dtype=torch.bfloat16).requires_grad_()
        y = torch.randn(batch, 128, device="cuda", dtype=torch.bfloat16).requires_grad_()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        LocalMILoss("infonce", None, backend="attention")(x, y).loss.backward()
        torch.cuda.synchronize()
        peaks[batch] = torch.cuda.max_memory_allocated() - base
        del x, y
    assert peaks[4096] < 6 * peaks[1024]  # linear (4x), not quadratic (16x)
    assert peaks[4096] <= 4e9, f"{peaks[4096] / 1e9:.2f} GB at B = 4096"


def test_bfloat16_features_with_float32_factors_use_a_float32_kernel():
    """QuadraticCritic factorises bfloat16 features in float32: the attention path must use a
    kernel for float32 (CUDA's flash kernel refuses it), not the one for the inputs' dtype."""
    x, y, x_mask, y_mask, critic = _case("quadratic")
    critic = critic.to("cuda", torch.bfloat16)
    loss_fn = LocalMILoss("infonce", critic, sampler=AllPairs(), backend="attention",
                          y_pattern="b l c")
    out = loss_fn(x.cuda().bfloat16(), y.cuda().bfloat16(), x_mask.cuda(), y_mask.cuda())
    assert loss_fn.last_backend == "attention" and torch.isfinite(out.estimate).all()


@pytest.mark.parametrize("bound", ["club", "ba", "flo", "l1out"])
def test_generative_estimators_on_cuda_equal_float64_on_cpu(bound):
    """The conditional density's factors on every path a bound takes on CUDA (float32): the
    value, the gradient of ``loss`` in the features and of ``model_loss`` in q."""
    from mitools.conditionals import DiagonalGaussian
    from mitools.estimators import BA

    x, y, x_mask, y_mask, _ = _case("none")
    torch.manual_seed(0)
    q = DiagonalGaussian(16, 16, hidden=(32,), min_scale=0.5)
    kw = dict(sampler=AllPairs(), reduction="mean", y_pattern="b l c")
    make = {"ba": lambda: BA(entropy_y=1.0)}.get(bound, lambda: get_estimator(bound))
    paths = {"club": ("dense", "blocked", "attention"), "ba": ("dense", "blocked", "attention"),
             "flo": ("dense", "blocked", "attention"), "l1out": ("dense",)}[bound]  # fmt: skip
    ref_q = q.double()
    xr, yr = x.double().requires_grad_(), y.double().requires_grad_()
    ref = LocalMILoss(make(), ref_q, backend="dense", **kw)(xr, yr, x_mask, y_mask)
    ref_grads = torch.autograd.grad(ref.loss + ref.model_loss, [xr, yr, *ref_q.parameters()])
    for backend in paths:
        gpu_q = q.to("cuda", torch.float32)
        loss_fn = LocalMILoss(make(), gpu_q, backend=backend, chunk_size=7, **kw)
        xc, yc = x.cuda().requires_grad_(), y.cuda().requires_grad_()
        out = loss_fn(xc, yc, x_mask.cuda(), y_mask.cuda())
        assert loss_fn.last_backend == backend
        grads = torch.autograd.grad(out.loss + out.model_loss, [xc, yc, *gpu_q.parameters()])
        torch.testing.assert_close(out.estimate.cpu().double(), ref.estimate, rtol=1e-4,
                                   atol=1e-4)  # fmt: skip
        for got, want in zip(grads, ref_grads, strict=True):
            scale = float(want.abs().max())
            torch.testing.assert_close(got.cpu().double(), want, rtol=0, atol=1e-4 * scale)
        q.to("cpu", torch.float64)
    auto = LocalMILoss("club", q.to("cuda", torch.float32), **kw)
    auto(x.cuda(), y.cuda())
    assert auto.last_backend == "attention"  # a sum of the scores: linear, no kernel needed


@pytest.mark.parametrize("bound", ["infonce", "mine"])
def test_a_cpu_checkpoint_resumes_on_cuda_with_its_queue(bound):
    """A state saved to the CPU (as checkpoints are) and loaded into a loss moved to CUDA
    puts the queue (and MINE's averages) on CUDA, and the next loss equals the one the
    original CUDA run computes, exactly (before, the queue came back empty)."""
    g = torch.Generator().manual_seed(1)
    data = [(torch.randn(4, 4, 2, 2, generator=g).cuda(), torch.randn(4, 3, generator=g).cuda())
            for _ in range(4)]  # fmt: skip

    def make():
        torch.manual_seed(0)
        critic = SeparableCritic(4, 3, hidden=(5,), embed_dim=4)
        return LocalMILoss(bound, critic, queue=6, x_pattern="b c h w", y_pattern="b c").cuda()

    run = make()
    for x, y in data[:3]:
        run(x, y).loss.backward()
    state = {k: v.cpu() for k, v in run.state_dict().items()}
    resumed = make()
    resumed.load_state_dict(state)
    assert {t.device.type for t in resumed.buffers()} == {"cuda"}
    assert len(resumed.queue) == 6
    x, y = data[3]
    assert torch.equal(resumed(x, y).loss, run(x, y).loss)
