"""examples.image_text: averaging seeds matches rows by label and refuses what does not match."""

from __future__ import annotations

import pytest

from examples.image_text.evaluate import RegimeResult
from examples.image_text.pointing import KINDS, PointingResult
from examples.image_text.report import results_markdown

NAMES = ("a", "b")


def _row(label: str, auc: float, regime: str = "frozen") -> RegimeResult:
    return RegimeResult(regime, label, auc, auc, (auc, auc), auc, NAMES)


def _pt(label: str, rate: float) -> PointingResult:
    return PointingResult(label, {k: rate for k in KINDS}, {k: 0.1 for k in KINDS},
                          {k: 0.2 for k in KINDS}, {k: 5 for k in KINDS})


def _run(values: dict[str, float]):
    return [_row(k, v) for k, v in values.items()], [_pt(k, v) for k, v in values.items()]


def _cell(md: str, start: str, column: int = 2) -> str:
    line = next(x for x in md.splitlines() if x.startswith(start))
    return line.split("|")[column + 1].strip()


def test_rows_are_matched_by_label_not_by_position() -> None:
    seed0 = _run({"global": 0.5, "local-mean": 0.7})
    seed1 = _run({"local-mean": 0.9, "global": 0.3})  # the same rows in another order
    md = results_markdown([seed0, seed1], NAMES, [0, 1])
    assert _cell(md, "| Frozen + linear (pooled) | local-mean |").startswith("0.800 ± ")
    assert _cell(md, "| Frozen + linear (pooled) | global |").startswith("0.400 ± ")
    assert _cell(md, "| local-mean |", 1).startswith("0.800 ± ")  # pointing
    assert _cell(md, "| global |", 1).startswith("0.400 ± ")


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_seeds_with_other_rows_are_refused_naming_seed_and_rows(order) -> None:
    # the tryout: seed 0 = {global, local-mean}, seed 1 = {..., local-attention}; evaluate
    # printed local-mean's mean over seed 0's local-mean and seed 1's local-attention and
    # dropped local-attention under "(2 seeds)"; table --seeds 1 0 crashed with KeyError
    runs = {0: _run({"global": 0.5, "local-mean": 0.7}),
            1: _run({"global": 0.5, "local-attention": 0.9, "local-mean": 0.6})}
    with pytest.raises(ValueError, match=r"seed 0 lacks Frozen \+ linear \(pooled\) "
                                         r"\(local-attention\).*evaluate the same"):
        results_markdown([runs[s] for s in order], NAMES, list(order))
