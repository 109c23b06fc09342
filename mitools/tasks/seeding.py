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


class _GeneratorState:
    """A :class:`torch.Generator` as pickled by :class:`_PicklesGenerators`: its device and
    its state as plain bytes."""

    def __init__(self, generator: torch.Generator):
        self.device = str(generator.device)
        self.state = bytes(generator.get_state().numpy().tobytes())

    def restore(self) -> torch.Generator:
        generator = torch.Generator(device=self.device)
        generator.set_state(torch.frombuffer(bytearray(self.state), dtype=torch.uint8))
        return generator


class _PicklesGenerators:
    """Pickle the :class:`torch.Generator` attributes as bytes (same draws after unpickling).

    torch pickles a generator's state as a tensor, which ``torch.multiprocessing`` shares
    through a file descriptor; the spawned process then failed to rebuild it ("unable to
    resize file <filename not specified> to the right size", pytorch issue 146828), so an
    object holding a seeded generator could not reach a DataLoader worker started with
    ``spawn`` (nor ``torch.multiprocessing.spawn``'s ``args``).
    """

    def __getstate__(self) -> dict:
        getter = getattr(super(), "__getstate__", None)
        state = dict(getter() if getter is not None else self.__dict__)
        return {k: _GeneratorState(v) if isinstance(v, torch.Generator) else v
                for k, v in state.items()}  # fmt: skip

    def __setstate__(self, state: dict) -> None:
        state = {k: v.restore() if isinstance(v, _GeneratorState) else v
                 for k, v in state.items()}  # fmt: skip
        setter = getattr(super(), "__setstate__", None)
        if setter is not None:
            setter(state)
        else:
            self.__dict__.update(state)
