r"""k-nearest-neighbour estimators: KSG (both estimators) and the mixed estimator of Gao et al.

For every sample :math:`i`, let :math:`\varepsilon_i` be the max-norm distance from
:math:`(x_i, y_i)` to its :math:`k`-th nearest other sample in the joint space, where the
distance of two pairs is :math:`\max(\|x_i - x_j\|_\infty, \|y_i - y_j\|_\infty)`.

* KSG estimator 1 (Kraskov, Stögbauer & Grassberger, Phys. Rev. E 69, 066138, 2004, eq. 8):
  :math:`\psi(k) + \psi(N) - \langle \psi(n_x + 1) + \psi(n_y + 1) \rangle`, where
  :math:`n_x(i)` counts the other samples with :math:`\|x_j - x_i\| < \varepsilon_i`
  (strictly), and :math:`n_y(i)` likewise.
* KSG estimator 2 (eq. 9): :math:`\psi(k) - 1/k + \psi(N) - \langle \psi(n_x) + \psi(n_y)
  \rangle`, where :math:`n_x(i)` counts the other samples with
  :math:`\|x_j - x_i\| \le \varepsilon_x(i)`, :math:`\varepsilon_x(i)` being the largest
  x-distance from :math:`i` to its :math:`k` nearest neighbours (in the joint space).
* Mixed (Gao, Kannan, Oh & Viswanath, NeurIPS 2017, Algorithm 1, as in the authors'
  released code): where :math:`\varepsilon_i > 0`, :math:`\tilde k_i = k` and
  :math:`n_x(i)` counts the other samples strictly inside :math:`\varepsilon_i`, as in
  estimator 1; where :math:`\varepsilon_i = 0` (at least :math:`k` exact copies of sample
  :math:`i`), :math:`\tilde k_i` is the number of samples equal to sample :math:`i` (itself
  included) and :math:`n_x(i)` counts the other samples whose x equals :math:`x_i`. The
  estimate is :math:`\langle \psi(\tilde k_i) + \log N - \psi(n_x + 1) - \psi(n_y + 1)
  \rangle`. On continuous data it is estimator 1 (up to :math:`\log N - \psi(N) \approx
  1/2N`); ties are data, not noise: against a discrete label the x-count is the size of the
  label's class, and on purely discrete data the estimate tends to the plug-in estimate.
  (Algorithm 1 in the paper writes :math:`\log(n + 1)` and non-strict counts; on a label
  against a feature that separates the classes, that reading is biased by
  :math:`\psi(k) - \log(k + 1)`, -0.46 nats at k = 3, while the authors' code is not.)

Every column is first centred and divided by its standard deviation, so the estimates do not
depend on units; equal values stay equal.

Each estimator has a ceiling, its formula with every count at its minimum
(:func:`~mitools.classical.knn.counts.ceiling`): :math:`\psi(N) - \psi(k)` for estimator 1,
:math:`\psi(N) - \psi(k) - 1/k` for estimator 2, :math:`\log N - \psi(k)` for the mixed one. Where y
is (close to) a function of x, the estimate sits at or near it whatever the true MI (infinite for an
exact function of a continuous x): a warning then says that the estimate is a lower figure
(:data:`~mitools.classical.knn.saturation.CEILING_FRACTION`,
:data:`~mitools.classical.knn.saturation.SATURATED_SHARE`).

Those rules read the estimate, and on a few dozen or hundred samples an exact function can
stay below them (``ksg(x, x**3, k=10)`` gave 0.61 nats on 50 samples, silently). So the data
are read too: where y (or part of it) is, to rounding, an increasing or decreasing function of
x in the sense ranks can tell (after each column is mapped to the normal scores of its ranks,
the largest canonical correlation of x and y is 1 to rounding:
:func:`~mitools.classical.gaussian.monotone_relation`, the rule of
:func:`~mitools.estimate.estimate_mi`'s exact-relation warning), the MI of continuous variables
is infinite, and a warning says that the estimate is a lower figure set by n and k, at any n
and k, in place of the ceiling's. It finds ``y = x**3``, ``exp(x)``, ``-x``, a repeated or
rescaled column, ``y = (x1**3, x2)``; a relation whose noise never reorders the samples (x +
1e-7 noise at n = 5,000) reads the same, as those samples cannot tell it from an exact one.
Like the ceiling rules it is checked on continuous data only (no column with ties, no variable
declared discrete): against a label, or between two equal labels, a function of x has a finite
MI, an entropy, which the mixed estimator resolves (and KSG's ties have their own warning).

Layout: ``kraskov`` (:func:`~mitools.classical.ksg`), ``mixed``
(:func:`~mitools.classical.mixed_ksg`), ``estimate`` (what both share: checks,
standardisation, discrete variables, ties, the jackknife), ``counts`` (each estimator's
per-sample counts and formula, :func:`~mitools.classical.knn.counts.ceiling`) and
``saturation`` (when an estimate is a lower figure set by n and k).
"""

from mitools.classical.inputs import TIED_WARNING
from mitools.classical.knn.counts import ceiling
from mitools.classical.knn.estimate import KDTREE_MAX_DIM
from mitools.classical.knn.kraskov import ksg
from mitools.classical.knn.mixed import mixed_ksg
from mitools.classical.knn.saturation import (
    CEILING_FRACTION,
    CEILING_MIN_SAMPLES,
    SATURATED_MIN_FRACTION,
    SATURATED_SHARE,
)

__all__ = ["CEILING_FRACTION", "CEILING_MIN_SAMPLES", "KDTREE_MAX_DIM",
           "SATURATED_MIN_FRACTION", "SATURATED_SHARE", "TIED_WARNING", "ceiling", "ksg",
           "mixed_ksg"]
