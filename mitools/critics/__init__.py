r"""Critics: learnable score functions :math:`f(x, y)` evaluated on every pair of a batch.

A critic maps ``x (..., N, Dx)`` and ``y (..., M, Dy)`` to ``scores (..., N, M)`` with
``scores[..., i, j] = f(x_i, y_j)``; leading dimensions broadcast. Three families
(Poole et al. 2019):

* :class:`SeparableCritic`: :math:`f(x, y) = g(x)^\top h(y) / T`, two encoders and a dot
  product (optionally cosine, with a fixed or learnable temperature). One matmul for all pairs.
* :class:`BilinearCritic`: :math:`f(x, y) = x^\top W y`.
* :class:`QuadraticCritic`: a bilinear interaction plus quadratic and linear marginal terms,
  the exact form of the pointwise MI of any Gaussian pair, with a closed-form initialisation
  (:meth:`QuadraticCritic.init_gaussian_`).
* :class:`ConcatCritic`: :math:`f(x, y) = \mathrm{MLP}([x, y])`, the most expressive and the
  most expensive: ``N * M`` network passes, computed in row chunks.

The separable, bilinear and quadratic critics (and :class:`MarginalPotentials` around a
separable one) declare ``separable = True`` and :meth:`Critic.factorise` their scores as a dot
product of per-side factors; that is what the local losses' fast paths use. Scores are
computed in float32 or higher (:func:`dot_scores`), whatever the inputs' dtype.

Their constructors take no seed: as every ``nn.Module``, they draw their initial weights from
torch's global RNG (``torch.manual_seed`` before construction makes them reproducible, and
advances that RNG). :func:`~mitools.estimate.estimate_mi` builds its critics under its own
``seed`` and leaves the global RNG as it was.

Pooled critics lift any of them to samples that are grids of positions (image cells, tokens),
``x (..., N, P, Dx)``, with one score per (sample, vector) pair:

* :class:`MaxPoolCritic`: the best position's score (Liao, Moyer et al. 2021);
* :class:`AttentionPoolCritic`: the vector attends over the positions, the attended feature is
  scored (GLoRIA, Huang et al. 2021).
"""


from mitools.critics.base import MLP, Critic, dot_scores, mlp, promoted_linear
from mitools.critics.concat import ConcatCritic
from mitools.critics.pooled import AttentionPoolCritic, MaxPoolCritic
from mitools.critics.potentials import MarginalPotentials
from mitools.critics.quadratic import QuadraticCritic
from mitools.critics.registry import available_critics, critic_name, get_critic
from mitools.critics.separable import BilinearCritic, SeparableCritic

__all__ = [
    "MLP",
    "AttentionPoolCritic",
    "BilinearCritic",
    "ConcatCritic",
    "Critic",
    "MarginalPotentials",
    "MaxPoolCritic",
    "QuadraticCritic",
    "SeparableCritic",
    "available_critics",
    "critic_name",
    "dot_scores",
    "get_critic",
    "mlp",
    "promoted_linear",
]

