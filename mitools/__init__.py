"""mitools: mutual-information lower bounds, critics and local-MI losses for PyTorch.

The pieces meet at one intermediate, the score tensor ``scores[..., i, j] = f(x_i, y_j)``:

* :mod:`mitools.critics` compute it from features,
* :mod:`mitools.bounds` turn it into an MI estimate (pure functions): lower bounds, and the
  generative and upper bounds on the log-densities of :mod:`mitools.conditionals`,
* :mod:`mitools.estimators` wrap the bounds as modules, with state where a bound needs it,
* :mod:`mitools.samplers` choose which positions of two feature grids are compared,
  :mod:`mitools.negatives` which samples are negatives, :mod:`mitools.reductions` how the
  per-pair estimates become one objective,
* :mod:`mitools.local` composes them into :class:`~mitools.local.LocalMILoss` on grids of any
  shape (and the pooled :class:`~mitools.local.GlobalMILoss`),
* :mod:`mitools.distributed` gathers negatives across processes,
* :mod:`mitools.tasks` provide data of known mutual information,
* :func:`mitools.estimate_mi` estimates the MI of two arrays in one call,
* :mod:`mitools.classical` holds the classical estimators users compare against (KSG, the
  mixed discrete-continuous estimator, Gaussian MI; imported on first use, with scipy),
* :func:`mitools.training.train_critic` is the training loop of the examples and benchmarks,
* ``mitools estimate`` (or ``python -m mitools``) is the command line (:mod:`mitools.cli`).

Example:
    >>> import torch, mitools
    >>> task = mitools.CorrelatedGaussian(dim=20, mi=2.0)
    >>> x, y = task.sample(128, generator=torch.Generator().manual_seed(0))
    >>> estimate = mitools.bounds.infonce(task.optimal_critic(x, y))
    >>> 1.0 < float(estimate) < 3.0
    True
"""

from mitools import (
    bounds,
    conditionals,
    critics,
    distributed,
    estimate,
    estimators,
    local,
    negatives,
    reductions,
    samplers,
    tasks,
    training,
)
from mitools.critics import (
    AttentionPoolCritic,
    BilinearCritic,
    ConcatCritic,
    MaxPoolCritic,
    QuadraticCritic,
    SeparableCritic,
    get_critic,
)
from mitools.estimate import MIEstimate, estimate_mi
from mitools.estimators import (
    DV,
    JS,
    JSD,
    MINE,
    NWJ,
    SMILE,
    TUBA,
    AlphaInfoNCE,
    Estimator,
    InfoNCE,
    get_estimator,
)
from mitools.local import GlobalMILoss, LocalMILoss, LocalMIResult
from mitools.samplers import (
    AllPairs,
    LocalToGlobal,
    Matched,
    NegativeQueue,
    Neighbourhood,
    RandomPairs,
)
from mitools.tasks import CorrelatedGaussian, Staircase

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # mitools.classical needs scipy: import it on first use, so that `import mitools` does not
    if name == "classical":
        import importlib

        return importlib.import_module("mitools.classical")
    raise AttributeError(f"module 'mitools' has no attribute {name!r}")


__all__ = [
    "DV",
    "JS",
    "JSD",
    "MINE",
    "NWJ",
    "SMILE",
    "TUBA",
    "AllPairs",
    "AlphaInfoNCE",
    "AttentionPoolCritic",
    "BilinearCritic",
    "ConcatCritic",
    "CorrelatedGaussian",
    "Estimator",
    "GlobalMILoss",
    "InfoNCE",
    "LocalMILoss",
    "LocalMIResult",
    "LocalToGlobal",
    "MIEstimate",
    "Matched",
    "MaxPoolCritic",
    "NegativeQueue",
    "Neighbourhood",
    "QuadraticCritic",
    "RandomPairs",
    "SeparableCritic",
    "Staircase",
    "__version__",
    "bounds",
    "classical",
    "conditionals",
    "critics",
    "distributed",
    "estimate",
    "estimate_mi",
    "estimators",
    "get_critic",
    "get_estimator",
    "local",
    "negatives",
    "reductions",
    "samplers",
    "tasks",
    "training",
]
