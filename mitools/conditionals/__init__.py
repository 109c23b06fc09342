r"""Conditional density models :math:`q(y \mid x)` for the generative and upper bounds.

A conditional density scores every pair of a batch: for ``x (..., N, Dx)`` and
``y (..., M, Dy)``, ``q.log_prob(y, x)`` has shape ``(..., N, M)`` with entry ``[i, j]`` equal
to :math:`\log q(y_j \mid x_i)` in nats. That is a score tensor: the bounds of
:mod:`mitools.bounds` that need a normalised conditional density (:func:`~mitools.bounds.ba`,
:func:`~mitools.bounds.doe`, :func:`~mitools.bounds.club`, :func:`~mitools.bounds.vclub`,
:func:`~mitools.bounds.l1out`) take it as they take a critic's scores.

* :class:`DiagonalGaussian`: mean and diagonal scale from an MLP (CLUB's reference model);
* :class:`FullGaussian`: mean and the Cholesky factor of the precision from an MLP;
* :class:`MixtureOfGaussians`: a mixture density network of diagonal Gaussians;
* :class:`GaussianMarginal`: a Gaussian model of :math:`p(y)` alone, for
  :func:`~mitools.bounds.doe`.

Each model also gives the matched-pair log-density ``log_prob_pairs(y, x)`` ``(..., N)`` at
linear cost, ``sample(x)``, and ``learning_loss(y, x)``, the negative log-likelihood that fits
:math:`q` to :math:`p(y \mid x)` (see :doc:`/guide/upper_bounds` for the two-player training of
an upper bound). Any ``nn.Module`` with the same ``log_prob(y, x) -> (..., N, M)`` works with
the bounds; subclass :class:`ConditionalDensity` to get the input checks.

No conditional normalizing flow is included: scoring every pair with a flow costs ``N * M``
flow passes (a flow cannot share work across the pairs of a row the way a Gaussian's
matmul expansion does), and the well-kept flow libraries (zuko, nflows) would be a new
dependency for that. A flow from such a library can be wrapped by subclassing
:class:`ConditionalDensity` and evaluating it on the broadcast pairs.

Example:
    >>> import torch
    >>> from mitools import bounds
    >>> from mitools.conditionals import DiagonalGaussian
    >>> q = DiagonalGaussian(4, 4, hidden=(32,))
    >>> x, y = torch.randn(16, 4), torch.randn(16, 4)
    >>> bounds.club(q.log_prob(y, x)).shape
    torch.Size([])
"""

from mitools.conditionals.base import ConditionalDensity
from mitools.conditionals.gaussian import DiagonalGaussian, FullGaussian, GaussianMarginal
from mitools.conditionals.mixture import MixtureOfGaussians

__all__ = [
    "ConditionalDensity",
    "DiagonalGaussian",
    "FullGaussian",
    "GaussianMarginal",
    "MixtureOfGaussians",
]
