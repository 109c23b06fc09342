"""Progress of :func:`~mitools.estimate.estimate_mi`: a tqdm bar that shows the estimate so far."""

from __future__ import annotations

import sys
import warnings
from typing import Any

from mitools.option_checks import check_optional_flag

__all__ = ["Progress", "check_progress", "tqdm_class"]

#: what a caller who asked for a progress bar is told when tqdm is missing
NO_TQDM = "progress=True needs tqdm, which is not installed: pip install tqdm (no progress bar)"


def check_progress(progress: Any) -> bool | None:
    """The ``progress`` option: ``True`` or ``False`` (a numpy bool counts) as a Python
    ``bool``, or ``None`` (automatic: a bar when stderr is a terminal and tqdm is installed).

    Raises:
        ValueError: anything else, ``0`` and ``1`` included; the message names ``progress``.
    """
    return check_optional_flag("progress", progress, "a bar when stderr is a terminal")


def tqdm_class(progress: bool | None = True, stacklevel: int = 2) -> Any:
    """The tqdm class to draw a bar with (``tqdm.auto.tqdm``), or ``None`` for no bar.

    ``progress=True`` asks for a bar: without tqdm a warning names what to install (tqdm is
    an optional dependency, and a bar that was asked for should not silently not appear).
    ``None`` shows one only where it is seen, when stderr is a terminal, and only when tqdm
    is installed, without a warning (a script run by hand shows its progress; a log file, a
    pipe or a notebook's captured stream gets no bar lines). ``False``: no bar.
    ``stacklevel`` counts from the caller of this function, as in :func:`warnings.warn`."""
    if progress is None:
        stream = sys.stderr
        if stream is None or not stream.isatty():
            return None
    elif not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if progress:
            warnings.warn(NO_TQDM, RuntimeWarning, stacklevel=stacklevel + 1)
        return None
    return tqdm


class Progress:
    """A tqdm bar over all folds' steps, where :func:`tqdm_class` gives one for ``enabled``
    (``True``, ``False`` or ``None``: automatic).

    Its postfix names what it shows: ``estimate`` is the mean of the finished folds' values
    (what the result will hold, once every fold is done), ``fold_val`` the current fold's
    bound on its validation split (the training criterion used to choose the critic, not the
    estimate).
    """

    def __init__(self, enabled: bool | None, folds: int, max_steps: int, bound: str):
        self.bar: Any = None
        self.folds, self.max_steps, self.bound = folds, max_steps, bound
        self.values: list[float] = []
        self.done_steps = 0
        tqdm = tqdm_class(enabled, stacklevel=3)  # points at estimate_mi's caller
        if tqdm is not None:
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
