"""Every public on/off option is a flag (mitools.option_checks.check_flag): ``True`` or
``False``, numpy bools included; anything else (``1``, ``0``, ``"no"``, ``None``) is refused by
name. Before, these options were read by truthiness: ``cosine="no"`` turned cosine on,
``cosine=1`` was taken as ``True`` and ``None`` as ``False``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mitools import bounds
from mitools.classical import ksg, mixed_ksg
from mitools.critics import BilinearCritic, ConcatCritic, SeparableCritic
from mitools.distributed import all_gather_with_grad
from mitools.estimators import FunctionalEstimator
from mitools.inputs import as_float64_columns, as_sample_tensor
from mitools.negatives import negative_columns
from mitools.samplers import AllPairs, check_pairs

_x = np.random.default_rng(0).standard_normal(40)
_y = _x + np.random.default_rng(1).standard_normal(40)

#: option -> a call that passes ``value`` as that option, returning what it built or computed
FLAGS = {
    # critics
    "SeparableCritic(cosine)": lambda value: SeparableCritic(2, 2, hidden=(4,), cosine=value),
    "SeparableCritic(learn_temperature)": lambda value: SeparableCritic(
        2, 2, hidden=(4,), learn_temperature=value),
    "BilinearCritic(bias)": lambda value: BilinearCritic(2, 2, bias=value),
    "ConcatCritic(checkpoint)": lambda value: ConcatCritic(2, 2, hidden=(4,), checkpoint=value),
    # estimators
    "FunctionalEstimator(nats)": lambda value: FunctionalEstimator(bounds.dv, nats=value),
    # negatives, distributed
    "negative_columns(gather)": lambda value: negative_columns(
        torch.ones(2, 1, 3), None, gather=value, queue=None),
    "all_gather_with_grad(check_shapes)": lambda value: all_gather_with_grad(
        torch.ones(2, 3), check_shapes=value),
    # classical estimators
    "ksg(progress)": lambda value: ksg(_x, _y, groups=0, progress=value),
    "mixed_ksg(progress)": lambda value: mixed_ksg(_x, _y, groups=0, progress=value),
    # input coercion
    "as_float64_columns(discrete)": lambda value: as_float64_columns([1.0, 2.0], "x",
                                                                     discrete=value),
    "as_sample_tensor(discrete)": lambda value: as_sample_tensor([1.0, 2.0], "x",
                                                                 discrete=value),
    # samplers
    "check_pairs(values)": lambda value: check_pairs(AllPairs()((2,), (3,)), (2,), (3,),
                                                     "AllPairs", values=value),
}
#: flags where ``None`` means a default (the bound's own unit; a progress bar when stderr is a
#: terminal)
TAKE_NONE = {"FunctionalEstimator(nats)", "ksg(progress)", "mixed_ksg(progress)"}
NOT_BOOLS = [1, 0, "no", None]


def _option(label: str) -> str:
    """``"SeparableCritic(cosine)"`` -> ``"cosine"``: the name the error must give."""
    return label[label.index("(") + 1 : -1]


@pytest.mark.parametrize("label, value", [
    (label, value) for label in sorted(FLAGS) for value in NOT_BOOLS
    if not (value is None and label in TAKE_NONE)], ids=str)
def test_a_flag_refuses_what_is_not_a_bool_by_name(label, value) -> None:
    allowed = "True, False or None" if label in TAKE_NONE else "True or False"
    with pytest.raises(ValueError, match=rf"{_option(label)} must be {allowed}.*, got "
                                         rf"{value!r}"):
        FLAGS[label](value)


@pytest.mark.parametrize("value", [np.bool_(True), np.bool_(False)], ids=repr)
@pytest.mark.parametrize("label", sorted(FLAGS))
def test_a_flag_takes_numpy_bools(label, value) -> None:
    FLAGS[label](value)


def test_critic_flags_do_what_they_say_and_are_stored_as_python_bools() -> None:
    """The numpy bool is read as its value (not by identity), and stored as a Python bool."""
    cosine = SeparableCritic(2, 2, hidden=(4,), cosine=np.bool_(True))
    assert cosine.cosine is True
    assert SeparableCritic(2, 2, hidden=(4,), cosine=np.bool_(False)).cosine is False
    learned = SeparableCritic(2, 2, hidden=(4,), learn_temperature=np.bool_(True))
    assert "log_temperature" in dict(learned.named_parameters())
    fixed = SeparableCritic(2, 2, hidden=(4,), learn_temperature=np.bool_(False))
    assert "log_temperature" not in dict(fixed.named_parameters())
    assert BilinearCritic(2, 2, bias=np.bool_(False)).bias is None
    assert ConcatCritic(2, 2, hidden=(4,), checkpoint=np.bool_(True)).checkpoint is True


def test_other_flags_are_read_as_their_value() -> None:
    assert FunctionalEstimator(bounds.dv, nats=np.bool_(False)).nats is False
    assert FunctionalEstimator(bounds.jsd).nats is False  # None: the bound's own
    t = torch.ones(2, 3)
    assert all_gather_with_grad(t, check_shapes=np.bool_(False)) is t  # no process group
    assert ksg(_x, _y, groups=0, progress=np.bool_(False)).value == ksg(_x, _y, groups=0).value


#: flags checked before this table, and where their refusal is tested
CHECKED_ELSEWHERE = {
    "check_finite(enabled)",  # test_bounds.py, test_option_checks.py
    "LocalMILoss(gather)", "GlobalMILoss(gather)",  # test_option_checks.py
    "mixed_ksg(discrete_x)", "mixed_ksg(discrete_y)",  # test_classical_edge_cases.py
    # estimate.options.check_options, one loop over the five (test_estimate_fit.py: screen)
    "estimate_mi(screen)", "estimate_mi(discrete_x)", "estimate_mi(discrete_y)",
    "estimate_mi(potentials)", "estimate_mi(progress)",
}
#: bool-annotated parameters that are not options: fields of a result
NOT_OPTIONS = {"FoldResult(converged)", "FoldResult(stopped_at_check)"}
PUBLIC_MODULES = ["bounds", "classical", "conditionals", "critics", "distributed", "estimate",
                  "estimators", "inputs", "local", "negatives", "reductions", "samplers",
                  "tasks", "training"]


def _bool_parameters() -> set[str]:
    """``"owner(parameter)"`` for every parameter annotated ``bool`` (or ``bool | None``) of
    the public functions, constructors and methods of ``mitools``' modules."""
    import importlib
    import inspect

    found = set()
    for name in PUBLIC_MODULES:
        module = importlib.import_module(f"mitools.{name}")
        for public in module.__all__:
            obj = getattr(module, public)
            if inspect.isclass(obj):
                calls = [(public, obj.__init__)] + [
                    (f"{public}.{k}", v) for k, v in vars(obj).items()
                    if inspect.isfunction(v) and not k.startswith("_")]
            elif inspect.isfunction(obj):
                calls = [(public, obj)]
            else:
                continue
            for owner, call in calls:
                for p in inspect.signature(call).parameters.values():
                    annotation = str(p.annotation).replace("<class 'bool'>", "bool")
                    if annotation.split("|")[0].strip() == "bool":
                        found.add(f"{owner}({p.name})")
    return found


def test_every_public_flag_is_checked() -> None:
    """A new on/off option joins :data:`FLAGS` (or is checked and listed above)."""
    found, listed = _bool_parameters(), set(FLAGS) | CHECKED_ELSEWHERE | NOT_OPTIONS
    assert not found - listed, f"flags not in the tables of this file: {sorted(found - listed)}"
    assert not listed - found, f"listed here, not in the API: {sorted(listed - found)}"
