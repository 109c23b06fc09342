"""Two gloo processes on 127.0.0.1 equal one process on the concatenated batch."""

from __future__ import annotations

import datetime
import os
import socket
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mitools import distributed
from mitools.conditionals import DiagonalGaussian
from mitools.critics import SeparableCritic
from mitools.local import GlobalMILoss, LocalMILoss
from mitools.samplers import AllPairs, RandomPairs

WORLD = 2
BATCH = 4  # per rank
# a rank that raises alone leaves the others in a collective: fail in a minute, not 30
TIMEOUT = datetime.timedelta(seconds=60)
CONFIGS = {
    "infonce": lambda c: LocalMILoss("infonce", c, gather=True),
    "infonce_blocked": lambda c: LocalMILoss(
        "infonce", c, gather=True, chunk_size=5, column_chunk_size=3
    ),
    "nwj_max": lambda c: LocalMILoss("nwj", c, reduction="max", gather=True, chunk_size=4),
    "infonce_masked_sum": lambda c: LocalMILoss(
        "infonce", c, AllPairs(), "sum", y_pattern="b l c", gather=True
    ),
    "js_masked_logsumexp": lambda c: LocalMILoss(
        "js", c, AllPairs(), "logsumexp", y_pattern="b l c", gather=True
    ),
    "jsd_all_pairs": lambda c: LocalMILoss(
        "jsd", None, AllPairs(), x_pattern="b c h w", y_pattern="b l c", gather=True
    ),
    "jsd_blocked_masked_max": lambda c: LocalMILoss(
        "jsd",
        c,
        AllPairs(),
        "max",
        y_pattern="b l c",
        gather=True,
        chunk_size=3,
        column_chunk_size=5,
    ),
    "global_infonce": lambda c: GlobalMILoss("infonce", c, y_pattern="b l c", gather=True),
    # The fused paths with gathered columns: the positive of local row i at rank * N + i.
    "infonce_attention": lambda c: LocalMILoss("infonce", c, gather=True, backend="attention"),
    "nwj_attention_masked_max": lambda c: LocalMILoss(
        "nwj", c, AllPairs(), "max", y_pattern="b l c", gather=True, backend="attention"
    ),
    "tuba_blocked_masked": lambda c: LocalMILoss(
        "tuba", c, AllPairs(), y_pattern="b l c", gather=True, backend="blocked",
        column_chunk_size=3,
    ),
    "global_nwj_attention": lambda c: GlobalMILoss(
        "nwj", c, y_pattern="b l c", gather=True, backend="attention"
    ),
}
SINGLE_VECTOR = ("infonce", "infonce_blocked", "nwj_max", "infonce_attention")


def data(name: str):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(WORLD * BATCH, 6, 3, 3, dtype=torch.float64, generator=gen)
    y_shape = (WORLD * BATCH, 6) if name in SINGLE_VECTOR else (WORLD * BATCH, 2, 6)
    y = torch.randn(y_shape, dtype=torch.float64, generator=gen)
    masks = (None, None)
    if "masked" in name:
        x_mask = torch.rand(WORLD * BATCH, 3, 3, generator=gen) > 0.4
        y_mask = torch.rand(WORLD * BATCH, 2, generator=gen) > 0.4
        x_mask[:, 0, 0] = True
        y_mask[:, 0] = True
        masks = (x_mask, y_mask)
    torch.manual_seed(1)
    critic = SeparableCritic(6, 6, hidden=(8,), embed_dim=4).double()
    return x, y, critic, masks


def run(name: str, rank: int | None, device: str = "cpu", dtype=torch.float64):
    """Loss and gradients on rank ``rank``'s slice (or on the whole batch for ``None``)."""
    x, y, critic, masks = data(name)
    if rank is not None:
        rows = slice(rank * BATCH, (rank + 1) * BATCH)
        x, y = x[rows], y[rows]
        masks = tuple(m[rows] if m is not None else None for m in masks)
    x = x.to(device, dtype).requires_grad_()
    y = y.to(device, dtype).requires_grad_()
    masks = tuple(m.to(device) if m is not None else None for m in masks)
    critic = critic.to(device, dtype)
    out = CONFIGS[name](critic)(x, y, *masks)
    out.loss.backward()
    return {
        "loss": out.loss.detach().cpu().double(),
        "x": x.grad.cpu().double(),
        "y": y.grad.cpu().double(),
        "critic": [
            torch.zeros_like(p).cpu().double() if p.grad is None else p.grad.cpu().double()
            for p in critic.parameters()
        ],
    }


def run_random_pairs(rank: int | None):
    """RandomPairs from the global RNG, seeded differently on each rank (as when each process
    seeds by its rank): every rank must score rank 0's pairs."""
    x, y, _, _ = data("infonce")
    if rank is not None:
        x, y = x[rank * BATCH : (rank + 1) * BATCH], y[rank * BATCH : (rank + 1) * BATCH]
    torch.manual_seed(0 if rank is None else rank)
    out = LocalMILoss("infonce", None, RandomPairs(3), gather=True)(x, y)
    return out.pairs.where.tolist(), out.pair_estimates, out.estimate


def worker(rank: int, port: int, outdir: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD,
        timeout=TIMEOUT,
    )
    try:
        torch.set_num_threads(1)
        results = {name: run(name, rank) for name in CONFIGS}
        results["random_pairs"] = run_random_pairs(rank)
        results["uneven"] = {sizes: uneven_results(sizes, rank) for sizes in TWO_RANKS}
        try:  # other grids on each rank: a clear error, on every rank
            x, y = torch.randn(BATCH, 6, 3, 3 - rank), torch.randn(BATCH, 6)
            LocalMILoss("infonce", None, gather=True)(x, y)
            results["other_grids"] = "no error"
        except ValueError as err:
            results["other_grids"] = str(err)
        try:  # unequal batches: a clear error, on every rank
            distributed.all_gather_with_grad(torch.zeros(rank + 1, 2))
            results["unequal"] = "no error"
        except ValueError as err:
            results["unequal"] = str(err)
        torch.save(results, os.path.join(outdir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_process_results():
    with tempfile.TemporaryDirectory() as outdir:
        mp.start_processes(
            worker, args=(free_port(), outdir), nprocs=WORLD, join=True, start_method="spawn"
        )
        return [torch.load(os.path.join(outdir, f"rank{r}.pt")) for r in range(WORLD)]


def compare(ranks: list[dict], single: dict, tol: float) -> None:
    # Every rank holds the global loss; DDP averages the ranks' gradients, so the averaged
    # gradients are the single-process ones, and each rank's input gradients are W times its
    # slice (the gathered paths sum every rank's gradient).
    for r in ranks:
        torch.testing.assert_close(r["loss"], single["loss"], atol=tol, rtol=0)
    for rank, r in enumerate(ranks):
        rows = slice(rank * BATCH, (rank + 1) * BATCH)
        torch.testing.assert_close(r["x"] / WORLD, single["x"][rows], atol=tol, rtol=0)
        torch.testing.assert_close(r["y"] / WORLD, single["y"][rows], atol=tol, rtol=0)
    for i, want in enumerate(single["critic"]):
        got = sum(r["critic"][i] for r in ranks) / WORLD
        torch.testing.assert_close(got, want, atol=tol, rtol=0)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_two_processes_equal_one_process(two_process_results, name):
    compare([r[name] for r in two_process_results], run(name, None), 1e-6)


# ---------------------------------------------------------------------------------------------
# Two GPUs with NCCL (skipped unless two exist): every path in float32 and bfloat16.
# ---------------------------------------------------------------------------------------------

NCCL_DTYPES = {"float32": (torch.float32, 1e-4), "bfloat16": (torch.bfloat16, 5e-2)}


def nccl_worker(rank: int, port: int, outdir: str) -> None:
    dist.init_process_group(
        "nccl", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD
    )
    try:
        torch.cuda.set_device(rank)
        results = {
            (name, key): run(name, rank, f"cuda:{rank}", dtype)
            for name in CONFIGS
            for key, (dtype, _) in NCCL_DTYPES.items()
        }
        torch.save(results, os.path.join(outdir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(
    not (torch.cuda.is_available() and torch.cuda.device_count() >= 2 and dist.is_nccl_available()),
    reason="needs two CUDA devices and NCCL",
)
def test_two_gpus_with_nccl_equal_one_process():
    with tempfile.TemporaryDirectory() as outdir:
        mp.start_processes(
            nccl_worker, args=(free_port(), outdir), nprocs=WORLD, join=True,
            start_method="spawn",
        )  # fmt: skip
        ranks = [torch.load(os.path.join(outdir, f"rank{r}.pt")) for r in range(WORLD)]
    for name in CONFIGS:
        single = run(name, None)  # float64 on the CPU
        for key, (_, tol) in NCCL_DTYPES.items():
            compare([r[(name, key)] for r in ranks], single, tol)


def test_unequal_batches_raise_clearly(two_process_results):
    assert "same shape" in two_process_results[0]["unequal"]
    assert "[(1, 2), (2, 2)]" in two_process_results[0]["unequal"]


def test_gathered_ranks_score_the_same_position_pairs(two_process_results):
    """RandomPairs seeded by rank drew pairs [0, 2, 8] on rank 0 and [0, 4, 6] on rank 1, and
    the ranks' estimates of different positions were averaged as one pair's, silently."""
    where, pair_estimates, estimate = run_random_pairs(None)
    for r in two_process_results:
        got_where, got_pairs, got_estimate = r["random_pairs"]
        assert got_where == where
        torch.testing.assert_close(got_pairs, pair_estimates, atol=1e-9, rtol=0)
        torch.testing.assert_close(got_estimate, estimate, atol=1e-9, rtol=0)
    for r in two_process_results:
        assert "must be the same on every rank" in r["other_grids"]
        assert "((3, 3), (), (3, 3), 9), ((3, 2), (), (3, 2), 6)" in r["other_grids"]


def test_no_process_group_is_a_no_op():
    assert not distributed.is_distributed()
    assert distributed.world_size() == 1 and distributed.rank() == 0
    t = torch.randn(3, 2, requires_grad=True)
    assert distributed.all_gather_with_grad(t) is t
    x, y, critic, _ = data("infonce")
    a = LocalMILoss("infonce", critic, gather=True)(x, y)
    b = LocalMILoss("infonce", critic, gather=False)(x, y)
    assert torch.equal(a.loss, b.loss)


# ---------------------------------------------------------------------------------------------
# Batches of different sizes on the ranks, an empty one too (ninth tryout): equal to one
# process on all the samples, on every path.
# ---------------------------------------------------------------------------------------------

TWO_RANKS = ((1, 4), (3, 0))  # samples on ranks 0 and 1, in the two-process fixture
THREE_RANKS = (2, 0, 3)  # with -m slow
UNEVEN_CONFIGS = {
    "infonce_dense_masked": lambda c: LocalMILoss(
        "infonce", c, AllPairs(), y_pattern="b l c", gather=True, backend="dense"
    ),
    "infonce_blocked_masked_max": lambda c: LocalMILoss(
        "infonce", c, AllPairs(), "max", y_pattern="b l c", gather=True, backend="blocked",
        chunk_size=2, column_chunk_size=3,
    ),
    "nwj_attention_masked_logsumexp": lambda c: LocalMILoss(
        "nwj", c, AllPairs(), "logsumexp", y_pattern="b l c", gather=True, backend="attention"
    ),
    "jsd_dense_chunked": lambda c: LocalMILoss(
        "jsd", c, AllPairs(), y_pattern="b l c", gather=True, chunk_size=3
    ),
    "global_infonce": lambda c: GlobalMILoss("infonce", c, y_pattern="b l c", gather=True),
}
# L1Out's mixture takes the rank's own anchors (documented): checked on its own
L1OUT = {
    "l1out_masked": lambda c: LocalMILoss(
        "l1out", DiagonalGaussian(6, 6, hidden=(8,)).double(), AllPairs(), y_pattern="b l c",
        gather=True,
    ),
}


def run_uneven(name: str, sizes: tuple[int, ...], rank: int | None) -> dict:
    """Loss and gradients on rank ``rank``'s ``sizes[rank]`` samples (all for ``None``)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(sum(sizes), 6, 2, 2, dtype=torch.float64, generator=gen)
    y = torch.randn(sum(sizes), 2, 6, dtype=torch.float64, generator=gen)
    x_mask = torch.rand(sum(sizes), 2, 2, generator=gen) > 0.4
    y_mask = torch.rand(sum(sizes), 2, generator=gen) > 0.4
    x_mask[:, 0, 0] = True
    y_mask[:, 0] = True
    masks = (x_mask, y_mask) if "masked" in name else (None, None)
    if rank is not None:
        rows = slice(sum(sizes[:rank]), sum(sizes[: rank + 1]))
        x, y = x[rows], y[rows]
        masks = tuple(m[rows] if m is not None else None for m in masks)
    torch.manual_seed(1)
    critic = SeparableCritic(6, 6, hidden=(8,), embed_dim=4).double()
    x, y = x.requires_grad_(), y.requires_grad_()
    out = {**UNEVEN_CONFIGS, **L1OUT}[name](critic)(x, y, *masks)
    out.loss.backward()
    return {
        "loss": out.loss.detach(),
        "local": out.local,
        "x": x.grad,
        "y": y.grad,
        "critic": [p.grad.clone() for p in critic.parameters() if p.grad is not None],
    }


def gather_directly(sizes: tuple[int, ...], rank: int) -> dict:
    """all_gather_with_offset on its own: values, offsets and gradients; the errors."""
    t = (torch.arange(sizes[rank] * 2, dtype=torch.float64).reshape(-1, 2) + 10 * rank)
    t.requires_grad_()
    gathered, offset = distributed.all_gather_with_offset(t)
    # every rank weights the gathered rows differently: the gradient of rank r's rows is the
    # sum over the ranks of their weights at those rows
    weights = torch.arange(1, gathered.shape[0] + 1, dtype=torch.float64)[:, None] * (rank + 1)
    (gathered * weights).sum().backward()
    mask, _ = distributed.all_gather_with_offset(torch.ones(sizes[rank], dtype=torch.bool))
    errors = {}
    for what, call in {
        "strict": lambda: distributed.all_gather_with_grad(t.detach()),
        "trailing": lambda: distributed.all_gather_with_offset(torch.zeros(2, 1 + rank)),
        "zero_dim": lambda: distributed.all_gather_with_offset(torch.tensor(1.0)),
    }.items():
        try:
            call()
            errors[what] = "no error"
        except ValueError as err:
            errors[what] = str(err)
    return {"gathered": gathered.detach(), "offset": offset, "grad": t.grad, "mask": mask,
            "errors": errors}  # fmt: skip


def uneven_results(sizes: tuple[int, ...], rank: int) -> dict:
    out = {name: run_uneven(name, sizes, rank) for name in {**UNEVEN_CONFIGS, **L1OUT}}
    out["direct"] = gather_directly(sizes, rank)
    return out


def three_process_worker(rank: int, port: int, outdir: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=len(THREE_RANKS), timeout=TIMEOUT)  # fmt: skip
    try:
        torch.set_num_threads(1)
        torch.save(uneven_results(THREE_RANKS, rank), os.path.join(outdir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def check_uneven(sizes: tuple[int, ...], ranks: list[dict]) -> None:
    """Every rank holds the loss and map of one process on all the samples; each rank's input
    gradients are ``W`` times its slice of that process's (each rank's loss is the global
    one), and DDP's average of the critic's gradients is that process's."""
    world = len(sizes)
    for name in UNEVEN_CONFIGS:
        single = run_uneven(name, sizes, None)
        for rank, r in enumerate(ranks):
            got = r[name]
            torch.testing.assert_close(got["loss"], single["loss"], atol=1e-9, rtol=0)
            torch.testing.assert_close(got["local"], single["local"], atol=1e-9, rtol=0,
                                       equal_nan=True)  # fmt: skip
            rows = slice(sum(sizes[:rank]), sum(sizes[: rank + 1]))
            assert got["x"].shape == (sizes[rank], 6, 2, 2)
            torch.testing.assert_close(got["x"] / world, single["x"][rows], atol=1e-9, rtol=0)
            torch.testing.assert_close(got["y"] / world, single["y"][rows], atol=1e-9, rtol=0)
        for i, want in enumerate(single["critic"]):
            mean = sum(r[name]["critic"][i] for r in ranks) / world
            torch.testing.assert_close(mean, want, atol=1e-9, rtol=0)
    gathered = torch.cat([torch.arange(n * 2, dtype=torch.float64).reshape(n, 2) + 10 * r
                          for r, n in enumerate(sizes)])  # fmt: skip
    weights = torch.arange(1, sum(sizes) + 1, dtype=torch.float64)[:, None].expand(-1, 2)
    for rank, r in enumerate(ranks):
        d = r["direct"]
        torch.testing.assert_close(d["gathered"], gathered, atol=0, rtol=0)
        assert d["offset"] == sum(sizes[:rank])
        assert d["mask"].dtype == torch.bool and d["mask"].shape == (sum(sizes),)
        # every rank r weighted the gathered rows by (r + 1) * weights: their gradients add up
        rows = slice(sum(sizes[:rank]), sum(sizes[: rank + 1]))
        factor = world * (world + 1) // 2
        torch.testing.assert_close(d["grad"], factor * weights[rows], atol=0, rtol=0)
        errors = d["errors"]
        shapes = ", ".join(f"({n}, 2)" for n in sizes)
        assert "all_gather_with_offset" in errors["strict"] and f"[{shapes}]" in errors["strict"]
        trailing = ", ".join(f"(2, {1 + r})" for r in range(world))
        assert "beyond dim 0" in errors["trailing"] and f"[{trailing}]" in errors["trailing"]
        assert "0-dim" in errors["zero_dim"]


@pytest.mark.parametrize("sizes", TWO_RANKS)
def test_uneven_and_empty_batches_equal_one_process(two_process_results, sizes):
    """Ranks of 1 and 4 samples, or 3 and none. Before: every rank raised "every rank must
    hold the same shape to be gathered (... pad and mask otherwise)", and a padding sample
    with every position masked is refused."""
    check_uneven(sizes, [r["uneven"][sizes] for r in two_process_results])


def test_l1out_mixes_each_ranks_anchors_and_a_short_rank_waits_for_none(two_process_results):
    """L1Out's mixture takes the other anchors of the rank. Ranks of 3 and 0 samples: one
    process on the 3. Ranks of 1 and 4: rank 0 cannot form a mixture and weighs 0, so one
    process on rank 1's 4 samples. Before: the rank with too few anchors raised "l1out: needs
    at least 2 rows" alone and the other rank waited in its collective until the timeout."""
    for sizes, want in (((3, 0), run_uneven("l1out_masked", (3, 0), None)),
                        ((1, 4), run_uneven("l1out_masked", (1, 4), 1))):  # fmt: skip
        for r in two_process_results:
            got = r["uneven"][sizes]["l1out_masked"]
            torch.testing.assert_close(got["loss"], want["loss"], atol=1e-9, rtol=0)
            torch.testing.assert_close(got["local"], want["local"], atol=1e-9, rtol=0,
                                       equal_nan=True)  # fmt: skip
    short = two_process_results[0]["uneven"][(1, 4)]["l1out_masked"]
    assert short["x"].shape == (1, 6, 2, 2) and not short["x"].any()  # weight 0, in the graph


@pytest.mark.slow
def test_three_processes_with_uneven_and_empty_batches_equal_one_process():
    """Ranks of 2, 0 and 3 samples: the empty rank in the middle."""
    with tempfile.TemporaryDirectory() as outdir:
        mp.start_processes(three_process_worker, args=(free_port(), outdir),
                           nprocs=len(THREE_RANKS), join=True, start_method="spawn")  # fmt: skip
        ranks = [torch.load(os.path.join(outdir, f"rank{r}.pt")) for r in range(3)]
    check_uneven(THREE_RANKS, ranks)


def test_all_gather_with_offset_without_a_process_group_is_a_no_op():
    t = torch.randn(3, 2)
    gathered, offset = distributed.all_gather_with_offset(t)
    assert gathered is t and offset == 0


def test_gathers_refuse_what_they_cannot_gather_without_a_process_group_too():
    """Fifteenth tryout: the documented ValueError for a 0-dim tensor was raised only with a
    process group; on one process ``all_gather_with_offset(torch.tensor(1.0))`` returned it
    (and ``all_gather_with_grad(3)`` returned 3), so the fault surfaced only when scaled out."""
    for fn in (distributed.all_gather_with_grad, distributed.all_gather_with_offset):
        name = fn.__name__
        with pytest.raises(ValueError, match=rf"{name}: a 0-dim tensor has no dimension 0"):
            fn(torch.tensor(1.0))
        with pytest.raises(TypeError, match=rf"{name}: tensor must be a torch.Tensor .*got int"):
            fn(3)
    with pytest.raises(ValueError, match="a 0-dim tensor"):
        distributed.all_gather_with_grad(torch.tensor(1.0), check_shapes=False)
    t = torch.zeros(0, 2)  # an empty batch is gathered (a no-op here)
    gathered, offset = distributed.all_gather_with_offset(t)
    assert gathered is t and offset == 0
