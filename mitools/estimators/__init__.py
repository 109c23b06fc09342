r"""Bounds as :class:`torch.nn.Module`\ s, with the state some of them need, and lookup by name.

Every estimator maps a score tensor ``(..., N, M)`` to one value per estimation problem,
shape ``(...)``, exactly like the functions of :mod:`mitools.bounds` it is built on. The
stateless ones (:class:`InfoNCE`, :class:`NWJ`, :class:`DV`, :class:`JS`, :class:`JSD`,
:class:`SMILE`) only hold their hyper-parameters; :class:`MINE` keeps a moving average of the
partition function, :class:`TUBA` and :class:`AlphaInfoNCE` may learn their log-baseline.
The generative estimators and upper bounds (:class:`BA`, :class:`DoE`, :class:`CLUB`,
:class:`VCLUB`, :class:`L1Out`) take log conditional densities as scores, and :class:`FLO` a
critic plus a per-pair network; see :class:`GenerativeEstimator` for the traits they
declare and the two-player training of an upper bound.

Each estimator declares what it needs (see :class:`Estimator`): its row-wise form
(``rowwise``: the per-row statistics and finisher of :mod:`mitools.bounds`, so it runs on every
execution path of the local losses), the row-side inputs (``needs_anchors``, a learned
baseline), or per-problem state (``per_problem_state``, MINE's moving averages).

Code that accepts "a bound" takes either a name or an object and calls :func:`get_estimator`:

    >>> from mitools.estimators import get_estimator
    >>> get_estimator("smile", clip=1.0)
    SMILE(clip=1.0)
    >>> sorted(available_estimators())[:3]
    ['alpha_infonce', 'ba', 'club']
"""


from mitools.estimators.base import Estimator, FunctionalEstimator, ProblemIndex
from mitools.estimators.baselines import TUBA, AlphaInfoNCE, LogBaseline
from mitools.estimators.generative import BA, FLO, DoE, GenerativeEstimator
from mitools.estimators.lower import DV, JS, JSD, NWJ, SMILE, InfoNCE
from mitools.estimators.mine import MINE
from mitools.estimators.registry import available_estimators, get_estimator
from mitools.estimators.upper import CLUB, VCLUB, L1Out

__all__ = [
    "BA",
    "CLUB",
    "DV",
    "FLO",
    "JS",
    "JSD",
    "MINE",
    "NWJ",
    "SMILE",
    "TUBA",
    "VCLUB",
    "AlphaInfoNCE",
    "DoE",
    "Estimator",
    "FunctionalEstimator",
    "GenerativeEstimator",
    "InfoNCE",
    "L1Out",
    "LogBaseline",
    "ProblemIndex",
    "available_estimators",
    "get_estimator",
]

