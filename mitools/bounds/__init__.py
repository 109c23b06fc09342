r"""Variational bounds on mutual information, as pure functions of a score tensor.

The discriminative lower bounds take critic scores. The generative bounds and the upper
bounds (:func:`ba`, :func:`doe`, :func:`club`, :func:`vclub`, :func:`l1out`) take log
conditional densities :math:`\log q(y_j \mid x_i)` as scores (see :mod:`mitools.conditionals`);
:func:`flo` takes a critic and a per-pair term. For an *upper* bound the gradient is the signal
for a representation to **minimise**, while :math:`q` is fitted by maximising
:func:`log_likelihood` with its own optimiser (see :doc:`/guide/upper_bounds`); :func:`doe`'s
gradient is that of the two log-likelihoods it is made of.

Conventions shared by every bound:

* **The value is the estimate in nats** (:func:`jsd` excepted: it is the Jensen-Shannon
  objective of Deep InfoMax, not nats of MI) and **its gradient is the training signal to
  maximise**. :func:`js` and :func:`smile` use the stop-gradient construction of
  Poole et al. (2019) and Song & Ermon (2020): their value is an MI estimate while their
  gradient is that of the Jensen-Shannon objective.
* All reductions happen in log space (``logsumexp``); float16/bfloat16 inputs are upcast to
  float32 (and the result is float32), float32 and float64 are preserved. The upcast cannot
  undo an overflow that happened before the call: a float16 score above 65504 is already
  ``inf`` and is refused as below (the critics of :mod:`mitools.critics` return float32
  scores from half-precision features; keep scores of that size in float32).
* **Precision.** The per-row log-sum-exps (the statistics every execution path of the local
  losses shares) are held at the scale of the scores: with scores of magnitude :math:`R` a
  bound's error is about :math:`R` times the dtype's rounding (:math:`2^{-24}` in float32)
  times the sum of its gradient's magnitudes, what rounding the scores themselves causes. In
  float32, rows of equal scores :math:`10^4` give InfoNCE 0.00034 nats for 0; use float64
  scores where such scores must be read to more digits.
* Scores must be finite where they count: an ``inf`` or ``nan`` in an unmasked entry raises a
  ``ValueError`` naming ``scores`` and the first bad index (masked entries may hold anything).
  :class:`check_finite` switches the check off for hot loops.
* **Errors**, the same for every bound, each message starting with the bound's name: a
  ``TypeError`` for scores that are not a floating-point tensor or a mask that is not bool;
  a ``ValueError`` for scores of fewer than 2 dims or 2 columns, an ``offset`` that is not
  an int >= 0 or with ``N + offset > M``, a mask that does not broadcast to ``(..., N)`` /
  ``(..., M)``, no valid row, or a valid row whose positive column is masked.
* Optional boolean masks mark valid (unpadded) samples: ``row_mask (..., N)`` says which rows
  are anchors, ``col_mask (..., M)`` which columns may serve as positives or negatives. A
  masked-out sample is never a positive nor a negative. The positive column of every valid
  row must itself be valid.

Notation used in the formulas: :math:`S_{ij}` are the scores, :math:`K` the number of valid
rows, :math:`\mathcal{O}` the set of off-positive pairs :math:`(i, j)` with :math:`j \ne i +
\text{offset}`, and

.. math::

    \operatorname{lme}_{\mathcal{O}}(S) = \log \frac{1}{|\mathcal{O}|}
    \sum_{(i, j) \in \mathcal{O}} e^{S_{ij}} .

References:
    Poole, Ozair, van den Oord, Alemi, Tucker. *On Variational Bounds of Mutual Information*.
    ICML 2019. Song & Ermon. *Understanding the Limitations of Variational Mutual Information
    Estimators*. ICLR 2020. Belghazi et al. *Mutual Information Neural Estimation*. ICML 2018.
    Hjelm et al. *Learning deep representations by mutual information estimation and
    maximization* (Deep InfoMax). ICLR 2019.
"""

from mitools.bounds._scores import (  # noqa: F401  (shared helpers, used by the estimators)
    _check_baseline,
    _lme_negatives,
    _mean_negatives,
    _prepare,
    _Prepared,
    _row_mean,
    check_finite,
)
from mitools.bounds.generative import ba, doe, flo, log_likelihood
from mitools.bounds.interpolated import alpha_infonce
from mitools.bounds.jensen_shannon import js, jsd, smile, smile_rowwise
from mitools.bounds.lower import dv, dv_terms, infonce, nwj, tuba
from mitools.bounds.rowwise import (
    RowStatistic,
    RowStatistics,
    RowwiseBound,
    Transform,
    row_statistics,
    rows_logsumexp,
    rows_mean,
    rows_sum,
    rowwise_bound,
)
from mitools.bounds.upper import club, l1out, vclub

__all__ = [
    "RowStatistic",
    "RowStatistics",
    "RowwiseBound",
    "Transform",
    "alpha_infonce",
    "ba",
    "check_finite",
    "club",
    "doe",
    "dv",
    "dv_terms",
    "flo",
    "infonce",
    "js",
    "jsd",
    "l1out",
    "log_likelihood",
    "nwj",
    "row_statistics",
    "rows_logsumexp",
    "rows_mean",
    "rows_sum",
    "rowwise_bound",
    "smile",
    "smile_rowwise",
    "tuba",
    "vclub",
]
