"""Cross-fitting splits: every sample is held out by exactly one fold."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from mitools.option_checks import check_int, check_number
from mitools.tasks.seeding import _generator

__all__ = ["Split", "fold_indices"]


class Split(NamedTuple):
    """Indices of the three disjoint parts of the samples used by one fold."""

    train: Tensor
    val: Tensor
    test: Tensor



def fold_indices(
    n: int,
    folds: int = 5,
    val_fraction: float = 0.2,
    generator: torch.Generator | int | None = None,
) -> list[Split]:
    """Cross-fitting splits: each sample is in exactly one fold's test part.

    The samples are permuted and cut into ``folds`` near-equal parts. Fold ``k`` tests on part
    ``k``; the other parts are joined starting from part ``k + 1`` (cyclically), and of them the
    first ``round(val_fraction * rest)`` samples (at least 2, a negative pair, and at most
    ``rest - 2``) validate and the others train. Each fold's validation samples are thus taken
    from the head of a different part, so no two folds validate on the same samples whenever
    a validation part fits in one part (``val_fraction * (folds - 1) <= 1``, up to rounding;
    the default of :func:`~mitools.estimate.estimate_mi`, 0.1 with 3 folds, fits): the folds'
    choices between critics then rest on disjoint evidence.

    Args:
        n: number of samples.
        folds: number of folds, at least 2.
        val_fraction: fraction of each fold's non-test samples used for validation, in (0, 1).
        generator: a CPU ``torch.Generator``, an int seed, or ``None`` (the global RNG).

    Returns:
        One :class:`Split` of ``int64`` index tensors per fold.

    Raises:
        ValueError: bad ``n``, ``folds`` or ``val_fraction``, or a part with fewer than 2
            samples (a bound needs a positive and a negative pair).
        TypeError: a ``generator`` that is neither a ``torch.Generator``, an int nor ``None``.

    Example:
        >>> import torch
        >>> splits = fold_indices(10, folds=5, val_fraction=0.25,
        ...                       generator=torch.Generator().manual_seed(0))
        >>> [(len(s.train), len(s.val), len(s.test)) for s in splits][0]
        (6, 2, 2)
        >>> sorted(torch.cat([s.test for s in splits]).tolist()) == list(range(10))
        True
    """
    n = check_int("n", n, 0)
    folds = check_int("folds", folds, 2)
    val_fraction = check_number("val_fraction", val_fraction, 0, high=1)
    # an int seed, as the tasks' samplers take (torch listed randperm's signatures)
    perm = torch.randperm(n, generator=_generator(generator, name="fold_indices: generator"))
    parts = list(perm.tensor_split(folds))
    splits = []
    for k in range(folds):
        rest = torch.cat([parts[(k + j) % folds] for j in range(1, folds)])
        # at least 2 validation samples (a negative pair) where the rest allows it
        n_val = min(max(2, round(val_fraction * len(rest))), max(0, len(rest) - 2))
        split = Split(rest[n_val:], rest[:n_val], parts[k])
        if min(len(p) for p in split) < 2:
            raise ValueError(
                f"n={n} samples in {folds} folds with val_fraction={val_fraction} gives parts "
                f"of sizes (train={len(split.train)}, val={len(split.val)}, "
                f"test={len(split.test)}); every part needs at least 2 samples"
            )
        splits.append(split)
    return splits


def jackknife_groups(splits: list[Split], n: int, groups: int,
                     generator: torch.Generator | None = None) -> Tensor:
    """``(n,)`` the delete-a-group jackknife group (``0 .. groups - 1``) of each sample, dealt
    out evenly within each fold's test part, so that leaving a group out touches every fold
    at once."""
    group_of = torch.empty(n, dtype=torch.long)
    for split in splits:
        order = torch.randperm(len(split.test), generator=generator)
        group_of[split.test[order]] = torch.arange(len(split.test)) % groups
    return group_of
