r"""Upper bounds on mutual information as modules: CLUB, vCLUB and L1Out.

Built on the functions of :mod:`mitools.bounds.upper` and on
:class:`~mitools.estimators.GenerativeEstimator` (the traits every estimator on log
conditional densities declares, and the two-player training of an upper bound). Each takes
log conditional densities :math:`\log q(y_j \mid x_i)` as scores and is **minimised** by a
representation, while ``q`` is fitted by maximising
:meth:`~mitools.estimators.GenerativeEstimator.learning_objective`, the conditional
log-likelihood. CLUB is row-wise (every execution path of the local losses takes it); vCLUB
and L1Out run on the whole score tensor (the dense path).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mitools import bounds
from mitools.bounds import generative as gen
from mitools.bounds import upper
from mitools.estimators.base import ProblemIndex
from mitools.estimators.generative import GenerativeEstimator
from mitools.tasks.seeding import _generator, _PicklesGenerators

__all__ = ["CLUB", "VCLUB", "L1Out"]


class _UpperBound(GenerativeEstimator):
    """An upper bound on log-densities: minimised by a representation, ``q`` fitted by
    likelihood (the model objective the local losses train it with)."""

    direction = "upper"
    model_objective = gen.LOG_LIKELIHOOD


class _OnScores(_UpperBound):
    """An upper bound with no row-wise form: one function of :mod:`mitools.bounds` on the
    whole score tensor (the dense path of the local losses)."""

    def _bound(self, scores: Tensor, **masks: Any) -> Tensor:
        raise NotImplementedError

    def forward(
        self,
        scores: Tensor,
        *,
        offset: int = 0,
        row_mask: Tensor | None = None,
        col_mask: Tensor | None = None,
        anchors: Tensor | None = None,
        targets: Tensor | None = None,
        problems: ProblemIndex | None = None,
    ) -> Tensor:
        return self._bound(scores, offset=offset, row_mask=row_mask, col_mask=col_mask)


class CLUB(_UpperBound):
    """CLUB upper bound, see :func:`mitools.bounds.club`; minimise it, fit ``q`` by likelihood.

    Row-wise (the mean positive minus the mean over each row's negatives): the dense and
    blocked paths of the local losses take it, the attention path too (a plain sum of a
    separable critic's scores needs no kernel).

    Example:
        >>> import torch
        >>> CLUB()(torch.tensor([[-1.0, -3.0], [-5.0, -1.0]]))
        tensor(3.)
    """

    name = "club"
    rowwise = upper.CLUB


class VCLUB(_PicklesGenerators, _OnScores):
    """Sampled CLUB, see :func:`mitools.bounds.vclub`: one uniformly drawn negative per row.

    Not row-wise: the local losses run it on the dense path, without recomputing blocks in
    the backward pass (``stochastic``: the gradient must be that of the drawn negatives). With
    ``negatives="derangement"`` every row's negatives are its one partner, so the value is
    CLUB's on the deranged pairs, at :math:`O(N)` cost.

    Args:
        generator: optional ``torch.Generator`` for the draws, or an int seed (one CPU
            generator, made here, that every call draws on); ``None``: torch's global RNG.

    Raises:
        TypeError: a ``generator`` that is neither a generator, an int nor ``None``.

    Example:
        >>> import torch
        >>> VCLUB(generator=torch.Generator().manual_seed(0))(torch.zeros(4, 4))
        tensor(0.)
    """

    name = "vclub"
    stochastic = True

    def __init__(self, generator: torch.Generator | int | None = None):
        super().__init__()
        # an int seed was kept and failed at the first call, in torch.multinomial; a string
        # was kept alike. One generator made here: each call draws new negatives.
        self.generator = _generator(generator, name="VCLUB: generator")

    def _bound(self, scores: Tensor, **masks: Any) -> Tensor:
        return bounds.vclub(scores, generator=self.generator, **masks)


class L1Out(_OnScores):
    """Leave-one-out upper bound, see :func:`mitools.bounds.l1out`.

    Column-wise (each positive against every *other anchor*): the dense path only. Each
    problem needs two valid anchors (``min_rows = 2``), and every anchor scored against every
    positive, which one deranged partner per anchor cannot give (``needs_row_partition``).

    Example:
        >>> import torch
        >>> L1Out()(torch.tensor([[-1.0, -3.0], [-3.0, -1.0]]))
        tensor(2.)
    """

    name = "l1out"
    min_rows = 2

    @property
    def needs_row_partition(self) -> bool:
        """``True``: the mixture of a positive's column needs every other anchor's score."""
        return True

    def _bound(self, scores: Tensor, **masks: Any) -> Tensor:
        return bounds.l1out(scores, **masks)
