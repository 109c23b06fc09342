"""Rare classes of a discrete variable, merged before a critic sees them.

A critic cannot learn a class from the one or two samples of it that a fold trains on, and a
class that a fold's training part holds once gets scores fitted to that one sample: the
Gaussian start puts its one training label at about :math:`1/p` of a standard deviation
(:math:`p` the label's frequency), so a held-out sample of the class scores tens of nats
against every pair, and one such sample drags the fold's held-out bound far below zero
(independent labels, 3 classes against 60 in 600 samples, one class held twice: -5.6 nats).

So the classes that hold fewer than :data:`MIN_CLASS_SIZE` samples become one class; if that
class is still too small, they join the most frequent class. Merging classes is a function of
the variable, so by the data-processing inequality the MI can only fall: the estimate stays a
lower bound of the variables' MI. A warning names what was merged.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

__all__: list[str] = []

#: classes of ``discrete_x`` / ``discrete_y`` with fewer samples than this are merged (see
#: the module docstring): a fold trains on about half of a class's samples
MIN_CLASS_SIZE = 5


def merge_rare_classes(counts: Tensor, name: str, stacklevel: int = 4) -> Tensor:
    """The class each category becomes, ``(k,)`` ``int64`` codes in ``[0, g)`` from the
    categories' sample ``counts`` ``(k,)``: ``arange(k)`` when no class is rare, else the
    classes of fewer than :data:`MIN_CLASS_SIZE` samples merged (see the module docstring),
    with a ``RuntimeWarning`` naming the variable ``name``.

    Raises:
        ValueError: only one class remains after the merge.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     merge_rare_classes(torch.tensor([9, 2, 40, 3]), "x")
        tensor([0, 2, 1, 2])
    """
    k = counts.shape[0]
    rare = counts < MIN_CLASS_SIZE
    if not bool(rare.any()):
        return torch.arange(k)
    kept = int((~rare).sum())
    codes = torch.empty(k, dtype=torch.int64)
    codes[~rare] = torch.arange(kept)
    pooled = int(counts[rare].sum())
    if pooled >= MIN_CLASS_SIZE:
        codes[rare] = kept
        where = "into one class"
    else:
        codes[rare] = codes[int(torch.argmax(counts))]
        where = f"into {name}'s most frequent class"
    if int(codes.max()) < 1:
        raise ValueError(
            f"{name} has {k} classes, but all except one hold fewer than {MIN_CLASS_SIZE} "
            f"samples ({pooled} in all): merged, {name} would be constant and its MI 0. "
            "More samples of the rare classes are needed")
    few = int(rare.sum())
    warnings.warn(
        f"estimate_mi: {few} of {name}'s {k} classes "
        f"{'holds' if few == 1 else 'hold'} fewer than {MIN_CLASS_SIZE} samples ({pooled} "
        f"samples in all) and {'is' if few == 1 else 'are'} merged {where}: a "
        "critic cannot learn a class from the one or two samples of it a fold trains on, and "
        "its scores for such a class ruin the held-out bound. The merged labels are a "
        f"function of {name}, so the estimate is of an MI at most that of {name}: still a "
        "lower bound. Merge or drop rare classes yourself to silence this",
        RuntimeWarning, stacklevel=stacklevel)
    return codes
