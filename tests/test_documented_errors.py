"""The errors the public docstrings list are the errors raised (fifteenth tryout).

Each case is one line of a ``Raises:`` section written or corrected in the fifteenth tryout's
audit of the public API: the call, the exception type, and a fragment of its message that
names the argument.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mitools.classical import canonical_correlations
from mitools.conditionals import (
    DiagonalGaussian,
    FullGaussian,
    GaussianMarginal,
    MixtureOfGaussians,
)
from mitools.estimate import fold_indices, save_estimate
from mitools.estimators import MINE, SMILE, AlphaInfoNCE, get_estimator
from mitools.negatives import NegativeQueue, random_derangement
from mitools.samplers import AllPairs, LocalToGlobal, Matched, Neighbourhood, RandomPairs
from mitools.tasks import Staircase, rho_for_mi

CASES = {
    # samplers
    "PairSampler grid": (ValueError, "grid_x must be a tuple of positive ints",
                         lambda: AllPairs()((0,), (2,))),
    "PairSampler device": (RuntimeError, "device", lambda: AllPairs()((2,), (2,), device="nope")),
    "LocalToGlobal side": (ValueError, "global_side", lambda: LocalToGlobal("z")),
    "LocalToGlobal grid": (ValueError, "needs one position on the y side",
                           lambda: LocalToGlobal()((2,), (3,))),
    "Matched": (ValueError, "same shape", lambda: Matched()((2, 2), (2, 3))),
    "RandomPairs k": (ValueError, "RandomPairs: k", lambda: RandomPairs(0)),
    "RandomPairs generator": (TypeError, "RandomPairs: generator", lambda: RandomPairs(2, "a")),
    "Neighbourhood radius": (ValueError, "radius", lambda: Neighbourhood(-1)),
    "Neighbourhood grids": (ValueError, "same shape", lambda: Neighbourhood()((2,), (3,))),
    # tasks
    "rho_for_mi mi": (ValueError, "mi must be", lambda: rho_for_mi(-1.0, 2)),
    "rho_for_mi dim": (ValueError, "dim must be", lambda: rho_for_mi(1.0, 0)),
    "Staircase levels type": (TypeError, "levels", lambda: Staircase(levels="ab")),
    "Staircase no level": (ValueError, "levels", lambda: Staircase(levels=())),
    "Staircase level": (ValueError, "levels", lambda: Staircase(levels=(float("inf"),))),
    "Staircase steps": (ValueError, "steps_per_level", lambda: Staircase(steps_per_level=0)),
    "Staircase step": (ValueError, r"step must be an int in \[0, 19999\]",
                       lambda: Staircase().mi_at(20000)),
    "Staircase task_at": (ValueError, "step", lambda: Staircase().task_at(-1)),
    # estimators
    "MINE momentum": (ValueError, "momentum", lambda: MINE(1.0)),
    "SMILE clip": (ValueError, "clip", lambda: SMILE(0.0)),
    "AlphaInfoNCE alpha": (ValueError, "alpha", lambda: AlphaInfoNCE(1.0)),
    "AlphaInfoNCE baseline": (ValueError, "baseline", lambda: AlphaInfoNCE(0.5, "x")),
    "get_estimator type": (TypeError, "bound must be a name", lambda: get_estimator(3)),
    "get_estimator kwargs": (TypeError, "foo", lambda: get_estimator("infonce", foo=1)),
    # negatives
    "random_derangement valid": (TypeError, r"valid must be a \(K, B\) bool tensor",
                                 lambda: random_derangement(torch.ones(1, 3))),
    "random_derangement generator": (TypeError, "generator",
                                     lambda: random_derangement(torch.ones(1, 3).bool(), "a")),
    # conditionals
    "DiagonalGaussian dim": (ValueError, "dim_x must be an int >= 1",
                             lambda: DiagonalGaussian(0, 2)),
    "FullGaussian hidden": (ValueError, "hidden must be an int >= 1",
                            lambda: FullGaussian(2, 2, hidden=(0,))),
    "FullGaussian min_scale": (ValueError, "min_scale", lambda: FullGaussian(2, 2, min_scale=0.0)),
    "MixtureOfGaussians components": (ValueError, "components",
                                      lambda: MixtureOfGaussians(2, 2, components=0)),
    "GaussianMarginal dim": (ValueError, "dim_y", lambda: GaussianMarginal(0)),
    "GaussianMarginal min_scale": (ValueError, "min_scale",
                                   lambda: GaussianMarginal(2, min_scale=float("nan"))),
    "sample generator": (TypeError, "generator", lambda: DiagonalGaussian(2, 2, hidden=(4,)).sample(
        torch.zeros(3, 2), generator="a")),
    # estimate
    "fold_indices generator": (TypeError, "fold_indices: generator must be a torch.Generator",
                               lambda: fold_indices(10, 2, 0.2, generator="a")),
    "fold_indices n": (ValueError, "n must be an int", lambda: fold_indices(10.5, 2)),
    "save_estimate result": (TypeError, "save_estimate: result must be an MIEstimate.*got int",
                             lambda: save_estimate(3, "unused.pt")),
    # classical
    "canonical_correlations text": (TypeError, "real numbers",
                                    lambda: canonical_correlations(np.array([["a"]]), [[1.0]])),
    "canonical_correlations n": (ValueError, "same number of samples",
                                 lambda: canonical_correlations(np.ones((5, 1)), np.ones((4, 1)))),
    "canonical_correlations shape": (ValueError, r"shape \(n, d\)",
                                     lambda: canonical_correlations(np.ones((5, 2, 2)),
                                                                    np.ones((5, 2, 2)))),
    "canonical_correlations nan": (ValueError, "NaN",
                                   lambda: canonical_correlations(np.full((5, 1), np.nan),
                                                                  np.ones((5, 1)))),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_documented_error(case):
    error, message, call = CASES[case]
    with pytest.raises(error, match=message) as caught:
        call()
    assert caught.type is error


def test_documented_successes_next_to_those_errors():
    """The values the same docstrings state: an int seed is a generator for
    random_derangement; an empty queue's features are ``(0,)``; a constant variable has no
    canonical correlation."""
    partner = random_derangement(torch.ones(2, 5, dtype=torch.bool), 3)
    assert (partner != torch.arange(5)).all()
    assert sorted(partner[0].tolist()) == [0, 1, 2, 3, 4]
    queue = NegativeQueue(3)
    assert queue.features().shape == (0,) and queue.mask().shape == (0,) and len(queue) == 0
    queue.extend(torch.ones(2, 2, 3), torch.ones(2, 2, dtype=torch.bool))
    assert queue.features().shape == (2, 2, 3)
    queue.reset()
    assert queue.features().shape == (0,) and len(queue) == 0
    assert canonical_correlations(np.ones((6, 1)), np.arange(6.0)).shape == (0,)


def test_fold_indices_takes_an_int_seed_as_the_rest_of_mitools():
    """Fifteenth tryout: ``fold_indices(10, generator=3)`` escaped as torch's list of
    ``randperm`` signatures; an int seed is the generator it seeds, on the CPU."""
    by_seed = fold_indices(10, 2, 0.2, generator=3)
    by_generator = fold_indices(10, 2, 0.2, generator=torch.Generator().manual_seed(3))
    for a, b in zip(by_seed, by_generator, strict=True):
        assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
