"""Every public on/off option is a flag (mitools.option_checks.check_flag): ``True`` or
``False``, numpy bools included; anything else (``1``, ``0``, ``"no"``, ``None``) is refused by
name. Before, these options were read by truthiness: ``cosine="no"`` turned cosine on,
``cosine=1`` was taken as ``True`` and ``None`` as ``False``."""

from __future__ import annotations

import numpy as np
import pytest

from mitools.critics import BilinearCritic, ConcatCritic, SeparableCritic

#: option -> a call that passes ``value`` as that option, returning what it built or computed
FLAGS = {
    "SeparableCritic(cosine)": lambda value: SeparableCritic(2, 2, hidden=(4,), cosine=value),
    "SeparableCritic(learn_temperature)": lambda value: SeparableCritic(
        2, 2, hidden=(4,), learn_temperature=value),
    "BilinearCritic(bias)": lambda value: BilinearCritic(2, 2, bias=value),
    "ConcatCritic(checkpoint)": lambda value: ConcatCritic(2, 2, hidden=(4,), checkpoint=value),
}


def _option(label: str) -> str:
    """``"SeparableCritic(cosine)"`` -> ``"cosine"``: the name the error must give."""
    return label[label.index("(") + 1 : -1]


@pytest.mark.parametrize("value", [1, 0, "no", None], ids=repr)
@pytest.mark.parametrize("label", sorted(FLAGS))
def test_a_flag_refuses_what_is_not_a_bool_by_name(label, value) -> None:
    with pytest.raises(ValueError, match=rf"{_option(label)} must be True or False, got "
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
