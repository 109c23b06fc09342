"""The staircase schedule of Poole et al. (2019): MI raised in equal-length steps."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch

from mitools.option_checks import check_int, check_number
from mitools.tasks.gaussian import CorrelatedGaussian

__all__ = ["Staircase"]


@dataclass(frozen=True)
class Staircase:
    """The MI schedule of Poole et al. (2019): MI raised in equal-length steps.

    Args:
        levels: MI of each step, in nats.
        steps_per_level: training steps spent on each level.

    Raises:
        TypeError: ``levels`` not a sequence of numbers.
        ValueError: no level, a level that is not a finite number >= 0, ``steps_per_level``
            not an int >= 1; and from :meth:`level_of`, :meth:`mi_at` and :meth:`task_at`, a
            ``step`` that is not an int in ``[0, total_steps)``.

    Example:
        >>> s = Staircase()
        >>> s.total_steps, s.mi_at(0), s.mi_at(4000), s.mi_at(19999)
        (20000, 2.0, 4.0, 10.0)
        >>> s.task_at(4000, dim=20)
        CorrelatedGaussian(dim=20, mi=4.0)
    """

    levels: Sequence[float] = (2.0, 4.0, 6.0, 8.0, 10.0)
    steps_per_level: int = 4000

    def __post_init__(self) -> None:
        if isinstance(self.levels, (str, bytes)) or not isinstance(self.levels, Iterable):
            raise TypeError(
                "Staircase: levels must be a sequence of MI values in nats, e.g. (2.0, 4.0), "
                f"got {type(self.levels).__name__} {self.levels!r}"
            )
        levels = tuple(check_number("levels", v, 0, strict=False) for v in self.levels)
        object.__setattr__(self, "levels", levels)
        if not self.levels:
            raise ValueError("levels must not be empty")
        object.__setattr__(self, "steps_per_level",
                           check_int("steps_per_level", self.steps_per_level))

    @property
    def total_steps(self) -> int:
        """Number of steps of the whole schedule."""
        return len(self.levels) * self.steps_per_level

    def level_of(self, step: int) -> int:
        """Index of the level that ``step`` (0-based) belongs to."""
        return check_int("step", step, 0, self.total_steps - 1) // self.steps_per_level

    def mi_at(self, step: int) -> float:
        """True MI (nats) at ``step``."""
        return float(self.levels[self.level_of(step)])

    def task_at(
        self, step: int, dim: int = 20, transform: str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> CorrelatedGaussian:
        """The Gaussian task in force at ``step`` (``dim``, ``transform`` and ``dtype`` as
        :class:`~mitools.tasks.CorrelatedGaussian` takes them)."""
        return CorrelatedGaussian(dim, self.mi_at(step), transform=transform, dtype=dtype)

    def __iter__(self) -> Iterator[float]:
        """Iterate over the true MI of every step."""
        for level in self.levels:
            for _ in range(self.steps_per_level):
                yield float(level)
