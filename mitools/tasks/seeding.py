"""Seeds for the tasks' samplers: a ``torch.Generator``, an int seed or ``None``."""

from __future__ import annotations

import numbers
from typing import overload

import torch

__all__: list[str] = []


@overload
def _generator(generator: torch.Generator | int) -> torch.Generator: ...
@overload
def _generator(generator: None) -> None: ...
@overload
def _generator(generator: torch.Generator | int | None) -> torch.Generator | None: ...
def _generator(generator: torch.Generator | int | None) -> torch.Generator | None:
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        return torch.Generator().manual_seed(int(generator))  # numpy ints count
    raise TypeError(
        f"generator must be a torch.Generator, an int seed or None, got {type(generator).__name__}"
    )
