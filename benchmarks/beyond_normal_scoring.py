r"""How the "Beyond Normal" results are scored: per task, per estimator, and the headline.

Reads the committed results of both sides, ``results/beyond_normal_mitools.json``
(``beyond_normal.py``) and ``results/beyond_normal_bmi.json`` (``peers/run_bmi.py`` via
``peers/run_bmi_beyond_normal.sh``); ``beyond_normal_report.py`` renders the scores as
tables and the paper-shaped figure. Nothing is re-run.

Scoring, per task x seed case (one sample):

* error: estimate - true MI (nats); |log(estimate / true)|, and "solved" when it is below
  log 1.5 (Czyz et al.'s criterion; an estimate <= 0 or a failed run is never solved);
* coverage: whether the reported interval contains the true MI (methods with intervals);
* best: whether ``estimate_mi`` has the smallest absolute error among itself and bmi's KSG,
  CCA and neural estimators (ties count for ``estimate_mi``), over the cases where all of
  them have a record;
* efficient reference (a heuristic): on the cases whose samples are Gaussian after an
  increasing map of each coordinate (:data:`GAUSSIAN_COPULA_FAMILIES`), CCA and KSG come
  close to the best any estimator can do, so no estimator has the smallest error on all of
  them. The expected number of those cases on which an unbiased estimator at the Cramér-Rao
  limit (for the Gaussian MI from ``k`` equal canonical correlations :math:`\rho`, standard
  deviation :math:`\sqrt{k\rho^2/n}`, :math:`\rho^2 = 1 - e^{-2I/k}`) would beat every
  competitor, if its error were independent of theirs, is the sum over them of
  :math:`P(|\varepsilon| \le e_{best})`. The assumption is rough (on Gaussian data CCA is
  itself the maximum-likelihood estimate, whose error is nearly that of any efficient
  estimator, and it is biased upwards by about :math:`d_x d_y / 2n` nats), so the figure
  gives the scale of what is winnable there, not a bound;
* time: wall time per estimate; the ratios of ``estimate_mi``'s median time to the median
  times of mitools' KSG-10 and of bmi's KSG use only cases where both ran in the same run of
  ``beyond_normal.py`` (one sample after the other, same threads; bmi's KSG in bmi's venv,
  timed there around the estimate alone, record ``bmi_ksg``). ``bmi_ksg`` records are
  timings only: bmi's KSG estimates are scored from ``beyond_normal_bmi.json`` (the same
  numbers: KSG has no randomness).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SOLVED_LOG_RATIO = math.log(1.5)
TARGET = "mitools:estimate_mi"
KSG_SAME_RUN = "mitools:ksg"
#: bmi's KSG timed in the same run as estimate_mi (beyond_normal.py --methods ...,bmi_ksg)
BMI_KSG_SAME_RUN = "bmi:bmi_ksg"
SAME_RUN = {KSG_SAME_RUN: "mitools KSG-10", BMI_KSG_SAME_RUN: "bmi's KSG"}
COMPETITORS = ("bmi:ksg", "bmi:cca", "bmi:infonce", "bmi:nwj", "bmi:dv", "bmi:mine")
LABELS = {
    "mitools:estimate_mi": "estimate_mi",
    "mitools:ksg": "KSG-10 (mitools)",
    "mitools:gaussian": "Gaussian (mitools)",
    "bmi:ksg": "KSG (bmi)",
    "bmi:cca": "CCA (bmi)",
    "bmi:infonce": "InfoNCE (bmi)",
    "bmi:nwj": "NWJ (bmi)",
    "bmi:dv": "DV (bmi)",
    "bmi:mine": "MINE (bmi)",
}
ORDER = list(LABELS)
#: bmi's task families whose samples are a Gaussian after an increasing map of each
#: coordinate (bimodal, wiggly, half-cube and normal-CDF are such maps of bmi's normal tasks)
GAUSSIAN_COPULA_FAMILIES = ("binormal", "normal-cdf", "bimodal", "wiggly", "half-cube",
                            "multinormal-dense", "multinormal-sparse")


def key_of(record: dict) -> str:
    return f"{record['library']}:{record['estimator']}"


def log_ratio(estimate: float, true: float) -> float:
    """|log(estimate / true)|; infinite when the estimate is not positive or not finite."""
    if not (math.isfinite(estimate) and estimate > 0 and true > 0):
        return math.inf
    return abs(math.log(estimate / true))


def abs_error(record: dict) -> float:
    """|estimate - true|, infinite for a failed or non-finite estimate."""
    est = record.get("estimate", math.nan)
    if record.get("status", "ok") != "ok" or not math.isfinite(est):
        return math.inf
    return abs(est - record["true_mi"])


@dataclass
class Results:
    """Records of every estimator, by case ``(task_id, seed)`` and estimator key."""

    cases: dict[tuple[str, int], dict[str, dict]] = field(default_factory=dict)
    tasks: dict[str, dict] = field(default_factory=dict)
    meta: dict[str, dict] = field(default_factory=dict)
    #: records kept for their times only, by case and estimator key (bmi_ksg)
    timings: dict[tuple[str, int], dict[str, dict]] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        present = {k for by_key in self.cases.values() for k in by_key}
        return [k for k in ORDER if k in present] + sorted(present - set(ORDER))

    @property
    def task_ids(self) -> list[str]:
        seen = dict.fromkeys(self.tasks)
        seen.update(dict.fromkeys(t for t, _ in self.cases))
        return [t for t in seen if any(c[0] == t for c in self.cases)]


def collect(payloads: dict[str, dict]) -> Results:
    """Group the records of several result files (side name -> parsed JSON)."""
    out = Results()
    for side, payload in payloads.items():
        out.meta[side] = {k: v for k, v in payload.items() if k != "records"}
        out.tasks.update(payload.get("tasks", {}))
        for r in payload["records"]:
            case = (r["task"], int(r["seed"]) if r.get("seed") is not None else 0)
            where = out.timings if key_of(r) == BMI_KSG_SAME_RUN else out.cases
            where.setdefault(case, {})[key_of(r)] = r
            out.tasks.setdefault(r["task"], {"true_mi": r["true_mi"]})
    return out


SIDES = ("mitools", "bmi")


def read_json(path: Path) -> dict:
    """``path`` parsed; a file that is not valid JSON stops the script with a one-line
    message naming it (not a traceback)."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SystemExit(f"{path}: not valid JSON ({exc}); restore it with "
                         f"`git checkout -- {path.name}` or rerun its benchmark") from None


def load(results_dir: Path = RESULTS, require: bool = False) -> Results:
    """The committed result files that exist (``require``: both sides, or a one-line
    error naming the missing file)."""
    payloads = {}
    for side in SIDES:
        path = results_dir / f"beyond_normal_{side}.json"
        if path.exists():
            payloads[side] = read_json(path)
        elif require:
            raise SystemExit(f"missing {path}: the report scores both sides (see "
                             "benchmarks/README.md, Beyond Normal, for the run that writes it)")
    return collect(payloads)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def task_rows(res: Results) -> list[dict]:
    """Per task and estimator: mean signed error, mean |log ratio|, solved and covered
    counts, median time; over the seeds on which every estimator present for the task ran
    (all its seeds if there are none such), so that a row compares like with like."""
    rows = []
    for task in res.task_ids:
        cases = {seed: by_key for (t, seed), by_key in res.cases.items() if t == task}
        present = set().union(*cases.values())
        common = {seed: c for seed, c in cases.items() if present <= set(c)}
        cases = common or cases
        meta = res.tasks.get(task, {})
        row = {"task": task, "name": meta.get("name", task), "dim_x": meta.get("dim_x"),
               "dim_y": meta.get("dim_y"), "true_mi": meta.get("true_mi"),
               "seeds": sorted(cases), "by_key": {}}
        for key in res.keys:
            recs = [c[key] for c in cases.values() if key in c]
            if not recs:
                continue
            true = recs[0]["true_mi"]
            row["true_mi"] = true
            ok = [r for r in recs if abs_error(r) < math.inf]
            covered = [r["covers"] for r in recs if "covers" in r]
            row["by_key"][key] = {
                "n": len(recs),
                "mean_estimate": statistics.fmean(r["estimate"] for r in ok) if ok else math.nan,
                "mean_error": (statistics.fmean(r["estimate"] - true for r in ok)
                               if ok else math.nan),
                "mean_abs_error": statistics.fmean(abs_error(r) for r in recs),
                "mean_log_ratio": statistics.fmean(log_ratio(r.get("estimate", math.nan), true)
                                                   for r in recs),
                "solved": sum(log_ratio(r.get("estimate", math.nan), true) < SOLVED_LOG_RATIO
                              for r in recs),
                "covered": sum(covered) if covered else None,
                "with_interval": len(covered),
                "median_time_s": _median([r["wall_time_s"] for r in recs]),
            }
        rows.append(row)
    return rows


def summary(res: Results) -> dict:
    """The headline numbers (see the module docstring)."""
    out: dict = {"cases": len(res.cases), "tasks": len(res.task_ids), "by_key": {}}
    for key in res.keys:
        recs = [c[key] for c in res.cases.values() if key in c]
        covered = [r["covers"] for r in recs if "covers" in r]
        times = [r["wall_time_s"] for r in recs]
        out["by_key"][key] = {
            "cases": len(recs),
            "failed": sum(abs_error(r) == math.inf for r in recs),
            "solved": sum(log_ratio(r.get("estimate", math.nan), r["true_mi"])
                          < SOLVED_LOG_RATIO for r in recs),
            "coverage": (sum(covered) / len(covered)) if covered else None,
            "with_interval": len(covered),
            "median_time_s": _median(times),
            "max_time_s": max(times) if times else math.nan,
        }
    full = [c for c in res.cases.values()
            if TARGET in c and all(k in c for k in COMPETITORS)]
    wins = [abs_error(c[TARGET]) <= min(abs_error(c[k]) for k in COMPETITORS) for c in full]
    out["best"] = {"cases": len(full), "wins": sum(wins),
                   "fraction": sum(wins) / len(wins) if wins else None,
                   "competitors": list(COMPETITORS)}
    out["efficient"] = efficient_reference(res, full)
    out["time_vs_ksg"] = {}
    for key in SAME_RUN:
        pairs = []
        for case, c in res.cases.items():
            other = {**c, **res.timings.get(case, {})}.get(key)
            if (TARGET in c and other is not None
                    and c[TARGET].get("status", "ok") == other.get("status", "ok") == "ok"
                    and c[TARGET].get("run") == other.get("run")):
                pairs.append((c[TARGET]["wall_time_s"], other["wall_time_s"]))
        t_target = _median([a for a, _ in pairs])
        t_ksg = _median([b for _, b in pairs])
        out["time_vs_ksg"][key] = {
            "cases": len(pairs), "median_estimate_mi_s": t_target, "median_ksg_s": t_ksg,
            "ratio": t_target / t_ksg if pairs and t_ksg > 0 else None}
    return out


def efficient_sd(true_mi: float, canonical: int, n: int) -> float:
    r"""Standard deviation of the maximum-likelihood Gaussian MI (the Cramér-Rao limit) for
    ``canonical`` equal non-zero canonical correlations carrying ``true_mi`` nats, from ``n``
    samples: each :math:`\hat\rho_k` has variance :math:`(1 - \rho^2)^2 / n` and
    :math:`\partial I / \partial \rho_k = \rho / (1 - \rho^2)`."""
    rho2 = 1.0 - math.exp(-2.0 * true_mi / canonical)
    return math.sqrt(canonical * rho2 / n)


def efficient_reference(res: Results, complete: list[dict]) -> dict:
    """On the complete cases of Gaussian-copula tasks (the family and parameters in the
    results' task table): how many ``estimate_mi`` wins, and how many an unbiased estimator
    at the Cramér-Rao limit would win in expectation if its error were independent of the
    competitors' (a heuristic; see the module docstring)."""
    expected, wins, cases = 0.0, 0, 0
    for c in complete:
        target = c[TARGET]
        meta = res.tasks.get(target["task"], {})
        if meta.get("family") not in GAUSSIAN_COPULA_FAMILIES or meta.get("params") is None:
            continue
        canonical = int(meta["params"].get("n_interacting", 1))
        sd = efficient_sd(target["true_mi"], canonical, int(meta.get("n") or 5000))
        best = min(abs_error(c[k]) for k in COMPETITORS)
        expected += math.erf(best / (sd * math.sqrt(2.0))) if best < math.inf else 1.0
        wins += abs_error(target) <= best
        cases += 1
    return {"cases": cases, "wins": wins, "expected_efficient_wins": expected,
            "other_cases": len(complete) - cases}
