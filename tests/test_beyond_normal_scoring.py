"""The Beyond Normal harness scores a small fake result set as worked out by hand."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import beyond_normal_report as report
import beyond_normal_scoring as bn
from beyond_normal import select

NEURAL = ("infonce", "nwj", "dv", "mine")


def _rec(library, estimator, task, seed, true, est, time=1.0, run=None, interval=None,
         status="ok"):
    r = {"library": library, "estimator": estimator, "task": task, "seed": seed,
         "true_mi": true, "estimate": est, "wall_time_s": time, "status": status,
         "settings": {}}
    if run is not None:
        r["run"] = run
    if interval is not None:
        r["interval"] = list(interval)
        r["covers"] = interval[0] <= true <= interval[1]
    return r


def _fake() -> dict[str, dict]:
    """Two tasks x two seeds; estimate_mi wins 2 of the 3 complete cases."""
    mit, bmi = [], []
    # task a, true 1.0
    mit += [_rec("mitools", "estimate_mi", "a", 0, 1.0, 0.98, 10.0, 0, (0.95, 1.01)),
            _rec("mitools", "ksg", "a", 0, 1.0, 0.90, 2.0, 0),
            _rec("mitools", "estimate_mi", "a", 1, 1.0, 0.70, 30.0, 0, (0.65, 0.75)),
            _rec("mitools", "ksg", "a", 1, 1.0, 0.95, 4.0, 0)]
    # task b, true 0.5; seed 1's estimate_mi failed; its KSG ran in another run
    mit += [_rec("mitools", "estimate_mi", "b", 0, 0.5, 0.52, 20.0, 1, (0.45, 0.55)),
            _rec("mitools", "ksg", "b", 0, 0.5, 0.40, 1.0, 2),
            _rec("mitools", "estimate_mi", "b", 1, 0.5, math.nan, 5.0, 1, status="error"),
            _rec("mitools", "ksg", "b", 1, 0.5, 0.47, 1.0, 3)]
    # bmi's KSG timed in the same runs (timings only): a,0 and a,1 in run 0, b,0 in run 1;
    # b,1 failed; its estimate differs from bmi's own file on purpose, to show it is not used
    mit += [_rec("bmi", "bmi_ksg", "a", 0, 1.0, 0.5, 6.0, 0),
            _rec("bmi", "bmi_ksg", "a", 1, 1.0, 0.5, 8.0, 0),
            _rec("bmi", "bmi_ksg", "b", 0, 0.5, 0.5, 5.0, 1),
            _rec("bmi", "bmi_ksg", "b", 1, 0.5, math.nan, 1.0, 1, status="error")]
    for task, seed, true, ksg in (("a", 0, 1.0, 0.85), ("a", 1, 1.0, 0.80),
                                  ("b", 0, 0.5, 0.45), ("b", 1, 0.5, 0.48)):
        bmi.append(_rec("bmi", "ksg", task, seed, true, ksg))
        bmi.append(_rec("bmi", "cca", task, seed, true, 0.1))
        if seed == 0 or task == "b":  # task a seed 1: no neural estimators -> incomplete
            bmi += [_rec("bmi", e, task, seed, true, -0.2) for e in NEURAL]
    tasks = {"a": {"name": "Task A", "dim_x": 1, "dim_y": 1, "true_mi": 1.0},
             "b": {"name": "Task B", "dim_x": 3, "dim_y": 3, "true_mi": 0.5}}
    return {"mitools": {"runs": [], "tasks": tasks, "records": mit},
            "bmi": {"bmi": "0.1.3", "records": bmi}}


def test_log_ratio_and_solved_threshold() -> None:
    assert bn.log_ratio(1.0, 1.0) == 0.0
    assert bn.log_ratio(0.5, 1.0) == pytest.approx(math.log(2))
    assert bn.log_ratio(2.0, 1.0) == pytest.approx(math.log(2))
    for bad in (0.0, -0.3, math.nan, math.inf):
        assert bn.log_ratio(bad, 1.0) == math.inf
    assert bn.log_ratio(1.49, 1.0) < bn.SOLVED_LOG_RATIO < bn.log_ratio(1.51, 1.0)


def test_summary_best_coverage_solved_and_same_run_time() -> None:
    res = bn.collect(_fake())
    s = bn.summary(res)
    assert s["cases"] == 4 and s["tasks"] == 2
    # complete cases: (a,0) win, (b,0) win (0.02 < 0.05), (b,1) loss (failed); (a,1) lacks
    # the neural estimators and is left out
    assert s["best"] == {"cases": 3, "wins": 2, "fraction": pytest.approx(2 / 3),
                         "competitors": list(bn.COMPETITORS)}
    t = s["by_key"]["mitools:estimate_mi"]
    # intervals: (a,0) covers, (a,1) misses, (b,0) covers; the failed run has none
    assert t["with_interval"] == 3 and t["coverage"] == pytest.approx(2 / 3)
    # solved: 0.98, 0.70 (|log 0.7| = 0.357 < 0.405), 0.52 yes; the failure no
    assert (t["cases"], t["solved"], t["failed"]) == (4, 3, 1)
    assert s["by_key"]["bmi:infonce"]["solved"] == 0  # negative estimates
    assert s["by_key"]["mitools:estimate_mi"]["median_time_s"] == pytest.approx(15.0)
    # same run only: task a (runs 0/0); task b's KSG ran in run 2, estimate_mi in run 1
    r = s["time_vs_ksg"]["mitools:ksg"]
    assert r["cases"] == 2
    assert (r["median_estimate_mi_s"], r["median_ksg_s"]) == (20.0, 3.0)
    assert r["ratio"] == pytest.approx(20 / 3)
    # bmi's KSG in the same runs: (a,0), (a,1), (b,0); the failed (b,1) is left out
    r = s["time_vs_ksg"]["bmi:bmi_ksg"]
    assert r["cases"] == 3
    assert (r["median_estimate_mi_s"], r["median_ksg_s"]) == (20.0, 6.0)
    assert r["ratio"] == pytest.approx(20 / 6)
    # timings only: not an estimator of the accuracy tables, and bmi's KSG is scored from its
    # own file (0.85 on (a,0), not the 0.5 of the timing record)
    assert "bmi:bmi_ksg" not in res.keys
    assert res.cases[("a", 0)]["bmi:ksg"]["estimate"] == 0.85


def test_per_task_table_errors_bold_and_coverage() -> None:
    res = bn.collect(_fake())
    header, rows = report.per_task_table(res)
    assert header[:5] == ["task", "dims", "true MI", "seeds", "estimate_mi"]
    assert header[-3:] == ["estimate_mi covers", "estimate_mi time (s)", "KSG-10 time (s)"]
    a = dict(zip(header, rows[0], strict=True))
    assert a["task"] == "Task A" and a["dims"] == "1 × 1" and a["true MI"] == "1.000"
    # task a: seed 1 lacks the neural estimators, so the row uses seed 0 only, where
    # estimate_mi (error -0.02) beats mitools' KSG (-0.10) and bmi's KSG (-0.15)
    assert a["seeds"] == "0"
    assert a["estimate_mi"] == f"**-0.020 ({abs(math.log(0.98)):.2f})**"
    assert a["KSG-10 (mitools)"] == f"-0.100 ({abs(math.log(0.9)):.2f})"
    assert a["InfoNCE (bmi)"] == "-1.200 (inf)"
    assert a["estimate_mi covers"] == "1/1"
    b = dict(zip(header, rows[1], strict=True))
    assert b["seeds"] == "0,1"  # every estimator has a record on both (one failed)
    assert b["estimate_mi covers"] == "1/1"
    # the failed run makes estimate_mi's mean absolute error infinite on b: not bold;
    # its mean error is over the run that worked
    assert b["estimate_mi"] == "+0.020 (inf)"
    assert b["KSG (bmi)"].startswith("**-0.035")


def test_task_rows_use_all_seeds_when_no_seed_is_complete() -> None:
    payload = {"records": [_rec("bmi", "ksg", "t", 0, 1.0, 0.8),
                           _rec("bmi", "cca", "t", 1, 1.0, 0.6)]}
    (row,) = bn.task_rows(bn.collect({"bmi": payload}))
    assert row["seeds"] == [0, 1]
    assert row["by_key"]["bmi:ksg"]["n"] == 1


def test_summary_lines_and_docs_section(tmp_path: Path) -> None:
    fake = _fake()
    for side, payload in fake.items():
        (tmp_path / f"beyond_normal_{side}.json").write_text(json.dumps(payload))
    res = bn.load(tmp_path)
    text = " ".join(report.summary_lines(res))
    assert "on 2 of 3 cases (67%" in text
    assert "cover the true MI in 67% of the cases" in text
    assert "mitools KSG-10 3.0 s (ratio 6.67)" in text
    assert "bmi's KSG 6.0 s (ratio 3.33)" in text
    import render_docs

    rst = render_docs.beyond_normal_section(tmp_path)
    assert "Beyond Normal" in rst and "Task B" in rst
    assert "InfoNCE (bmi): 3 of 4 cases" in rst  # the missing neural runs are stated
    assert render_docs.beyond_normal_section(tmp_path / "none") == ""


def test_figure_is_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "fig.png"
    report.figure(bn.collect(_fake()), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_select_by_glob_family_and_seed() -> None:
    index = [{"task_id": t, "family": f, "seed": s}
             for t, f in (("spiral-x", "spiral"), ("1v1-additive-0.1", "additive-noise"),
                          ("student-identity-2-2-1", "student-t"))
             for s in (0, 1)]
    assert {(r["task_id"], r["seed"]) for r in select(index, "spiral-*,student-t", [1])} == {
        ("spiral-x", 1), ("student-identity-2-2-1", 1)}
    assert len(select(index, None, None)) == 6
    assert select(index, "additive-noise", [0]) == [index[2]]


def test_interleave_families_covers_every_family_first() -> None:
    from samples import interleave_families

    items = [("a1", "a", 0), ("a2", "a", 0), ("b1", "b", 0), ("a1", "a", 1), ("c1", "c", 0)]
    order = interleave_families(items, lambda i: i[1], lambda i: i[2])
    assert [(i[0], i[2]) for i in order] == [("a1", 0), ("b1", 0), ("c1", 0), ("a2", 0),
                                             ("a1", 1)]


def test_efficient_reference_on_gaussian_copula_cases() -> None:
    # closed forms: one correlation of 0.75 (0.4133 nats) from 5,000 samples has sd 0.75 / sqrt(n);
    # two correlations of 0.8 (2 x 0.5108 nats) have sd sqrt(2 * 0.64 / n)
    assert bn.efficient_sd(-0.5 * math.log(1 - 0.75**2), 1, 5000) == pytest.approx(
        0.75 / math.sqrt(5000))
    assert bn.efficient_sd(-math.log(1 - 0.64), 2, 5000) == pytest.approx(
        math.sqrt(2 * 0.64 / 5000))
    fake = _fake()
    # task a (true 1.0: rho^2 = 1 - e^-2, sd = 0.01315): bmi's KSG within one sd on seed 0
    for r in fake["bmi"]["records"]:
        if (r["task"], r["seed"], r["estimator"]) == ("a", 0, "ksg"):
            r["estimate"] = 0.99
    for r in fake["mitools"]["records"]:
        if (r["task"], r["seed"], r["estimator"]) == ("a", 0, "estimate_mi"):
            r["estimate"] = 0.985
    fake["mitools"]["tasks"]["a"].update(family="binormal", params={}, n=5000)
    fake["mitools"]["tasks"]["b"].update(family="student-t", params={"dof": 1}, n=5000)
    e = bn.summary(bn.collect(fake))["efficient"]
    # complete cases: (a,0) is Gaussian-copula, lost (0.015 > 0.01); (b,0), (b,1) are not
    assert (e["cases"], e["wins"], e["other_cases"]) == (1, 0, 2)
    # P(|N(0, 0.01315^2)| <= 0.01) = 2 Phi(0.7604) - 1 = 0.553
    assert e["expected_efficient_wins"] == pytest.approx(0.553, abs=0.002)
    # without the task table's family and parameters, no case is counted
    assert bn.summary(bn.collect(_fake()))["efficient"]["cases"] == 0
