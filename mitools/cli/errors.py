"""The command line's two kinds of problem, and the words its messages share.

Every problem is a :class:`DataError` (exit code 1) or a :class:`UsageError` (exit code 2) whose
message names the file, the column and the option concerned.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["DataError", "UsageError", "count", "name_list"]


class DataError(Exception):
    """A problem with the user's data or files (exit code 1)."""


class UsageError(Exception):
    """Options that contradict each other or the files (exit code 2, like argparse's own)."""


def count(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1.

    Example:
        >>> count(1, "column"), count(3, "column")
        ('1 column', '3 columns')
    """
    return f"{n} {noun}{'' if n == 1 else 's'}"


def name_list(names: Sequence[str], limit: int = 12) -> str:
    """``names`` joined by commas, the first ``limit`` of them and how many in all."""
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
