"""The Gaussian demo's command line (``python -m examples.gaussian_demo``)."""

from __future__ import annotations

import re

import pytest

from examples import gaussian_demo


@pytest.mark.parametrize("argv, message", [
    (["--steps", "0"], r"--steps: must be finite and >= 1, got '0'"),
    (["--batch", "1"], r"--batch: must be finite and >= 2, got '1'"),
    (["--mi", "-1"], r"--mi: must be finite and >= 0, got '-1'"),
    (["--mi", "nan"], r"--mi: must be finite and >= 0, got 'nan'"),
    (["--dim", "2.5"], r"--dim: expected int, got '2.5'"),
    # a shortened option was silently the long one
    (["--ste", "10"], r"unrecognized arguments: --ste 10"),
])
def test_bad_options_are_usage_errors_before_any_work(argv, message, capsys) -> None:
    # regression: --steps 0 and --batch 1 ran parts 1 and 2 (a minute), then ended in a
    # traceback from train_critic or infonce; --mi -1 in one from CorrelatedGaussian
    with pytest.raises(SystemExit) as exit_info:
        gaussian_demo.main(argv)
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)
