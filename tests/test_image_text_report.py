"""examples.image_text: averaging seeds matches rows by label and refuses what does not match."""

from __future__ import annotations

import pytest

from examples.image_text.evaluate import RegimeResult
from examples.image_text.pointing import KINDS, PointingResult
from examples.image_text.report import results_markdown, table_of_seeds

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


def _write_seed(root, seed: int, values: dict[str, float], **settings) -> None:
    from examples.image_text.config import make_config
    from examples.image_text.report import write_results

    cfg = make_config(settings.pop("preset", "quick"), seed=seed, **settings)
    write_results(root / f"seed{seed}", cfg, [_run(values)], NAMES, [seed])


def test_seeds_run_with_other_settings_are_refused_naming_the_keys(tmp_path) -> None:
    # the tryout: a quick-preset seed 0 and a tiny-preset seed 1 gave "0.702 ± 0.245" and
    # results.json recorded seed 0's config only

    _write_seed(tmp_path, 0, {"global": 0.9})
    _write_seed(tmp_path, 1, {"global": 0.5}, preset="tiny")
    with pytest.raises(ValueError, match=r"seeds 0 and 1 were run with different settings "
                                         r"\(.*epochs 20 vs 1.*n_train 3000 vs 96"):
        table_of_seeds(str(tmp_path), [0, 1])
    # the run options and the seed may differ
    _write_seed(tmp_path, 2, {"global": 0.7}, threads=1, device="cpu", progress=False)
    assert "0.800 ± " in table_of_seeds(str(tmp_path), [0, 2])


def test_check_same_settings_takes_lists_for_tuples() -> None:
    from examples.image_text.report import check_same_settings

    check_same_settings({0: {"critic_hidden": (4,)}, 1: {"critic_hidden": [4]}})
    with pytest.raises(ValueError, match=r"critic_hidden \(4,\) vs \[8\]"):
        check_same_settings({0: {"critic_hidden": (4,)}, 1: {"critic_hidden": [8]}})


def test_table_keeps_the_timings_all_wrote(tmp_path) -> None:
    # the tryout: `table` rewrote the results.json that `all` wrote, losing its timings
    import json

    from examples.image_text.config import make_config
    from examples.image_text.report import write_results

    for seed in (0, 1):
        _write_seed(tmp_path, seed, {"global": 0.5 + seed / 10})
    write_results(tmp_path, make_config(), [_run({"global": 0.5}), _run({"global": 0.6})],
                  NAMES, [0, 1], {"timings_s": {"seed0/supervised": 3.0, "seed1/supervised": 4.0},
                                  "torch": "2.13", "threads": 1})
    table_of_seeds(str(tmp_path), [0, 1])
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["timings_s"] == {"seed0/supervised": 3.0, "seed1/supervised": 4.0}
    assert payload["torch"] == "2.13" and payload["threads"] == 1
    table_of_seeds(str(tmp_path), [1])  # only the timings of the seeds averaged
    assert json.loads((tmp_path / "results.json").read_text())["timings_s"] == {
        "seed1/supervised": 4.0}


def test_one_seed_is_captioned_as_such_without_an_sd() -> None:
    # the tryout: a one-seed run's tables said "(1 seed; mean ± sd over seeds)", and "mean over
    # seeds" / "hit rate; mean ± sd over seeds", with no sd in any cell
    md = results_markdown([_run({"global": 0.5})], NAMES, [0])
    assert "sd" not in md and "over seeds" not in md, md
    assert "Downstream classification on the test split (1 seed). Localized" in md
    assert "AUC per finding (1 seed)" in md and "(hit rate; 1 seed)" in md
    assert _cell(md, "| Frozen + linear (pooled) | global |") == "0.500"
    md = results_markdown([_run({"global": 0.5}), _run({"global": 0.7})], NAMES, [0, 1])
    assert "(2 seeds; mean ± sd over seeds)" in md and "AUC per finding (mean over seeds)" in md
    assert "(hit rate; mean ± sd over seeds)" in md


def test_separate_evaluate_runs_of_a_seed_are_merged_not_overwritten(tmp_path) -> None:
    # the review: `evaluate --modes global`, then `evaluate --modes local-max` rewrote
    # seed0/results.json with the second run's rows only (global's were lost)
    import threading

    from examples.image_text.config import make_config
    from examples.image_text.seed_results import check_mergeable, write_seed_results

    cfg, seed_dir = make_config("tiny"), tmp_path / "seed0"
    write_seed_results(seed_dir, cfg, _run({"untrained": 0.5, "global": 0.6}), NAMES, 0)
    write_seed_results(seed_dir, cfg, _run({"untrained": 0.55, "local-max": 0.7}), NAMES, 0)
    md = table_of_seeds(str(tmp_path), [0])
    assert _cell(md, "| Frozen + linear (pooled) | global |") == "0.600"
    assert _cell(md, "| Frozen + linear (pooled) | local-max |") == "0.700"
    assert _cell(md, "| Frozen + linear (pooled) | untrained |") == "0.550"  # the latest
    # a re-evaluated pretraining replaces its rows; runs at once under the lock lose none
    runs = [threading.Thread(target=write_seed_results,
                             args=(seed_dir, cfg, _run({label: 0.8}), NAMES, 0))
            for label in ("global", "local-attention", "local-mean")]
    for t in runs:
        t.start()
    for t in runs:
        t.join()
    md = table_of_seeds(str(tmp_path), [0])
    for label, value in (("global", "0.800"), ("local-max", "0.700"),
                         ("local-attention", "0.800"), ("local-mean", "0.800")):
        assert _cell(md, f"| Frozen + linear (pooled) | {label} |") == value, label
    # rows of other settings are not mixed in: refused, unless every row is evaluated anew
    other = make_config("tiny", finetune_epochs=3)
    with pytest.raises(ValueError, match=r"holds results of local-attention, local-max, "
                                         r"local-mean evaluated with other settings "
                                         r"\(--finetune-epochs 1 vs 3\)"):
        check_mergeable(seed_dir, other, {"none", "untrained", "global"})
    labels = {"global", "local-max", "local-attention", "local-mean", "untrained"}
    check_mergeable(seed_dir, other, labels)
    write_seed_results(seed_dir, other, _run(dict.fromkeys(labels, 0.9)), NAMES, 0)
    assert _cell(table_of_seeds(str(tmp_path), [0]),
                 "| Frozen + linear (pooled) | local-max |") == "0.900"
    # `all` writes one whole run: it replaces the file
    write_seed_results(seed_dir, cfg, _run({"global": 0.4}), NAMES, 0, merge=False)
    assert "local-max" not in table_of_seeds(str(tmp_path), [0])


def test_table_without_seeds_averages_every_seed_with_results(tmp_path, capsys) -> None:
    # the eighth tryout: after `all --seeds 0 1`, a plain `table` averaged seed 0 alone and
    # rewrote the two-seed results.md and .json as "(1 seed)", silently
    import json

    from examples.image_text.__main__ import main

    for seed in (0, 1, 10):
        _write_seed(tmp_path, seed, {"global": 0.5 + seed / 100})
    (tmp_path / "seedx").mkdir()  # not a seed folder: ignored
    assert main(["table", "--out-dir", str(tmp_path)]) == 0
    assert "(3 seeds; mean ± sd over seeds)" in capsys.readouterr().out
    assert json.loads((tmp_path / "results.json").read_text())["seeds"] == [0, 1, 10]
    assert main(["table", "--out-dir", str(tmp_path), "--seeds", "1"]) == 0  # still choosable
    assert json.loads((tmp_path / "results.json").read_text())["seeds"] == [1]
    empty = tmp_path / "empty"
    assert main(["table", "--out-dir", str(empty)]) == 1
    assert capsys.readouterr().err.strip().endswith(
        f"table: error: no results under {empty} (no such folder): expected "
        "seed<k>/results.json for some seed k; run `all` or `evaluate` first")


def test_an_interrupted_results_write_leaves_the_old_files(tmp_path, monkeypatch) -> None:
    # the eighth tryout: results.md and .json were written in place, so an interrupted write
    # (Ctrl-C, a full disk) left a truncated results.json that every later `evaluate` of the
    # seed refused as damaged; they are written beside and renamed
    import json
    import os

    _write_seed(tmp_path, 0, {"global": 0.5})
    seed_dir = tmp_path / "seed0"
    before = {p.name: p.read_text() for p in seed_dir.iterdir()}

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _write_seed(tmp_path, 0, {"global": 0.9})
    assert {p.name: p.read_text() for p in seed_dir.iterdir()} == before  # no .tmp left
    assert json.loads(before["results.json"])["runs"][0]["downstream"][0]["edema_auc"] == 0.5
