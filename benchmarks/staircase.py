r"""The staircase benchmark of Poole et al. (2019): every bound against a known, rising MI.

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

Three families of estimators, each trained by :func:`mitools.training.train_critic` on the
same batches (the same generator seed):

* ``lower``: the discriminative lower bounds above, stacked;
* ``conditional``: one conditional density :math:`q(y \mid x)` (a diagonal Gaussian with a
  2 x 256 MLP, :class:`mitools.conditionals.DiagonalGaussian`) fitted by maximum likelihood,
  with a Gaussian marginal model for DoE; on its scores BA (true :math:`H(Y)`), DoE, CLUB,
  vCLUB and L1Out. The same bounds on the task's *true* conditional, on the same batches, are
  reported beside them ("true q");
* ``flo``: FLO with a critic of the chosen kind and a 2 x 256 MLP per-pair term on
  :math:`[x, y]`;
* ``mixture`` (not run by default): the conditional bounds with a mixture of 8 diagonal
  Gaussians as q (``conditional-mixture-{task}``), for the cubic task where a single
  Gaussian is misspecified; the sandwich includes it when present.

The *sandwich* (``sandwich-{critic}-{task}``) puts the best lower bound (the highest mean
among the bounds that are lower bounds in expectation: InfoNCE, NWJ, JS, TUBA, the
alpha-InfoNCE, BA and FLO; not DV/MINE, whose batch estimate is biased upward, nor SMILE,
biased by its clip) and the best upper bound (the lowest mean among CLUB, vCLUB and L1Out on
the fitted q) against the truth, per level.

Usage::

    PYTHONPATH=. python benchmarks/staircase.py                       # full protocol, all
    PYTHONPATH=. python benchmarks/staircase.py --critics separable --tasks gaussian
    PYTHONPATH=. python benchmarks/staircase.py --families conditional,flo  # new ones only
    PYTHONPATH=. python benchmarks/staircase.py --quick               # CI smoke test
    PYTHONPATH=. python benchmarks/staircase.py --sandwich-only       # re-tabulate only

Writes ``benchmarks/results/staircase/{critic}-{task}.json``, ``.md`` and ``.png`` (one
panel per bound, like the paper's figure) for the lower bounds,
``conditional-{task}.*`` and ``flo-{critic}-{task}.*`` for the new families,
``sandwich-{critic}-{task}.*`` when all three exist, and ``summary.md``
(``--quick``: into ``benchmarks/results/staircase_quick/``, not committed).
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

from _cli import at_least, level_schedule, name_list, output_location, positive_int
from _provenance import ROOT, provenance

from mitools.bounds import ba, club, l1out
from mitools.conditionals import DiagonalGaussian, GaussianMarginal, MixtureOfGaussians
from mitools.critics import mlp
from mitools.estimators import BA, CLUB, FLO, VCLUB, DoE, Estimator, L1Out, get_estimator
from mitools.tasks import CorrelatedGaussian, Staircase
from mitools.training import train_critic


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


class StackedEstimators(Estimator):
    """One estimator per model of stacked scores: ``(B, K, K) -> (B,)``."""

    def __init__(self, estimators: list[Estimator]):
        super().__init__()
        self.estimators = nn.ModuleList(estimators)
        self.needs_targets = any(getattr(e, "needs_targets", False) for e in estimators)

    def forward(self, scores: Tensor, *, anchors: Tensor | None = None,
                targets: Tensor | None = None, **_: object) -> Tensor:
        return torch.stack([
            est(scores[m], anchors=anchors,
                **({"targets": targets} if getattr(est, "needs_targets", False) else {}))
            for m, est in enumerate(self.estimators)
        ])


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
    for est in estimators:
        est.train()
    return train_critic(
        critic, StackedEstimators(estimators),
        lambda step: schedule.task_at(step, dim=dim, transform=transform),
        steps=schedule.total_steps, batch_size=batch_size, lr=lr, generator=seed + 1,
        log_every=max(1, schedule.steps_per_level // 4),
        log=lambda line: log(f"  {critic_kind}/{transform or 'gaussian'}{line}"),
    )


CONDITIONAL_LABELS = ["BA", "DoE", "CLUB", "vCLUB", "L1Out"]
TRUE_Q_LABELS = ["BA (true q)", "CLUB (true q)", "L1Out (true q)"]
MIXTURE_LABELS = [f"{label} (mixture q)" for label in CONDITIONAL_LABELS]
FAMILIES = ("lower", "conditional", "flo", "mixture")
LOWER_IN_EXPECTATION = {"InfoNCE", "NWJ", "JS", "TUBA", "α-InfoNCE α=0.01", "α-InfoNCE α=0.5",
                        "BA (mixture q)",
                        "BA", "FLO"}
UPPER_WITH_FITTED_Q = {"CLUB", "vCLUB", "L1Out", "CLUB (mixture q)", "vCLUB (mixture q)",
                       "L1Out (mixture q)"}


class ConditionalPanel(Estimator):
    """BA, DoE, CLUB, vCLUB and L1Out on one conditional's scores; q fitted by likelihood."""

    needs_targets = True

    def __init__(self, entropy_y: float, dim: int, generator: torch.Generator):
        super().__init__()
        self.ba, self.club, self.l1out = BA(entropy_y), CLUB(), L1Out()
        self.vclub = VCLUB(generator)
        self.doe = DoE(GaussianMarginal(dim))

    def forward(self, scores: Tensor, *, targets: Tensor | None = None,
                **_: object) -> Tensor:
        return torch.stack([self.ba(scores), self.doe(scores, targets=targets),
                            self.club(scores), self.vclub(scores), self.l1out(scores)])

    def learning_objective(self, scores: Tensor, *, targets: Tensor | None = None,
                           **_: object) -> Tensor:
        # DoE's gradient is that of both log-likelihoods: q(y|x) and the marginal model.
        return self.doe.learning_objective(scores, targets=targets)


def run_conditional(transform: str | None, schedule: Staircase, batch_size: int = 64,
                    dim: int = 20, lr: float = 5e-4, seed: int = 0,
                    log: Callable[[str], None] = print, mixture: bool = False) -> Tensor:
    """Fit q(y|x) by likelihood on the schedule; the conditional bounds ``(steps, 5)``.

    ``q`` is a diagonal Gaussian, or with ``mixture`` a mixture of 8 diagonal Gaussians.
    """
    torch.manual_seed(seed)
    q: nn.Module = (MixtureOfGaussians(dim, dim, components=8, hidden=(256, 256)) if mixture
                    else DiagonalGaussian(dim, dim, hidden=(256, 256)))
    entropy = CorrelatedGaussian(dim, 0.0, transform=transform).entropy_y()
    panel = ConditionalPanel(entropy, dim, torch.Generator().manual_seed(seed + 2))
    return train_critic(
        q, panel, lambda step: schedule.task_at(step, dim=dim, transform=transform),
        steps=schedule.total_steps, batch_size=batch_size, lr=lr, generator=seed + 1,
        log_every=max(1, schedule.steps_per_level // 4),
        log=lambda line: log(f"  conditional{'-mixture' if mixture else ''}/"
                             f"{transform or 'gaussian'}{line}"),
    )


def run_flo(critic_kind: str, transform: str | None, schedule: Staircase,
            batch_size: int = 64, dim: int = 20, lr: float = 5e-4, seed: int = 0,
            log: Callable[[str], None] = print) -> Tensor:
    """FLO with a critic of ``critic_kind`` and an MLP per-pair term; ``(steps, 1)``."""
    torch.manual_seed(seed)
    critic = make_critic(critic_kind, 1, dim)
    flo = StackedEstimators([FLO(u_network=mlp(2 * dim, (256, 256), 1))])
    return train_critic(
        critic, flo, lambda step: schedule.task_at(step, dim=dim, transform=transform),
        steps=schedule.total_steps, batch_size=batch_size, lr=lr, generator=seed + 1,
        log_every=max(1, schedule.steps_per_level // 4),
        log=lambda line: log(f"  flo-{critic_kind}/{transform or 'gaussian'}{line}"),
    )


def true_q_traces(transform: str | None, schedule: Staircase, batch_size: int = 64,
                  dim: int = 20, seed: int = 0) -> Tensor:
    """BA, CLUB and L1Out on the task's true conditional, on the trained models' batches."""
    gen = torch.Generator().manual_seed(seed + 1)
    out = torch.empty(schedule.total_steps, 3)
    for step in range(schedule.total_steps):
        task = schedule.task_at(step, dim=dim, transform=transform)
        x, y = task.sample(batch_size, generator=gen)
        s = task.conditional_log_prob(x.double(), y.double())
        out[step] = torch.stack([ba(s, task.entropy_y()), club(s), l1out(s)]).float()
    return out


def _label(spec: BoundSpec | str) -> str:
    return spec.label if isinstance(spec, BoundSpec) else spec


def summarize(estimates: Tensor, schedule: Staircase, bounds: list[BoundSpec] | list[str],
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
        result[_label(spec)] = rows
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


def figure(estimates: Tensor, schedule: Staircase, bounds: list[BoundSpec] | list[str],
           path: Path, title: str, batch_size: int, ylim: tuple[float, float] = (-1, 14)) -> None:
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
        raw = estimates[:, b_idx].clamp(ylim[0] - 4, ylim[1] + 6)
        ema = torch.empty_like(raw)
        acc = float(raw[0])
        for i, v in enumerate(raw.tolist()):  # plotting only: a sequential filter
            acc = (1 - alpha) * acc + alpha * v
            ema[i] = acc
        ax.plot(steps, raw, color="tab:blue", alpha=0.25, linewidth=0.5)
        ax.plot(steps, ema, color="tab:blue", linewidth=1.2)
        ax.plot(steps, truth, color="black", linewidth=1.0)
        ax.axhline(math.log(batch_size), color="tab:red", linestyle=":", linewidth=0.8)
        ax.set_title(_label(spec), fontsize=9)
        ax.set_ylim(*ylim)
    for idx in range(len(bounds), rows * cols):
        axes[idx // cols][idx % cols].axis("off")
    fig.suptitle(f"{title} (black: true MI, dotted: log {batch_size})", fontsize=10)
    fig.supxlabel("training step")
    fig.supylabel("estimate (nats)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sandwich(summaries: list[dict], levels: tuple[float, ...]) -> list[dict]:
    """Per level: the best lower bound (highest mean) and best upper bound (lowest mean)."""
    merged: dict = {}
    for summary in summaries:
        merged.update(summary)
    rows = []

    def pick(k: int, labels: set[str], best: Callable) -> dict:
        cands = [(lab, merged[lab][k]) for lab in sorted(labels) if lab in merged
                 and math.isfinite(merged[lab][k]["mean"])]
        lab, cell = best(cands, key=lambda c: c[1]["mean"])
        return {"bound": lab, "mean": cell["mean"], "sd": math.sqrt(cell["variance"])}

    for k, level in enumerate(levels):
        row = {"true_mi": level, "lower": pick(k, LOWER_IN_EXPECTATION, max),
               "lower_critic": pick(k, LOWER_IN_EXPECTATION - {"BA", "BA (mixture q)"}, max),
               "upper": pick(k, UPPER_WITH_FITTED_Q, min)}
        for lab in TRUE_Q_LABELS:
            if lab in merged:
                row[lab] = merged[lab][k]["mean"]
        row["bracketed"] = row["lower"]["mean"] <= level <= row["upper"]["mean"]
        rows.append(row)
    return rows


def sandwich_markdown(rows: list[dict], title: str) -> str:
    lines = [f"### {title}", "",
             "| true MI | best lower bound | best critic lower bound | "
             "best upper bound (fitted q) | L1Out, true q | CLUB, true q (= I + lautum) | "
             "bracketed |",
             "| ---: | --- | --- | --- | ---: | ---: | :---: |"]
    for r in rows:
        lo, up, lc = r["lower"], r["upper"], r["lower_critic"]
        lines.append(
            f"| {r['true_mi']:g} | {lo['mean']:.2f} ± {lo['sd']:.2f} ({lo['bound']}) | "
            f"{lc['mean']:.2f} ± {lc['sd']:.2f} ({lc['bound']}) | "
            f"{up['mean']:.2f} ± {up['sd']:.2f} ({up['bound']}) | "
            f"{r.get('L1Out (true q)', math.nan):.2f} | {r.get('CLUB (true q)', math.nan):.2f} | "
            f"{'yes' if r['bracketed'] else 'no'} |")
    lines.append("")
    lines.append("mean ± standard deviation of the estimates over the window of each level.")
    return "\n".join(lines) + "\n"


def sandwich_figure(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    n = len(rows)
    edges = list(range(n + 1))
    truth = [r["true_mi"] for r in rows]
    ax.stairs(truth, edges, color="black", linewidth=1.5, label="true MI", baseline=None)
    centres = [k + 0.5 for k in range(n)]
    for key, color, name in (("lower", "tab:blue", "best lower bound"),
                             ("lower_critic", "tab:cyan", "best critic lower bound"),
                             ("upper", "tab:red", "best upper bound (fitted q)")):
        means = [r[key]["mean"] for r in rows]
        sds = [r[key]["sd"] for r in rows]
        ax.errorbar(centres, means, yerr=sds, fmt="o", color=color, capsize=3, label=name)
        for c, r in zip(centres, rows, strict=True):
            ax.annotate(r[key]["bound"], (c, r[key]["mean"]), textcoords="offset points",
                        xytext=(6, 3 if key == "upper" else -3), fontsize=6, color=color)
    if all("L1Out (true q)" in r for r in rows):
        ax.plot(centres, [r["L1Out (true q)"] for r in rows], "x--", color="tab:gray",
                linewidth=0.8, label="L1Out, true q")
    ax.set_xticks(centres, [f"{t:g}" for t in truth])
    ax.set_xlabel("true MI of the level (nats)")
    ax.set_ylabel("estimate (nats)")
    ax.set_ylim(0, None)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _write(out_dir: Path, name: str, payload: dict, section: str, estimates: Tensor,
           schedule: Staircase, labels: list[str], title: str, batch_size: int,
           ylim: tuple[float, float] = (-1, 14)) -> None:
    (out_dir / f"{name}.json").write_text(json.dumps(payload, indent=1))
    (out_dir / f"{name}.md").write_text(section)
    figure(estimates, schedule, labels, out_dir / f"{name}.png", title, batch_size, ylim)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, checked, with ``--quick``'s defaults where none was given and
    ``out_dir`` made."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--critics", type=name_list(("separable", "concat")),
                        default="separable,concat")
    parser.add_argument("--tasks", type=name_list(("gaussian", "cubic")),
                        default="gaussian,cubic")
    parser.add_argument("--families", type=name_list(FAMILIES), default="lower,conditional,flo",
                        help="which estimator families to train (comma-separated): lower, "
                             "conditional, flo, and mixture (the conditional bounds with a "
                             "mixture-of-Gaussians q); default: %(default)s")
    parser.add_argument("--sandwich-only", action="store_true",
                        help="train nothing: rebuild the sandwiches from the results on disk")
    parser.add_argument("--steps-per-level", type=positive_int, default=None,
                        help="default: 4000; --quick: 200")
    parser.add_argument("--batch-size", type=at_least(2), default=64)
    parser.add_argument("--window", type=positive_int, default=None,
                        help="the last steps of each level summarised (default: 500; "
                             "--quick: 100); one longer than a level is cut to the level's "
                             "steps, and the results record the window used")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test into staircase_quick/: its defaults are "
                             "--steps-per-level 200 and --window 100; options given "
                             "explicitly win")
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--seed", type=at_least(0), default=0)
    parser.add_argument("--out-dir", default=None,
                        help="default: benchmarks/results/staircase (--quick: "
                             "benchmarks/results/staircase_quick, not committed)")
    args = parser.parse_args(argv)
    level_schedule(args)  # --quick changes the defaults only; the window used is recorded
    # a smoke run never overwrites the committed results (``*_quick/`` is git-ignored)
    args.out_dir = Path(args.out_dir or ROOT / "benchmarks" / "results" /
                        ("staircase_quick" if args.quick else "staircase"))
    output_location(parser, "--out-dir", args.out_dir / "summary.md")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    steps_per_level, window, out_dir = args.steps_per_level, args.window, args.out_dir
    families = set() if args.sandwich_only else set(args.families)
    schedule = Staircase(steps_per_level=steps_per_level)
    sections = []

    def protocol(critic: str, task: str, **extra: object) -> dict:
        return {"critic": critic, "task": task, "dim": 20, "batch_size": args.batch_size,
                "levels": list(schedule.levels), "steps_per_level": steps_per_level,
                "window": window, "lr": 5e-4, "hidden": [256, 256], "seed": args.seed,
                "quick": args.quick, **extra}

    def emit(name: str, payload: dict, estimates: Tensor, labels: list[str], title: str,
             ylim: tuple[float, float] = (-1, 14)) -> None:
        section = markdown(payload["summary"], schedule.levels, title)
        _write(out_dir, name, payload, section, estimates, schedule, labels, title,
               args.batch_size, ylim)
        sections.append(section)
        print(section, f"({payload['wall_time_s']:.0f} s)", flush=True)

    for task in args.tasks:
        transform = None if task == "gaussian" else task
        suffix = f"{steps_per_level} steps/level, batch {args.batch_size}"
        if "conditional" in families:
            start = time.time()
            estimates = run_conditional(transform, schedule, batch_size=args.batch_size,
                                        seed=args.seed)
            estimates = torch.cat([estimates, true_q_traces(
                transform, schedule, batch_size=args.batch_size, seed=args.seed)], dim=1)
            labels = CONDITIONAL_LABELS + TRUE_Q_LABELS
            payload = {"provenance": provenance(),
                       "protocol": protocol("conditional (diagonal Gaussian q)", task,
                                            model="DiagonalGaussian, marginal GaussianMarginal"),
                       "bounds": [{"label": lab} for lab in labels],
                       "wall_time_s": time.time() - start,
                       "summary": summarize(estimates, schedule, labels, window)}
            emit(f"conditional-{task}", payload, estimates, labels,
                 f"conditional q(y|x), {task} task, {suffix}", ylim=(-1, 40))
        if "mixture" in families:
            start = time.time()
            estimates = run_conditional(transform, schedule, batch_size=args.batch_size,
                                        seed=args.seed, mixture=True)
            payload = {"provenance": provenance(),
                       "protocol": protocol("conditional (mixture of 8 Gaussians q)", task,
                                            model="MixtureOfGaussians(components=8), "
                                                  "marginal GaussianMarginal"),
                       "bounds": [{"label": lab} for lab in MIXTURE_LABELS],
                       "wall_time_s": time.time() - start,
                       "summary": summarize(estimates, schedule, MIXTURE_LABELS, window)}
            emit(f"conditional-mixture-{task}", payload, estimates, MIXTURE_LABELS,
                 f"mixture q(y|x), {task} task, {suffix}", ylim=(-1, 40))
        for critic_kind in args.critics:
            if "lower" in families:
                start = time.time()
                estimates = run_staircase(critic_kind, transform, schedule, BOUNDS,
                                          batch_size=args.batch_size, seed=args.seed)
                payload = {
                    "provenance": provenance(),
                    "protocol": protocol(critic_kind, task, embed_dim=32),
                    "bounds": [{"label": b.label, "name": b.name, "kwargs": b.kwargs}
                               for b in BOUNDS],
                    "wall_time_s": time.time() - start,
                    "summary": summarize(estimates, schedule, BOUNDS, window),
                }
                emit(f"{critic_kind}-{task}", payload, estimates, [b.label for b in BOUNDS],
                     f"{critic_kind} critic, {task} task, {suffix}")
            if "flo" in families:
                start = time.time()
                estimates = run_flo(critic_kind, transform, schedule,
                                    batch_size=args.batch_size, seed=args.seed)
                payload = {"provenance": provenance(),
                           "protocol": protocol(f"{critic_kind} + FLO per-pair MLP", task,
                                                embed_dim=32),
                           "bounds": [{"label": "FLO", "name": "flo"}],
                           "wall_time_s": time.time() - start,
                           "summary": summarize(estimates, schedule, ["FLO"], window)}
                emit(f"flo-{critic_kind}-{task}", payload, estimates, ["FLO"],
                     f"FLO, {critic_kind} critic, {task} task, {suffix}")
            parts = [out_dir / f"{critic_kind}-{task}.json",
                     out_dir / f"flo-{critic_kind}-{task}.json",
                     out_dir / f"conditional-{task}.json"]
            optional = out_dir / f"conditional-mixture-{task}.json"
            if optional.exists() and all(p.exists() for p in parts):
                parts.append(optional)
            loaded = [json.loads(p.read_text()) for p in parts if p.exists()]
            same = len({(d["protocol"]["steps_per_level"], d["protocol"]["window"])
                        for d in loaded}) == 1
            if len(loaded) == len(parts) and not same:
                print(f"sandwich-{critic_kind}-{task}: skipped, the sources were run with "
                      "different steps per level or windows", flush=True)
            if len(loaded) == len(parts) and same:
                summaries = [d["summary"] for d in loaded]
                rows = sandwich(summaries, schedule.levels)
                name = f"sandwich-{critic_kind}-{task}"
                title = f"Sandwich: {critic_kind} critics and a fitted q, {task} task"
                (out_dir / f"{name}.json").write_text(json.dumps(
                    {"provenance": provenance(), "sources": [p.name for p in parts],
                     "sandwich": rows}, indent=1))
                section = sandwich_markdown(rows, title)
                (out_dir / f"{name}.md").write_text(section)
                sandwich_figure(rows, out_dir / f"{name}.png", title)
                print(section, flush=True)
    (out_dir / "summary.md").write_text("\n".join(sections))


if __name__ == "__main__":
    main()
