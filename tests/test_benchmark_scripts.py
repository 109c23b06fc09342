"""The benchmark scripts' command lines: what they write, and what they refuse (no timing
runs: only the cheap paths of each script)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH / "peers"))

from samples import save_sample  # noqa: E402


def _fake_samples(folder: Path, tasks: list[str]) -> list[dict]:
    """A samples folder as ``peers/sample_bmi_tasks.py --benchmark`` writes it (tiny)."""
    rng = np.random.default_rng(0)
    rows = []
    for i, task in enumerate(tasks):
        x = rng.normal(size=(200, 1))
        y = x + rng.normal(size=(200, 1))
        name = f"{task}-seed0.npz"
        save_sample(folder / name, task, "fake", 0.35, x, y, seed=0)
        rows.append({"task_id": task, "file": name, "seed": 0, "family": f"family{i}",
                     "name": task.upper(), "group": "fake", "dim_x": 1, "dim_y": 1,
                     "true_mi": 0.35, "n": 200, "params": {}})
    (folder / "index.json").write_text(json.dumps({"samples": rows}))
    return rows


def _existing(path: Path, tasks: dict, records: list) -> str:
    text = json.dumps({"benchmark": "beyond_normal", "side": "mitools",
                       "runs": [{"provenance": {}, "argv": []}], "tasks": tasks,
                       "records": records}, indent=1)
    path.write_text(text)
    return text


def test_beyond_normal_run_adding_nothing_leaves_the_file(tmp_path: Path,
                                                           monkeypatch) -> None:
    import beyond_normal

    # bmi's venv missing: the run skips bmi_ksg and has nothing to add
    monkeypatch.setattr(beyond_normal, "BMI_PYTHON", tmp_path / "no-venv" / "python")

    data = tmp_path / "data"
    rows = _fake_samples(data, ["one", "two"])
    out = tmp_path / "out.json"
    done = [{"sample": rows[0]["file"], "estimator": "gaussian", "task": "one"}]
    before = _existing(out, {"old": {"name": "Old"}, "one": {"name": "ONE"}}, done)
    beyond_normal.main(["--data", str(data), "--tasks", "one", "--seeds", "0",
                        "--methods", "gaussian,bmi_ksg", "--out", str(out)])
    assert out.read_text() == before


def test_beyond_normal_merges_task_metadata(tmp_path: Path) -> None:
    import beyond_normal

    data = tmp_path / "data"
    _fake_samples(data, ["one", "two"])
    out = tmp_path / "out.json"
    _existing(out, {"old": {"name": "Old"}}, [])
    beyond_normal.main(["--data", str(data), "--tasks", "one", "--seeds", "0",
                        "--methods", "gaussian", "--out", str(out)])
    payload = json.loads(out.read_text())
    assert set(payload["tasks"]) == {"old", "one", "two"}
    assert payload["tasks"]["old"] == {"name": "Old"}
    assert len(payload["runs"]) == 2 and len(payload["records"]) == 1
