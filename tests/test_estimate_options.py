"""Tests of mitools.estimate.options: estimate_mi's options, refused before anything is fitted."""

from __future__ import annotations

import pytest
import torch

from mitools import CorrelatedGaussian
from mitools.estimate import estimate_mi

FAST = dict(folds=2, max_steps=20, eval_every=10, threads=1)


def _data(n: int = 300):
    return CorrelatedGaussian(1, 0.5).sample(n, generator=0)


@pytest.mark.parametrize("constant", [False, True])
@pytest.mark.parametrize(("critic", "hidden", "error", "match"), [
    (3, (64, 64), TypeError, "critic must be a name .* or an nn.Module.*got int 3"),
    (None, (64, 64), TypeError, "critic must be a name"),
    ("bogus", (64, 64), ValueError, "unknown critic 'bogus'.*'separable'"),
    ("quad", (64, 64), ValueError, "Did you mean 'quadratic'"),
    ("concat", (), ValueError, "critic='concat' needs at least one hidden layer"),
])
def test_a_bad_critic_is_refused_before_anything_is_fitted(
        constant: bool, critic: object, hidden: tuple, error: type, match: str) -> None:
    """Regression (eleventh tryout): ``critic=3`` failed with ``AttributeError: 'int' object
    has no attribute 'lower'``, and an unknown name or ``"concat"`` with ``hidden=()`` was
    only refused when the first critic was built: with a constant ``x`` (nothing trained)
    ``estimate_mi`` answered 0.0 for any of them."""
    x, y = _data()
    if constant:
        x = torch.zeros_like(x)
    with pytest.raises(error, match=match):
        estimate_mi(x, y, critic=critic, hidden=hidden, **FAST)


def test_a_critic_name_is_read_as_get_critic_reads_it() -> None:
    """Regression (eleventh tryout): ``critic=" Quadratic "`` passed ``get_critic`` (which
    strips and lowers names) but not estimate_mi's own test for the quadratic critic: it got
    a random start instead of the Gaussian one (init='random' in the settings) and the
    default widths instead of ``hidden``. It is the quadratic critic, as ``"quadratic"``."""
    x, y = _data()
    padded = estimate_mi(x, y, critic=" Quadratic ", hidden=(8,), **FAST)
    plain = estimate_mi(x, y, critic="quadratic", hidden=(8,), **FAST)
    assert padded.settings["critic"] == "quadratic" and padded.settings["init"] == "gaussian"
    assert padded.value == plain.value


def _module():
    from mitools.critics import SeparableCritic

    return SeparableCritic(1, 1)


@pytest.mark.parametrize(("options", "named"), [
    # a critic module keeps its own networks (hidden=() too: it has its own)
    (dict(critic="module", hidden=(128,)), r"hidden=\(128,\) would shape nothing: "
                                           r"critic=SeparableCritic\(...\) is a module"),
    (dict(critic="module", hidden=()), r"hidden=\(\) would shape nothing"),
    (dict(critic="module", embed_dim=8), "embed_dim=8 would shape nothing"),
    (dict(critic="module", hidden=[32, 32], embed_dim=16),
     r"hidden=\(32, 32\) and embed_dim=16 would shape nothing"),
    # named critics without the networks these shape
    (dict(critic="bilinear", hidden=(8,)), r"hidden=\(8,\) .*'bilinear' is x\^T W y"),
    (dict(critic="bilinear", embed_dim=3), "embed_dim=3 .*'bilinear'"),
    (dict(critic="concat", embed_dim=3), "embed_dim=3 .*'concat' has no embedding"),
    (dict(residual=None, hidden=(8,)), r"hidden=\(8,\) .*residual=None leaves"),
    (dict(residual=None, embed_dim=3), "embed_dim=3 .*residual=None leaves"),
    (dict(hidden=(), embed_dim=3), r"embed_dim=3 .*hidden=\(\) leaves"),
    # sampled negatives: only the joint residual under DV, MINE or NWJ
    (dict(bound="infonce", negatives=3), "negatives=3 would change nothing.*residual="
                                         "'separable' under bound='infonce'"),
    (dict(bound="dv", residual="separable", negatives=3), "negatives=3.*under bound='dv'"),
    (dict(bound="nwj", critic="separable", negatives=2), "negatives=2.*critic='separable'"),
    (dict(bound="dv", hidden=(), negatives=2), "negatives=2"),
    (dict(critic="module", negatives=2), "negatives=2.*this critic"),
    # the quadratic critic's marginal terms are part of its Gaussian form
    (dict(potentials=False), "potentials=False would change nothing: critic='quadratic'"),
    (dict(potentials=False, residual=None), "potentials=False"),
])
def test_options_that_would_shape_nothing_are_refused(options: dict, named: str) -> None:
    """Regression (left undone in the last notes, and the same kind elsewhere): with a
    critic given as a module, ``hidden=`` and ``embed_dim=`` were ignored silently (and
    recorded in the settings as if they had shaped it); so were both with the bilinear
    critic, ``embed_dim`` with the concat critic or the pure quadratic form, and
    ``negatives`` wherever the critic scores all pairs, and ``potentials=False`` with the
    quadratic critic, whose marginal terms it cannot remove. Values other than the defaults
    are refused there, naming each option and why."""
    if options.get("critic") == "module":
        options = dict(options, critic=_module())
    x, y = _data()
    with pytest.raises(ValueError, match=named):
        estimate_mi(x, y, **options, **FAST)


@pytest.mark.parametrize("options", [
    dict(critic="module", hidden=[64, 64], embed_dim=64, negatives=8),  # the defaults
    dict(critic="bilinear", hidden=()),  # asks for no networks, and gets none
    dict(residual=None, hidden=()),
    dict(critic="concat", hidden=(8,)),
    dict(critic="separable", hidden=(8,), embed_dim=4),
    dict(bound="dv", negatives=3, hidden=(8,), embed_dim=4),  # the joint residual: all used
    dict(bound="mine", negatives=3),
    dict(bound="infonce", residual="joint", hidden=(8,), embed_dim=4),
    dict(critic="separable", potentials=False),
    dict(critic="module", potentials=False),  # none are added to a module
])
def test_options_that_shape_the_critic_are_taken(options: dict) -> None:
    """The defaults (also spelled out, as a list) and every option that is used pass."""
    if options.get("critic") == "module":
        options = dict(options, critic=_module())
    x, y = _data()
    estimate_mi(x, y, **options, **FAST)


def test_the_sampled_negatives_change_the_estimate_where_they_are_taken(monkeypatch) -> None:
    """What the refusal stands on: under DV with the joint residual, ``negatives`` changes
    the fit; under InfoNCE (all pairs) it changed nothing, value for value."""
    x, y = _data()
    trained = dict(FAST, screen=False, init="random")
    assert (estimate_mi(x, y, bound="dv", negatives=2, **trained).value
            != estimate_mi(x, y, bound="dv", negatives=8, **trained).value)
    monkeypatch.setattr("mitools.estimate.api.check_shaping_options", lambda *args: None)
    assert (estimate_mi(x, y, bound="infonce", negatives=2, **trained).value
            == estimate_mi(x, y, bound="infonce", **trained).value)


@pytest.mark.parametrize("options", [dict(lr=1e9), dict(weight_decay=1e9),
                                     dict(lr=1e9, bound="infonce", critic="separable")])
def test_a_learning_rate_that_makes_scores_infinite_is_a_diverged_fit(options: dict) -> None:
    """Regression (eleventh tryout): with ``lr=1e9`` (or ``weight_decay=1e9``) the critic's
    scores became infinite and estimate_mi raised the bounds' "dv: scores hold a non-finite
    value (inf) ... Mask padding (...)" error, which speaks of masks the caller never gave.
    A non-finite bound was meant to be a diverged fit: each fold keeps its initial critic,
    and the diagnostics say to lower lr (lr=1e6, whose scores stay finite, did that)."""
    x, y = _data()
    with pytest.warns(RuntimeWarning) as caught:  # (the untrained separable one: below 0)
        r = estimate_mi(x, y, screen=False, **{**FAST, **options})
    assert any("the optimisation diverged" in str(w.message) and "lower lr" in str(w.message)
               for w in caught)
    assert r.diagnostics.diverged_folds == 2
    for fold in r.folds:
        assert fold.best_step == 0 and fold.held_out == fold.start_held_out
        assert fold.history[-1].val == -torch.inf


def test_a_val_fraction_that_leaves_too_few_training_samples_is_named() -> None:
    """Regression (eleventh tryout): ``val_fraction=0.99`` was refused with advice to use
    more samples, fewer folds or init='random', never naming val_fraction, the cause."""
    x, y = _data()
    with pytest.raises(ValueError, match=r"a smaller val_fraction \(got 0.99"):
        estimate_mi(x, y, val_fraction=0.99, **FAST)


def test_the_settings_record_every_option_that_shapes_the_estimate() -> None:
    """Regression (eleventh tryout): ``result.settings``, "the options the estimate was made
    with", lacked val_fraction, negatives, weight_decay, ema, eval_every and patience, so a
    saved estimate could not be made again from its file."""
    from mitools.estimate.api import _OPTIONS

    x, y = _data()
    r = estimate_mi(x, y, val_fraction=0.2, negatives=3, weight_decay=0.01, ema=0.5,
                    patience=3, **FAST)
    fields = {"bound", "report", "sided", "level"}  # the result's own fields
    assert set(_OPTIONS) - fields - {"device", "threads", "progress"} <= set(r.settings)
    assert (r.settings["val_fraction"], r.settings["negatives"], r.settings["weight_decay"],
            r.settings["ema"], r.settings["eval_every"], r.settings["patience"]) == (
        0.2, 3, 0.01, 0.5, 10, 3)


@pytest.mark.parametrize("residual", ["joint", "separable"])
def test_a_residual_without_hidden_layers_is_refused(residual: str) -> None:
    """Regression (eleventh tryout): ``residual="joint"`` with ``hidden=()`` fitted the pure
    quadratic form, silently, and recorded ``residual='joint'`` in the settings."""
    x, y = _data()
    with pytest.raises(ValueError, match=f"residual='{residual}' needs hidden layers.*"
                                         "residual=None"):
        estimate_mi(x, y, residual=residual, hidden=(), **FAST)
    assert estimate_mi(x, y, residual=None, hidden=(), **FAST).settings["residual"] is None
