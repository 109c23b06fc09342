r"""Distributions of known mutual information, for testing and benchmarking estimators.

Each task has ``sample(n, generator=None) -> (x, y)``, ``dim_x``, ``dim_y`` and
``mutual_information()``, the names of the sampler interface of ``bmi`` (Czyż et al. 2023),
so the same objects serve both libraries' benchmarks. Where the density ratio is known in
closed form, ``optimal_critic(x, y)`` returns the score matrix of the pointwise mutual
information :math:`\log p(y \mid x) - \log p(y)`, and ``conditional_log_prob(x, y)`` the
score matrix of the true conditional density :math:`\log p(y_j \mid x_i)`, the exact model
for the generative and upper bounds (:func:`mitools.bounds.club`, :func:`mitools.bounds.ba`,
...), with ``marginal_log_prob(y)``, ``entropy_y()`` and ``lautum_information()``.

The staircase protocol of Poole et al. (2019), MI raised in steps during training, is
described by :class:`Staircase`.

Layout: :class:`CorrelatedGaussian` (``mitools.tasks.gaussian``), the closed forms
:func:`rho_for_mi` and :func:`gaussian_mutual_information` (``mitools.tasks.closed_forms``) and
:class:`Staircase` (``mitools.tasks.staircase``); every name is importable from
``mitools.tasks``.
"""

from mitools.tasks.closed_forms import gaussian_mutual_information, rho_for_mi
from mitools.tasks.gaussian import CorrelatedGaussian
from mitools.tasks.seeding import _generator  # noqa: F401  (the samplers' seed coercion)
from mitools.tasks.staircase import Staircase

__all__ = ["CorrelatedGaussian", "Staircase", "gaussian_mutual_information", "rho_for_mi"]
