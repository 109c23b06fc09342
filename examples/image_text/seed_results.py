"""A seed's results file, ``seed<k>/results.json`` (and ``.md``), shared by ``evaluate`` runs.

``evaluate --modes A`` and then ``evaluate --modes B`` (or any two runs that evaluate different
pretrainings of a seed) each add their rows: the file is read, merged by pretraining label and
rewritten under a lock (``seed<k>/results.lock``, removed on release), so that the second run
keeps the first one's rows and two runs at the same time do not lose either's. A run's rows
replace the file's rows of the same labels, and the baselines (supervised only, untrained),
which every run evaluates again. Rows evaluated with other settings (another
``--finetune-epochs``, checkpoints of another ``--epochs``) are not merged: they would be read
as those of one setting. A run whose rows would leave such rows beside its own is refused
(:func:`check_mergeable`, before any work); a run that re-evaluates every row of the file
replaces it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Collection, Iterator
from pathlib import Path

from .config import Config, differing_fields
from .evaluate import REGIMES
from .report import _PER_SEED, Run, _read_results, write_results

try:  # POSIX; elsewhere runs are merged without a lock
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = ["BASELINES", "check_mergeable", "merge_runs", "write_seed_results"]

#: The rows every ``evaluate`` run writes again: supervised only and the untrained encoder.
BASELINES = ("none", "untrained")


def _label_key(label: str) -> tuple[int, str]:
    """Row order within a regime: the baselines, global, then the local labels by name (the
    order ``evaluate`` gives a seed's checkpoints)."""
    return ({"none": 0, "untrained": 1, "global": 2}.get(label, 3), label)


def merge_runs(old: Run, new: Run) -> Run:
    """``new``'s rows, and ``old``'s rows of the pretrainings ``new`` does not hold, in table
    order.

    Example:
        >>> from examples.image_text.evaluate import RegimeResult
        >>> row = lambda label: RegimeResult("frozen", label, .5, .5, (), .5, ())
        >>> merged, _ = merge_runs(([row("untrained"), row("global")], []),
        ...                        ([row("untrained"), row("local-max")], []))
        >>> [r.pretraining for r in merged]
        ['untrained', 'global', 'local-max']
    """
    labels = {r.pretraining for r in new[0]} | {p.pretraining for p in new[1]}
    rows = [*new[0], *(r for r in old[0] if r.pretraining not in labels)]
    pts = [*new[1], *(p for p in old[1] if p.pretraining not in labels)]
    rows.sort(key=lambda r: (REGIMES.index(r.regime), _label_key(r.pretraining)))
    pts.sort(key=lambda p: _label_key(p.pretraining))
    return rows, pts


def _on_file(seed_dir: Path, cfg: Config, names: tuple[str, ...] | None,
             labels: Collection[str]) -> Run | None:
    """The rows of the seed's results file that a run evaluating ``labels`` with ``cfg``
    keeps (``None``: none, or no file); refused with a ``ValueError`` when the file holds
    rows of other pretrainings evaluated with other settings or findings (``names``; ``None``:
    not known yet), or is damaged."""
    path = seed_dir / "results.json"
    if not path.exists():
        return None
    old_names, old, old_cfg, _ = _read_results(path)
    left = sorted({r.pretraining for r in old[0]} - set(labels) - set(BASELINES))
    if not left:
        return None
    differ = [f"--{k.replace('_', '-')} {old_cfg.get(k)!r} vs {getattr(cfg, k)!r}"
              for k in differing_fields(old_cfg, dataclasses.asdict(cfg), ignore=_PER_SEED)]
    if names is not None and old_names != names:
        differ.append("other findings")
    if differ:
        raise ValueError(
            f"{path} holds results of {', '.join(left)} evaluated with other settings "
            f"({', '.join(differ)}), which cannot share a results file with this run's: move "
            "it away (or delete it), or evaluate those pretrainings again with this run's "
            "settings")
    return old


def check_mergeable(seed_dir: Path, cfg: Config, labels: Collection[str]) -> None:
    """Refuse, before any work, a run evaluating the pretrainings ``labels`` whose rows the
    seed's results file could not take (see the module's text), or whose file is damaged
    (the message names it)."""
    _on_file(seed_dir, cfg, None, labels)


@contextlib.contextmanager
def _locked(seed_dir: Path) -> Iterator[None]:
    """Hold ``seed_dir/results.lock`` (a lock other ``evaluate`` processes wait on), and remove
    the file on release, so that no lock file is left in the seed's folder.

    Removing it is safe because only the holder removes it, while it holds the lock, and
    whoever gets the lock checks that the file it locked is still the one at that path: a run
    that was waiting on the removed file (it had opened it before) would otherwise hold a lock
    that a newcomer, creating the file anew, does not see, and both would merge at once; it
    retries on the new file instead. (A run killed while holding it leaves the file, which the
    next run locks and removes: a lock held by no process is none.)
    """
    seed_dir.mkdir(parents=True, exist_ok=True)
    path = seed_dir / "results.lock"
    if fcntl is None:  # pragma: no cover
        yield
        return
    while True:
        with open(path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            if not _is_linked_at(handle.fileno(), path):
                continue  # the holder before removed it: lock the file at the path now
            try:
                yield
            finally:
                with contextlib.suppress(FileNotFoundError):  # removed by hand meanwhile
                    path.unlink()
                fcntl.flock(handle, fcntl.LOCK_UN)
            return


def _is_linked_at(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` is the file at ``path`` (not one removed from it)."""
    try:
        here = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (here.st_dev, here.st_ino)


def write_seed_results(seed_dir: Path, cfg: Config, run: Run, names: tuple[str, ...],
                       seed: int, merge: bool = True) -> Run:
    """Write ``run`` to ``seed_dir/results.json`` and ``.md``, with the rows of other
    pretrainings already there (``merge``; ``all`` replaces the file, its results being one
    whole run); return the run written. The file is read and written under a lock."""
    with _locked(seed_dir):
        if merge:
            old = _on_file(seed_dir, cfg, names, {r.pretraining for r in run[0]})
            if old is not None:
                run = merge_runs(old, run)
        write_results(seed_dir, cfg, [run], names, [seed])
    return run
