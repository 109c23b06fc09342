r"""One-call mutual-information estimation for two arrays: :func:`estimate_mi`.

A user with paired samples ``x (n, dx)``, ``y (n, dy)`` wants one number with an error bar.
:func:`estimate_mi` does what a careful practitioner would do by hand, with K-fold
cross-fitting so that every sample serves once as held-out data:

0. replace every column by the normal scores of its ranks (``margins="ranks"``): an
   increasing map of each variable leaves the MI unchanged and removes heavy tails, which
   would otherwise dominate the log-partition term;
1. split the samples at random into ``folds`` parts; for each fold ``k``, that part is the
   **test** part, and the rest is split into a **validation** part (``val_fraction`` of it)
   and a **training** part;
2. standardise both variables with the mean and scale of the fold's training and validation
   samples;
3. build the critic (by default :class:`~mitools.critics.QuadraticCritic` with an MLP
   residual, started at the closed-form Gaussian fit of the training part) and train it on
   minibatches of the training part, maximising the chosen bound;
4. every ``eval_every`` steps (and before the first), evaluate the bound on the whole
   validation part (all :math:`n_{val}(n_{val} - 1)` negative pairs) and keep the critic with
   the best validation value; stop when it has not improved for ``patience`` evaluations;
5. evaluate that critic's bound on the fold's **test** part, which took no part in training
   or selection (``held_out``), and on as many of its own training samples (``in_sample``).

**The reported value.** A critic fitted to finite data is worse than the best critic of its
family: its held-out bound falls short of the best attainable one, and its in-sample bound
exceeds it, by the same amount to first order (the optimism argument behind AIC and TIC;
the DV bound is the log-likelihood of an exponential family, for which both gaps are
:math:`p / 2n` for :math:`p` effective parameters). With ``report="corrected"`` (default) each
fold reports the midpoint of its held-out and in-sample bounds, an estimate, unbiased to
first order, of the best critic's bound (itself a lower bound of the MI); with
``report="held_out"`` each fold reports its held-out bound, which is conservative (low by
that optimism). Both are always in the result. The estimate is the
mean over folds. Its standard error is a delete-a-group jackknife over the samples (20
random groups; leaving a group out removes it from every fold's evaluations at once, with the
critics held fixed), and the interval uses Student's t with ``groups - 1`` degrees of freedom.
(The spread of the fold values would understate the error: the folds share the luck of the
whole data set.) Neither value is ever the maximum over evaluations, which biases upwards.

Design notes (measured on the d = 20 correlated Gaussian, n = 5,000, see
``docs/benchmarks.rst``):

* The default bound is **DV**: held out, it has no :math:`\log K` ceiling (InfoNCE is capped at
  :math:`\log n_{test}`), and training with the same objective that is reported keeps the
  critic calibrated for it.
* The default critic is **quadratic plus a separable MLP residual**, started at the Gaussian
  fit (``init="gaussian"``; the residual starts at zero). From random starts, minibatch DV
  training on 10-nat data stalls near 9 nats (its gradient is dominated by a few extreme
  negative pairs); from the Gaussian fit it starts at the answer for Gaussian data, and the
  residual learns what the quadratic form cannot (on bmi's Student-t tasks, whose
  dependence has no linear part, the pure quadratic form finds nothing). Early stopping
  keeps the Gaussian start when training does not improve the validation bound.

References:
    Poole et al. *On Variational Bounds of Mutual Information*, ICML 2019.
    Song & Ermon. *Understanding the Limitations of Variational Mutual Information
    Estimators*, ICLR 2020. McAllester & Stratos. *Formal Limitations on the Measurement of
    Mutual Information*, AISTATS 2020. Chernozhukov et al. *Double/debiased machine learning
    for treatment and structural parameters*, Econometrics Journal 2018 (cross-fitting).
"""

from mitools.estimate.api import estimate_mi
from mitools.estimate.data import Standardization, gaussianize_margins
from mitools.estimate.folds import Split, fold_indices
from mitools.estimate.result import FoldResult, HistoryPoint, MIEstimate

__all__ = [
    "FoldResult",
    "HistoryPoint",
    "MIEstimate",
    "Split",
    "Standardization",
    "estimate_mi",
    "fold_indices",
    "gaussianize_margins",
]
