"""The staircase benchmark's stacked critics equal independent per-bound critics."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from stacked_critics import StackedConcatCritic, StackedSeparableCritic
from staircase import BOUNDS
from staircase_report import sandwich, summarize, write_sandwich

from mitools.tasks import Staircase


def _mlp_loop(layers, v: torch.Tensor, m: int) -> torch.Tensor:
    """Reference: model m's MLP on one vector, layer by layer."""
    for i, layer in enumerate(layers):
        v = v @ layer.weight[m] + layer.bias[m, 0]
        if i < len(layers) - 1:
            v = torch.relu(v)
    return v


def test_stacked_separable_matches_per_model_loop() -> None:
    torch.manual_seed(0)
    critic = StackedSeparableCritic(3, 4, 5, hidden=(7, 6), embed_dim=3).double()
    x, y = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64)
    scores = critic(x, y)
    assert scores.shape == (3, 6, 6)
    for m in range(3):
        for i in range(6):
            for j in range(6):
                ref = _mlp_loop(critic.g.layers, x[i], m) @ _mlp_loop(critic.h.layers, y[j], m)
                assert torch.allclose(scores[m, i, j], ref)


def test_stacked_concat_matches_per_pair_loop() -> None:
    torch.manual_seed(0)
    critic = StackedConcatCritic(2, 3, 2, hidden=(5, 4)).double()
    x, y = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    scores = critic(x, y)
    for m in range(2):
        for i in range(4):
            for j in range(4):
                h = x[i] @ critic.first_x.weight[m] + critic.first_x.bias[m, 0]
                h = torch.relu(h + y[j] @ critic.first_y.weight[m])
                ref = _mlp_loop(critic.rest.layers, h, m)
                assert torch.allclose(scores[m, i, j], ref.squeeze())


def test_models_do_not_share_gradients() -> None:
    torch.manual_seed(0)
    critic = StackedSeparableCritic(3, 4, 4, hidden=(8,), embed_dim=2)
    scores = critic(torch.randn(5, 4), torch.randn(5, 4))
    scores[1].sum().backward()
    for p in critic.parameters():
        assert p.grad[0].abs().sum() == 0 and p.grad[2].abs().sum() == 0
        assert p.grad[1].abs().sum() > 0


def test_summary_reads_the_last_window_of_each_level() -> None:
    schedule = Staircase(levels=(2.0, 4.0), steps_per_level=10)
    est = torch.zeros(20, len(BOUNDS))
    est[7:10] = 3.0  # last 3 steps of level 2: bias +1
    est[17:20] = 4.0  # exact at level 4
    s = summarize(est, schedule, [b.label for b in BOUNDS], window=3)
    first = s[BOUNDS[0].label]
    assert first[0]["bias"] == 1.0 and first[0]["variance"] == 0.0 and first[0]["mse"] == 1.0
    assert first[1]["bias"] == 0.0


def test_sandwich_picks_the_highest_lower_and_lowest_upper_bound() -> None:
    def cell(mean):
        return {"mean": mean, "variance": 0.25}

    lower = {"InfoNCE": [cell(1.5), cell(3.0)], "DV": [cell(5.0), cell(9.0)],  # DV: excluded
             "NWJ": [cell(1.8), cell(2.0)]}
    upper = {"CLUB": [cell(4.0), cell(9.0)], "L1Out": [cell(2.5), cell(float("nan"))],
             "L1Out (true q)": [cell(2.6), cell(5.0)]}
    rows = sandwich([lower, upper], (2.0, 4.0))
    assert rows[0]["lower"] == {"bound": "NWJ", "mean": 1.8, "sd": 0.5}
    assert rows[1]["lower"]["bound"] == "InfoNCE"
    assert rows[0]["upper"]["bound"] == "L1Out" and rows[1]["upper"]["bound"] == "CLUB"
    assert rows[0]["bracketed"] and rows[1]["bracketed"]
    assert rows[1]["L1Out (true q)"] == 5.0
    assert rows[0]["lower_critic"]["bound"] == "NWJ"


def test_the_sandwich_waits_for_its_three_sources_and_refuses_mixed_protocols(
        tmp_path: Path, capsys) -> None:
    def source(name: str, labels: list[str], means: list[float], window: int = 3) -> None:
        summary = {lab: [{"mean": m, "variance": 0.04}] for lab, m in zip(labels, means,
                                                                          strict=True)}
        (tmp_path / f"{name}.json").write_text(json.dumps(
            {"protocol": {"steps_per_level": 10, "window": window}, "summary": summary}))

    source("separable-gaussian", ["InfoNCE"], [1.7])
    source("flo-separable-gaussian", ["FLO"], [1.8])
    assert write_sandwich(tmp_path, "separable", "gaussian", (2.0,)) is None  # no conditional
    source("conditional-gaussian", ["BA", "CLUB"], [1.9, 2.3], window=5)
    assert write_sandwich(tmp_path, "separable", "gaussian", (2.0,)) is None
    assert "different steps per level or windows" in capsys.readouterr().out
    source("conditional-gaussian", ["BA", "CLUB"], [1.9, 2.3])
    table = write_sandwich(tmp_path, "separable", "gaussian", (2.0,))
    assert table is not None and "1.90 ± 0.20 (BA)" in table and "2.30 ± 0.20 (CLUB)" in table
    written = json.loads((tmp_path / "sandwich-separable-gaussian.json").read_text())
    assert written["sources"] == ["separable-gaussian.json", "flo-separable-gaussian.json",
                                  "conditional-gaussian.json"]
    assert written["sandwich"][0]["bracketed"]
    assert (tmp_path / "sandwich-separable-gaussian.png").exists()
