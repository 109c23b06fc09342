r"""Classical estimators of mutual information, to compare against and to use where they fit.

Every function returns the same :class:`~mitools.estimate.MIEstimate` as
:func:`~mitools.estimate.estimate_mi` (value in nats, standard error, interval, ``method``
and ``uncertainty``), and accepts the same inputs (numpy arrays, tensors, lists, pandas
Series and DataFrames; ``(n,)`` or ``(n, d)``; integers are converted to float64 without
losing precision):

* :func:`ksg`: the k-nearest-neighbour estimators of Kraskov, Stögbauer & Grassberger (2004),
  both of them, under the max-norm; for continuous data in low dimension.
* :func:`mixed_ksg`: Gao, Kannan, Oh & Viswanath (2017), for discrete, continuous or mixed
  variables: a class label against features.
* :func:`gaussian_mi`: :math:`-\tfrac12\sum_k \log(1-\rho_k^2)` from the canonical
  correlations; exact for Gaussian data, instant, blind to non-linear dependence.

Intervals come from a delete-a-group jackknife (:mod:`mitools.classical.jackknife` says why
not the bootstrap); they cover the sampling noise of each estimator, not its bias. Which to
use when: :doc:`/guide/classical`.

The nearest-neighbour searches use ``scipy.spatial`` (a k-d tree in low dimension,
blocks of pairwise distances above; :mod:`mitools.classical.neighbours`), in parallel over
``threads``. At n = 5,000 every estimator takes seconds, also in 50 dimensions.

Example:
    >>> import numpy as np
    >>> from mitools import classical
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal(1000)
    >>> y = x + rng.standard_normal(1000)  # I = log(2) / 2 = 0.347 nats
    >>> [round(f(x, y).value, 2) for f in (classical.ksg, classical.gaussian_mi)]
    [0.36, 0.35]
"""

from mitools.classical.gaussian import canonical_correlations, gaussian_mi
from mitools.classical.knn import ksg, mixed_ksg

__all__ = ["canonical_correlations", "gaussian_mi", "ksg", "mixed_ksg"]
