"""mitools.critics.pooled: max- and attention-pooled critics against naive loops, gradcheck,
limits, masks and errors."""

from __future__ import annotations

import pytest
import torch

from mitools.bounds import infonce
from mitools.critics import (
    AttentionPoolCritic,
    BilinearCritic,
    ConcatCritic,
    MaxPoolCritic,
    SeparableCritic,
)

BASES = {
    "separable": lambda: SeparableCritic(3, 2, hidden=(5,), embed_dim=4),
    "bilinear": lambda: BilinearCritic(3, 2),
    "concat": lambda: ConcatCritic(3, 2, hidden=(6,), chunk_size=2),
}


def _data(n=4, p=5, m=3, lead=(), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*lead, n, p, 3, generator=g, dtype=torch.float64)
    y = torch.randn(*lead, m, 2, generator=g, dtype=torch.float64)
    mask = torch.rand(*lead, n, p, generator=g) < 0.7
    mask[..., 0] = True  # every sample keeps a position
    return x, y, mask


def _one(base, xi, yj):
    """The base critic on a single (row, column) pair."""
    return base(xi[None], yj[None])[0, 0]


def _naive_max(base, x, y, mask=None):
    n, p, m = x.shape[0], x.shape[1], y.shape[0]
    out = torch.empty(n, m, dtype=x.dtype)
    for i in range(n):
        for j in range(m):
            best = -float("inf")
            for q in range(p):
                if mask is None or mask[i, q]:
                    best = max(best, float(_one(base, x[i, q], y[j]).detach()))
            out[i, j] = best
    return out


def _naive_attention(critic, x, y, mask=None):
    att = critic.attention if critic.attention is not None else critic.base
    n, p, m = x.shape[0], x.shape[1], y.shape[0]
    out = torch.empty(n, m, dtype=x.dtype)
    for i in range(n):
        for j in range(m):
            keep = [q for q in range(p) if mask is None or mask[i, q]]
            logits = torch.stack([_one(att, x[i, q], y[j]) for q in keep]) / critic.temperature
            w = torch.softmax(logits, 0)
            v = sum(w[k] * x[i, q] for k, q in enumerate(keep))
            out[i, j] = _one(critic.base, v, y[j])
    return out


@pytest.mark.parametrize("base", list(BASES))
@pytest.mark.parametrize("masked", [False, True])
def test_max_pool_matches_naive_loop(base, masked) -> None:
    torch.manual_seed(0)
    critic = MaxPoolCritic(BASES[base]()).double()
    x, y, mask = _data()
    got = critic(x, y, mask if masked else None)
    torch.testing.assert_close(got, _naive_max(critic.base, x, y, mask if masked else None))


@pytest.mark.parametrize("base", list(BASES))
@pytest.mark.parametrize("masked", [False, True])
def test_attention_pool_matches_naive_loop(base, masked) -> None:
    torch.manual_seed(0)
    critic = AttentionPoolCritic(BASES[base](), temperature=0.7).double()
    x, y, mask = _data()
    m = mask if masked else None
    torch.testing.assert_close(critic(x, y, m), _naive_attention(critic, x, y, m))
    w = critic.weights(x, y, m)
    torch.testing.assert_close(w.sum(-1), torch.ones(4, 3, dtype=torch.float64))
    if masked:
        assert bool((w.masked_select(~mask[:, None, :].expand_as(w)) == 0).all())


def test_attention_with_its_own_attention_critic_matches_naive_loop() -> None:
    torch.manual_seed(1)
    critic = AttentionPoolCritic(SeparableCritic(3, 2, hidden=(5,)), temperature=2.0,
                                 attention=BilinearCritic(3, 2)).double()
    x, y, mask = _data(seed=3)
    torch.testing.assert_close(critic(x, y, mask), _naive_attention(critic, x, y, mask))


@pytest.mark.parametrize("cls", [MaxPoolCritic, AttentionPoolCritic])
def test_leading_dimensions_broadcast(cls) -> None:
    torch.manual_seed(0)
    critic = cls(BASES["separable"]()).double()
    x, y, mask = _data(lead=(2,))
    got = critic(x, y[:1], mask)  # y's leading 1 broadcasts against x's 2
    assert got.shape == (2, 4, 3)
    for k in range(2):
        torch.testing.assert_close(got[k], critic(x[k], y[0], mask[k]))


@pytest.mark.parametrize("cls", [MaxPoolCritic, AttentionPoolCritic])
def test_gradcheck(cls) -> None:
    torch.manual_seed(0)
    critic = cls(SeparableCritic(3, 2, hidden=(4,), embed_dim=3)).double()
    x, y, mask = _data(n=3, p=4, m=2, seed=5)
    x.requires_grad_(True)
    y.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: critic(a, b, mask), (x, y))


def test_attention_limits_are_max_and_mean_pooling() -> None:
    torch.manual_seed(0)
    base = BilinearCritic(3, 2).double()
    x, y, _ = _data()
    cold = AttentionPoolCritic(base, temperature=1e-6)
    torch.testing.assert_close(cold(x, y), MaxPoolCritic(base)(x, y))
    hot = AttentionPoolCritic(base, temperature=1e8)
    torch.testing.assert_close(hot(x, y), base(x.mean(-2), y))


def test_affine_separable_attention_is_the_weighted_mean_of_position_scores() -> None:
    torch.manual_seed(0)
    critic = AttentionPoolCritic(SeparableCritic(3, 2, hidden=()), temperature=0.5).double()
    x, y, mask = _data()
    w = critic.weights(x, y, mask)
    s = critic.position_scores(x, y, mask).nan_to_num(neginf=0.0)
    torch.testing.assert_close(critic(x, y, mask), (w * s).sum(-1))


def test_pooled_scores_train_through_a_bound() -> None:
    torch.manual_seed(0)
    critic = AttentionPoolCritic(SeparableCritic(3, 3, hidden=(8,)))
    x = torch.randn(6, 4, 3, requires_grad=True)
    value = infonce(critic(x, x[:, 2]))
    value.backward()
    assert torch.isfinite(value) and x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in critic.parameters())


@pytest.mark.parametrize("cls", [MaxPoolCritic, AttentionPoolCritic])
def test_errors_name_the_argument(cls) -> None:
    critic = cls(BilinearCritic(3, 2))
    x, y = torch.randn(4, 5, 3), torch.randn(3, 2)
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., N, P, Dx\)"):
        critic(torch.randn(4, 3), y)
    with pytest.raises(ValueError, match="y must have shape"):
        critic(x, torch.randn(2))
    with pytest.raises(ValueError, match=r"x \(\.\.\., N, P, Dx\) has 4 features .* dim_x=3"):
        critic(torch.randn(4, 5, 4), y)
    with pytest.raises(ValueError, match=r"y \(\.\.\., M, Dy\) has 3 features .* dim_y=2"):
        critic(x, torch.randn(3, 3))
    with pytest.raises(TypeError, match="x must be floating point"):
        critic(x.long(), y)
    with pytest.raises(TypeError, match="mask must be a bool tensor"):
        critic(x, y, torch.ones(4, 5))
    with pytest.raises(ValueError, match=r"mask \(\.\.\., N, P\) must broadcast with "
                                         r"x.shape\[:-1\] = \(4, 5\) .*got \(4, 4\)"):
        critic(x, y, torch.ones(4, 4, dtype=torch.bool))
    empty = torch.ones(4, 5, dtype=torch.bool)
    empty[2] = False
    with pytest.raises(ValueError, match="no real position"):
        critic(x, y, empty)
    with pytest.raises(TypeError, match="base must be a critic"):
        cls(lambda a, b: a @ b.T)


def test_attention_rejects_bad_temperature_and_attention() -> None:
    for bad in (0.0, -1.0, float("nan"), float("inf"), True, "1"):
        with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
            AttentionPoolCritic(BilinearCritic(3, 2), temperature=bad)
    with pytest.raises(TypeError, match="attention must be a critic module"):
        AttentionPoolCritic(BilinearCritic(3, 2), attention="bilinear")


@pytest.mark.parametrize("cls", [MaxPoolCritic, AttentionPoolCritic])
@pytest.mark.parametrize("padding", [float("nan"), float("inf")])
def test_padding_values_reach_neither_scores_nor_gradients(cls, padding) -> None:
    """Regression (core review): AttentionPoolCritic gave an all-NaN row when a masked position
    held NaN (w @ x multiplies its weight 0 by NaN); MaxPool's values were right but its
    base critic's weight gradients were NaN (x^T grad with x NaN)."""
    torch.manual_seed(0)
    critic = cls(SeparableCritic(3, 2, hidden=(5,))).double()
    x, y, mask = _data()
    clean = critic(x, y, mask)
    dirty = x.masked_fill(~mask[..., None], padding)
    got = critic(dirty, y, mask)
    torch.testing.assert_close(got, clean)
    grads = torch.autograd.grad(got.sum(), list(critic.parameters()))
    want = torch.autograd.grad(clean.sum(), list(critic.parameters()))
    for g, w in zip(grads, want, strict=True):
        torch.testing.assert_close(g, w)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("base", list(BASES))
def test_attention_pool_takes_half_precision_positions(base, dtype) -> None:
    """tryout 7: bfloat16 or float16 cells failed with "expected scalar type Float but found
    BFloat16" (the float32 attention weights met the half-precision cells in one matmul);
    every critic takes any floating dtype. The scores equal those of the same cells widened
    to float32, exactly (the widening is exact)."""
    torch.manual_seed(0)
    critic = AttentionPoolCritic(BASES[base](), temperature=0.7)
    x, y, mask = _data()
    xh, yh = x.to(dtype), y.to(dtype)
    got = critic(xh, yh, mask)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, critic(xh.float(), yh.float(), mask), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------
# Masks broadcast over the leading dimensions, as the guide says (torch's rules: against x's
# and y's leading dimensions, and 1 for N or P). Before, a mask had to be exactly
# x.shape[:-1]: a (4, 5) mask for x (2, 4, 5, 3) was refused ("mask must have shape
# x.shape[:-1] = (2, 4, 5)"), although the module docs and docs/guide/critics.rst said the
# leading dimensions broadcast.


def _brute_force(critic, x, y, mask):
    """The naive loops on every leading index, with x, y and the mask expanded explicitly to
    the broadcast shape (each a contiguous copy)."""
    n, p, m = x.shape[-3], x.shape[-2], y.shape[-2]
    lead = torch.broadcast_shapes(x.shape[:-3], y.shape[:-2], mask.shape[:-2])
    xs = x.expand(*lead, n, p, x.shape[-1]).reshape(-1, n, p, x.shape[-1])
    ys = y.expand(*lead, m, y.shape[-1]).reshape(-1, m, y.shape[-1])
    ms = mask.expand(*lead, n, p).reshape(-1, n, p)
    naive = _naive_max if isinstance(critic, MaxPoolCritic) else _naive_attention
    first = critic.base if isinstance(critic, MaxPoolCritic) else critic
    out = [naive(first, xs[k], ys[k], ms[k]) for k in range(xs.shape[0])]
    return torch.stack(out).reshape(*lead, n, m)


# (x's leading dims, y's, the mask's shape): N = 3, P = 4
BROADCASTS = {
    "mask without x's leading dims": ((2, 3), (), (3, 4)),
    "mask with a leading 1": ((2,), (), (1, 3, 4)),
    "mask leading more than x": ((), (), (2, 3, 4)),
    "mask, x and y each adding a dim": ((2, 1, 1), (3, 1), (4, 3, 4)),
    "one position mask for every sample": ((2,), (), (1, 4)),
    "a (P,) mask": ((2,), (), (4,)),
}


def _broadcast_data(x_lead, y_lead, mask_shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*x_lead, 3, 4, 3, generator=g, dtype=torch.float64)
    y = torch.randn(*y_lead, 2, 2, generator=g, dtype=torch.float64)
    mask = torch.rand(mask_shape, generator=g) < 0.6
    mask[..., 1] = True  # every sample keeps a position
    return x, y, mask


@pytest.mark.parametrize("case", list(BROADCASTS))
@pytest.mark.parametrize("cls", [MaxPoolCritic, AttentionPoolCritic])
def test_masks_broadcast_over_leading_dimensions(cls, case) -> None:
    torch.manual_seed(0)
    critic = cls(BASES["separable"]()).double()
    x, y, mask = _broadcast_data(*BROADCASTS[case])
    got = critic(x, y, mask)
    want = _brute_force(critic, x, y, mask.reshape((1,) * (2 - mask.dim()) + mask.shape))
    assert got.shape == want.shape
    torch.testing.assert_close(got, want)
    # and as the same call on the mask expanded by hand
    lead = want.shape[:-2]
    full = mask.expand(*lead, 3, 4).clone()
    torch.testing.assert_close(got, critic(x.expand(*lead, 3, 4, 3), y, full))


def test_attention_weights_and_its_own_critic_broadcast_the_mask() -> None:
    torch.manual_seed(0)
    critic = AttentionPoolCritic(BASES["separable"](), temperature=0.7,
                                 attention=BASES["bilinear"]()).double()  # fmt: skip
    x, y, mask = _broadcast_data((2, 1, 1), (3, 1), (4, 3, 4))
    full = mask.expand(2, 3, 4, 3, 4).clone()
    xf = x.expand(2, 3, 4, 3, 4, 3)
    torch.testing.assert_close(critic.weights(x, y, mask), critic.weights(xf, y, full))
    torch.testing.assert_close(critic(x, y, mask), _brute_force(critic, x, y, mask))
    assert critic.weights(x, y, mask).shape == (2, 3, 4, 3, 2, 4)


@pytest.mark.parametrize("cls", [MaxPoolCritic, AttentionPoolCritic])
def test_gradcheck_with_a_broadcast_mask(cls) -> None:
    torch.manual_seed(0)
    critic = cls(SeparableCritic(3, 2, hidden=(4,), embed_dim=3)).double()
    x, y, mask = _broadcast_data((), (), (2, 3, 4), seed=5)
    x.requires_grad_(True)
    y.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: critic(a, b, mask), (x, y))


@pytest.mark.parametrize("cls", [MaxPoolCritic, AttentionPoolCritic])
def test_a_mask_that_does_not_broadcast_names_both_shapes(cls) -> None:
    critic = cls(BilinearCritic(3, 2))
    x, y = torch.randn(2, 4, 5, 3), torch.randn(6, 2)
    ones = torch.ones
    with pytest.raises(ValueError, match=r"x.shape\[:-1\] = \(2, 4, 5\) .*got \(3, 4, 5\).*"
                                         r"leading dims \(3,\) must broadcast with x's \(2,\)"):
        critic(x, y, ones(3, 4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"got \(4, 6\): its last two dims must be N = 4 and "
                                         r"P = 5 \(or 1\)"):
        critic(x, y, ones(4, 6, dtype=torch.bool))
    # the mask never adds samples to x: one sample of x is not 4 masked copies
    with pytest.raises(ValueError, match=r"x.shape\[:-1\] = \(1, 5\) .*got \(4, 5\)"):
        critic(torch.randn(1, 5, 3), y, ones(4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"y's \(3,\) \(x \(2, 4, 5, 3\), y \(3, 6, 2\)\)"):
        critic(x, torch.randn(3, 6, 2), ones(2, 4, 5, dtype=torch.bool))
    empty = ones(1, 5, dtype=torch.bool)
    empty[0] = False
    with pytest.raises(ValueError, match="no real position"):
        critic(x, y, empty)


@pytest.mark.parametrize("cls", [MaxPoolCritic, AttentionPoolCritic])
def test_a_mask_on_another_device_is_named(cls) -> None:
    # it failed inside torch ("Tensor.item() cannot be called on meta tensors")
    critic = cls(BilinearCritic(3, 2))
    x, y = torch.randn(4, 5, 3), torch.randn(3, 2)
    mask = torch.ones(4, 5, dtype=torch.bool, device="meta")
    with pytest.raises(ValueError, match=r"mask is on meta but x is on cpu; move the mask "
                                         r"\(mask.to\('cpu'\)\)"):
        critic(x, y, mask)
