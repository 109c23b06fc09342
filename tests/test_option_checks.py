"""One rule for scalar options at every entry point (mitools.option_checks): a bool is not a
number, numpy scalars are numbers, reals are finite; each error names the option."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mitools import bounds
from mitools.classical import gaussian_mi, ksg, mixed_ksg
from mitools.conditionals import DiagonalGaussian, GaussianMarginal, MixtureOfGaussians
from mitools.critics import (
    AttentionPoolCritic,
    BilinearCritic,
    ConcatCritic,
    MarginalPotentials,
    QuadraticCritic,
    SeparableCritic,
)
from mitools.estimate import estimate_mi
from mitools.estimators import BA, FLO, MINE, SMILE, AlphaInfoNCE, LogBaseline
from mitools.local import GlobalMILoss, LocalMILoss
from mitools.negatives import NegativeQueue
from mitools.option_checks import check_flag, check_int, check_number
from mitools.samplers import Neighbourhood, RandomPairs
from mitools.tasks import CorrelatedGaussian, Staircase, gaussian_mutual_information, rho_for_mi
from mitools.training import train_critic

FAST = dict(max_steps=20, eval_every=10, hidden=(8,), folds=2, threads=1)


def _gaussian_xy(n: int = 50):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 2, generator=g), torch.randn(n, 2, generator=g)


def _xy(n: int = 120):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n)
    return x, 0.8 * x + 0.6 * rng.standard_normal(n)


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 3.0, "3", None, 0])
def test_check_int_refuses_what_is_not_an_int_of_the_range(value) -> None:
    with pytest.raises(ValueError, match=r"k must be an int >= 1, got"):
        check_int("k", value)


@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3), np.uint8(3)])
def test_check_int_takes_python_and_numpy_ints(value) -> None:
    check_int("k", value)


@pytest.mark.parametrize("value", [True, float("inf"), float("nan"), -np.inf, "0.1", None,
                                   0.0, 1.0, np.float32(1.5)])
def test_check_number_refuses_bools_non_finite_and_out_of_range(value) -> None:
    with pytest.raises(ValueError, match=r"val_fraction must be a finite number in \(0, 1\)"):
        check_number("val_fraction", value, 0, high=1)


@pytest.mark.parametrize("value", [0.5, np.float32(0.5), np.float64(0.5)])
def test_check_number_takes_python_and_numpy_reals(value) -> None:
    check_number("level", value, 0, high=1)


def test_check_flag_takes_only_booleans() -> None:
    check_flag("screen", np.bool_(False))
    with pytest.raises(ValueError, match="screen must be True or False, got 0"):
        check_flag("screen", 0)


# --- the classical estimators -------------------------------------------------------------


@pytest.mark.parametrize("kwargs, match", [
    (dict(noise=True), "noise must be a finite number >= 0, got True"),  # was noise = 1.0
    (dict(noise=float("inf")), "noise must be a finite number"),
    (dict(estimator=2.0), "estimator must be 1 or 2, got 2.0"),  # was a KeyError 'ksg2.0'
    (dict(estimator=True), "estimator must be 1 or 2, got True"),
    (dict(estimator=3), "estimator must be 1 or 2, got 3"),
    # seed=None was a TypeError from numpy
    (dict(seed=None), r"seed must be an int in \[0, 4294967295\], got None"),
    (dict(seed=-1), r"seed must be an int in \[0, 4294967295\], got -1"),
    (dict(k=True), "k must be an int >= 1, got True"),
    (dict(groups=True), "groups must be 0 .* got True"),
    (dict(level=True), "level must be a finite number"),
])
def test_ksg_names_each_bad_option(kwargs, match) -> None:
    x, y = _xy()
    with pytest.raises(ValueError, match=match):
        ksg(x, y, **kwargs)


def test_classical_estimators_take_numpy_scalars_as_their_python_values() -> None:
    x, y = _xy()
    plain = ksg(x, y, k=3, groups=5, level=0.9, seed=1)
    numpy_ = ksg(x, y, k=np.int64(3), groups=np.int64(5), level=np.float32(0.9),
                 seed=np.int64(1))
    assert numpy_.value == plain.value and numpy_.interval[0] == pytest.approx(
        plain.interval[0], rel=1e-6)
    assert mixed_ksg(x, y, k=np.int32(3), groups=0).value == mixed_ksg(x, y, groups=0).value
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, "):
        gaussian_mi(x, y, seed=-3)


def test_ksg_on_k_plus_one_samples_is_refused() -> None:
    """Regression (review): with n = k + 1, each sample's k-th neighbour is the farthest
    sample and estimator 1 gives 0 whatever the data."""
    x, _ = _xy(4)
    with pytest.raises(ValueError, match=r"needs at least 5 samples .*a sample beyond them"):
        ksg(x, 2 * x, k=3, groups=0)
    assert ksg(np.r_[x, 1.5], np.r_[2 * x, 3.0], k=3, groups=0).value != 0.0


# --- estimate_mi ---------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, match", [
    (dict(val_fraction="0.1"), "val_fraction must be a finite number in"),  # a TypeError
    (dict(val_fraction=1.5), "val_fraction must be a finite number in"),  # "-101 samples"
    (dict(val_fraction=True), "val_fraction must be a finite number in"),
    (dict(lr=float("inf")), "lr must be a finite number > 0"),  # a non-finite score later
    (dict(ema=False), "ema must be a finite number"),
    (dict(level=1), "level must be a finite number"),
    (dict(hidden=5), r"hidden must be a sequence of positive ints .* got 5"),
    (dict(hidden="64"), r"hidden must be a sequence of positive ints .* got '64'"),
    (dict(hidden=(64, True)), "hidden must be a sequence of positive ints"),
    # (review) read twice: a generator was empty the second time, and silently gave the pure
    # quadratic critic (settings hidden=[]); a set has no order of layers
    (dict(hidden=(w for w in (16,))), r"hidden must be a sequence of positive ints .* got <gen"),
    (dict(hidden={16}), r"hidden must be a sequence of positive ints .* got \{16\}"),
    (dict(seed=True), r"seed must be an int in \[0, "),
    (dict(seed=2**62), r"seed must be an int in \[0, 4294967295\]"),  # overflowed in torch
])
def test_estimate_mi_names_each_bad_option(kwargs, match) -> None:
    x, y = _xy()
    with pytest.raises(ValueError, match=match):
        estimate_mi(x, y, **{**FAST, **kwargs})


def test_estimate_mi_takes_numpy_scalars() -> None:
    x, y = _xy()
    plain = estimate_mi(x, y, seed=2, lr=1e-3, **FAST)
    numpy_ = estimate_mi(x, y, seed=np.int64(2), lr=np.float64(1e-3),
                         **{**FAST, "max_steps": np.int64(20)})
    assert numpy_.value == plain.value


@pytest.mark.parametrize("typo, suggestion", [("max_step", "max_steps"), ("levell", "level")])
def test_a_misspelled_option_names_itself_and_the_closest_option(typo, suggestion) -> None:
    """It failed inside the bound's constructor: "DV.__init__() got an unexpected keyword
    argument 'max_step'" (estimate_mi passes keywords it does not know to the bound)."""
    x, y = _xy()
    with pytest.raises(TypeError, match=rf"estimate_mi got '{typo}', not one of its options"
                                        rf".*did you mean '{suggestion}'"):
        estimate_mi(x, y, **{typo: 1}, **FAST)


def test_a_misspelled_option_beside_a_bound_object_names_itself() -> None:
    from mitools.estimators import DV

    x, y = _xy()
    with pytest.raises(TypeError, match=r"estimate_mi got 'max_setps', not one of its options: "
                                        r"with the bound given as an object \(DV\).*did you "
                                        r"mean 'max_steps'"):
        estimate_mi(x, y, bound=DV(), max_setps=3, **FAST)


def test_hidden_takes_any_sequence_of_widths() -> None:
    x, y = _xy()
    assert estimate_mi(x, y, **{**FAST, "hidden": range(8, 9)}).value == estimate_mi(
        x, y, **FAST).value  # FAST's hidden is (8,)


def test_a_bound_option_still_reaches_the_bound() -> None:
    x, y = _xy()
    r = estimate_mi(x, y, bound="smile", clip=5.0, **FAST)
    assert r.settings["bound_kwargs"] == {"clip": 5.0} and torch.isfinite(
        torch.tensor(r.value))


# --- every other entry point: critics, conditionals, bounds, estimators, local, samplers, ----
# --- negatives, tasks, training (the tryout's reproductions are marked "tryout") ----------------

i64, f32 = np.int64, np.float32
NUMPY_OPTIONS = {  # each refused a numpy scalar before
    "SeparableCritic": lambda: SeparableCritic(i64(2), i64(1), hidden=(i64(4),),  # tryout
                                               embed_dim=i64(3), temperature=f32(0.5)),
    "BilinearCritic": lambda: BilinearCritic(i64(2), np.int32(3)),
    "ConcatCritic": lambda: ConcatCritic(i64(2), i64(3), hidden=(i64(4),), chunk_size=i64(4)),
    "QuadraticCritic": lambda: QuadraticCritic(i64(2), i64(2), hidden=(i64(4),),
                                               embed_dim=i64(3)),
    "MarginalPotentials": lambda: MarginalPotentials(BilinearCritic(2, 2), i64(2), i64(2),
                                                     hidden=(i64(4),)),
    "AttentionPoolCritic": lambda: AttentionPoolCritic(BilinearCritic(2, 2), f32(0.5)),
    "DiagonalGaussian": lambda: DiagonalGaussian(i64(2), i64(2), hidden=(i64(4),),
                                                 min_scale=f32(1e-3)),
    "MixtureOfGaussians": lambda: MixtureOfGaussians(i64(2), i64(2), components=i64(2),
                                                     hidden=(i64(4),)),
    "GaussianMarginal": lambda: GaussianMarginal(i64(2), min_scale=f32(1e-3)),
    "NegativeQueue": lambda: NegativeQueue(i64(4)),
    "RandomPairs": lambda: RandomPairs(k=i64(3)),  # tryout
    "Neighbourhood": lambda: Neighbourhood(i64(1)),
    "LocalMILoss": lambda: LocalMILoss(chunk_size=i64(4), column_chunk_size=i64(8),  # tryout
                                       queue=i64(4)),
    "GlobalMILoss": lambda: GlobalMILoss(column_chunk_size=i64(8)),
    "AlphaInfoNCE": lambda: AlphaInfoNCE(alpha=f32(0.01), baseline=f32(0.5)),  # tryout
    "LogBaseline": lambda: LogBaseline(init=f32(0.5)),
    "SMILE": lambda: SMILE(clip=f32(5.0)),
    "MINE": lambda: MINE(momentum=f32(0.9)),
    "BA": lambda: BA(entropy_y=f32(1.5)),
    "CorrelatedGaussian": lambda: CorrelatedGaussian(dim=i64(2), mi=f32(1.0)),
    "Staircase": lambda: Staircase(levels=(f32(1.0), i64(2)), steps_per_level=i64(10)),
    "Transform": lambda: bounds.Transform("clip", f32(2.0)),
}


def _numpy_scalars(obj, seen=None) -> list[str]:
    """The attributes, on ``obj`` and every module inside it, that hold a numpy scalar."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    found = []
    for name, value in vars(obj).items():
        if isinstance(value, np.generic):
            found.append(f"{type(obj).__name__}.{name}")
        elif isinstance(value, (tuple, list)):
            found += [f"{type(obj).__name__}.{name}" for v in value if isinstance(v, np.generic)]
        elif isinstance(value, dict) and name == "_modules":
            for module in value.values():
                found += _numpy_scalars(module, seen) if module is not None else []
        elif hasattr(value, "__dict__") and type(value).__module__.startswith("mitools"):
            found += _numpy_scalars(value, seen)
    return found


@pytest.mark.parametrize("name", sorted(NUMPY_OPTIONS))
def test_entry_points_take_numpy_scalars_and_store_python_values(name) -> None:
    obj = NUMPY_OPTIONS[name]()
    assert _numpy_scalars(obj) == []  # what torch.save(..., weights_only) readers can load


BAD_OPTIONS = [  # (call, the message: it names the argument the user passed)
    (lambda: SeparableCritic(True, 1), "dim_x must be an int >= 1, got True"),
    (lambda: SeparableCritic(2, 1, embed_dim=True), "embed_dim must be an int >= 1, got True"),
    (lambda: SeparableCritic(2, 1, hidden=(4, True)), "hidden must be an int >= 1, got True"),
    (lambda: SeparableCritic(2, 1, temperature=float("inf")), "temperature must be a finite"),
    (lambda: ConcatCritic(2, 1, chunk_size=True), "chunk_size must be an int >= 1, got True"),
    (lambda: MarginalPotentials(BilinearCritic(2, 2), True, 2), "dim_x must be an int >= 1"),
    (lambda: AttentionPoolCritic(BilinearCritic(2, 2), float("inf")), "temperature must be"),
    (lambda: DiagonalGaussian(2, 2, min_scale=float("nan")), "min_scale must be a finite"),
    (lambda: MixtureOfGaussians(2, 2, components=True), "components must be an int >= 1"),
    (lambda: NegativeQueue(True), "NegativeQueue: size must be an int >= 1, got True"),
    (lambda: RandomPairs(2.0), "RandomPairs: k must be an int >= 1, got 2.0"),
    (lambda: Neighbourhood(True), "Neighbourhood: radius must be an int >= 0, got True"),
    (lambda: LocalMILoss(chunk_size=True), "chunk_size must be an int >= 1, got True"),
    (lambda: LocalMILoss(queue=True), "queue must be an int >= 1, got True"),
    (lambda: LocalMILoss(gather=1), "gather must be True or False, got 1"),  # was read as True
    (lambda: GlobalMILoss(gather="no"), "gather must be True or False, got 'no'"),
    (lambda: AlphaInfoNCE(alpha=True), r"AlphaInfoNCE: alpha must be a finite number in \(0, 1\)"),
    (lambda: AlphaInfoNCE(baseline=float("nan")), "baseline must be a finite number, got nan"),
    (lambda: LogBaseline(init=True), "init must be a finite number, got True"),  # was 1.0
    (lambda: SMILE(clip=True), r"SMILE: clip must be a number > 0, inf or None \(no "
                               r"clipping\), got True"),
    (lambda: SMILE(clip=float("nan")), "SMILE: clip must be a number > 0, inf or None"),
    (lambda: MINE(momentum=True), r"MINE: momentum must be a finite number in \[0, 1\)"),
    (lambda: BA(entropy_y=float("inf")), "BA: entropy_y must be a finite number, got inf"),
    (lambda: BA(entropy_y=True), "BA: entropy_y must be a finite number, got True"),
    (lambda: bounds.tuba(torch.zeros(4, 4), float("nan")), "tuba: log_baseline must be a fin"),
    (lambda: bounds.ba(torch.zeros(4, 4), True), "ba: entropy_y must be a finite number"),
    (lambda: bounds.infonce(torch.zeros(4, 4), offset=True), "infonce: offset must be an int"),
    (lambda: bounds.smile(torch.zeros(4, 4), clip=-math.inf),
     "smile: clip must be a number > 0, inf or None"),
    (lambda: bounds.check_finite(1), "check_finite: enabled must be True or False, got 1"),
    (lambda: CorrelatedGaussian(dim=True, mi=1.0), "dim must be an int >= 1, got True"),
    (lambda: CorrelatedGaussian(dim=2, mi=True), "mi must be a finite number >= 0, got True"),
    (lambda: rho_for_mi(float("inf"), 2), "mi must be a finite number >= 0, got inf"),
    (lambda: CorrelatedGaussian(dim=2, mi=1.0).sample(True),
     "CorrelatedGaussian.sample: n must be an int >= 1, got True"),
    (lambda: Staircase(levels=(1.0, True)), "levels must be a finite number >= 0, got True"),
    (lambda: Staircase(steps_per_level=True), "steps_per_level must be an int >= 1, got True"),
    (lambda: train_critic(BilinearCritic(2, 2), "infonce", CorrelatedGaussian(2, 1.0),
                          steps=True), "train_critic: steps must be an int >= 1, got True"),
    (lambda: train_critic(BilinearCritic(2, 2), "infonce", CorrelatedGaussian(2, 1.0),
                          steps=1, log_every=True), "train_critic: log_every must be an int"),
    (lambda: ksg(*_xy(), threads=True), r"threads must be an int in \[1, \d+\] .*got True"),
    # checked since the flags audit: ignored, read as 1, or a TypeError / wrong answer later
    (lambda: QuadraticCritic(2, 2, embed_dim=True), "embed_dim must be an int >= 1, got True"),
    (lambda: QuadraticCritic(2, 2).init_gaussian_(*_gaussian_xy(), ridge=True),
     "init_gaussian_: ridge must be a finite number >= 0, got True"),
    (lambda: QuadraticCritic(2, 2).init_gaussian_(*_gaussian_xy(), ridge=float("nan")),
     "init_gaussian_: ridge must be a finite number >= 0, got nan"),
    (lambda: bounds.Transform("clip", True),
     r"Transform\('clip'\): param must be a finite positive number, got True"),
    (lambda: bounds.Transform("clip", math.inf), r"Transform\('clip'\): param must be a finite"),
    (lambda: FLO(torch.nn.Linear(4, 1)).pair_term(torch.zeros(3, 2), torch.zeros(4, 2),
                                                  offset=True),
     "FLO.pair_term: offset must be an int >= 0, got True"),
    (lambda: Staircase().mi_at(True), r"step must be an int in \[0, 19999\], got True"),
    (lambda: Staircase().mi_at(2.5), r"step must be an int in \[0, 19999\], got 2.5"),
    (lambda: gaussian_mutual_information(torch.eye(2), [1], [-1]),  # -1 is 1: not disjoint
     r"gaussian_mutual_information: b must be an int in \[0, 1\], got -1"),
    (lambda: gaussian_mutual_information(torch.eye(2), [0], [1.0]),
     r"gaussian_mutual_information: b must be an int in \[0, 1\], got 1.0"),
]


@pytest.mark.parametrize("call, match", BAD_OPTIONS, ids=[m[:40] for _, m in BAD_OPTIONS])
def test_entry_points_name_each_bad_option(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_numpy_scalars_give_the_python_values_results() -> None:
    s = torch.randn(2, 5, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(bounds.alpha_infonce(s, f32(0.5), f32(0.25)),
                       bounds.alpha_infonce(s, 0.5, 0.25))
    assert torch.equal(bounds.ba(s, f32(1.5)), bounds.ba(s, 1.5))
    assert torch.equal(bounds.dv(s[:, :4], offset=i64(1)), bounds.dv(s[:, :4], offset=1))
    task = CorrelatedGaussian(dim=2, mi=1.0)
    for a, b in zip(task.sample(i64(5), generator=i64(3)), task.sample(5, generator=3),
                    strict=True):
        assert torch.equal(a, b)
    x, y = _xy()
    assert ksg(x, y, threads=np.int64(1)).value == ksg(x, y, threads=1).value  # tryout
    torch.manual_seed(0)
    numpy_ = train_critic(BilinearCritic(2, 2), "infonce", task, steps=i64(2),
                          batch_size=i64(8), lr=f32(1e-2), generator=i64(0))
    torch.manual_seed(0)
    plain = train_critic(BilinearCritic(2, 2), "infonce", task, steps=2, batch_size=8,
                         lr=1e-2, generator=0)
    assert numpy_.shape == plain.shape == (2,)


def test_newly_checked_numbers_take_numpy_scalars_and_tensors() -> None:
    assert Staircase().mi_at(np.int64(4000)) == Staircase().mi_at(4000) == 4.0
    cov = torch.tensor([[1.0, 0.8], [0.8, 1.0]])
    assert gaussian_mutual_information(cov, np.array([0]), torch.tensor([1])) == (
        gaussian_mutual_information(cov, [0], [1]))
    x, y = _gaussian_xy()
    a = QuadraticCritic(2, 2).init_gaussian_(x, y, ridge=np.float32(1e-3))
    b = QuadraticCritic(2, 2).init_gaussian_(x, y, ridge=1e-3)
    torch.testing.assert_close(a(x, y), b(x, y), rtol=1e-6, atol=1e-6)
    anchors, targets = torch.zeros(3, 2), torch.randn(4, 2)
    flo = FLO(torch.nn.Linear(4, 1))
    assert torch.equal(flo.pair_term(anchors, targets, offset=np.int64(1)),
                       flo.pair_term(anchors, targets, offset=1))


def test_estimate_mi_passes_numpy_bound_options_through() -> None:
    """Tryout: estimate_mi(bound="alpha_infonce", alpha=np.float32(0.01)) failed in
    AlphaInfoNCE."""
    x, y = _xy()
    r = estimate_mi(x, y, bound="alpha_infonce", alpha=np.float32(0.01), **FAST)
    assert np.isfinite(r.value)


def test_pointwise_takes_a_numpy_fold_and_refuses_a_bool() -> None:
    """Tryout: fold=np.int64(1) was refused while fold=True was read as fold 1."""
    x, y = _xy()
    r = estimate_mi(x, y, **FAST)
    assert torch.equal(r.pointwise(x[:5], y[:5], fold=np.int64(1)),
                       r.pointwise(x[:5], y[:5], fold=1))
    with pytest.raises(ValueError, match=r"fold must be an int in \[0, 1\], got True"):
        r.pointwise(x[:5], y[:5], fold=True)


def test_zero_dimensional_tensors_are_numbers() -> None:
    """Review: after the option checks, tensors that had worked were refused:
    Staircase(levels=torch.linspace(...)), CorrelatedGaussian(mi=torch.tensor(1.)),
    train_critic(lr=torch.tensor(1e-3)) (torch optimisers take a tensor lr), and
    train_critic(log_every=None) ("never")."""
    import torch

    from mitools import CorrelatedGaussian
    from mitools.option_checks import check_flag, check_int, check_number
    from mitools.tasks import Staircase

    assert check_number("lr", torch.tensor(1e-3), 0) == pytest.approx(1e-3)
    assert check_int("k", torch.tensor(3)) == 3 and check_int("k", np.array(3)) == 3
    assert check_flag("screen", torch.tensor(True)) is True
    with pytest.raises(ValueError, match="k must be an int"):
        check_int("k", torch.tensor(3.0))
    with pytest.raises(ValueError, match="lr must be a finite number"):
        check_number("lr", torch.tensor([1e-3, 1e-2]), 0)  # not a scalar
    assert CorrelatedGaussian(dim=2, mi=torch.tensor(1.0)).mi == pytest.approx(1.0)
    Staircase(levels=torch.linspace(1.0, 2.0, 2), steps_per_level=1)


def test_train_critic_takes_a_tensor_lr_and_no_logging() -> None:
    import torch

    from mitools import CorrelatedGaussian
    from mitools.critics import SeparableCritic
    from mitools.training import train_critic

    critic = SeparableCritic(2, 2, hidden=(8,))
    history = train_critic(critic, "infonce", CorrelatedGaussian(dim=2, mi=0.5), steps=3,
                           batch_size=8, lr=torch.tensor(1e-3), generator=0, log_every=None)
    assert history.shape == (3,)


def test_a_thread_count_is_at_most_the_cpus_this_process_may_use() -> None:
    """Tryout: threads=100000 crashed torch (a segmentation fault); every entry point takes
    its thread count through check_threads."""
    import numpy as np

    from mitools.classical import ksg
    from mitools.estimate import estimate_mi
    from mitools.option_checks import check_threads, usable_cpus

    cpus = usable_cpus()
    assert check_threads("threads", np.int64(cpus)) == cpus
    for bad in (0, cpus + 1, 100_000, 1.0, True):
        with pytest.raises(ValueError, match=rf"threads must be an int in \[1, {cpus}\] \(the "
                                             r"CPUs this process may use\)"):
            check_threads("threads", bad)
    x = np.random.default_rng(0).normal(size=(60, 1))
    for call in (lambda: estimate_mi(x, x + 1, threads=100_000),
                 lambda: ksg(x, x + 1, threads=100_000)):
        with pytest.raises(ValueError, match=r"threads must be an int in \[1, "):
            call()
