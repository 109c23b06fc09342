"""Fused attention kernels: looked up among PyTorch's private ATen operators and verified.

The attention path (:mod:`mitools.local.attention`) needs, from a fused attention kernel, each
row's log-sum-exp ``lse`` and the output ``O = softmax(Q Kᵀ) K`` (scale 1, ``V = K``) in the
forward pass, and ``dV`` in the backward pass. The kernels that give them are private ATen
operators whose signatures change between torch versions: on CPU the flash kernel, on CUDA the
flash kernel (half precision) and the memory-efficient one (float32 too). Each one is looked up
guardedly and checked once per device type and dtype on a small problem against a float64
reference (values and ``dV``, causal or not); ``find_kernel`` returns ``None`` (with a
one-time warning) when none is present or correct, and the loss then runs the blocked path.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor

__all__ = ["Kernel", "compute_dtype", "find_kernel"]


class Kernel(NamedTuple):
    """A fused attention kernel: its forward (with the row log-sum-exp) and its backward."""

    name: str
    #: ``(q (1, H, L, E), k (1, H, S, E), causal) -> (out, lse (1, H, L), aux)``
    forward: Callable[[Tensor, Tensor, bool], tuple[Tensor, Tensor, tuple[Any, ...]]]
    #: ``(grad_out, q, k, out, aux, causal) -> dV`` (the gradient of ``Σ grad_out·out`` in V = K)
    backward: Callable[[Tensor, Tensor, Tensor, Tensor, tuple[Any, ...], bool], Tensor]
    #: the factor dimension is padded to a multiple of this
    multiple: int
    #: the dtype the kernel was verified for (set by :func:`find_kernel`)
    dtype: torch.dtype | None = None


def _aten(forward: str) -> tuple[Any, Any] | None:
    """The private ATen operator ``forward`` and its ``_backward``, or ``None`` if one is absent."""
    try:
        return getattr(torch.ops.aten, forward), getattr(torch.ops.aten, forward + "_backward")
    except (AttributeError, RuntimeError):
        return None


def _cpu_flash() -> Kernel | None:
    ops = _aten("_scaled_dot_product_flash_attention_for_cpu")
    if ops is None:
        return None
    fwd, bwd = ops

    def forward(q: Tensor, k: Tensor, causal: bool) -> tuple[Tensor, Tensor, tuple[Any, ...]]:
        out, lse = fwd(q, k, k, 0.0, causal, scale=1.0)
        return out, lse, (lse,)

    def backward(g: Tensor, q: Tensor, k: Tensor, out: Tensor, aux: tuple, causal: bool):
        return bwd(g, q, k, k, out, aux[0], 0.0, causal, scale=1.0)[2]

    return Kernel("flash (CPU)", forward, backward, 1)


def _cuda_efficient() -> Kernel | None:
    ops = _aten("_scaled_dot_product_efficient_attention")
    if ops is None:
        return None
    fwd, bwd = ops

    def forward(q: Tensor, k: Tensor, causal: bool) -> tuple[Tensor, Tensor, tuple[Any, ...]]:
        out, lse, seed, offset = fwd(q, k, k, None, True, 0.0, causal, scale=1.0)
        return out, lse[..., : q.shape[2]], (lse, seed, offset)

    def backward(g: Tensor, q: Tensor, k: Tensor, out: Tensor, aux: tuple, causal: bool):
        lse, seed, offset = aux
        grads = bwd(g, q, k, k, None, out, lse, seed, offset, 0.0, [False, False, True, False],
                    causal, scale=1.0)  # fmt: skip
        return grads[2]

    return Kernel("memory-efficient (CUDA)", forward, backward, 8)


def _cuda_flash() -> Kernel | None:
    ops = _aten("_scaled_dot_product_flash_attention")
    if ops is None:
        return None
    fwd, bwd = ops

    def forward(q: Tensor, k: Tensor, causal: bool) -> tuple[Tensor, Tensor, tuple[Any, ...]]:
        out, lse, cum_q, cum_k, max_q, max_k, seed, offset, _ = fwd(
            q, k, k, 0.0, causal, False, scale=1.0
        )
        return out, lse, (lse, cum_q, cum_k, max_q, max_k, seed, offset)

    def backward(g: Tensor, q: Tensor, k: Tensor, out: Tensor, aux: tuple, causal: bool):
        lse, cum_q, cum_k, max_q, max_k, seed, offset = aux
        return bwd(g, q, k, k, out, lse, cum_q, cum_k, max_q, max_k, 0.0, causal, seed, offset,
                   scale=1.0)[2]  # fmt: skip

    return Kernel("flash (CUDA)", forward, backward, 8)


def _candidates(device: torch.device, dtype: torch.dtype) -> list[Callable[[], Kernel | None]]:
    if device.type == "cpu":
        return [_cpu_flash]
    if device.type == "cuda":
        if dtype in (torch.float16, torch.bfloat16):
            return [_cuda_flash, _cuda_efficient]
        if dtype == torch.float32:
            return [_cuda_efficient]
    return []


def compute_dtype(device: torch.device, dtype: torch.dtype) -> torch.dtype:
    """The dtype the kernel runs in: half precision is upcast on CPU, kept on CUDA."""
    return torch.promote_types(dtype, torch.float32) if device.type == "cpu" else dtype


def _verify(kernel: Kernel, device: torch.device, dtype: torch.dtype) -> bool:
    """The kernel against a float64 reference on a small problem (values and dV)."""
    gen = torch.Generator().manual_seed(0)
    e = max(kernel.multiple, 8)
    q = torch.randn(1, 2, 6, e, generator=gen, dtype=torch.float64)
    k = torch.randn(1, 2, 6, e, generator=gen, dtype=torch.float64)
    g = torch.randn(1, 2, 6, e, generator=gen, dtype=torch.float64)
    tol = {torch.float64: 1e-9, torch.float32: 1e-3}.get(dtype, 5e-2)
    for causal in (False, True):
        s = q @ k.mT
        if causal:
            s = s.masked_fill(~torch.ones(6, 6, dtype=torch.bool).tril(), -math.inf)
        out, lse, aux = kernel.forward(q.to(device, dtype), k.to(device, dtype), causal)
        dv = kernel.backward(
            g.to(device, dtype), q.to(device, dtype), k.to(device, dtype), out, aux, causal
        )
        want_dv = torch.softmax(s, -1).mT @ g
        if not (
            torch.allclose(lse.double().cpu(), torch.logsumexp(s, -1), rtol=tol, atol=tol)
            and torch.allclose(out.double().cpu(), torch.softmax(s, -1) @ k, rtol=tol, atol=tol)
            and torch.allclose(dv.double().cpu(), want_dv, rtol=tol, atol=tol)
        ):
            return False
    return True


_KERNELS: dict[tuple[str, torch.dtype], Kernel | None] = {}
_WARNED: set[tuple[str, torch.dtype]] = set()


def find_kernel(device: torch.device, dtype: torch.dtype, warn: bool = True) -> Kernel | None:
    """A verified fused attention kernel for ``device`` and the factors' ``dtype``, or ``None``.

    The first call per device type and dtype looks the private ATen operators up and checks
    them on a small problem; ``None`` (with a one-time ``RuntimeWarning`` when ``warn``) when
    none is present or correct.
    """
    run_dtype = compute_dtype(device, dtype)
    key = (device.type, run_dtype)
    if key not in _KERNELS:
        found = None
        for make in _candidates(device, run_dtype):
            try:
                kernel = make()
                if kernel is not None and _verify(kernel, device, run_dtype):
                    found = kernel._replace(dtype=run_dtype)
                    break
            except Exception:
                continue
        _KERNELS[key] = found
    kernel = _KERNELS[key]
    if kernel is None and warn and key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(
            f"no fused attention kernel works for {run_dtype} on {device.type} with torch "
            f"{torch.__version__}; LocalMILoss falls back to the blocked path (same values, "
            "more time)",
            RuntimeWarning,
            stacklevel=3,
        )
    return kernel
