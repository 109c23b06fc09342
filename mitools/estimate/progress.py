"""Progress of :func:`~mitools.estimate.estimate_mi`: a tqdm bar that shows the estimate so far."""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["Progress", "tqdm_class"]

#: what a caller who asked for a progress bar is told when tqdm is missing
NO_TQDM = "progress=True needs tqdm, which is not installed: pip install tqdm (no progress bar)"


def tqdm_class(stacklevel: int = 2) -> Any:
    """``tqdm.auto.tqdm``, or ``None`` with a warning that names what to install: tqdm is an
    optional dependency, and a bar that was asked for should not silently not appear.
    ``stacklevel`` counts from the caller of this function, as in :func:`warnings.warn`."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        warnings.warn(NO_TQDM, RuntimeWarning, stacklevel=stacklevel + 1)
        return None
    return tqdm


class Progress:
    """A tqdm bar over all folds' steps (nothing when ``enabled`` is False; a warning and
    nothing when tqdm is missing).

    Its postfix names what it shows: ``estimate`` is the mean of the finished folds' values
    (what the result will hold, once every fold is done), ``fold_val`` the current fold's
    bound on its validation split (the training criterion used to choose the critic, not the
    estimate).
    """

    def __init__(self, enabled: bool, folds: int, max_steps: int, bound: str):
        self.bar: Any = None
        self.folds, self.max_steps, self.bound = folds, max_steps, bound
        self.values: list[float] = []
        self.done_steps = 0
        if enabled:
            tqdm = tqdm_class(stacklevel=3)  # points at estimate_mi's caller
            if tqdm is None:
                return
            self.bar = tqdm(total=folds * max_steps, desc=f"estimate_mi[{bound}]", leave=False,
                            unit="step")

    def start_fold(self, k: int) -> None:
        if self.bar is not None:
            self.bar.set_description(f"estimate_mi[{self.bound}] fold {k + 1}/{self.folds}")
        self.done_steps = 0

    def evaluated(self, step: int, val: float) -> None:
        if self.bar is None:
            return
        self.bar.update(step - self.done_steps)
        self.done_steps = step
        postfix = {"fold_val": f"{val:.3f}"}
        if self.values:
            postfix["estimate"] = (f"{sum(self.values) / len(self.values):.3f} "
                                   f"({len(self.values)}/{self.folds} folds)")
        self.bar.set_postfix(postfix)

    def end_fold(self, value: float, steps: int) -> None:
        self.values.append(value)
        if self.bar is not None:  # early stopping: count the steps not run as done
            self.bar.update(self.max_steps - self.done_steps)
            self.bar.set_postfix(estimate=f"{sum(self.values) / len(self.values):.3f} "
                                          f"({len(self.values)}/{self.folds} folds)")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
