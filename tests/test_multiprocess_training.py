"""mitools inside multi-process PyTorch training (twentieth tryout): DistributedDataParallel on
two gloo processes, ``no_sync`` accumulation, DataLoader workers and spawned processes.

Each case holds its input and a reference computed independently in one float64 process (brute
force from the critic's scores, or the data itself).
"""

from __future__ import annotations

import datetime
import math
import os
import socket
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from mitools.critics import SeparableCritic
from mitools.local import GlobalMILoss, LocalMILoss

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="needs torch.distributed gloo"
)

WORLD = 2
# a rank that raises alone leaves the other in a collective: fail in seconds, not 30 minutes
TIMEOUT = datetime.timedelta(seconds=30)
MOMENTUM = 0.99
LR = 0.1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(fn, *args) -> list:
    """Run ``fn(rank, *args)`` on two gloo processes; what each rank returned."""
    with tempfile.TemporaryDirectory() as outdir:
        mp.start_processes(_entry, args=(free_port(), outdir, fn, args), nprocs=WORLD,
                           join=True, start_method="spawn")  # fmt: skip
        return [torch.load(os.path.join(outdir, f"rank{r}.pt"), weights_only=False)
                for r in range(WORLD)]  # fmt: skip


def _entry(rank: int, port: int, outdir: str, fn, args) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD, timeout=TIMEOUT)  # fmt: skip
    try:
        torch.set_num_threads(1)
        torch.save(fn(rank, *args), os.path.join(outdir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def rows_of(sizes: tuple[int, ...], rank: int) -> slice:
    return slice(sum(sizes[:rank]), sum(sizes[: rank + 1]))


# ---------------------------------------------------------------------------------------------
# MINE's moving average under DDP with gathered negatives
# ---------------------------------------------------------------------------------------------

MINE_CASES = {  # name: (samples on each rank, pooled (GlobalMILoss) or every cell, backend)
    "local_3_3": ((3, 3), False, "dense"),
    "local_1_4_blocked": ((1, 4), False, "blocked"),
    "local_2_2_attention": ((2, 2), False, "attention"),
    "global_3_0": ((3, 0), True, "auto"),
}


def mine_data(sizes: tuple[int, ...]):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(sum(sizes), 4, 2, 2, dtype=torch.float64, generator=gen)
    y = torch.randn(sum(sizes), 5, dtype=torch.float64, generator=gen)
    return x, y


def mine_critic() -> SeparableCritic:
    torch.manual_seed(1)
    return SeparableCritic(4, 5, hidden=(6,), embed_dim=3).double()


def mine_steps(rank: int, name: str) -> list[dict]:
    """Two SGD steps of MINE with gathered negatives, the loss wrapped in DDP."""
    sizes, pooled, backend = MINE_CASES[name]
    x, y = mine_data(sizes)
    x, y = x[rows_of(sizes, rank)], y[rows_of(sizes, rank)]
    loss_fn = (GlobalMILoss if pooled else LocalMILoss)("mine", mine_critic(), gather=True,
                                                       backend=backend)
    model = DistributedDataParallel(loss_fn)
    out = []
    for _ in range(2):
        model(x, y).loss.backward()
        params = list(loss_fn.critic.parameters())
        out.append({"grads": [p.grad.clone() for p in params],
                    "ema": loss_fn.estimator.log_partition_ema.clone(),
                    "seen": loss_fn.estimator.seen.clone()})  # fmt: skip
        with torch.no_grad():
            for p in params:
                p -= LR * p.grad
                p.grad = None
    return out


def mine_reference(name: str) -> list[dict]:
    """Belghazi et al.'s eq. 12 by brute force on the concatenated batch: every position pair's
    scores ``(N, N)``, the log-mean-exp of their off-diagonal entries, its moving average (the
    first estimate starts it) and the gradient of ``-(mean diag - exp(lme - ema))``."""
    sizes, pooled, _ = MINE_CASES[name]
    x, y = mine_data(sizes)
    critic = mine_critic()
    params = list(critic.parameters())
    n = x.shape[0]
    off = ~torch.eye(n, dtype=torch.bool)
    ema = None
    out = []
    for _ in range(2):
        cells = x.flatten(2).mean(-1)[None] if pooled else x.flatten(2).permute(2, 0, 1)
        scores = torch.stack([critic(c, y) for c in cells])  # (K, N, N)
        joint = scores.diagonal(dim1=-2, dim2=-1).mean(-1)
        lme = torch.logsumexp(scores[:, off], -1) - math.log(n * (n - 1))
        batch = lme.detach()
        ema = batch if ema is None else torch.logaddexp(
            ema + math.log(MOMENTUM), batch + math.log1p(-MOMENTUM))
        loss = -(joint - torch.exp(lme - ema)).mean()
        grads = torch.autograd.grad(loss, params)
        out.append({"grads": grads, "ema": ema.reshape(() if pooled else (2, 2))})
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p -= LR * g
    return out


MICRO = ((2, 3), (2, 0), (1, 2))  # samples on ranks 0 and 1 in each of three micro-batches


def accumulated(rank: int) -> list[torch.Tensor]:
    """InfoNCE with gathered negatives, three micro-batches of uneven (and empty) ranks, the
    first two under ``no_sync()``: the critic's gradients after the synchronised third."""
    x, y = mine_data((sum(sum(m) for m in MICRO),))
    loss_fn = LocalMILoss("infonce", mine_critic(), gather=True)
    model = DistributedDataParallel(loss_fn)
    start = 0
    for i, sizes in enumerate(MICRO):
        rows = rows_of(sizes, rank)
        rows = slice(start + rows.start, start + rows.stop)
        if i < len(MICRO) - 1:
            with model.no_sync():
                model(x[rows], y[rows]).loss.backward()
        else:
            model(x[rows], y[rows]).loss.backward()
        start += sum(sizes)
    return [p.grad.clone() for p in loss_fn.critic.parameters()]


def mine_worker(rank: int) -> dict:
    out: dict = {name: mine_steps(rank, name) for name in MINE_CASES}
    out["accumulated"] = accumulated(rank)
    return out


@pytest.fixture(scope="module")
def mine_ranks():
    return spawn(mine_worker)


@pytest.mark.parametrize("name", list(MINE_CASES))
def test_mine_under_ddp_with_gathered_negatives_follows_the_global_partition(mine_ranks, name):
    """Each rank's moving average followed the log-partition of its own anchors' negatives:
    after one step on ranks of 3 and 3 samples the averages differed between the ranks
    ([[-0.061, -0.026], ...] against [[-0.104, -0.087], ...]), DDP's buffer broadcast then kept
    rank 0's (rank 1's batches never reached them), and the gradients were off the global
    batch's by 1e-3. Now every rank holds the average of one process on the concatenated batch,
    and DDP's averaged gradient is its eq. 12 gradient, over two steps, on every path, with a
    short rank and an empty one too."""
    want = mine_reference(name)
    for got_rank in mine_ranks:
        for got, ref in zip(got_rank[name], want, strict=True):
            torch.testing.assert_close(got["ema"], ref["ema"], atol=1e-12, rtol=0)
            assert bool(got["seen"].all())
            for g, r in zip(got["grads"], ref["grads"], strict=True):
                torch.testing.assert_close(g, r, atol=1e-12, rtol=0)


def test_no_sync_accumulation_with_uneven_gathered_batches_equals_one_process(mine_ranks):
    """Gradient accumulation under ``no_sync()`` with the ranks' micro-batches of 2 and 3, 2
    and none, 1 and 2 samples: DDP's averaged gradient is the sum over the micro-batches of the
    gradient of InfoNCE on each concatenated micro-batch (brute force: every cell's ``(N, N)``
    scores, the log-softmax of the positives). A guard: this held before the tryout."""
    x, y = mine_data((sum(sum(m) for m in MICRO),))
    critic = mine_critic()
    params = list(critic.parameters())
    want = [torch.zeros_like(p) for p in params]
    start = 0
    for sizes in MICRO:
        n = sum(sizes)
        xb, yb = x[start : start + n], y[start : start + n]
        scores = torch.stack([critic(c, yb) for c in xb.flatten(2).permute(2, 0, 1)])
        infonce = (scores.log_softmax(-1).diagonal(dim1=-2, dim2=-1) + math.log(n)).mean()
        for w, g in zip(want, torch.autograd.grad(-infonce, params), strict=True):
            w += g
        start += n
    for got_rank in mine_ranks:
        for g, w in zip(got_rank["accumulated"], want, strict=True):
            torch.testing.assert_close(g, w, atol=1e-12, rtol=0)


# ---------------------------------------------------------------------------------------------
# A negative queue under DDP without gathered negatives
# ---------------------------------------------------------------------------------------------

QUEUE_SIZES = (4, 3)  # rank 0 holds more samples than rank 1


def queue_data(rank: int, step: int):
    gen = torch.Generator().manual_seed(10 * step + rank)
    n = QUEUE_SIZES[rank]
    return torch.randn(n, 4, 2, 2, generator=gen), torch.randn(n, 5, generator=gen)


def queue_worker(rank: int) -> dict:
    torch.manual_seed(1)
    critic = SeparableCritic(4, 5, hidden=(6,), embed_dim=3, temperature=0.5)
    loss_fn = LocalMILoss("infonce", critic, queue=8, gather=False)
    model = DistributedDataParallel(loss_fn)
    seen = []
    loss_fn.register_forward_pre_hook(  # after DDP's buffer broadcast
        lambda m, _: seen.append((m.queue.features().clone(), m.queue.mask().clone(),
                                  m.critic.log_temperature.clone())))  # fmt: skip
    for step in range(3):
        model(*queue_data(rank, step)).loss.backward()
    return {"seen": seen}


def test_queue_without_gather_under_ddp_holds_every_ranks_batch():
    """``LocalMILoss(queue=8, gather=False)`` in DDP, ranks of 4 and 3 samples. Each rank's
    queue held its own past samples, of different lengths, and DDP's buffer broadcast aborted
    the job in gloo (SIGABRT, ``gloo::EnforceNotMet``); with equal batches it silently replaced
    every rank's queue with rank 0's. Now the queue takes every rank's batch (as MoCo's does),
    alike on every rank, and the fixed temperature stays log 0.5."""
    ranks = spawn(queue_worker)
    ys = [torch.cat([queue_data(r, step)[1] for r in range(WORLD)]) for step in range(2)]
    want = [None, ys[0], torch.cat(ys)[-8:]]
    for got in ranks:
        for step, (features, mask, log_t) in enumerate(got["seen"]):
            assert float(log_t) == float(torch.tensor(math.log(0.5)))
            if want[step] is None:
                assert features.numel() == 0
                continue
            torch.testing.assert_close(features[:, 0], want[step], atol=0, rtol=0)
            assert mask.shape == (want[step].shape[0], 1) and bool(mask.all())


# ---------------------------------------------------------------------------------------------
# Seeded generators in DataLoader workers started with spawn
# ---------------------------------------------------------------------------------------------


class SeededDraws(torch.utils.data.Dataset):
    """What a dataset of a training script holds: a seeded pair sampler, and losses whose
    random draws (derangements, vCLUB's negatives) come from their own seeded generators."""

    def __init__(self) -> None:
        from mitools.estimators import VCLUB
        from mitools.samplers import RandomPairs

        self.sampler = RandomPairs(3, generator=5)
        self.loss = LocalMILoss("nwj", None, negatives="derangement", generator=4)
        self.vclub = VCLUB(generator=3)

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        where = self.sampler((3, 3), (2,)).where
        return (where, torch.randint(100, (2,), generator=self.loss.generator),
                torch.randint(100, (2,), generator=self.vclub.generator))  # fmt: skip


def test_seeded_samplers_and_losses_reach_spawned_dataloader_workers():
    """A dataset holding ``RandomPairs(3, generator=5)`` (or a LocalMILoss or VCLUB with a
    seed) in a DataLoader with ``num_workers=2, multiprocessing_context="spawn"``: every
    worker died rebuilding the generator ("unable to resize file <filename not specified>",
    pytorch issue 146828). Each worker holds a copy of the generators in the state they were
    sent in, so worker 0 (items 0, 2) and worker 1 (items 1, 3) draw the same sequence: the
    documented reason to reseed them per worker."""
    loader = torch.utils.data.DataLoader(SeededDraws(), batch_size=None, num_workers=2,
                                         multiprocessing_context="spawn")  # fmt: skip
    items = list(loader)
    gens = [torch.Generator().manual_seed(s) for s in (5, 4, 3)]
    first = (torch.randperm(18, generator=gens[0])[:3].sort().values,
             torch.randint(100, (2,), generator=gens[1]),
             torch.randint(100, (2,), generator=gens[2]))  # fmt: skip
    second = (torch.randperm(18, generator=gens[0])[:3].sort().values,
              torch.randint(100, (2,), generator=gens[1]),
              torch.randint(100, (2,), generator=gens[2]))  # fmt: skip
    for got, want in zip(items, (first, first, second, second), strict=True):
        for g, w in zip(got, want, strict=True):
            assert torch.equal(g, w)


# ---------------------------------------------------------------------------------------------
# estimate_mi in child processes
# ---------------------------------------------------------------------------------------------


def _estimate_in_child(queue) -> None:
    import mitools
    from mitools.tasks import CorrelatedGaussian

    x, y = CorrelatedGaussian(dim=2, mi=1.0, dtype=torch.float64).sample(
        300, generator=torch.Generator().manual_seed(0))
    result = mitools.estimate_mi(x, y, max_steps=40, eval_every=20, folds=2, hidden=(8,),
                                 embed_dim=4, threads=1, progress=False)  # fmt: skip
    queue.put(float(result.value))


def test_threads_govern_the_whole_estimate_mi_call(monkeypatch):
    """``threads=1`` held only around the fits: the margins' ranks (and the checks, KSG's
    cross-check) ran on torch's thread count of the caller, 2 here."""
    import mitools
    from mitools.estimate import api
    from mitools.estimate.data import MarginTransform

    seen = []
    fit = MarginTransform.fit.__func__

    def recording(cls, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return fit(cls, *args, **kwargs)

    monkeypatch.setattr(api.MarginTransform, "fit", classmethod(recording))
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        x = torch.randn(200, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        mitools.estimate_mi(x, x + torch.randn(200, 1, dtype=torch.float64), max_steps=2,
                            eval_every=1, folds=2, hidden=(4,), embed_dim=2, threads=1,
                            progress=False)  # fmt: skip
        assert seen == [1, 1]
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(previous)


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs fork")
def test_estimate_mi_with_one_thread_in_a_forked_child_does_not_hang():
    """A process that had run a parallel torch op (two threads) forks; the child calls
    ``estimate_mi(..., threads=1)``. It hung for ever in libgomp (``gomp_team_barrier_wait``,
    from the margins' ``searchsorted`` on the parent's thread count, the fork having left the
    parent's OpenMP threads behind); it now runs on one thread from the start and returns the
    estimate (about 1 nat)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        sorted_ = torch.sort(torch.randn(200_000, dtype=torch.float64)).values
        torch.searchsorted(sorted_, torch.randn(200_000, dtype=torch.float64))  # OpenMP team
        ctx = mp.get_context("fork")
        queue = ctx.SimpleQueue()
        child = ctx.Process(target=_estimate_in_child, args=(queue,))
        child.start()
        child.join(60)
        hung = child.is_alive()
        if hung:
            child.kill()
            child.join()
    finally:
        torch.set_num_threads(previous)
    assert not hung, "estimate_mi(threads=1) hung in a forked child"
    assert child.exitcode == 0
    assert 0.5 < queue.get() < 1.5  # I(X; Y) = 1 nat
