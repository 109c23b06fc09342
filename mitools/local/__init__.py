r"""Local mutual information between feature grids of any shape, and its global baseline.

:class:`LocalMILoss` estimates MI between *positions* of two feature grids: every cell of an
image feature map against a sentence vector (Liao et al. 2021), every cell against a global
image vector (Deep InfoMax, Hjelm et al. 2019), cells against tokens, matched positions of two
views... The grids are named by einops patterns (``"b c h w"``, ``"b l c"``,
``"b c t h w"``, ``"b c"`` for one vector per sample) and flattened to ``x (B, P, Cx)`` and
``y (B, Q, Cy)``. A sampler from :mod:`mitools.samplers` chooses the position pairs
:math:`(p, q)`; for each pair the critic scores every anchor :math:`x_i[p]` against every
column :math:`y_j[q]` of the batch (:mod:`mitools.negatives`), and a bound from
:mod:`mitools.bounds` turns that ``(B, B)`` score matrix into an estimate :math:`\hat I_{pq}` in
nats. A reduction over the pairs (:mod:`mitools.reductions`) gives the objective:

.. math::

    \text{mean: } \frac{1}{K}\sum_{(p,q)} \hat I_{pq}, \quad
    \text{sum: } \sum_{(p,q)} \hat I_{pq}, \quad
    \text{max: } \max_{(p,q)} \hat I_{pq}, \quad
    \text{logsumexp: } \log \sum_{(p,q)} e^{\hat I_{pq}},

and ``loss = -objective``. ``"mean"`` is Deep InfoMax's local objective; ``"max"`` is the
objective of Liao et al.: only the cell with the highest estimated MI about the sentence is
trained. The per-pair estimates come back unpacked to the grid, so one can draw which cells
carry information about the sentence.

The data flow, one module each: :mod:`~mitools.local.grid` (patterns, packing, masks, pooling)
-> :mod:`~mitools.samplers` (position pairs) -> :mod:`~mitools.local.problems` (the pairs' masks)
-> :mod:`~mitools.local.scoring` (the critic's capabilities) -> an execution path,
:mod:`~mitools.local.dense`, :mod:`~mitools.local.blocked` or :mod:`~mitools.local.attention`,
chosen by :mod:`~mitools.local.backends` (kernels from :mod:`~mitools.local.kernels`) -> the
estimator's finisher -> the reduction (:mod:`~mitools.local.loss` puts them in order).

Memory: the full ``(K, B, B)`` tensor of scores is never required. The dense path scores
``chunk_size`` pairs at a time and recomputes them in the backward pass. With a separable
critic (one that factorises its scores, :meth:`~mitools.critics.Critic.factorise`) and a bound
with per-row statistics (:class:`~mitools.bounds.RowwiseBound`), the blocked path keeps only
those statistics, column block by column block, and the attention path gets them from fused
attention kernels in memory linear in the batch. All paths give the same values and
gradients (to rounding); ``backend=`` forces one.

References:
    Liao, Moyer, Cha, Quigley, Berkowitz, Horng, Golland, Wells. *Multimodal Representation
    Learning via Maximization of Local Mutual Information*. MICCAI 2021.
    Hjelm, Fedorov, Lavoie-Marchildon, Grewal, Bachman, Trischler, Bengio. *Learning deep
    representations by mutual information estimation and maximization*. ICLR 2019.
"""

from mitools import reductions as _reductions
from mitools.local import backends as _backends
from mitools.local.engine import LocalMIResult, check_bound_and_critic
from mitools.local.loss import GlobalMILoss, LocalMILoss

# assigned with a docstring (not imported) so that the API reference documents them here
BACKENDS = _backends.BACKENDS
"""The ``backend=`` values :class:`LocalMILoss` and :class:`GlobalMILoss` accept
(``"auto"`` chooses)."""

REDUCTIONS = _reductions.REDUCTIONS
"""The reductions :class:`LocalMILoss` accepts by name (:data:`mitools.reductions.REDUCTIONS`)."""

__all__ = [
    "BACKENDS",
    "REDUCTIONS",
    "GlobalMILoss",
    "LocalMILoss",
    "LocalMIResult",
    "check_bound_and_critic",
]
