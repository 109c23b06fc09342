"""Seeds for the tasks' samplers: a ``torch.Generator``, an int seed or ``None``."""

from __future__ import annotations

import numbers
from typing import overload

import torch

__all__: list[str] = []


@overload
def _generator(generator: torch.Generator | int, device: torch.device | None = None,
               name: str = "generator") -> torch.Generator: ...
@overload
def _generator(generator: None, device: torch.device | None = None,
               name: str = "generator") -> None: ...
@overload
def _generator(generator: torch.Generator | int | None, device: torch.device | None = None,
               name: str = "generator") -> torch.Generator | None: ...
def _generator(generator: torch.Generator | int | None, device: torch.device | None = None,
               name: str = "generator") -> torch.Generator | None:
    """A generator from a generator, an int seed (on ``device``, the CPU by default) or
    ``None``; errors start with ``name``."""
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        seed = int(generator)  # numpy ints count
        if not -(2**63) <= seed < 2**64:  # torch's range: a C long long, or its unsigned twin
            raise ValueError(
                f"{name}: an int seed must be in [-2**63, 2**64), got {seed}"
            )
        return torch.Generator(device=device or "cpu").manual_seed(seed)
    raise TypeError(
        f"{name} must be a torch.Generator, an int seed or None, got {type(generator).__name__}"
    )
