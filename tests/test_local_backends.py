"""The execution paths of the local losses: agreement, precision, fallbacks, regressions.

The reference equivalence of every path (values and gradients against the naive loop, 1e-9 in
float64) is in ``test_local.py``; here: gradchecks, offsets, dtypes, the kernel fallback, the
choice of ``"auto"``, MINE's per-pair averages and the regressions of issues 14 and 15.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from local_reference import naive_local_mi

from mitools import bounds
from mitools.critics import QuadraticCritic, SeparableCritic
from mitools.estimators import MINE, get_estimator
from mitools.local import GlobalMILoss, LocalMILoss, attention, kernels
from mitools.local.backends import problem_values
from mitools.local.problems import PairMasks, Problems
from mitools.local.scoring import Scorer
from mitools.samplers import AllPairs, LocalToGlobal, PositionPairs, RandomPairs

F64 = torch.float64
FUSED_BOUNDS = {
    "infonce": ("blocked", "attention"),
    "dv": ("blocked", "attention"),
    "nwj": ("blocked", "attention"),
    "tuba": ("blocked", "attention"),
    "jsd": ("blocked",),
    "js": ("blocked",),
    "smile": ("blocked",),
}


def _estimator(name: str):
    return get_estimator("tuba", baseline=0.3) if name == "tuba" else get_estimator(name)


@pytest.mark.parametrize(
    ("bound", "backend"),
    [(b, p) for b in ("infonce", "dv", "nwj", "tuba", "jsd") for p in FUSED_BOUNDS[b]],
)
def test_fused_paths_gradcheck(bound, backend):
    """js and smile are left out: their gradient is not that of their value."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, 3, dtype=F64, generator=gen, requires_grad=True)  # b l c
    y = torch.randn(4, 2, 3, dtype=F64, generator=gen, requires_grad=True)
    x_mask = torch.tensor([[1, 1, 0], [1, 1, 1], [0, 1, 1], [1, 0, 1]], dtype=torch.bool)
    loss_fn = LocalMILoss(_estimator(bound), None, AllPairs(), "logsumexp", x_pattern="b l c",
                          y_pattern="b l c", backend=backend, chunk_size=2,
                          column_chunk_size=3 if backend == "blocked" else None)  # fmt: skip
    assert torch.autograd.gradcheck(lambda x, y: loss_fn(x, y, x_mask).loss, (x, y))
    assert loss_fn.last_backend == backend


@pytest.mark.parametrize("backend", ["dense", "blocked", "attention"])
def test_every_path_matches_the_bounds_with_gathered_columns(backend):
    """An offset positive (columns gathered from other ranks, then a queue), every row-wise
    bound a path takes, against the bound functions on the explicit scores."""
    gen = torch.Generator().manual_seed(2)
    n, m, offset = 3, 9, 4
    xp = torch.randn(2, n, 4, dtype=F64, generator=gen)  # 2 x positions
    yq = torch.randn(1, m, 4, dtype=F64, generator=gen)  # 1 y position, 9 columns
    col_mask = torch.ones(1, m, dtype=torch.bool)
    col_mask[0, 8] = False  # a padded queue column
    pairs = PositionPairs(torch.tensor([0, 1]), torch.tensor([0, 0]), (2,), torch.arange(2))
    for name in FUSED_BOUNDS:
        if backend != "dense" and backend not in FUSED_BOUNDS[name]:
            continue
        problems = Problems(pairs, PairMasks(None, col_mask), offset, n, m)
        kernel = attention.find_kernel(xp.device, F64) if backend == "attention" else None
        got, ran = problem_values(
            backend, kernel, problems, Scorer(None), _estimator(name), xp, yq, None, 2
        )
        assert ran == backend
        scores = xp @ yq[0].T  # (2, n, m)
        fn = {"tuba": lambda s, **kw: bounds.tuba(s, 0.3, **kw)}.get(name, getattr(bounds, name))
        want = fn(scores, offset=offset, col_mask=col_mask[0].expand(2, m))
        torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


# ---------------------------------------------------------------------------------------------
# Dtypes: every path of both losses agrees to rounding in float32, float16 and bfloat16.
# ---------------------------------------------------------------------------------------------


def _issue_15_input():
    """Cells (8, 64, 2, 2) sharing a sentence vector (8, 64), features about 40 N(0, 1)."""
    gen = torch.Generator().manual_seed(0)
    y = 40 * torch.randn(8, 64, generator=gen)
    x = y[:, :, None, None] + 40 * torch.randn(8, 64, 2, 2, generator=gen)
    return x, y


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_half_precision_unchunked_loss_is_finite_and_agrees(dtype):
    """Issue 15, item 2: the unchunked loss returned NaN in float16 (a positive's dot product
    passed 65504); every path now scores in float32 and gives log 8 = 2.0794 here."""
    x, y = _issue_15_input()
    reference = LocalMILoss("infonce", None)(x.double(), y.double()).estimate
    assert float(reference) == pytest.approx(2.0794, abs=1e-4)
    for kw in ({}, {"chunk_size": 2}, {"column_chunk_size": 4}, {"backend": "attention"},
               {"backend": "dense"}):  # fmt: skip
        xx = x.to(dtype).requires_grad_()
        yy = y.to(dtype).requires_grad_()
        out = LocalMILoss("infonce", None, **kw)(xx, yy)
        out.loss.backward()
        assert out.estimate.dtype == torch.float32
        assert float(out.estimate) == pytest.approx(float(reference), abs=2e-4), kw
        assert bool(torch.isfinite(xx.grad).all()) and bool(torch.isfinite(yy.grad).all())
    glob = GlobalMILoss("infonce", None)(x.to(dtype), y.to(dtype)).estimate
    assert float(glob) == pytest.approx(2.0794, abs=2e-4)


@pytest.mark.parametrize("bound", ["dv", "nwj", "js", "jsd"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_every_path_agrees_in_half_precision(bound, dtype):
    """Half-precision features, float32 scores: each path equals the float32 computation on
    the same (rounded) features."""
    gen = torch.Generator().manual_seed(3)
    x = (3 * torch.randn(6, 8, 3, 3, generator=gen)).to(dtype)
    y = (3 * torch.randn(6, 8, generator=gen)).to(dtype)
    want = LocalMILoss(bound, None, backend="dense")(x.float(), y.float()).estimate
    for backend in ("dense", *FUSED_BOUNDS[bound]):
        got = LocalMILoss(bound, None, backend=backend)(x, y).estimate
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-5)


def test_quadratic_critic_takes_the_fast_paths_in_half_precision():
    torch.manual_seed(0)
    critic = QuadraticCritic(8, 8, hidden=(8,), embed_dim=4)
    gen = torch.Generator().manual_seed(4)
    x, y = 20 * torch.randn(6, 8, 2, 2, generator=gen), 20 * torch.randn(6, 8, generator=gen)
    want = LocalMILoss("dv", critic, backend="dense")(x, y).estimate
    for backend in ("blocked", "attention"):
        loss_fn = LocalMILoss("dv", critic.half(), backend=backend)
        got = loss_fn(x.half(), y.half()).estimate
        assert loss_fn.last_backend == backend and torch.isfinite(got)
        critic.float()
        torch.testing.assert_close(got, want, atol=0.05, rtol=0.01)


# ---------------------------------------------------------------------------------------------
# The attention kernel: a missing or wrong kernel falls back to the blocked path, once warned.
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def no_kernel_cache(monkeypatch):
    monkeypatch.setattr(kernels, "_KERNELS", {})
    monkeypatch.setattr(kernels, "_WARNED", set())


@pytest.mark.parametrize("fault", ["missing", "wrong"])
def test_attention_without_a_working_kernel_falls_back_with_one_warning(
    monkeypatch, no_kernel_cache, fault
):
    real = kernels._cpu_flash

    def broken():
        if fault == "missing":
            return None
        kernel = real()

        def forward(q, k, causal):
            out, lse, aux = kernel.forward(q, k, causal)
            return out, lse + 1.0, aux  # a kernel that returns the wrong log-sum-exp

        return kernel._replace(forward=forward)

    monkeypatch.setattr(kernels, "_cpu_flash", broken)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(5, 4, 2, 2, generator=gen), torch.randn(5, 4, generator=gen)
    loss_fn = LocalMILoss("infonce", None, backend="attention")
    with pytest.warns(RuntimeWarning, match="falls back to the blocked path"):
        out = loss_fn(x, y)
    assert loss_fn.last_backend == "blocked"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # only once
        loss_fn(x, y)
    torch.testing.assert_close(out.estimate, LocalMILoss("infonce", None)(x, y).estimate)


def test_attention_kernel_self_check_passes_on_cpu():
    for dtype in (torch.float64, torch.float32, torch.bfloat16):
        kernel = attention.find_kernel(torch.device("cpu"), dtype, warn=False)
        assert kernel is not None and kernel.name == "flash (CPU)"


# ---------------------------------------------------------------------------------------------
# "auto", options and errors.
# ---------------------------------------------------------------------------------------------


def test_auto_chooses_by_capability_and_size():
    x, y = torch.randn(6, 4, 2, 2), torch.randn(6, 4)
    cases = [
        (LocalMILoss("dv", None), "dense"),  # small: dense is fastest
        (LocalMILoss("dv", None, chunk_size=2), "blocked"),  # a memory setting
        (LocalMILoss("dv", QuadraticCritic(4, 4), column_chunk_size=3), "blocked"),
        (LocalMILoss("alpha_infonce", None, chunk_size=2), "dense"),  # no row-wise form
        (LocalMILoss("dv", None, negatives="derangement"), "dense"),
    ]
    for loss_fn, want in cases:
        loss_fn(x, y)
        assert loss_fn.last_backend == want, loss_fn
    assert "backend='auto'" in repr(LocalMILoss()) and "backend='attention'" in repr(
        GlobalMILoss(backend="attention")
    )


def test_backend_errors_name_what_is_missing():
    from mitools.critics import ConcatCritic

    with pytest.raises(ValueError, match="backend must be one of"):
        LocalMILoss(backend="flash")
    with pytest.raises(ValueError, match=r"backend=.blocked. needs a separable critic.*Concat"):
        LocalMILoss("dv", ConcatCritic(3, 3, hidden=(4,)), backend="blocked")
    with pytest.raises(ValueError, match="per-row"):
        LocalMILoss("alpha_infonce", None, backend="attention")
    with pytest.raises(ValueError, match="backend='attention' computes log-sum-exps"):
        LocalMILoss("jsd", None, backend="attention")
    with pytest.raises(ValueError, match="negatives='derangement'"):
        LocalMILoss("dv", None, negatives="derangement", backend="blocked")


def test_callable_reduction():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 4, 2, 2, generator=gen, dtype=F64), torch.randn(6, 4, dtype=F64)
    out = LocalMILoss("dv", None, reduction=lambda v, a: v[a].min())(x, y)
    torch.testing.assert_close(out.estimate, out.pair_estimates.min())
    with pytest.raises(ValueError, match="0-dim"):
        LocalMILoss("dv", None, reduction=lambda v, a: v)(x, y)
    with pytest.raises(TypeError, match="reduction"):
        LocalMILoss(reduction=3)


def test_global_loss_every_path_agrees():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(9, 4, 3, 3, generator=gen, dtype=F64), torch.randn(9, 4, dtype=F64)
    for bound in ("infonce", "dv", "js"):
        values = [
            GlobalMILoss(bound, None, backend=b, column_chunk_size=4 if b == "blocked" else None)(
                x, y
            ).estimate
            for b in ("dense", *FUSED_BOUNDS[bound])
        ]
        for v in values[1:]:
            torch.testing.assert_close(v, values[0], atol=1e-12, rtol=0)


# ---------------------------------------------------------------------------------------------
# Regressions: non-finite scores (issue 15.4), channels-last grids (issue 14.5).
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["dense", "blocked", "attention"])
def test_non_finite_features_raise_naming_the_pair(backend):
    x, y = torch.randn(5, 4, 2, 2), torch.randn(5, 4)
    x[2, 0, 1, 1] = float("inf")
    with pytest.raises(ValueError, match=r"not finite|non-finite"):
        LocalMILoss("dv", None, backend=backend)(x, y)
    with bounds.check_finite(False):  # the hot-loop switch
        out = LocalMILoss("dv", None, backend=backend)(x, y)
    assert not bool(torch.isfinite(out.pair_estimates).all())


def test_channels_last_grid_names_pattern_shape_and_channels():
    """Issue 14, item 5: the error used to read ``SeparableCritic: x has 8 features (shape (1,
    32, 8))``."""
    loss_fn = LocalMILoss("infonce", SeparableCritic(64, 16, hidden=()), x_pattern="b c h w")
    with pytest.raises(ValueError) as err:
        loss_fn(torch.randn(32, 8, 8, 64), torch.randn(32, 16))
    message = str(err.value)
    for part in ("(32, 8, 8, 64)", "'b c h w'", "dim_x=64", "'b h w c'", "SeparableCritic"):
        assert part in message, message
    with pytest.raises(ValueError, match=r"critic=None.*\(4, 3, 2, 2\).*'b c h w'"):
        LocalMILoss()(torch.randn(4, 3, 2, 2), torch.randn(4, 5))
    # critic=None: a channels-last grid is a pattern to fix, not a critic to add (issue 14 b)
    with pytest.raises(ValueError) as err:
        LocalMILoss("infonce", None, x_pattern="b c h w")(torch.randn(4, 8, 8, 64),
                                                          torch.randn(4, 64))
    message = str(err.value)
    assert "Cx=8 and Cy=64" in message and "use x_pattern 'b h w c'" in message, message
    assert "pass a critic" not in message
    loss_fn = LocalMILoss("infonce", None, x_pattern="b h w c")  # the advice works
    assert loss_fn(torch.randn(4, 8, 8, 64), torch.randn(4, 64)).local.shape == (8, 8)
    with pytest.raises(ValueError, match=r"use y_pattern 'b l c'"):  # on the y side too
        LocalMILoss("infonce", None, x_pattern="b c", y_pattern="b c l")(
            torch.randn(4, 16), torch.randn(4, 10, 16))
    with pytest.raises(ValueError, match=r"Cx=3 and Cy=5.*critic=mitools.SeparableCritic\(3, 5\)"):
        LocalMILoss()(torch.randn(4, 3, 2, 2), torch.randn(4, 5))
    # a pattern of the wrong rank: suggest one of the tensor's rank
    with pytest.raises(ValueError, match=r"\(4, 10, 64\) \(3 dims\) but x_pattern 'b c h w' names "
                                         r"4 axes; for 3 dims use e.g. 'b l c' \(channels last\) "
                                         r"or 'b c l'"):
        LocalMILoss("infonce", None, x_pattern="b c h w")(torch.randn(4, 10, 64),
                                                          torch.randn(4, 64))
    with pytest.raises(ValueError, match=r"with the critic's 64 channels last use 'b l c'"):
        LocalMILoss("infonce", SeparableCritic(64, 16, hidden=()), x_pattern="b c h w")(
            torch.randn(4, 10, 64), torch.randn(4, 16))


def test_help_of_the_result_describes_every_field_with_its_shape():
    import pydoc

    from mitools.local import LocalMIResult

    text = pydoc.render_doc(LocalMIResult, renderer=pydoc.plaintext)
    assert "Alias for field number" not in text
    for field in LocalMIResult._fields:
        doc = getattr(LocalMIResult, field).__doc__
        assert " ".join(doc.split()) in " ".join(text.split()), field
    for shape in ("``(K,)``", "``(H, W)``", "``()``"):
        assert shape in text


# ---------------------------------------------------------------------------------------------
# MINE: one moving average per position pair (issue 15, item 3).
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["dense", "blocked", "attention"])
def test_mine_moving_average_is_per_position_pair(backend):
    """Issue 15, item 3: with one random pair per step the average was indexed by the
    sampler's slot, so pairs mixed (relative gradient errors up to 9.2 from step 3). Now the
    gradients equal one MINE per position pair at every step."""
    gen = torch.Generator().manual_seed(0)
    loss_fn = LocalMILoss(
        MINE(momentum=0.9), None, RandomPairs(1, generator=torch.Generator().manual_seed(1)),
        x_pattern="b c l", y_pattern="b c", backend=backend,
    )  # fmt: skip
    ref_sampler = RandomPairs(1, generator=torch.Generator().manual_seed(1))
    table: dict = {}
    drawn = set()
    for _ in range(6):
        x = torch.randn(16, 4, 2, dtype=F64, generator=gen)
        x[:, :, 0] *= 3  # position 0 scaled x3: the two pairs' partition functions differ
        y = torch.randn(16, 4, dtype=F64, generator=gen)
        x.requires_grad_()
        out = loss_fn(x, y)
        ref, _ = naive_local_mi(
            None, None, ref_sampler, "mean", x, y, "b c l", "b c",
            estimator_of_pair=lambda p, q: table.setdefault((p, q), MINE(momentum=0.9)),
        )  # fmt: skip
        drawn.add(int(out.pairs.where[0]))
        (got,) = torch.autograd.grad(out.loss, [x])
        (want,) = torch.autograd.grad(-ref, [x])
        torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
    assert drawn == {0, 1}  # both pairs were drawn, in some order
    for (p, _), mine in table.items():
        torch.testing.assert_close(loss_fn.estimator.log_partition_ema[p], mine.log_partition_ema)


def test_mine_padding_pairs_do_not_update_their_average():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 3, 4, generator=gen), torch.randn(6, 3, generator=gen)  # b c l
    x_mask = torch.ones(6, 4, dtype=torch.bool)
    x_mask[:, 2] = False  # position 2 is padding in every sample: pair 2 is never real
    mine = MINE(momentum=0.5)
    loss_fn = LocalMILoss(mine, None, LocalToGlobal(), x_pattern="b c l", chunk_size=1)
    loss_fn(x.requires_grad_(), y, x_mask).loss.backward()
    assert mine.seen.tolist() == [True, True, False, True]
    assert float(mine.log_partition_ema[2]) == 0.0


@pytest.mark.parametrize("make", ["_cuda_flash", "_cuda_efficient", "_cpu_flash"])
def test_kernel_wrappers_fit_the_operators_on_meta_tensors(make):
    """The CUDA wrappers cannot run here, but ATen's meta kernels check their arguments and the
    shapes they return (the efficient kernel pads its log-sum-exp to a multiple of 32)."""
    kernel = getattr(kernels, make)()
    if kernel is None:
        pytest.skip("operator absent from this torch")
    dtype = torch.float16 if make == "_cuda_flash" else torch.float32
    q = torch.empty(1, 3, 37, 8, device="meta", dtype=dtype)
    k = torch.empty(1, 3, 50, 8, device="meta", dtype=dtype)
    for causal in (False, True):
        try:
            out, lse, aux = kernel.forward(q, k, causal)
        except NotImplementedError:
            pytest.skip("no meta kernel")
        assert out.shape == q.shape and lse.shape == (1, 3, 37)
        d_keys = kernel.backward(q, q, k, out, aux, causal)
        assert d_keys.shape == k.shape


# ---------------------------------------------------------------------------------------------
# The attention kernel is the one for the dtype the factors run in (found on an H200: CUDA's
# flash kernel, chosen for bfloat16 features, was handed QuadraticCritic's float32 factors).
# ---------------------------------------------------------------------------------------------


class _Float32Factors(torch.nn.Module):
    """A separable critic whose factors are float32 whatever its inputs' dtype."""

    separable = True

    def __init__(self, dim: int) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(3)
        self.weight = torch.nn.Parameter(torch.randn(dim, dim, generator=gen) / dim**0.5)

    def factorise(self, x, y):
        return x.float() @ self.weight, y.float()

    def forward(self, x, y):
        u, v = self.factorise(x, y)
        return u @ v.transpose(-1, -2)


def test_attention_uses_the_kernel_for_the_factors_dtype():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, 2, 2, generator=gen, dtype=F64)
    y = torch.randn(6, 4, generator=gen, dtype=F64)
    critic = _Float32Factors(4)
    loss_fn = LocalMILoss("infonce", critic, backend="attention")
    out = loss_fn(x, y)  # the backend is chosen for float64 inputs, the factors are float32
    assert loss_fn.last_backend == "attention"
    dense = LocalMILoss("infonce", critic, backend="dense")(x, y)
    torch.testing.assert_close(out.estimate.double(), dense.estimate.double(), atol=1e-5, rtol=0)


def test_attention_statistics_refuses_a_kernel_for_another_dtype():
    kernel = attention.find_kernel(torch.device("cpu"), F64)
    assert kernel is not None and kernel.dtype == F64
    u = torch.randn(2, 5, 4)
    pairs = PositionPairs(torch.tensor([0, 1]), torch.tensor([0, 0]), (2,), torch.arange(2))
    problems = Problems(pairs, PairMasks(None, None), 0, 5, 5)
    stat = get_estimator("infonce").rowwise.statistics
    with pytest.raises(ValueError, match=r"verified for torch.float64.*u \(2, 5, 4\).*float32"):
        attention.attention_statistics(u, u[:1], problems, stat, None, kernel)


def test_attention_chunks_pairs_for_memory_without_chunk_size(monkeypatch):
    """Without ``chunk_size`` the attention path splits the pairs so that a float32 block stays
    within ATTENTION_BLOCK_BYTES; the values and gradients do not change."""
    from mitools.local import backends

    gen = torch.Generator().manual_seed(1)
    x = torch.randn(7, 8, 3, 3, generator=gen, dtype=F64, requires_grad=True)
    y = torch.randn(7, 8, generator=gen, dtype=F64, requires_grad=True)
    whole = LocalMILoss("infonce", None, backend="attention")(x, y)
    seen = []
    real = attention.attention_statistics

    def spy(u, v, problems, statistics, pair_chunk, kernel):
        seen.append(pair_chunk)
        return real(u, v, problems, statistics, pair_chunk, kernel)

    multiple = attention.find_kernel(x.device, F64).multiple
    monkeypatch.setattr(backends, "ATTENTION_BLOCK_BYTES", 2 * 7 * (8 + multiple) * 4)
    monkeypatch.setattr(attention, "attention_statistics", spy)
    split = LocalMILoss("infonce", None, backend="attention")(x, y)
    assert seen == [2]  # two pairs per call: 5 calls for 9 pairs
    torch.testing.assert_close(split.estimate, whole.estimate, atol=1e-12, rtol=0)
    got = torch.autograd.grad(split.loss, [x, y])
    want = torch.autograd.grad(whole.loss, [x, y])
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_alpha_infonce_baseline_on_another_device_is_named():
    from mitools.bounds import alpha_infonce

    # (a CUDA baseline with CPU scores reads the same; a meta tensor stands in for the GPU)
    with pytest.raises(ValueError, match=r"log_baseline is on meta but the scores are on cpu"):
        alpha_infonce(torch.randn(4, 4), alpha=0.5, log_baseline=torch.zeros(4, device="meta"))


def test_a_non_finite_feature_names_the_masks_of_the_loss() -> None:
    """Regression (review): LocalMILoss's non-finite error said "Mask padding with
    row_mask/col_mask", the bounds' arguments, not the loss's x_mask/y_mask."""
    from mitools.local import LocalMILoss

    g = torch.Generator().manual_seed(0)
    img, sent = torch.randn(4, 8, 3, 3, generator=g), torch.randn(4, 8, generator=g)
    img[0, 0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="LocalMILoss's and GlobalMILoss's x_mask/y_mask"):
        LocalMILoss("infonce", None, x_pattern="b c h w", y_pattern="b c")(img, sent)


@pytest.mark.parametrize("bound", ["dv", "infonce"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("scale", [1.0, 200.0, 2000.0])
def test_padding_stays_out_of_the_attention_path_whatever_the_scores_scale(bound, dtype, scale):
    """Regression (core review): padding was removed by adding -32768 to its score, so in a row
    whose valid scores were all lower (critic=None on large raw features) the padding column
    dominated the log-sum-exp: DV gave -7231.307 for the dense path's -198.208."""
    x = torch.full((4, 1), scale, dtype=dtype)
    x[0] = scale + 1.0
    y = torch.full((4, 2, 1), -scale, dtype=dtype)
    y[1] = 1.0 - scale
    y_mask = torch.ones(4, 2, dtype=torch.bool)
    y_mask[3, 1] = False
    values = {
        backend: LocalMILoss(bound, None, AllPairs(), backend=backend, x_pattern="b c",
                             y_pattern="b l c")(x, y, y_mask=y_mask).pair_estimates
        for backend in ("dense", "blocked", "attention")
    }  # fmt: skip
    if scale == 200.0 and bound == "dv" and dtype == torch.float64:
        torch.testing.assert_close(values["dense"], torch.full((2,), -198.20824053077376,
                                                               dtype=dtype))  # fmt: skip
    for backend in ("blocked", "attention"):
        torch.testing.assert_close(values[backend], values["dense"])


def test_fused_path_errors_say_which_requirement_fails():
    """alpha_infonce with a SeparableCritic was told it "needs a separable critic ... got critic
    SeparableCritic and bound AlphaInfoNCE(<multi-line repr>)": the one requirement that fails
    (the bound has no per-row statistics) was never named."""
    from mitools.critics import ConcatCritic, SeparableCritic

    critic = SeparableCritic(3, 3, hidden=(), embed_dim=4)
    for kw in ({"column_chunk_size": 2}, {"backend": "blocked"}, {"backend": "attention"}):
        with pytest.raises(ValueError) as info:
            LocalMILoss("alpha_infonce", critic, **kw)
        message = str(info.value)
        assert "the bound 'alpha_infonce' has no per-row statistics" in message
        assert "has no factorisation" not in message and "\n" not in message
    with pytest.raises(ValueError) as info:
        LocalMILoss("dv", ConcatCritic(3, 3), negatives="derangement", backend="blocked")
    message = str(info.value)
    assert "the critic ConcatCritic has no factorisation" in message
    assert "; negatives='derangement'; use backend='dense'" in message
    assert "per-row statistics;" not in message


def test_attention_refusals_name_statistics_and_critics_readably():
    """Regression (minor-local): the refusal of a bound the attention path cannot fuse printed
    the statistics' field reprs, ``((RowStatistic(reduce='sum', over='negatives',
    transform=Transform(name='softplus', param=None)),))``; a function critic was named
    "function"; ``attention_statistics`` given a transformed statistic ignored the transform
    silently."""

    def my_critic(x, y):
        return x @ y.mT

    for bound, named in (("jsd", "(sum of softplus over negatives)"),
                         ("smile", "(logsumexp of clip(5) over negatives, sum of softplus over "
                                   "negatives)")):  # fmt: skip
        with pytest.raises(ValueError) as info:
            LocalMILoss(bound, None, backend="attention")
        message = str(info.value)
        assert named in message and "RowStatistic" not in message and " at 0x" not in message
    with pytest.raises(ValueError, match=r"the critic my_critic \(a function\) has no factor"):
        LocalMILoss("infonce", my_critic, backend="attention")
    with pytest.raises(ValueError, match=r"and my_critic \(a function\) does not declare"):
        LocalMILoss("club", my_critic)
    kernel = attention.find_kernel(torch.device("cpu"), torch.float32)
    assert kernel is not None
    u = torch.randn(2, 5, 4)
    pairs = PositionPairs(torch.tensor([0, 1]), torch.tensor([0, 0]), (2,), torch.arange(2))
    problems = Problems(pairs, PairMasks(None, None), 0, 5, 5)
    stats = get_estimator("jsd").rowwise.statistics
    with pytest.raises(ValueError, match=r"transformed scores \(sum of softplus over negatives"):
        attention.attention_statistics(u, u[:1], problems, stats, None, kernel)
