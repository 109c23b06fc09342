r"""One-call mutual-information estimation for two arrays: :func:`estimate_mi`.

A user with paired samples ``x (n, dx)``, ``y (n, dy)`` wants one number with an error bar.
:func:`estimate_mi` does what a careful practitioner would do by hand, with K-fold
cross-fitting so that every sample serves once as held-out data:

0. replace every column by the normal scores of its ranks (``margins="ranks"``): an
   increasing map of each variable leaves the MI unchanged and removes heavy tails, which
   would otherwise dominate the log-partition term (label columns declared with
   ``discrete_x``/``discrete_y`` are one-hot encoded instead). Ranks are taken on the values
   as given, and everything up to here runs in the input's precision and float64, so large
   integers such as timestamps lose nothing;
1. split the samples at random into ``folds`` parts (3 by default); for each fold ``k``,
   that part is the **test** part, and the rest is split into a **validation** part
   (``val_fraction`` of it, cut from the part that fold ``k + 1`` tests on, so that no two
   folds validate on the same samples) and a **training** part;
2. standardise both variables with the mean and scale of the fold's training and validation
   samples (float64), then cast to the compute dtype (float32 by default);
3. build the critic (by default the Gaussian form of
   :class:`~mitools.critics.QuadraticCritic` plus a joint residual
   :math:`v^\top \mathrm{relu}(g(x) + h(y))` with DV, MINE and NWJ, or a separable one
   :math:`g(x)^\top h(y)` with the other bounds, started at the closed-form Gaussian fit of
   the training part with the residual at zero) and train it with AdamW on minibatches of the
   training part, maximising the chosen bound. With DV (default), MINE or NWJ and the default
   critic, each step scores the ``batch_size`` positive pairs and ``negatives`` shifted
   partners of each, rather than all pairs of the batch;
4. every ``eval_every`` steps (and before the first), evaluate the bound on the whole
   validation part (all :math:`n_{val}(n_{val} - 1)` negative pairs) with an exponential
   moving average of the critic's weights (``ema``), keep the best, and stop when it has not
   improved for ``patience`` evaluations; the best trained critic replaces the initial one
   only when its validation bound is higher by more than two standard errors of the
   difference (a paired jackknife over the validation samples). With the Gaussian start,
   the first fold **screens** the others (``screen=True``): when its best trained critic
   beats the start on that fold's test part by at most two such standard errors, the other
   folds keep the start without training; by more, training has been shown to help on
   samples the other folds train and validate on, and they replace the start on any
   validation gain where the start's validation bound is at most 2 nats. The same
   comparison is read from step 100 on: no gain at all, or at most 3 standard errors
   where validation has stopped improving, ends the first fold's training there, and the
   other folds keep the start (``FoldResult.stopped_at_check``);
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
that optimism). Both are always in the result. The estimate is the mean over folds. Its
standard error is a delete-a-group jackknife over the samples (20 random groups; leaving a
group out removes it from every fold's evaluations at once, with the critics held fixed,
and with them every choice that produced them: the step each fold kept, the screen's).
(The spread of the fold values would understate the error: the folds share the luck of the
whole data set.) Neither value is ever the maximum over evaluations, which biases upwards.

**What the interval claims.** The jackknife measures sampling noise; it cannot see a critic
family that misses part of the dependence, which gives a confidently low number. So the
default interval is one-sided (``sided="lower"``): ``(low, inf)`` with ``low = value -
t·stderr``, a lower confidence bound for the critic family's best bound and so for the MI.
``sided="two-sided"`` adds the upper end, valid only where the family reaches the MI.
:class:`Diagnostics` (``result.diagnostics``, also raised as a warning) flags the signs of
a family that falls short: folds stopped at ``max_steps`` while improving, a large gap
between in-sample and held-out bounds, a large share learned beyond the Gaussian fit.

**Using the result later.** :meth:`MIEstimate.pointwise` (:func:`pointwise_mi`) scores new
pairs with the fitted critics; :meth:`MIEstimate.save` and :meth:`MIEstimate.load` write and
read it in a format of tensors and plain values (``torch.load(weights_only=True)``);
:meth:`MIEstimate.plot_history` draws the training curves (matplotlib).

Design notes (measured on the d = 20 correlated Gaussian, n = 5,000, and on the public
"Beyond Normal" benchmark; see ``docs/benchmarks.rst``):

* The default bound is **DV**: held out, it has no :math:`\log K` ceiling (InfoNCE is capped at
  :math:`\log n_{test}`), and training with the same objective that is reported keeps the
  critic calibrated for it.
* The critic starts at the **Gaussian fit** (``init="gaussian"``). From random starts,
  minibatch DV training on 10-nat data stalls near 9 nats; from the Gaussian fit it starts at
  the answer for Gaussian data, and that start is kept unless training beats it on the
  validation part by more than two standard errors of the difference: at 10 nats the
  validation bound is noisy enough that a smaller margin let folds keep critics several nats
  worse held out.
* The residual is **joint**, not separable: a separable :math:`g(x)^\top h(y)` needs a rank
  that grows as the dependence sharpens (the band :math:`|y - x| < 0.1` of bmi's
  additive-noise task: 1.53 nats of 1.71), where :math:`v^\top\mathrm{relu}(g(x) + h(y))`
  draws the band with a few units (1.67). Its pair layer has **64 units** (``embed_dim``):
  with 32, bmi's 3 × 3 spiral was 7.4-11.2 % low over three seeds; with 64, 5.4-9.7 %, at
  the same median time over the benchmark.
* **The schedule** (``negatives=8``, ``val_fraction=0.1``, ``patience=2``,
  ``max_steps=3000``) was chosen on the benchmark's 120 cases against the earlier 16, 0.2, 3
  and 2,000: the smallest error among the benchmark's estimators on 87 cases instead of 80,
  a lower total error, in half the median time. Most of the time went on folds where training
  never beats the Gaussian start (every Gaussian-copula task), and a third evaluation without
  improvement rarely found one; a tenth of the samples validates early stopping well enough,
  and the critics generalise better from the extra training samples (the spirals above all);
  8 shifted negatives per sample estimate the partition term of a step as well as 16 at half
  the cost, and the steps saved let the sharpest task (additive noise) train up to 3,000.

* **Screening** (``screen=True``) came from the same benchmark: before it, on the cases
  whose dependence is Gaussian after the margins transform, and on the 25 × 25 spirals, a
  trained critic replaced the start in 1 of 198 folds, so training there only confirmed the
  start. The first fold's best trained critic is compared with the start on that fold's
  test part: five times its validation part, and samples the other folds train and validate
  on but never test on. On a mildly non-Gaussian sample (n = 1,000) whose first fold gained
  0.84 standard errors on validation, a screen read there left untrained two folds whose
  critics replace the start; on the test part the gain is 5. At most 2 (the replacement
  margin) leaves the other folds untrained. No fold's held-out bound is computed on samples
  the decision read (the first fold's critic was, as every fold's is, trained on the other
  folds' test parts; the in-sample half of a corrected value is, by design, on training
  samples); a wrong screen gives up what the other folds' training would have added, and
  the one-sided lower bound still holds.
* **Held-out evidence sets the margin.** The two-standard-error margin guards against
  critics that beat the start on a small validation part by chance (at 10 nats on Gaussian
  data, several nats worse held out); it also keeps the start where training helps but the
  validation part is too small to show it. On y = x + 0.35 (x² - 1) + 0.7 ε at n = 1,000
  (validation parts of 67 samples) folds whose trained critic was 3 to 8 standard errors
  better held out kept the start in 8 of 16 samples; with that margin alone (``screen=False``)
  the estimate is 0.080 nats low on average (RMSE 0.096; MI 0.555). The screen's held-out
  gain above two standard errors is that evidence, on 5 times the samples: after it, the
  other folds take their trained critic on any validation gain. There the mean error is
  -0.036 nats (RMSE 0.056; at n = 300, -0.085 against -0.141;
  ``benchmarks/mild_non_gaussian.py``). Only up to a
  start's validation bound of 2 nats: a critic is chosen as the best of several noisy
  validation values, which beat the start's by chance, the more so at high MI. With the
  screen's gain forced on the d = 20 Gaussian, folds taking any validation gain lost at
  most 0.014 nats held out at 1 nat, 0.08-0.14 at 4 and up to 3.6 at 10. The first fold
  keeps its own validation rule: evidence about it from the other folds would exist only
  after its own test part had shown a gain, and its choice would then select on the
  samples it reports. No fold's choice reads its own test part directly.

References:
    Poole et al. *On Variational Bounds of Mutual Information*, ICML 2019.
    Song & Ermon. *Understanding the Limitations of Variational Mutual Information
    Estimators*, ICLR 2020. McAllester & Stratos. *Formal Limitations on the Measurement of
    Mutual Information*, AISTATS 2020. Chernozhukov et al. *Double/debiased machine learning
    for treatment and structural parameters*, Econometrics Journal 2018 (cross-fitting).
    Czyż et al. *Beyond Normal: On the Evaluation of Mutual Information Estimators*, NeurIPS
    2023.
"""

from mitools.estimate.api import estimate_mi
from mitools.estimate.data import MarginTransform, Standardization, gaussianize_margins
from mitools.estimate.diagnostics import Diagnostics
from mitools.estimate.folds import Split, fold_indices
from mitools.estimate.persist import load_estimate, save_estimate
from mitools.estimate.plot import plot_history
from mitools.estimate.pointwise import pointwise_mi
from mitools.estimate.result import FoldResult, HistoryPoint, MIEstimate

__all__ = [
    "Diagnostics",
    "FoldResult",
    "HistoryPoint",
    "MIEstimate",
    "MarginTransform",
    "Split",
    "Standardization",
    "estimate_mi",
    "fold_indices",
    "gaussianize_margins",
    "load_estimate",
    "plot_history",
    "pointwise_mi",
    "save_estimate",
]
