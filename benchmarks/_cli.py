"""argparse types for the benchmark scripts: a bad value is a one-line usage error (exit 2),
not a traceback after the run has started."""

from __future__ import annotations

import argparse


def _number(kind: type, text: str) -> int | float:
    try:
        return kind(text)
    except ValueError:
        name = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {name}") from None


def at_least(minimum: int):
    """An integer of at least ``minimum``."""
    def parse(text: str) -> int:
        value = _number(int, text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        return value
    parse.__name__ = f"integer >= {minimum}"
    return parse


positive_int = at_least(1)


def positive_float(text: str) -> float:
    value = _number(float, text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not positive")
    return value


def number_list(kind: type = float, minimum: float = 0, strict: bool = True):
    """Comma-separated numbers, each above (``strict``) or at least ``minimum``."""
    def parse(text: str) -> list:
        values = [_number(kind, v.strip()) for v in text.split(",") if v.strip()]
        if not values:
            raise argparse.ArgumentTypeError("no values")
        for v in values:
            if v < minimum or (strict and v == minimum):
                raise argparse.ArgumentTypeError(
                    f"{v:g} is {'not above' if strict else 'below'} {minimum:g}")
        return values
    parse.__name__ = f"comma-separated {kind.__name__}s"
    return parse
