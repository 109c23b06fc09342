"""The staircase benchmark of Poole et al. (2019): every bound against a known, rising MI.

Protocol (REFERENCE.md): d = 20 correlated Gaussian (optionally cubed), batch K = 64, MI
raised 2 -> 4 -> 6 -> 8 -> 10 nats in levels of 4,000 steps (20,000 in all), a fresh batch
each step, Adam lr 5e-4, critics with two hidden layers of 256 ReLU units (separable: 32-d
embeddings; concat: one MLP on [x, y] over all K^2 pairs). Bias, variance and MSE of each
bound are read from the last 500 estimates of each level.

To fit on a couple of CPU cores, all bounds train **at once**: the critics' weights are
stacked along a leading model axis (one batched matmul per layer for all bounds), and every
bound sees the same sampled batch. Each bound still has its own critic, its own estimator
state (MINE's moving average, TUBA/alpha-InfoNCE baselines) and, since Adam is elementwise,
exactly the optimiser it would have alone.

Usage::

    PYTHONPATH=. python benchmarks/staircase.py                       # full protocol, all
    PYTHONPATH=. python benchmarks/staircase.py --critics separable --tasks gaussian
    PYTHONPATH=. python benchmarks/staircase.py --quick               # CI smoke test

Writes ``benchmarks/results/staircase/{critic}-{task}.json``, ``.md`` and ``.png`` (one
panel per bound, like the paper's figure), and ``summary.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

import itertools

from _provenance import ROOT, provenance

from mitools.estimators import Estimator, get_estimator
from mitools.tasks import Staircase


@dataclass(frozen=True)
class BoundSpec:
    """One bound of the benchmark: a label and how to build its estimator."""

    label: str
    name: str
    kwargs: dict


BOUNDS = [
    BoundSpec("InfoNCE", "infonce", {}),
    BoundSpec("NWJ", "nwj", {}),
    BoundSpec("DV", "dv", {}),
    BoundSpec("MINE", "mine", {}),
    BoundSpec("JS", "js", {}),
    BoundSpec("SMILE τ=1", "smile", {"clip": 1.0}),
    BoundSpec("SMILE τ=5", "smile", {"clip": 5.0}),
    BoundSpec("SMILE τ=∞", "smile", {"clip": None}),
    BoundSpec("α-InfoNCE α=0.01", "alpha_infonce", {"alpha": 0.01}),
    BoundSpec("α-InfoNCE α=0.5", "alpha_infonce", {"alpha": 0.5}),
    BoundSpec("TUBA", "tuba", {}),
]


class StackedLinear(nn.Module):
    """``models`` independent linear layers applied at once: ``(M, n, i) -> (M, n, o)``.

    Initialised like ``nn.Linear`` (uniform in ``±1/sqrt(i)``) independently per model.
    """

    def __init__(self, models: int, dim_in: int, dim_out: int, bias: bool = True):
        super().__init__()
        bound = 1.0 / math.sqrt(dim_in)
        self.weight = nn.Parameter(torch.empty(models, dim_in, dim_out).uniform_(-bound, bound))
        self.bias = (
            nn.Parameter(torch.empty(models, 1, dim_out).uniform_(-bound, bound)) if bias else None
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:  # shared input (n, i): one einsum for all models
            out = torch.einsum("ni,mio->mno", x, self.weight)
        else:
            out = torch.bmm(x, self.weight)
        return out if self.bias is None else out + self.bias


class StackedMLP(nn.Module):
    """``models`` MLPs ``Linear -> ReLU -> ... -> Linear`` evaluated with batched matmuls."""

    def __init__(self, models: int, dim_in: int, hidden: tuple[int, ...], dim_out: int):
        super().__init__()
        widths = (dim_in, *hidden, dim_out)
        self.layers = nn.ModuleList(
            StackedLinear(models, a, b) for a, b in itertools.pairwise(widths)
        )

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x


class StackedSeparableCritic(nn.Module):
    """``f_m(x, y) = g_m(x) · h_m(y)`` for every model m: scores ``(M, N, N)``."""

    def __init__(self, models: int, dim_x: int, dim_y: int, hidden=(256, 256), embed_dim=32):
        super().__init__()
        self.g = StackedMLP(models, dim_x, tuple(hidden), embed_dim)
        self.h = StackedMLP(models, dim_y, tuple(hidden), embed_dim)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return torch.bmm(self.g(x), self.h(y).transpose(1, 2))


class StackedConcatCritic(nn.Module):
    """``f_m(x, y) = MLP_m([x, y])`` on all pairs; the first layer is split into x and y parts."""

    def __init__(self, models: int, dim_x: int, dim_y: int, hidden=(256, 256)):
        super().__init__()
        hidden = tuple(hidden)
        self.first_x = StackedLinear(models, dim_x, hidden[0])
        self.first_y = StackedLinear(models, dim_y, hidden[0], bias=False)
        self.rest = StackedMLP(models, hidden[0], hidden[1:], 1)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        hx, hy = self.first_x(x), self.first_y(y)  # (M, N, H)
        m, n, h = hx.shape
        pairs = torch.relu(hx[:, :, None, :] + hy[:, None, :, :]).reshape(m, n * n, h)
        return self.rest(pairs).reshape(m, n, n)


def make_critic(kind: str, models: int, dim: int) -> nn.Module:
    if kind == "separable":
        return StackedSeparableCritic(models, dim, dim)
    if kind == "concat":
        return StackedConcatCritic(models, dim, dim)
    raise ValueError(f"unknown critic {kind!r}; choose 'separable' or 'concat'")


def run_staircase(
    critic_kind: str,
    transform: str | None,
    schedule: Staircase,
    bounds: list[BoundSpec],
    batch_size: int = 64,
    dim: int = 20,
    lr: float = 5e-4,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> Tensor:
    """Train one critic per bound on the shared schedule; returns estimates ``(steps, B)``."""
    torch.manual_seed(seed)
    critic = make_critic(critic_kind, len(bounds), dim)
    estimators: list[Estimator] = [get_estimator(b.name, **b.kwargs) for b in bounds]
    params = list(critic.parameters())
    for est in estimators:
        est.train()
        params += list(est.parameters())
    optimizer = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed + 1)
    out = torch.empty(schedule.total_steps, len(bounds))
    start = time.time()
    for step in range(schedule.total_steps):
        task = schedule.task_at(step, dim=dim, transform=transform)
        x, y = task.sample(batch_size, generator=gen)
        scores = critic(x, y)  # (B, K, K): one problem per bound
        values = torch.stack([est(scores[m], anchors=x) for m, est in enumerate(estimators)])
        optimizer.zero_grad(set_to_none=True)
        (-values.sum()).backward()
        optimizer.step()
        out[step] = values.detach()
        if (step + 1) % max(1, schedule.steps_per_level // 4) == 0:
            log(f"  {critic_kind}/{transform or 'gaussian'} step {step + 1}/"
                f"{schedule.total_steps} ({time.time() - start:.0f} s) "
                + " ".join(f"{v:.2f}" for v in out[step].tolist()))
    return out


def summarize(estimates: Tensor, schedule: Staircase, bounds: list[BoundSpec],
              window: int = 500) -> dict:
    """Bias, variance and MSE of each bound at each level, from the last ``window`` steps."""
    window = min(window, schedule.steps_per_level)
    result: dict = {}
    for b_idx, spec in enumerate(bounds):
        rows = []
        for level_idx, level in enumerate(schedule.levels):
            end = (level_idx + 1) * schedule.steps_per_level
            e = estimates[end - window : end, b_idx].double()
            finite = torch.isfinite(e)
            e_f = e[finite]
            bias = float(e_f.mean() - level) if len(e_f) else math.nan
            var = float(e_f.var(unbiased=True)) if len(e_f) > 1 else math.nan
            mse = float(((e_f - level) ** 2).mean()) if len(e_f) else math.nan
            rows.append({"true_mi": level, "mean": float(e_f.mean()) if len(e_f) else math.nan,
                         "bias": bias, "variance": var, "mse": mse,
                         "non_finite": int((~finite).sum())})
        result[spec.label] = rows
    return result


def markdown(summary: dict, levels: tuple[float, ...], title: str) -> str:
    head = " | ".join(f"{lv:g} nats: bias / var / MSE" for lv in levels)
    lines = [f"### {title}", "", f"| bound | {head} |",
             "| --- |" + " ---: |" * len(levels)]
    for label, rows in summary.items():
        cells = " | ".join(f"{r['bias']:+.2f} / {r['variance']:.2f} / {r['mse']:.2f}"
                           for r in rows)
        lines.append(f"| {label} | {cells} |")
    return "\n".join(lines) + "\n"


def figure(estimates: Tensor, schedule: Staircase, bounds: list[BoundSpec], path: Path,
           title: str, batch_size: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = torch.arange(schedule.total_steps)
    truth = torch.tensor([schedule.mi_at(int(s)) for s in steps])
    cols = 4
    rows = math.ceil(len(bounds) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), sharex=True,
                             sharey=True, squeeze=False)
    # exponential moving average for the dark line, raw estimates light
    alpha = 0.01
    for b_idx, spec in enumerate(bounds):
        ax = axes[b_idx // cols][b_idx % cols]
        raw = estimates[:, b_idx].clamp(-5, 20)
        ema = torch.empty_like(raw)
        acc = float(raw[0])
        for i, v in enumerate(raw.tolist()):  # plotting only: a sequential filter
            acc = (1 - alpha) * acc + alpha * v
            ema[i] = acc
        ax.plot(steps, raw, color="tab:blue", alpha=0.25, linewidth=0.5)
        ax.plot(steps, ema, color="tab:blue", linewidth=1.2)
        ax.plot(steps, truth, color="black", linewidth=1.0)
        ax.axhline(math.log(batch_size), color="tab:red", linestyle=":", linewidth=0.8)
        ax.set_title(spec.label, fontsize=9)
        ax.set_ylim(-1, 14)
    for idx in range(len(bounds), rows * cols):
        axes[idx // cols][idx % cols].axis("off")
    fig.suptitle(f"{title} (black: true MI, dotted: log {batch_size})", fontsize=10)
    fig.supxlabel("training step")
    fig.supylabel("estimate (nats)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--critics", default="separable,concat")
    parser.add_argument("--tasks", default="gaussian,cubic")
    parser.add_argument("--steps-per-level", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--quick", action="store_true",
                        help="200 steps per level, window 100: a smoke test")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default=str(ROOT / "benchmarks" / "results" / "staircase"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steps_per_level, window = args.steps_per_level, args.window
    if args.quick:
        steps_per_level, window = 200, 100
    schedule = Staircase(steps_per_level=steps_per_level)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = []
    for critic_kind in args.critics.split(","):
        for task in args.tasks.split(","):
            transform = None if task == "gaussian" else task
            start = time.time()
            estimates = run_staircase(critic_kind, transform, schedule, BOUNDS,
                                      batch_size=args.batch_size, seed=args.seed)
            wall = time.time() - start
            summary = summarize(estimates, schedule, BOUNDS, window)
            name = f"{critic_kind}-{task}"
            title = (f"{critic_kind} critic, {task} task, {steps_per_level} steps/level, "
                     f"batch {args.batch_size}")
            payload = {
                "provenance": provenance(),
                "protocol": {"critic": critic_kind, "task": task, "dim": 20,
                             "batch_size": args.batch_size, "levels": list(schedule.levels),
                             "steps_per_level": steps_per_level, "window": window,
                             "lr": 5e-4, "hidden": [256, 256], "embed_dim": 32,
                             "seed": args.seed, "quick": args.quick},
                "bounds": [{"label": b.label, "name": b.name, "kwargs": b.kwargs}
                           for b in BOUNDS],
                "wall_time_s": wall,
                "summary": summary,
            }
            (out_dir / f"{name}.json").write_text(json.dumps(payload, indent=1))
            section = markdown(summary, schedule.levels, title)
            (out_dir / f"{name}.md").write_text(section)
            figure(estimates, schedule, BOUNDS, out_dir / f"{name}.png", title, args.batch_size)
            sections.append(section)
            print(section, f"({wall:.0f} s)", flush=True)
    (out_dir / "summary.md").write_text("\n".join(sections))


if __name__ == "__main__":
    main()
