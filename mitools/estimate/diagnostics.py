"""Signs that :func:`~mitools.estimate.estimate_mi`'s critics missed part of the dependence."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mitools.estimate.compare import EqualByContent
from mitools.estimate.knn_check import KNN_CHECK_K, knn_shortfall

if TYPE_CHECKING:
    from mitools.estimate.result import FoldResult

__all__ = ["Diagnostics", "warn_about_estimate"]

#: the held-out/in-sample gap, relative to the estimate, above which a fit is flagged
OPTIMISM_SHARE = 0.1
#: the share of the held-out bound learned beyond the Gaussian start above which it is flagged,
#: when the critics also fit their training pairs better than new ones by half OPTIMISM_SHARE
RESIDUAL_SHARE = 0.5
#: shares are taken of the estimate, or of this many nats where the estimate is smaller
SHARE_FLOOR = 0.05
#: a negative estimate this close to 0 is what independent variables give
NOISE_NATS = 0.05
#: a validation bound this far below the initial critic's during training means the
#: optimisation diverged (lr=1e3 reached -1e21 nats); noise on a small validation part
#: reached 1 nat below at n = 100
DIVERGED_NATS = 10.0


@dataclass(frozen=True, eq=False)  # == by content: EqualByContent
class Diagnostics(EqualByContent):
    r"""Signs of a critic family that misses part of the dependence, or of unfinished training.

    A critic family that cannot express the pointwise MI gives a bound below the MI, and
    the interval cannot show it: the jackknife measures sampling noise with the critics held
    fixed. These numbers show when that is likely; ``flags`` says it in words (empty when
    nothing is flagged), and :func:`~mitools.estimate.estimate_mi` warns with them. A fit is
    flagged when folds ran out of steps while still improving; when ``optimism_share``
    exceeds 0.1 and the gap ``(in_sample - held_out) / 2`` exceeds twice the standard error;
    when ``residual_share`` exceeds 0.5, the trained critics' held-out gain over the start
    exceeds twice the standard error and ``optimism_share`` lies in (0.05, 0.1] (above 0.1
    the previous flag speaks); or when the estimate exceeds the log of the number of
    negative pairs in a fold's test part, :math:`\log(n_{test}(n_{test} - 1))`: no lower
    bound estimated from a sample can certify much more than the log of its size (McAllester
    & Stratos, AISTATS 2020), and there the log-partition rests on pairs the sample barely
    holds, so the value and its interval may be far too high (with ``X = X``, n = 300, the
    DV bound reported hundreds of nats). These are signs, not proof: on the Beyond Normal
    benchmark (``docs/benchmarks.rst``) most flagged estimates were still within 10 % of the
    MI, and one spiral 11 % short went unflagged. The one-sided interval holds either way.
    Last, where KSG (:mod:`mitools.estimate.knn_check`: up to 10 joint dimensions, at most 5 %
    repeated values per column) reads clearly more than the critics on the same samples,
    the critics missed dependence that is there: training that did not learn, or a family
    too narrow.

    Attributes:
        optimism_share: ``(in_sample - held_out) / 2`` relative to the estimate (to
            ``SHARE_FLOOR`` (0.05) nats where the estimate's magnitude is smaller): how much
            better the critics score their own training pairs than new ones. Large values
            mean a family flexible enough to fit noise, trained on few samples for it.
        residual_share: the share of the held-out bound (or of ``SHARE_FLOOR`` (0.05))
            gained by training beyond the Gaussian start (``init="gaussian"``); NaN with
            another start (``init="random"``). Large values mean dependence
            that is not Gaussian after the margins transform, where the trained part of
            the critic, and so the estimate, is least certain.
        start_value: mean over folds of the initial critic's held-out bound, nats.
        unconverged_folds: folds that ran to ``max_steps`` while the validation bound was
            still improving.
        folds: number of folds.
        flags: one sentence per sign found.
        untrained_folds: folds that kept the Gaussian start without training, because the
            first fold's trained critic did not beat it (``screen=True``, the default).
        diverged_folds: folds that kept their initial critic after their validation bound fell
            more than ``DIVERGED_NATS`` below the initial critic's during training, or was
            not finite.
        knn_value: the mixed KSG estimator (KSG estimator 1 where no value repeats) on (a
            subset of) the same samples after the margins' transform, nats
            (:func:`~mitools.estimate.knn_check.knn_cross_check`); NaN where the check does
            not apply (more than 10 joint dimensions, discrete variables or
            more than 5 % repeated values in a column, fewer than 100 samples, an exact
            relation) or was not run.
        knn_stderr: its delete-a-group jackknife standard error, nats.
    """

    optimism_share: float
    residual_share: float
    start_value: float
    unconverged_folds: int
    folds: int
    flags: tuple[str, ...]
    untrained_folds: int = 0
    diverged_folds: int = 0
    knn_value: float = math.nan
    knn_stderr: float = math.nan

    @property
    def likely_misspecified(self) -> bool:
        """Whether any sign was found."""
        return bool(self.flags)


def _diverged(fold: FoldResult) -> float | None:
    """The lowest validation bound of a fold whose training diverged and so kept its
    initial critic, else ``None`` (a spike after training had beaten the start, as NWJ's
    exponential term gives, leaves a trained critic that is kept and is not flagged)."""
    start, during = fold.history[0].val, [h.val for h in fold.history[1:]]
    if not during or not math.isfinite(start) or fold.best_step != 0:
        return None
    worst = min(during, key=lambda v: v if math.isfinite(v) else -math.inf)
    return worst if not math.isfinite(worst) or worst < start - DIVERGED_NATS else None


def diagnose(folds: Sequence[FoldResult], value: float, stderr: float,
             max_steps: int, init: str = "gaussian", exact: bool = False,
             knn: tuple[float, float] = (math.nan, math.nan), repeated: bool = False
             ) -> Diagnostics:
    """The :class:`Diagnostics` of fitted folds (``value``, ``stderr``: the estimate's;
    ``init``: the initial critic, ``"gaussian"`` or ``"random"``; ``exact``: the variables
    are related exactly, the MI is infinite and has been said so, so an estimate above what
    the test parts can certify is not called possibly too high; ``knn``: KSG's value and
    standard error on the same samples, :func:`~mitools.estimate.knn_check.knn_cross_check`,
    flagged where :func:`~mitools.estimate.knn_check.knn_shortfall` says the critics fell
    short of it; ``repeated``: rows repeat in continuous-looking data, which training that
    runs to ``max_steps`` is then likely learning, so raising it is not advised)."""
    k = len(folds)
    held_out = sum(f.held_out for f in folds) / k
    in_sample = sum(f.in_sample for f in folds) / k
    scale = max(abs(value), SHARE_FLOOR)  # shares of smaller estimates mean nothing
    optimism = (in_sample - held_out) / 2
    optimism_share = optimism / scale
    start = sum(f.start_held_out for f in folds) / k
    gaussian = init == "gaussian" and math.isfinite(start)
    residual_share = (held_out - start) / scale if gaussian else math.nan
    unconverged = sum(not f.converged for f in folds)
    n_test = min(len(f.split.test) for f in folds)
    certifiable = math.log(n_test * (n_test - 1))
    flags = []
    if value > certifiable and not exact:
        flags.append(
            f"the estimate, {value:.3g} nats, exceeds log(n_test (n_test - 1)) = "
            f"{certifiable:.1f} nats, the log of the number of negative pairs in a fold's "
            f"{n_test} test samples: a bound estimated from a sample cannot certify much more "
            "than the log of its size, and its log-partition term rests on pairs too rare to "
            "be seen, so the value and its interval may be far too high; collect more "
            "samples, or report that the MI is large"
        )
    diverged = [(i, v) for i, v in enumerate(map(_diverged, folds)) if v is not None]
    if diverged:
        i, worst = diverged[0]
        flags.append(
            f"{len(diverged)} of {k} folds' validation bound fell far below the initial "
            f"critic's during training (fold {i + 1}, result.folds[{i}]: to {worst:.3g} nats, from "
            f"{folds[i].history[0].val:.3g}): the optimisation diverged, and the estimate "
            "rests on what training kept; lower lr"
        )
    if unconverged and repeated:
        # copies of a row in the training and test parts reward memorising them: more steps
        # raise the estimate further above the MI (250 rows, each 4 times, read 2.79 nats of
        # 1.02 with advice to raise max_steps)
        flags.append(
            f"{unconverged} of {k} folds ran to max_steps={max_steps} while the validation bound "
            "was still improving; with rows repeated (see the warning about them), training "
            "that goes on is likely learning the copies a fold's parts share, not the "
            "dependence: remove the repeated rows rather than raise max_steps"
        )
    elif unconverged:
        flags.append(
            f"{unconverged} of {k} folds ran to max_steps={max_steps} while the validation bound "
            f"was still improving; the estimate may be low: raise max_steps (e.g. to "
            f"{2 * max_steps}) or lr"
        )
    # below SHARE_FLOOR the shares are of the floor, not of the estimate, and are said so
    # (independent data read "17 % of the estimate" for an estimate of -0.004)
    share_of = ("of the estimate" if abs(value) >= SHARE_FLOOR else
                f"of {SHARE_FLOOR} nats, the scale taken for an estimate near 0")
    if optimism_share > OPTIMISM_SHARE and optimism > 2 * stderr:
        flags.append(
            f"the critics score their own training pairs {2 * optimism:.3f} nats higher than new "
            f"pairs ({100 * optimism_share:.0f} % {share_of}): the fit is uncertain beyond "
            "the sampling noise that stderr measures"
        )
    if (residual_share > RESIDUAL_SHARE and held_out - start > 2 * stderr
            and OPTIMISM_SHARE / 2 < optimism_share <= OPTIMISM_SHARE):
        flags.append(
            f"training beyond the Gaussian start made {100 * residual_share:.0f} % "
            f"{share_of.replace('estimate', 'held-out bound')} (the Gaussian start scored "
            f"{start:.3f} nats held out, the trained "
            f"critics {held_out:.3f}), and the trained critics score their own training pairs "
            f"{2 * optimism:.3f} nats higher than new ones: the dependence is not Gaussian after "
            "the margins transform, where a critic family can fall short of the MI"
        )
    knn_value, knn_stderr = knn
    if knn_shortfall(knn_value, knn_stderr, value, stderr):
        flags.append(
            f"a k-nearest-neighbour estimate (mixed KSG, k = {KNN_CHECK_K}) on the same samples "
            f"after the margins' transform reads {knn_value:.3f} ± {knn_stderr:.3f} nats, "
            f"{knn_value - value:.3f} above this estimate: the critics missed dependence that "
            "is there (training that did not learn, with too few max_steps or too high an "
            "lr, or a critic family too narrow for it); the lower bound holds, but it is loose"
        )
    return Diagnostics(
        optimism_share=optimism_share,
        residual_share=residual_share,
        start_value=start,
        unconverged_folds=unconverged,
        folds=k,
        flags=tuple(flags),
        untrained_folds=sum(f.steps == 0 for f in folds),
        diverged_folds=len(diverged),
        knn_value=knn_value,
        knn_stderr=knn_stderr,
    )


def warn_about_estimate(value: float, noise: float, flags: tuple[str, ...], margins: str,
                        critic: Any, discrete: bool = False,
                        fold_values: Sequence[float] = (), stacklevel: int = 3) -> None:
    """Warn about signs of misspecification, and about estimates below 0: significantly
    (``value + noise < 0``, ``noise`` a 95 % two-sided half-width), or by more than
    :data:`NOISE_NATS` within a noise so wide that it reaches 0 (``fold_values``, the
    folds' own values, show the spread). ``stacklevel`` goes to :func:`warnings.warn`
    (3, the default: the caller of the function that calls this one)."""
    if flags:
        warnings.warn("estimate_mi: " + "; ".join(flags) + ". See result.diagnostics.",
                      RuntimeWarning, stacklevel=stacklevel)
    if value + noise >= 0 and value > -NOISE_NATS:  # within the noise of 0, and near it
        return
    if value > -NOISE_NATS:
        warnings.warn(
            f"estimate_mi: the estimate {value:.4f} nats lies slightly below zero. That is what "
            "independent variables give: with no dependence to find, a critic fitted to noise "
            "scores new pairs slightly worse than chance. Read it as no detectable "
            "dependence (MI near 0).",
            RuntimeWarning, stacklevel=stacklevel)
        return
    tips = []
    if margins != "ranks":
        tips.append("margins='ranks' (removes heavy tails)")
    if not (isinstance(critic, str) and critic.lower() == "quadratic"):
        tips.append("the default critic='quadratic'")
    tips.append("coarser labels (merging rare classes): a class seen a few times cannot be "
                "learned" if discrete else "discrete_x/discrete_y=True for label columns")
    tips.append("more samples or a smaller critic (e.g. hidden=(32,))")
    if value + noise >= 0:
        # far below 0 and noisy: the folds disagree (margins='standardize' on heavy tails
        # read -3.67 nats, folds -5.69, -6.26 and 0.955, with no word: within the noise of 0)
        spread = (f"; the folds' values range from {min(fold_values):.3f} to "
                  f"{max(fold_values):.3f}" if fold_values else "")
        warnings.warn(
            f"estimate_mi: the estimate {value:.3f} nats lies below zero, further than "
            "independent variables give, and its noise is so wide that it reaches zero (the "
            f"estimate plus its 95 % half-width is {value + noise:.3f}){spread}: MI is never "
            "negative, so some critics "
            "generalise badly to held-out pairs, and the estimate says little. Try "
            f"{'; '.join(tips)}.",
            RuntimeWarning, stacklevel=stacklevel)
        return
    warnings.warn(
        f"estimate_mi: the estimate {value:.3f} nats lies significantly below zero (up to "
        f"{value + noise:.3f} with the noise); MI is never negative, so the critics "
        f"generalise badly to held-out pairs. Try {'; '.join(tips)}.",
        RuntimeWarning, stacklevel=stacklevel)
