"""Fixed samples and result records shared by the peer runners.

Every runner (mitools, bmi, torch-mist) reads the same ``.npz`` files and writes the same
JSON record layout, so the comparison in ``compare.py`` is made on identical data.  This
module imports only numpy and the standard library: it runs inside each peer's own
virtual environment.

An ``.npz`` sample file holds ``x (n, dx)``, ``y (n, dy)`` (float32), ``true_mi`` (nats),
``name`` (a short task id) and ``source`` (how the sample was drawn).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Sample:
    """One fixed sample of a task of known mutual information."""

    name: str
    source: str
    true_mi: float
    x: np.ndarray
    y: np.ndarray
    path: str
    seed: int | None = None


@dataclass
class Record:
    """One estimate by one library and estimator on one sample."""

    library: str
    version: str
    estimator: str
    task: str
    true_mi: float
    estimate: float
    abs_error: float
    wall_time_s: float
    settings: dict = field(default_factory=dict)
    status: str = "ok"
    message: str = ""
    sample: str = ""
    seed: int | None = None


def save_sample(path: Path, name: str, source: str, true_mi: float,
                x: np.ndarray, y: np.ndarray, dtype: type | None = np.float32,
                **metadata: object) -> None:
    """Write one sample file (float32 arrays unless ``dtype`` says otherwise; ``None`` keeps
    the arrays' own dtype).  Extra ``metadata`` (strings and numbers) is stored as 0-d
    arrays beside ``name`` and ``source``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, x=np.asarray(x, dtype=dtype), y=np.asarray(y, dtype=dtype),
                        true_mi=float(true_mi), name=name, source=source,
                        **{k: np.asarray(v) for k, v in metadata.items()})


def load_samples(paths: Iterable[str]) -> list[Sample]:
    """Read sample files written by :func:`save_sample`."""
    out = []
    for p in paths:
        with np.load(p) as d:
            out.append(Sample(name=str(d["name"]), source=str(d["source"]),
                              true_mi=float(d["true_mi"]), x=d["x"], y=d["y"], path=str(p),
                              seed=int(d["seed"]) if "seed" in d.files else None))
    return out


def timed_estimate(library: str, version: str, estimator: str, sample: Sample,
                   settings: dict, run: Callable[[], float]) -> Record:
    """Run ``run()`` (which returns an estimate in nats), timing it; errors become records."""
    start = time.perf_counter()
    try:
        value = float(run())
        status, message = ("ok", "") if np.isfinite(value) else ("nan", "estimate not finite")
    except Exception as exc:  # a failing peer is reported, not dropped
        value, status, message = float("nan"), "error", f"{type(exc).__name__}: {exc}"
    wall = time.perf_counter() - start
    return Record(library=library, version=version, estimator=estimator, task=sample.name,
                  true_mi=sample.true_mi, estimate=value, abs_error=abs(value - sample.true_mi),
                  wall_time_s=wall, settings=settings, status=status, message=message[:500],
                  sample=Path(sample.path).name, seed=sample.seed)


def write_records(path: str, records: list[Record | dict], extra: dict | None = None) -> None:
    """Write records with the interpreter and machine they were measured on."""
    payload = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "records": [r if isinstance(r, dict) else asdict(r) for r in records],
    }
    if extra:
        payload.update(extra)
    write_json_atomic(Path(path), payload)


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write JSON through a temporary file and a rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, path)


def read_results(path: str | Path, keys: tuple[str, ...] = ()) -> dict:
    """The payload of a results file (``{}`` if there is none): a JSON object whose
    ``records`` are objects with ``keys``. Raises ``ValueError`` saying what is wrong with
    the file (unreadable, not JSON, another shape), so that a caller resuming from it can
    stop before it writes over it."""
    p = Path(path)
    if not p.exists():
        return {}
    try:
        payload = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{p} cannot be read ({getattr(exc, 'strerror', None) or exc})") \
            from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg})") from None
    records = payload.get("records") if isinstance(payload, dict) else None
    if not isinstance(records, list) or not all(
            isinstance(r, dict) and all(k in r for k in keys) for r in records):
        need = f" with {', '.join(keys)}" if keys else ""
        raise ValueError(f"{p} is not a results file (a JSON object whose 'records' is a "
                         f"list of records{need})")
    return payload


def read_records(path: str) -> list[dict]:
    """The records of a file written by :func:`write_records` (none if it does not exist);
    ``ValueError`` naming the file when it cannot be read as one."""
    return read_results(path).get("records", [])


def interleave_families(items: list, family: Callable, seed: Callable) -> list:
    """Order items seed by seed and, within a seed, one task of each family in turn (in
    their given order within a family), so that a run stopped early has covered every
    family rather than the first few."""
    out = []
    for s in sorted({seed(i) for i in items}):
        queues: dict = {}
        for item in items:
            if seed(item) == s:
                queues.setdefault(family(item), []).append(item)
        while any(queues.values()):
            for queue in queues.values():
                if queue:
                    out.append(queue.pop(0))
    return out


def sample_metadata(path: str) -> dict:
    """``family`` and ``seed`` of a sample file (``"?"``/``0`` when not recorded)."""
    with np.load(path) as d:
        return {"family": str(d["family"]) if "family" in d.files else "?",
                "seed": int(d["seed"]) if "seed" in d.files else 0}
