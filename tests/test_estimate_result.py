"""Using an estimate_mi result later: pointwise MI of new pairs, save and load (safe format),
the training-history plot, progress, diagnostics and what the interval claims."""

from __future__ import annotations

import math
import pickle
import sys
import warnings

import numpy as np
import pytest
import torch

from mitools import CorrelatedGaussian
from mitools.critics import SeparableCritic
from mitools.estimate import Diagnostics, MIEstimate, estimate_mi, load_estimate
from mitools.estimate.result import HistoryPoint
from mitools.estimate.stats import t_quantile

FAST = dict(max_steps=40, eval_every=20, folds=3, hidden=(16,), embed_dim=8, threads=1)


def _fit(n: int = 600, mi: float = 0.5, **kwargs):
    x, y = CorrelatedGaussian(2, mi).sample(n, generator=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        options = {**FAST, **kwargs}
        if isinstance(options.get("critic"), torch.nn.Module):  # it keeps its own widths
            del options["hidden"], options["embed_dim"]
        return x, y, estimate_mi(x, y, **options)


@pytest.fixture(scope="module")
def fitted():
    return _fit(screen=False)


# --- pointwise MI ----------------------------------------------------------------------------


def test_pointwise_mean_over_a_folds_test_pairs_is_its_held_out_bound(fitted) -> None:
    x, y, r = fitted
    for k, fold in enumerate(r.folds):
        test = fold.split.test
        pmi = r.pointwise(x[test], y[test], fold=k)
        assert float(pmi.mean()) == pytest.approx(fold.held_out, abs=2e-5)


def test_pointwise_accepts_numpy_and_averages_folds(fitted) -> None:
    x, y, r = fitted
    mean = r.pointwise(x[:50].numpy(), y[:50].numpy())
    each = torch.stack([r.pointwise(x[:50], y[:50], fold=k) for k in range(len(r.folds))])
    assert mean.dtype == torch.float64 and mean.shape == (50,)
    torch.testing.assert_close(mean, each.mean(0))


def test_pointwise_tracks_the_true_pointwise_mi() -> None:
    task = CorrelatedGaussian(2, 1.0)
    x, y = task.sample(1500, generator=1)
    r = estimate_mi(x, y, max_steps=200, eval_every=50, folds=3, threads=1)
    xn, yn = task.sample(500, generator=2)  # new pairs
    pmi = r.pointwise(xn, yn)
    true = task.optimal_critic(xn, yn).diagonal().double()
    assert float(torch.corrcoef(torch.stack([pmi, true]))[0, 1]) > 0.95
    assert abs(float(pmi.mean() - true.mean())) < 0.15


def test_pointwise_errors_name_the_problem(fitted) -> None:
    x, y, r = fitted
    with pytest.raises(ValueError, match=r"fold must be an int in \[0, 2\], got 3"):
        r.pointwise(x, y, fold=3)
    with pytest.raises(ValueError, match=r"x must have 2 columns like the fitted x, got "
                                         r"shape \(\d+, 1\)$"):
        r.pointwise(x[:, :1], y)
    # one pair as 1-D arrays (a new user): it said "x and y must hold the same number of
    # pairs: got x of shape (2, 1) and y of shape (1, 1)"
    with pytest.raises(ValueError, match=r"got shape \(2,\): a 1-D input is read as 2 samples "
                                         r"of one column; pass one pair as a row, x\[None, :\]"):
        r.pointwise(x[0], y[0])
    assert r.pointwise(x[None, 0], y[None, 0]).shape == (1,)
    with pytest.raises(ValueError, match="same number of pairs"):
        r.pointwise(x[:5], y[:4])
    classical = MIEstimate(value=1.0, stderr=0.1, interval=(0.8, 1.2), level=0.95, method="ksg")
    with pytest.raises(ValueError, match="needs a neural estimate"):
        classical.pointwise(x, y)


# --- save and load ---------------------------------------------------------------------------


def test_save_and_load_give_back_the_estimate_and_its_critics(fitted, tmp_path) -> None:
    x, y, r = fitted
    path = tmp_path / "estimate.pt"
    r.save(path)
    back = MIEstimate.load(path)
    for name in ("value", "stderr", "interval", "level", "method", "uncertainty", "bound",
                 "held_out", "in_sample", "optimism", "report", "sided", "settings"):
        assert getattr(back, name) == getattr(r, name), name
    assert back.diagnostics == r.diagnostics
    for a, b in zip(r.folds, back.folds, strict=True):
        torch.testing.assert_close(torch.tensor(a.history), torch.tensor(b.history),
                                   equal_nan=True)
        assert (a.best_step, a.gain_over_start) == (b.best_step, b.gain_over_start)
        assert all(torch.equal(p, q) for p, q in zip(a.split, b.split, strict=True))
        assert type(a.critic) is type(b.critic) and not b.critic.training
    torch.testing.assert_close(back.pointwise(x[:20], y[:20]), r.pointwise(x[:20], y[:20]))


def test_a_screened_estimate_saves_and_loads(tmp_path) -> None:
    _, _, r = _fit(n=1500, max_steps=60)
    assert r.diagnostics.untrained_folds == 2
    r.save(tmp_path / "screened.pt")
    back = MIEstimate.load(tmp_path / "screened.pt")
    assert back.diagnostics == r.diagnostics and back.settings["screen"] is True
    assert [f.steps for f in back.folds] == [f.steps for f in r.folds]
    assert back.folds[0].held_out_gain == r.folds[0].held_out_gain <= 2.0
    assert all(math.isnan(f.held_out_gain) for f in back.folds[1:])
    assert back.value == r.value


def test_the_file_loads_with_weights_only(fitted, tmp_path) -> None:
    _, _, r = fitted
    path = tmp_path / "estimate.pt"
    r.save(path)
    payload = torch.load(path, weights_only=True)  # tensors and plain values only
    assert payload["format"] == "mitools.MIEstimate"


def test_a_file_from_before_screening_loads_with_the_new_fields_unknown(fitted,
                                                                          tmp_path) -> None:
    """Files written before FoldResult.gain_over_start and Diagnostics.untrained_folds
    existed load, with NaN and 0 for them."""
    _, _, r = fitted
    path = tmp_path / "estimate.pt"
    r.save(path)
    payload = torch.load(path, weights_only=True)
    for fold in payload["folds"]:
        del fold["gain_over_start"], fold["held_out_gain"]
    del payload["diagnostics"]["untrained_folds"]
    torch.save(payload, path)
    back = load_estimate(path)
    assert all(math.isnan(f.gain_over_start) and math.isnan(f.held_out_gain)
               for f in back.folds)
    assert back.diagnostics.untrained_folds == 0 and back.value == r.value


def test_a_stop_at_the_screens_check_saves_and_loads(tmp_path, monkeypatch) -> None:
    """FoldResult.stopped_at_check survives saving; a file written before it existed loads
    with False."""
    from mitools.estimate import fit

    monkeypatch.setattr(fit, "SCREEN_CHECK_STEP", 40)
    monkeypatch.setattr(fit, "_screen_check_gain", lambda *a: 1.0)
    _, _, r = _fit(n=1500, max_steps=60)
    assert [f.stopped_at_check for f in r.folds] == [True, False, False]
    path = tmp_path / "checked.pt"
    r.save(path)
    assert [f.stopped_at_check for f in load_estimate(path).folds] == [True, False, False]
    payload = torch.load(path, weights_only=True)
    for fold in payload["folds"]:
        del fold["stopped_at_check"]
    torch.save(payload, path)
    assert not any(f.stopped_at_check for f in load_estimate(path).folds)
    # other fields stay required: a file without them is refused, not loaded with defaults
    del payload["folds"][0]["held_out"]
    torch.save(payload, path)
    with pytest.raises(KeyError, match="held_out"):
        load_estimate(path)


class _Payload:
    def __reduce__(self):
        return (print, ("this ran while loading",))


def test_a_file_holding_other_objects_is_refused_and_named(tmp_path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": "mitools.MIEstimate", "version": 1, "x": _Payload()}, path)
    with pytest.raises(ValueError, match=r"evil\.pt: refused: not a mitools estimate, nor a "
                                         r"file of tensors and plain values"):
        load_estimate(path)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match=r"other\.pt: not a mitools estimate"):
        load_estimate(other)
    with pytest.raises(FileNotFoundError):
        load_estimate(tmp_path / "missing.pt")
    assert pickle  # the refused payload is a pickle reduce hook


@pytest.mark.parametrize(("content", "error"), [(b"hello", "KeyError: 101"), (b"", "EOFError"),
                                                 (b"a,b\n1,2\n", "IndexError")])
def test_files_that_are_not_estimates_are_a_value_error(tmp_path, content, error) -> None:
    """Regression (third tryout): a text file raised KeyError: 101, an empty one a bare
    EOFError and a CSV IndexError, where the docstring promises a ValueError."""
    path = tmp_path / "notes.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"notes\.pt: refused: not a mitools estimate.*{error}"):
        load_estimate(path)
    with pytest.raises(IsADirectoryError):
        load_estimate(tmp_path)


def test_numpy_scalar_options_save_and_load_back(tmp_path) -> None:
    """Regression (third tryout): clip=np.float64(5.0) saved silently and the file was refused
    on loading (weights_only refuses numpy scalars; its message held terminal colour codes)."""
    _, _, r = _fit(bound="smile", clip=np.float64(5.0))
    r.save(tmp_path / "np.pt")
    back = load_estimate(tmp_path / "np.pt")
    assert back.settings["bound_kwargs"] == {"clip": 5.0} and back.settings["bound"] == "smile"
    assert type(back.settings["bound_kwargs"]["clip"]) is float and back.value == r.value


def test_what_load_could_not_read_is_refused_when_saving(tmp_path) -> None:
    _, _, r = _fit()
    r.settings["note"] = _Payload()  # an object nobody should store: refused before writing
    with pytest.raises(ValueError, match=r"cannot save this estimate: load\(\) could not read "
                                         r"it back.*result\.settings"):
        r.save(tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def test_custom_critics_load_into_a_given_template(tmp_path) -> None:
    critic = SeparableCritic(2, 2, hidden=(8,), embed_dim=4)
    x, y, r = _fit(critic=critic)
    path = tmp_path / "custom.pt"
    r.save(path)
    with pytest.raises(ValueError, match="custom critic module; pass one of the same kind as "
                                         "critic="):
        load_estimate(path)
    back = load_estimate(path, critic=SeparableCritic(2, 2, hidden=(8,), embed_dim=4))
    torch.testing.assert_close(back.pointwise(x[:10], y[:10]), r.pointwise(x[:10], y[:10]))


@pytest.mark.parametrize(("option", "value"), [("critic", "quadratic"), ("bound", "dv"),
                                               ("critic", 3)])
def test_load_names_a_critic_or_bound_that_is_not_a_module(fitted, tmp_path, option,
                                                            value) -> None:
    """Regression (eleventh tryout): ``load(path, bound="dv")`` or ``critic="quadratic"``
    failed with ``AttributeError: 'str' object has no attribute 'to'``."""
    path = tmp_path / "r.pt"
    fitted[2].save(path)
    with pytest.raises(TypeError, match=f"load: {option}= takes a .* leave {option}=None"):
        MIEstimate.load(path, **{option: value})


def test_a_separable_residual_is_rebuilt_as_it_was(tmp_path) -> None:
    x, y, r = _fit(residual="separable")
    r.save(tmp_path / "s.pt")
    back = load_estimate(tmp_path / "s.pt")
    assert type(back.critic) is type(r.critic)
    torch.testing.assert_close(back.pointwise(x[:10], y[:10]), r.pointwise(x[:10], y[:10]))


def test_discrete_margins_survive_saving(tmp_path) -> None:
    g = torch.Generator().manual_seed(0)
    c = torch.randint(0, 3, (600,), generator=g)
    x = c.double()[:, None] + torch.randn(600, 1, generator=g, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = estimate_mi(x, c, discrete_y=True, **FAST)
    r.save(tmp_path / "d.pt")
    back = load_estimate(tmp_path / "d.pt")
    torch.testing.assert_close(back.pointwise(x[:9], c[:9]), r.pointwise(x[:9], c[:9]))
    with pytest.raises(ValueError, match=r"y row 0 holds \[5\], not one of the 3 categories"):
        back.pointwise(x[:1], torch.tensor([5]))


# --- the plot ------------------------------------------------------------------------------


def test_plot_history_draws_every_fold(fitted) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    _, _, r = fitted
    ax = r.plot_history()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:3] == ["fold 1: validation", "fold 2: validation", "fold 3: validation"]
    assert r.diagnostics.untrained_folds == 0  # screen=False: every fold trains
    assert labels[-1].startswith("estimate ")
    # the kept step of each fold is marked, with what that critic scored held out
    assert "kept critic: validation" in labels and "kept critic: held out" in labels
    crosses = [line for line in ax.get_lines() if line.get_marker() == "x"]
    assert sorted(float(c.get_ydata()[0]) for c in crosses) == sorted(f.held_out for f in r.folds)
    assert [int(c.get_xdata()[0]) for c in crosses] == [f.best_step for f in r.folds]
    import matplotlib.pyplot as plt

    plt.close("all")


def test_plot_history_names_the_folds_the_screen_left_untrained() -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    _, _, r = _fit(n=1500, max_steps=60)
    assert r.diagnostics.untrained_folds == 2
    labels = [t.get_text() for t in r.plot_history().get_legend().get_texts()]
    assert labels[:3] == ["fold 1: validation", "fold 2: untrained (screen)",
                          "fold 3: untrained (screen)"]
    import matplotlib.pyplot as plt

    plt.close("all")


def test_plot_history_names_an_ax_that_is_not_an_axes(fitted) -> None:
    # regression (eleventh tryout): ax=3 raised a bare "'int' object has no attribute 'plot'"
    pytest.importorskip("matplotlib").use("Agg")
    _, _, r = fitted
    with pytest.raises(TypeError, match=r"ax must be a matplotlib Axes .* or None, got int"):
        r.plot_history(ax=3)


def test_plot_history_without_matplotlib_says_how_to_install(fitted, monkeypatch) -> None:
    _, _, r = fitted
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        r.plot_history()


def test_pointwise_matches_dataframe_columns_by_name_and_keeps_them_on_load(tmp_path) -> None:
    pd = pytest.importorskip("pandas")
    rng = torch.Generator().manual_seed(0)
    x = torch.randn(600, 2, generator=rng, dtype=torch.float64)
    y = x[:, :1] + 0.5 * torch.randn(600, 1, generator=rng, dtype=torch.float64)  # x1 matters
    frame = pd.DataFrame({"x1": x[:, 0].numpy(), "x2": x[:, 1].numpy()})
    target = pd.DataFrame({"y": y[:, 0].numpy()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = estimate_mi(frame, target, **FAST)
    assert r.settings["x_columns"] == ["x1", "x2"] and r.settings["y_columns"] == ["y"]
    new = frame.iloc[:50]
    right = r.pointwise(new, target.iloc[:50])
    # the same columns in another order: put back in the fitted order, the same answer
    assert torch.equal(r.pointwise(new[["x2", "x1"]], target.iloc[:50]), right)
    # by position, an array in the wrong order gives another answer: names are what protect
    assert not torch.allclose(r.pointwise(new[["x2", "x1"]].to_numpy(), target.iloc[:50]), right)
    assert torch.equal(r.pointwise(new.to_numpy(), target["y"].iloc[:50].to_numpy()), right)
    with pytest.raises(ValueError, match=r"x has columns \['x1', 'x3'\], but the estimate was "
                                         r"fitted on x columns \['x1', 'x2'\].*missing \['x2'\]"):
        r.pointwise(new.rename(columns={"x2": "x3"}), target.iloc[:50])
    with pytest.raises(ValueError, match=r"y has columns \['z'\].*fitted on y columns \['y'\]"):
        r.pointwise(new, target["y"].iloc[:50].rename("z"))  # a named Series: its name counts
    path = tmp_path / "named.pt"
    r.save(path)
    loaded = MIEstimate.load(path)
    assert loaded.settings["x_columns"] == ["x1", "x2"]
    assert torch.equal(loaded.pointwise(new[["x2", "x1"]], target.iloc[:50]), right)
    with pytest.raises(ValueError, match="fitted on x columns"):
        loaded.pointwise(new[["x1"]].assign(other=0.0), target.iloc[:50])


def test_fits_on_arrays_take_new_columns_by_position(fitted) -> None:
    pd = pytest.importorskip("pandas")
    x, y, r = fitted
    assert r.settings["x_columns"] is None and r.settings["y_columns"] is None
    frame = pd.DataFrame(x[:5].numpy(), columns=["b", "a"])
    assert torch.equal(r.pointwise(frame, y[:5]), r.pointwise(x[:5], y[:5]))


# --- what the result claims, diagnostics, progress -------------------------------------------


def test_the_interval_is_a_lower_bound_by_default_and_two_sided_on_request(fitted) -> None:
    x, y, r = fitted
    assert r.sided == "lower" and r.interval[1] == math.inf
    assert r.interval[0] == pytest.approx(r.value - t_quantile(0.95, 19) * r.stderr)
    assert "lower confidence bound" in str(r) and "one-sided" in r.uncertainty
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        two = estimate_mi(x, y, sided="two-sided", **FAST)
    half = t_quantile(0.975, 19) * two.stderr
    assert two.interval == pytest.approx((two.value - half, two.value + half))
    assert two.value == r.value and "interval [" in str(two)


def test_unfinished_training_is_flagged_and_says_what_to_change() -> None:
    x, y = CorrelatedGaussian(1, 1.5).sample(600, generator=0)
    with pytest.warns(RuntimeWarning, match=r"ran to max_steps=20 while the validation bound "
                                            r"was still improving.*raise max_steps"):
        r = estimate_mi(x, y, critic="separable", max_steps=20, eval_every=10, folds=2,
                        hidden=(16,), embed_dim=8, threads=1)
    assert isinstance(r.diagnostics, Diagnostics) and r.diagnostics.unconverged_folds >= 1
    assert r.diagnostics.likely_misspecified
    assert not all(f.converged for f in r.folds)


def test_diverged_training_is_flagged() -> None:
    """Regression (third tryout): with lr=1e3 the first fold's validation bound reached -1e21
    nats, the screen kept the Gaussian start, and the estimate read -0.0000 +- 0.0007 with no
    flag and no warning (the data hold 0.85 nats). The flag counts folds from 1, as the
    progress bar and plot_history do, and gives the index (it said "fold 0")."""
    rng = np.random.default_rng(9)
    x = rng.normal(size=600)
    y = np.sin(3 * x) + 0.3 * rng.normal(size=600)
    with pytest.warns(RuntimeWarning, match=r"1 of 3 folds' validation bound fell far below the "
                                            r"initial critic's during training \(fold 1, "
                                            r"result\.folds\[0\]: to "
                                            r"-.*e\+\d+ nats.*diverged.*lower lr"):
        r = estimate_mi(x, y, lr=1e3, threads=1)
    assert r.diagnostics.diverged_folds == 1


@pytest.mark.parametrize("bound", ["nwj", "tuba"])
def test_an_overflowing_bound_is_a_diverged_fold_not_a_crash(bound) -> None:
    """Regression (review): with bound='nwj' or 'tuba' and lr=1 the exp term overflowed, the
    next step's scores were NaN, and estimate_mi stopped with 'scores hold a non-finite
    value (nan)', about its own critic. Training now stops before such a step; the fold
    keeps its best critic so far and is flagged."""
    rng = np.random.default_rng(9)
    x = rng.normal(size=600)
    y = np.sin(3 * x) + 0.3 * rng.normal(size=600)
    with pytest.warns(RuntimeWarning, match=r"diverged.*lower lr"):
        r = estimate_mi(x, y, bound=bound, lr=1.0, threads=1)
    assert r.diagnostics.diverged_folds >= 1
    assert math.isfinite(r.value)
    assert all(f.history[-1].val == -math.inf for f in r.folds if f.steps)


def test_a_spike_after_training_beat_the_start_is_not_divergence() -> None:
    """Regression (review): NWJ's validation history [-0.52, 1.53, 3.12, 3.06, -11.02] kept a
    trained critic (held out 3.08) and was flagged as diverged, with advice to lower lr beside
    the unconverged flag's advice to raise it."""
    from types import SimpleNamespace

    from mitools.estimate.diagnostics import diagnose

    spiked = [HistoryPoint(0, math.nan, -0.52)] + [
        HistoryPoint(100 * i, v, v) for i, v in enumerate([1.53, 3.12, 3.06, -11.02], 1)]
    fold = SimpleNamespace(held_out=3.08, in_sample=3.1, start_held_out=-0.52, converged=True,
                           steps=400, best_step=200, history=spiked,
                           split=SimpleNamespace(test=range(600)))
    assert diagnose([fold] * 3, value=3.09, stderr=0.05, max_steps=600).diverged_folds == 0
    kept_start = SimpleNamespace(**{**vars(fold), "best_step": 0})
    assert diagnose([kept_start] * 3, value=3.09, stderr=0.05, max_steps=600).diverged_folds == 3


def test_the_gaussian_start_is_not_blamed_when_the_start_was_random() -> None:
    """Regression (third tryout): with init="random" (a separable critic) on Gaussian data,
    residual_share was 1.22 and a flag said that "training beyond the Gaussian start" showed
    non-Gaussian dependence; there was no Gaussian start."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    y = x[:, :1] + rng.normal(size=(400, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = estimate_mi(x, y, critic="separable", max_steps=100, eval_every=50,
                        dtype=torch.float64, threads=1)
    assert r.settings["init"] == "random" and math.isnan(r.diagnostics.residual_share)
    assert not any("Gaussian start" in flag for flag in r.diagnostics.flags)


def test_gaussian_data_raise_no_flags() -> None:
    x, y = CorrelatedGaussian(2, 1.0).sample(1500, generator=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        r = estimate_mi(x, y, max_steps=300, eval_every=50, folds=3, threads=1)
    assert r.diagnostics.flags == ()
    assert abs(r.diagnostics.residual_share) < 0.1


def test_progress_without_tqdm_warns_once_and_points_at_the_caller(monkeypatch) -> None:
    from mitools.classical import ksg, mixed_ksg

    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    x, y = CorrelatedGaussian(1, 0.5).sample(200, generator=0)
    for fit in (lambda: estimate_mi(x, y, progress=True, max_steps=20, eval_every=10, folds=2,
                                    threads=1),
                lambda: ksg(x.numpy(), y.numpy(), progress=True),
                lambda: ksg(x.numpy(), y.numpy(), progress=True, algorithm="brute"),
                lambda: mixed_ksg(x.numpy(), y.numpy(), progress=True)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit()
        tqdm_warnings = [w for w in caught if "needs tqdm" in str(w.message)]
        assert len(tqdm_warnings) == 1, [str(w.message) for w in caught]
        assert "progress=True needs tqdm" in str(tqdm_warnings[0].message)
        assert "pip install tqdm" in str(tqdm_warnings[0].message)
        assert tqdm_warnings[0].filename == __file__
    with warnings.catch_warnings():  # nothing asked for, nothing said
        warnings.simplefilter("error")
        ksg(x.numpy(), y.numpy())


def test_progress_bar_shows_the_estimate_so_far(fitted, capsys) -> None:
    pytest.importorskip("tqdm")
    x, y, _ = fitted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        estimate_mi(x, y, progress=True, **FAST)
    err = capsys.readouterr().err
    assert "fold_val=" in err and "estimate=" in err and "folds" in err


class _Terminal:
    """A stderr that says it is a terminal and keeps what is written to it."""

    def __init__(self) -> None:
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self.text += s
        return len(s)

    def flush(self) -> None:
        pass


def test_the_default_progress_bar_shows_on_a_terminal_only(fitted, monkeypatch, capsys) -> None:
    """``progress=None`` (the default): a bar where stderr is a terminal, none in a pipe,
    a log file or captured output, and no word about tqdm where it is missing."""
    from mitools.classical import ksg

    pytest.importorskip("tqdm")
    x, y, _ = fitted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        estimate_mi(x, y, **FAST)  # capsys: not a terminal
        ksg(x.numpy(), y.numpy())
        assert capsys.readouterr().err == ""
        terminal = _Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        estimate_mi(x, y, **FAST)
        assert "estimate_mi[dv]" in terminal.text and "fold_val=" in terminal.text
        terminal.text = ""
        ksg(x.numpy(), y.numpy())
        assert "ksg1: fit and jackknife" in terminal.text and "/11 " in terminal.text  # fit + 10
        terminal.text = ""
        estimate_mi(x, y, progress=False, **FAST)
        assert terminal.text == ""
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not asked for: no bar, no warning
        ksg(x.numpy(), y.numpy())
    assert terminal.text == ""


def test_progress_refuses_what_is_not_true_false_or_none(fitted) -> None:
    x, y, _ = fitted
    for value in (1, 0, "yes"):
        with pytest.raises(ValueError, match=r"progress must be True, False or None \(a bar "
                                             r"when stderr is a terminal\), got"):
            estimate_mi(x, y, progress=value, **FAST)


def test_the_non_gaussian_flag_names_each_number() -> None:
    # it read "91 % of the held-out bound was learned beyond the Gaussian fit (-0.002 nats)"
    from types import SimpleNamespace

    from mitools.estimate.diagnostics import diagnose

    folds = [SimpleNamespace(held_out=0.30, in_sample=0.34, start_held_out=-0.002,
                             converged=True, steps=300, best_step=300,
                             history=_history(-0.002, 0.31),
                             split=SimpleNamespace(test=range(100)))] * 3
    d = diagnose(folds, value=0.32, stderr=0.01, max_steps=2000)
    assert len(d.flags) == 1, d.flags
    flag = d.flags[0]
    assert "the Gaussian start scored -0.002 nats held out, the trained critics 0.300" in flag
    assert "made 94 % of the held-out bound" in flag and "pairs 0.040 nats higher" in flag


def _history(start: float, trained: float) -> list[HistoryPoint]:
    return [HistoryPoint(0, math.nan, start), HistoryPoint(300, trained, trained)]


def _folds(held_out: float, in_sample: float, start: float, n_test: int = 100):
    from types import SimpleNamespace

    return [SimpleNamespace(held_out=held_out, in_sample=in_sample, start_held_out=start,
                            converged=True, steps=300, best_step=300,
                            history=_history(start, held_out),
                            split=SimpleNamespace(test=range(n_test)))] * 3


def test_an_estimate_near_zero_is_flagged_with_a_share_that_says_what_it_is_of() -> None:
    """Regression (review): independent data (estimate -0.0036) was flagged "the critics
    score their own training pairs 0.017 nats higher than new pairs (17 % of the
    estimate)": a share of 0.05 nats, the floor, not of the estimate. And (second review)
    the flag must stay where the estimate is small and the fit poor: n = 120 of
    y = sin(3x) + 0.3 noise gave 0.154 with stderr 0.094 and an optimism of 0.279."""
    from mitools.estimate.diagnostics import diagnose

    d = diagnose(_folds(-0.0122, 0.0050, 0.0), value=-0.0036, stderr=0.004, max_steps=2000)
    assert len(d.flags) == 1
    assert "(17 % of 0.05 nats, the scale taken for an estimate near 0)" in d.flags[0]
    d = diagnose(_folds(-0.125, 0.433, 0.05), value=0.154, stderr=0.094, max_steps=2000)
    assert len(d.flags) == 1 and "% of the estimate)" in d.flags[0]
    d = diagnose(_folds(0.30, 0.40, 0.29), value=0.35, stderr=0.01, max_steps=2000)
    assert len(d.flags) == 1 and "own training pairs 0.100 nats higher" in d.flags[0]


def test_an_estimate_beyond_what_the_test_parts_can_certify_is_flagged() -> None:
    """Regression (review): X + 0.01 noise against X, 5 columns, n = 300 (true MI 23 nats):
    the DV bound reported 519 nats, interval from 341, with no warning."""
    from mitools.estimate.diagnostics import diagnose

    # 100 test samples per fold: log(100 * 99) = 9.2 nats can be told apart
    d = diagnose(_folds(519.0, 520.0, 40.0), value=519.2, stderr=100.0, max_steps=100)
    assert any("exceeds log(n_test (n_test - 1)) = 9.2 nats" in f for f in d.flags)
    d = diagnose(_folds(9.0, 9.1, 9.0), value=9.05, stderr=0.1, max_steps=100)
    assert not any("n_test" in f for f in d.flags)


def test_perfectly_dependent_columns_give_a_finite_flagged_estimate() -> None:
    """Regression (review): estimate_mi(X, X) with 2 columns failed: "dv: scores hold a
    non-finite value (-inf)" (the jackknife's sums without one group underflowed). It is
    flagged as an exact relation (infinite MI)."""
    import numpy as np

    from mitools.estimate import estimate_mi

    x = np.random.default_rng(0).standard_normal((300, 2))
    with pytest.warns(RuntimeWarning, match=r"exact linear function of x .* infinite"):
        r = estimate_mi(x, x, max_steps=100, eval_every=50, threads=1)
    assert math.isfinite(r.value) and r.value > 9.2  # above log(n_test (n_test - 1))
    # ... but not also called "possibly far too high" (tryout: two warnings contradicted
    # each other, "a lower figure" and "may be far too high", at 12.8 nats for n = 1,000)
    assert not any("far too high" in f for f in r.diagnostics.flags)


def test_loading_checks_the_kind_of_bound_and_the_critic_architecture(tmp_path) -> None:
    """Regression (review): an estimate made with SMILE loaded with bound=DV() silently (its
    ``bound`` said 'smile', its folds held DV), and a critic of another architecture failed
    with torch's raw load_state_dict error."""
    import numpy as np
    import torch

    from mitools.critics import SeparableCritic
    from mitools.estimate import MIEstimate, estimate_mi
    from mitools.estimators import get_estimator

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    y = x[:, :1] + rng.normal(size=(300, 1))
    fast = dict(max_steps=20, eval_every=10, threads=1)
    with pytest.warns(RuntimeWarning):
        estimate_mi(x, y, bound=get_estimator("smile", clip=5.0), **fast).save(tmp_path / "s.pt")
        estimate_mi(x, y, critic=SeparableCritic(2, 1, hidden=(8,), embed_dim=4),
                    **fast).save(tmp_path / "c.pt")
    with pytest.raises(ValueError, match="made with the bound 'smile'; bound= must be one of "
                                         "that kind, got 'dv'"):
        MIEstimate.load(tmp_path / "s.pt", bound=get_estimator("dv"))
    assert MIEstimate.load(tmp_path / "s.pt", bound=get_estimator("smile", clip=5.0)).bound == (
        "smile")
    with pytest.raises(ValueError, match=r"c\.pt: the saved critic does not fit Bilinear"):
        MIEstimate.load(tmp_path / "c.pt", critic=torch.nn.Bilinear(2, 1, 1))


def test_small_classes_of_a_discrete_variable_are_refused_and_constants_warn() -> None:
    """Regression (review): 500 classes of 2 samples with discrete_x=True gave -1.7 nats,
    with the advice to pass discrete_x=True; a constant y gave 0 +- 0 with advice to raise
    max_steps and nothing about y."""
    import numpy as np

    from mitools.estimate import estimate_mi

    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"x's 500 classes hold 2\.0 samples each on average"):
        estimate_mi(np.repeat(np.arange(500), 2), rng.normal(size=(1000, 2)), discrete_x=True)
    with pytest.warns(RuntimeWarning, match="y is constant"):
        r = estimate_mi(rng.normal(size=300), np.ones(300), max_steps=20, eval_every=10,
                        threads=1)
    assert r.value == 0.0


@pytest.mark.parametrize("bound, why", [
    ("club", "but it is an upper bound"), ("ba", "but it is a generative estimator"),
    ("jsd", "but it is not in nats")])
def test_a_refused_bound_is_told_its_own_reason(bound, why) -> None:
    """Regression (review): every refusal ended "... while jsd is not in nats"."""
    import numpy as np

    from mitools.estimate import estimate_mi

    with pytest.raises(ValueError, match=why) as caught:
        estimate_mi(np.zeros(100), np.zeros(100), bound=bound)
    assert ("jsd" in str(caught.value).split("Bounds")[0]) == (bound == "jsd")


def test_unconverged_folds_on_repeated_rows_are_not_told_to_train_longer() -> None:
    """Found by a new user: 250 rows, each 4 times, read 2.79 nats of 1.02, and the summary
    advised raising max_steps, which learns the copies further."""
    from types import SimpleNamespace

    from mitools.estimate.diagnostics import diagnose

    folds = [SimpleNamespace(held_out=2.7, in_sample=2.9, start_held_out=1.0,
                             converged=False, steps=2000, best_step=2000,
                             history=_history(1.0, 2.7),
                             split=SimpleNamespace(test=range(300)))] * 3
    plain = diagnose(folds, value=2.79, stderr=0.05, max_steps=2000)
    assert any("raise max_steps (e.g. to 4000)" in f for f in plain.flags), plain.flags
    copied = diagnose(folds, value=2.79, stderr=0.05, max_steps=2000, repeated=True)
    unconverged = [f for f in copied.flags if "ran to max_steps" in f]
    assert len(unconverged) == 1 and "raise max_steps (" not in unconverged[0]
    assert "remove the repeated rows rather than raise max_steps" in unconverged[0]


def test_estimate_mi_passes_repeated_rows_to_the_diagnostics() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((250, 1))
    y = 0.933 * x + 0.36 * rng.standard_normal((250, 1))
    with pytest.warns(UserWarning, match="750 of 1000 .* rows repeat an earlier row"):
        r = estimate_mi(np.repeat(x, 4, axis=0), np.repeat(y, 4, axis=0), max_steps=10,
                        screen=False, threads=1, seed=0)
    unconverged = [f for f in r.diagnostics.flags if "ran to max_steps=10" in f]
    assert unconverged and "remove the repeated rows" in unconverged[0], r.diagnostics.flags


def test_a_constant_variable_trains_nothing_and_gets_exactly_zero_without_an_interval(
        tmp_path) -> None:
    """Regression (carried over): a constant y trained every fold (3.8 s at n = 2,000) and read
    -0.0000 with a 'slightly below zero' warning beside the constant one, and an interval
    (-7e-09, inf); the classical estimators answer exactly 0 with no interval."""
    import math
    import warnings

    import numpy as np

    from mitools.estimate import MIEstimate, estimate_mi

    x = np.random.default_rng(0).normal(size=(2000, 3))
    for args, named in (((x, np.full((2000, 1), 5.0)), "y"), ((np.ones(2000), x), "x"),
                        ((np.ones(2000), np.zeros(2000)), "x and y are")):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            r = estimate_mi(*args, progress=False, threads=1)
        messages = [str(w.message) for w in seen]
        assert all("is constant" in m for m in messages), messages
        assert r.value == 0.0 and math.isnan(r.stderr) and all(map(math.isnan, r.interval))
        assert r.folds == () and r.method == "neural" and r.bound == "dv"
        assert r.uncertainty.startswith(f"none: {named}") and "exactly 0" in r.uncertainty
        assert "(no interval)" in str(r)
    with pytest.raises(ValueError, match="has none: x and y are constant"):
        r.pointwise(np.ones(3), np.zeros(3))
    r.save(tmp_path / "constant.pt")
    back = MIEstimate.load(tmp_path / "constant.pt")
    assert back.value == 0.0 and back.folds == () and back.uncertainty == r.uncertainty


def test_too_few_samples_of_a_constant_are_refused_without_the_constant_warning() -> None:
    """Tryout 6: on 10 samples with y constant, estimate_mi warned 'y is constant ... the
    estimate is 0' and then raised that it needs more samples."""
    import warnings

    import numpy as np

    from mitools.estimate import estimate_mi

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="needs at least 10 samples per fold"):
            estimate_mi(np.random.default_rng(0).normal(size=10), np.ones(10))
