"""Edge cases of the classical estimators: labels compared by equality (discrete_x / discrete_y),
the tie warning, infinite estimates, and columns of extreme magnitude."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

from mitools.classical import ksg, mixed_ksg


def _label_and_feature(n: int = 1500, seed: int = 0):
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 3, n)
    return label, label + rng.standard_normal(n)  # true MI 0.254 nats


@pytest.mark.parametrize("codes", [[0, 1, 2], [0, 1, 1000], [5, -3, 7e6], [2, 0, 1]])
def test_a_discrete_label_gives_the_same_estimate_whatever_its_codes(codes) -> None:
    """Regression (review): without discrete_x, codes [0, 1, 1000] gave 0.205 and
    [5, -3, 7e6] 0.164 for the 0.236 of codes [0, 1, 2] (standardised codes far apart
    squeeze the other classes together)."""
    label, feature = _label_and_feature()
    reference = mixed_ksg(label, feature, discrete_x=True, groups=0).value
    assert reference == pytest.approx(0.2362, abs=1e-4)
    coded = np.asarray(codes)[label]
    assert mixed_ksg(coded, feature, discrete_x=True, groups=0).value == pytest.approx(
        reference, abs=1e-12)
    assert mixed_ksg(feature, coded, discrete_y=True, groups=0).value == pytest.approx(
        reference, abs=1e-12)


def test_without_the_flag_the_codes_are_values() -> None:
    label, feature = _label_and_feature()
    far = mixed_ksg(np.array([0, 1, 1000])[label], feature, groups=0).value
    assert far == pytest.approx(0.2051, abs=1e-3)  # classes 0 and 1 squeezed together


def test_a_discrete_label_matches_the_estimator_of_ross_and_sklearn() -> None:
    """Against a continuous feature, equality-only labels give Ross's (2014) estimator,
    which scikit-learn's mutual_info_classif computes (up to its log N for psi(N), and its
    tiny noise)."""
    sklearn = pytest.importorskip("sklearn.feature_selection")
    label, feature = _label_and_feature()
    ours = mixed_ksg(label, feature, discrete_x=True, groups=0).value
    theirs = sklearn.mutual_info_classif(feature[:, None], label, n_neighbors=3,
                                         random_state=0)[0]
    assert ours == pytest.approx(theirs, abs=2e-3)


def test_a_class_of_k_samples_or_fewer_is_refused() -> None:
    label, feature = _label_and_feature(200)
    label[5:8] = 7  # a class of 3 samples: its samples' 3 neighbours cannot stay inside it
    with pytest.raises(ValueError, match=r"discrete_x=True: the class of x's row 5 holds only "
                                         r"3 of the samples; every class needs at least "
                                         r"k \+ 1 = 4"):
        mixed_ksg(label, feature, discrete_x=True)


@pytest.mark.parametrize("algorithm", ["kdtree", "brute"])
def test_two_discrete_variables_give_the_same_estimate_whatever_their_codes(algorithm) -> None:
    """Regression (review): with both flags and a cell of k samples or fewer (the pair
    (0, 0) once), codings [0, 1, 2] and [1, 0, 2] of x gave 0.18062 and 0.18509: codes on a
    line put some classes farther apart than others. One-hot codes keep all equally far."""
    cells = {(0, 2): 50, (2, 0): 50, (2, 2): 80, (1, 2): 40, (2, 1): 40, (0, 0): 1}
    x = np.repeat([c[0] for c in cells], list(cells.values()))
    y = np.repeat([c[1] for c in cells], list(cells.values()))
    values = {mixed_ksg(np.asarray(codes)[x], np.asarray(ycodes)[y], discrete_x=True,
                        discrete_y=True, groups=0, algorithm=algorithm).value
              for codes in ([0, 1, 2], [1, 0, 2], [2, 0, 1], [10, -4, 1e6])
              for ycodes in ([0, 1, 2], [5, 3, 4])}
    assert len(values) == 1, values
    # all cells but one far above k: close to the plug-in MI of the table
    counts = np.zeros((3, 3))
    np.add.at(counts, (x, y), 1)
    p = counts / counts.sum()
    outer = p.sum(1, keepdims=True) * p.sum(0, keepdims=True)
    plug_in = float(np.sum(p[p > 0] * np.log(p[p > 0] / outer[p > 0])))
    assert values.pop() == pytest.approx(plug_in, abs=0.01)


def test_the_flags_are_booleans() -> None:
    label, feature = _label_and_feature(200)
    with pytest.raises(ValueError, match="discrete_x must be True or False"):
        mixed_ksg(label, feature, discrete_x=1)


def test_the_ksg_tie_warning_tells_labels_from_rounded_quantities() -> None:
    """Regression (review): the warning sent every tied column to mixed_ksg, which takes a
    Gaussian rounded to steps of a third for structure (1.24 nats for 1.00), where ksg gives
    0.99."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 2))
    y = 0.8 * x + 0.6 * rng.standard_normal((2000, 2))
    with pytest.warns(UserWarning, match="for a continuous quantity rounded to many values, "
                                         "keep ksg"):
        rounded = ksg(np.round(3 * x), y, groups=0).value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert abs(rounded - 1.005) < abs(mixed_ksg(np.round(3 * x), y, groups=0).value - 1.005)


def test_an_infinite_gaussian_estimate_warns_and_claims_no_jackknife() -> None:
    """Regression (review): gaussian_mi(X, X) returned inf with a NaN interval, no warning,
    and an ``uncertainty`` that described a jackknife."""
    from mitools.classical import gaussian_mi

    x = np.random.default_rng(0).standard_normal((300, 2))
    with pytest.warns(RuntimeWarning, match="not finite: a combination of y is an exact "
                                            "function of x"):
        r = gaussian_mi(x, x)
    assert r.value == np.inf and np.isnan(r.stderr) and all(np.isnan(r.interval))
    assert r.uncertainty.startswith("none: the estimate")
    with pytest.warns(RuntimeWarning, match="not finite"):  # also without the jackknife
        assert gaussian_mi(x, x, groups=0).value == np.inf


@pytest.mark.parametrize("scale", [1e-300, 1e-170, 1e160, 1e300])
def test_estimates_do_not_depend_on_the_magnitude_of_a_column(scale) -> None:
    """Regression (review): squares of values below ~1e-162 underflow and above ~1e154
    overflow in float64; such a column became constant after standardising, and the MI 0
    (ksg, gaussian_mi; estimate_mi with margins="standardize")."""
    from mitools.classical import gaussian_mi
    from mitools.estimate import estimate_mi

    rng = np.random.default_rng(0)
    x = rng.standard_normal(300)
    y = 0.8 * x + 0.6 * rng.standard_normal(300)
    assert ksg(x * scale, y).value == pytest.approx(ksg(x, y).value, rel=1e-9)
    assert gaussian_mi(x * scale, y).value == pytest.approx(gaussian_mi(x, y).value, rel=1e-9)
    fast = dict(margins="standardize", max_steps=20, eval_every=10, folds=2, threads=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert estimate_mi(x * scale, y, **fast).value == pytest.approx(
            estimate_mi(x, y, **fast).value, rel=1e-5)


@pytest.mark.parametrize("name, kwargs", [
    ("ksg", {}), ("mixed_ksg", {}), ("gaussian_mi", {}), ("mixed_ksg", {"discrete_x": True})])
def test_empty_inputs_give_the_sample_size_error_alone(name, kwargs) -> None:
    """Regression (review): about 10 numpy warnings ("Mean of empty slice", ...) came before
    the error; with discrete_x, numpy's "zero-size array to reduction operation" instead."""
    import mitools.classical as classical

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="needs at least 20 samples"):
            getattr(classical, name)(np.array([]), np.array([]), **kwargs)


@pytest.mark.parametrize("method", ["ksg", "mixed_ksg", "gaussian_mi"])
def test_a_constant_variable_is_named_as_such(method) -> None:
    """Regression (third tryout): a constant x got only the jackknife's warning, which
    suggested "y is an exact function of x" (infinite MI), where estimate_mi says that x is
    constant."""
    from mitools import classical

    y = np.random.default_rng(0).standard_normal(300)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = getattr(classical, method)(np.ones(300), y)
    messages = [str(w.message) for w in seen]
    assert any(": x is constant (every column holds one value): its mutual information with "
               "anything is 0" in m for m in messages), messages
    assert all(w.filename == __file__ for w in seen)  # they point at the caller's line
    assert result.value == 0.0 and math.isnan(result.stderr)  # what the warning promises
    assert not any("repeats values" in m for m in messages)  # no advice about ties


def test_the_tie_warning_says_what_noise_zero_does() -> None:
    """Regression (third tryout): with noise=0 on tied data ksg gave 8.0 nats for 0.75 while
    the warning said that ties are broken by tiny noise."""
    rng = np.random.default_rng(0)
    t = np.round(rng.standard_normal(300), 1)
    with pytest.warns(UserWarning, match=r"with noise=0 ties are not broken: tied samples lie at "
                                         r"distance 0, which biases the estimate far up"):
        ksg(t, t + rng.standard_normal(300), noise=0, groups=0)
    with pytest.warns(UserWarning, match=r"ties are broken by tiny noise \('noise'\)"):
        ksg(t, t + rng.standard_normal(300), groups=0)


def test_advice_for_small_classes_is_advice_that_works() -> None:
    """Regression (third tryout): "use mixed_ksg" and "lower k" were advised for labels that
    mixed_ksg then refused (a class of one sample fits no k)."""
    import mitools

    rng = np.random.default_rng(0)
    pairs = np.repeat(np.arange(100), 2)  # 100 classes of 2
    y = pairs + rng.standard_normal(200)
    with pytest.raises(ValueError, match=r"merge rare classes, or use mitools\.classical\."
                                         r"mixed_ksg with discrete_x=True and k=1$"):
        mitools.estimate_mi(pairs, y, discrete_x=True)
    with pytest.raises(ValueError, match=r"or lower k to 1$"):
        mixed_ksg(pairs, y, discrete_x=True, k=3, groups=0)
    assert np.isfinite(mixed_ksg(pairs, y, discrete_x=True, k=1, groups=0).value)  # it works
    single = np.r_[np.repeat(np.arange(60), 3), [60]]  # one class of a single sample
    with pytest.raises(ValueError, match=r"\(a class of 1 sample has no neighbour within it, "
                                         r"whatever k\)$"):
        mixed_ksg(single, rng.standard_normal(181), discrete_x=True, k=1, groups=0)


@pytest.mark.parametrize("as_text", [
    lambda names: names.tolist(),                      # a list of str
    lambda names: names,                               # numpy str
    lambda names: names.astype(object),                # numpy object
    pytest.param(lambda names: __import__("pandas").Series(names, dtype="string"),
                 id="pandas-string"),
])
def test_text_labels_give_the_estimate_of_their_integer_codes(as_text) -> None:
    label, feature = _label_and_feature(600)
    names = np.array(["bird", "cat", "dog"])[label]
    for algorithm in ("kdtree", "brute"):
        codes = mixed_ksg(label, feature, discrete_x=True, algorithm=algorithm)
        text = mixed_ksg(as_text(names), feature, discrete_x=True, algorithm=algorithm)
        assert text.value == codes.value and text.interval == codes.interval
        assert mixed_ksg(feature, as_text(names), discrete_y=True,
                         algorithm=algorithm).value == codes.value
    # both discrete: a text label against another
    parity = np.array(["even", "odd"])[label % 2]
    assert mixed_ksg(names, parity, discrete_x=True, discrete_y=True).value == mixed_ksg(
        label, label % 2, discrete_x=True, discrete_y=True).value
    # without the flag, text is refused as before, saying how to pass labels
    with pytest.raises(TypeError, match=r"pass discrete_x=True"):
        mixed_ksg(names, feature)
    with pytest.raises(ValueError, match=r"x has missing labels"):
        mixed_ksg(np.where(label == 0, None, names.astype(object)), feature, discrete_x=True)


# --- an estimate at its ceiling is a lower figure, and says so ------------------------------


def _fit(method: str, x, y, **kwargs):
    if method == "mixed_ksg":
        return mixed_ksg(x, y, **kwargs)
    return ksg(x, y, estimator=int(method[-1]), **kwargs)


@pytest.mark.parametrize("method", ["ksg1", "ksg2", "mixed_ksg"])
@pytest.mark.parametrize("relation, exact", [(lambda x, e: x**3, True),
                                             (lambda x, e: np.exp(x), True),
                                             (lambda x, e: x + 1e-9 * e, True),
                                             (lambda x, e: x + 1e-5 * e, False)],
                         ids=["x**3", "exp(x)", "x+1e-9 noise", "x+1e-5 noise"])
def test_an_estimate_of_a_function_of_x_warns_that_it_is_a_lower_figure(method, relation,
                                                                          exact):
    """Regression: ksg(x, x**3) gave 5.74 nats at n = 5,000 for an infinite MI, silently (and
    ksg(x, x) warned only through its jackknife's equal left-out values, not with groups=0).
    Where the ranks of x and y agree (x + 1e-9 noise keeps the order of 5,000 samples), the
    warning names the exact relation; where the noise reorders a few (1e-5), the ceiling."""
    from mitools.classical.knn import ceiling

    rng = np.random.default_rng(0)
    x, e = rng.standard_normal(5000), rng.standard_normal(5000)
    top = ceiling(method, 5000, 3)
    lead = rf"{method}: the estimate, \d+\.\d\d nats, is a lower figure set by the sample size"
    if not exact:  # the ceiling rules alone
        match = (lead + rf", not an estimate: .* cannot give more than .* = {top:.2f} nats, and "
                 r"the true MI may be much larger .*More samples raise that ceiling")
    else:
        match = (lead + r" and k, not an estimate: y \(or part of it\) is, to rounding, an "
                 r"increasing or decreasing function of x \(after each column is mapped to the "
                 r"normal scores of its ranks, the largest canonical correlation of x and y is "
                 r"1 to rounding: 1\.0+\), and the mutual information of continuous variables "
                 rf"so related is infinite\. With n = 5000 and k = 3, {method} cannot give more "
                 rf"than .* = {top:.2f} nats")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        r = _fit(method, x, relation(x, e), groups=0)
    assert len(seen) == 1 and re.match(match, str(seen[0].message)), [
        str(w.message) for w in seen]  # one warning, not the ceiling's and the relation's
    assert seen[0].category is RuntimeWarning and seen[0].filename == __file__
    assert 0.6 * top < r.value <= top + 1e-12


@pytest.mark.parametrize("n", [1000, 5000])
@pytest.mark.parametrize("rho", [0.9, 0.99])
def test_accurate_gaussian_estimates_do_not_warn(rho, n) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal(n)
    y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal(n)
    truth = -0.5 * np.log(1 - rho**2)  # 0.83 and 1.96 nats
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for method in ("ksg1", "ksg2", "mixed_ksg"):
            assert _fit(method, x, y).value == pytest.approx(truth, abs=0.1)


def test_labels_near_the_ceiling_do_not_warn() -> None:
    """100 classes of 4 samples against a feature that separates them: the mixed estimate is
    near its ceiling (log n - psi(k)) and yet right, since a label's MI is at most its
    entropy (log 100); a declared label is not checked."""
    from mitools.classical.knn import ceiling

    label = np.repeat(np.arange(100), 4)
    feature = label + 0.01 * np.random.default_rng(0).standard_normal(400)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = mixed_ksg(label, feature, discrete_x=True, groups=0)
    assert r.value == pytest.approx(np.log(100), abs=0.15) and r.value > 0.9 * ceiling(
        "mixed_ksg", 400, 3)


@pytest.mark.parametrize("n, d, k", [(12, 1, 10), (12, 1, 1), (15, 2, 1)])
def test_independent_data_on_a_dozen_samples_are_not_called_saturated(n, d, k) -> None:
    """Review: on 30 seeds, estimator 2 warned 'a lower figure ... y is (close to) a
    function of x' on independent data at these sizes; neither rule applies below 20."""
    for seed in range(30):
        rng = np.random.default_rng(1000 + seed)
        x, y = rng.standard_normal((n, d)), rng.standard_normal((n, d))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ksg(x, y, k=k, estimator=2, groups=0)


@pytest.mark.parametrize("n", [100, 1000, 5000])
@pytest.mark.parametrize("relation", ["y = x", "y = 2x + 1", "y = x - 3z"])
def test_gaussian_mi_of_an_exact_linear_relation_is_infinite_at_every_n(n, relation) -> None:
    """Tryout: gaussian_mi(x, 2x + 1) gave 17.68 nats at n = 100, 17.47 at 500 and inf at
    1,000 (where the correlation rounded to 1), with no word at groups=0."""
    from mitools.classical import gaussian_mi

    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 2))
    y = {"y = x": x[:, 0], "y = 2x + 1": 2 * x[:, 0] + 1,
         "y = x - 3z": x[:, 0] - 3 * x[:, 1]}[relation]
    for groups in (0, 10):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert gaussian_mi(x, y, groups=groups).value == np.inf


def test_gaussian_mi_of_a_strong_but_inexact_relation_is_finite() -> None:
    from mitools.classical import gaussian_mi

    rng = np.random.default_rng(1)
    x = rng.normal(size=5000)
    y = x + 1e-4 * rng.normal(size=5000)  # 9.2 nats
    assert abs(gaussian_mi(x, y, groups=0).value - 0.5 * np.log1p(1e8)) < 0.05


# --- y a monotone function of x: infinite MI, told at any n and k -------------------------

_MONOTONE = "an increasing or decreasing function of x"


def _told(fit, *args, **kwargs) -> tuple[float, list[str]]:
    """The estimate of ``fit(*args, **kwargs)`` and the messages of its RuntimeWarnings."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        value = fit(*args, **kwargs).value
    return value, [str(w.message) for w in seen if w.category is RuntimeWarning]


def test_the_two_silent_cubes_of_small_samples_now_warn() -> None:
    """Regression: in this loop, ksg estimator 1 gave 0.613 nats at n = 50, k = 10 and 1.098
    at n = 100, k = 5 on y = x**3 (an infinite MI) with no warning: both stayed below the
    ceiling rules (the other 22 fits warned through them). The values are unchanged."""
    rng = np.random.default_rng(0)
    silent = {(50, 10): 0.6128411901090569, (100, 5): 1.0977043768939847}
    for n in (50, 100, 200, 1000):
        for k in (3, 5, 10):
            x = rng.normal(size=(n, 1))
            for estimator in (1, 2):
                value, told = _told(ksg, x, x**3, k=k, estimator=estimator)
                assert len(told) == 1 and _MONOTONE in told[0], (n, k, estimator, told)
                assert told[0].startswith(f"ksg{estimator}: the estimate, {value:.2f} nats")
                if estimator == 1 and (n, k) in silent:
                    assert value == pytest.approx(silent[n, k], rel=1e-12)


@pytest.mark.parametrize("n", [20, 50, 200, 1000])
@pytest.mark.parametrize("k", [1, 3, 10])
@pytest.mark.parametrize("estimator", [1, 2])
def test_a_cube_warns_at_every_n_and_k(n, k, estimator) -> None:
    x = np.random.default_rng(n + k).standard_normal(n)
    _, told = _told(ksg, x, x**3, k=k, estimator=estimator, groups=0)
    assert len(told) == 1 and _MONOTONE in told[0] and "is infinite" in told[0], told
    assert f"With n = {n} and k = {k}, ksg{estimator} cannot give more than" in told[0]


@pytest.mark.parametrize("relation", [
    lambda x: -x[:, :1], lambda x: np.exp(-3 * x[:, :1]), lambda x: x[:, 1:],
    lambda x: 1e6 * x[:, :1] + 7, lambda x: np.c_[x[:, 0] ** 3, -x[:, 1]]],
    ids=["-x", "exp(-3x)", "a column of x", "a rescaled column", "(x1**3, -x2)"])
@pytest.mark.parametrize("method", ["ksg1", "ksg2", "mixed_ksg"])
def test_decreasing_repeated_and_multivariate_relations_warn(relation, method) -> None:
    x = np.random.default_rng(3).standard_normal((400, 2))
    _, told = _told(_fit, method, x, relation(x), groups=0)
    assert len(told) == 1 and told[0].startswith(f"{method}: ") and _MONOTONE in told[0], told


def test_a_strong_but_inexact_relation_is_not_called_exact() -> None:
    """y = x + 1e-3 noise (6.9 nats) reorders samples: no exact-relation warning (the ceiling
    rule may still say that 5,000 samples do not resolve 6.9 nats); correlation 0.999 and
    y = x**2 (not monotone): no warning at all, from any continuous estimator."""
    from mitools.classical import gaussian_mi

    rng = np.random.default_rng(0)
    x, e = rng.standard_normal(5000), rng.standard_normal(5000)
    for method in ("ksg1", "ksg2", "mixed_ksg"):
        _, told = _told(_fit, method, x, x + 1e-3 * e, groups=0)
        assert not [m for m in told if _MONOTONE in m], told
    assert _told(gaussian_mi, x, x + 1e-3 * e)[1] == []
    for y in (0.999 * x + np.sqrt(1 - 0.999**2) * e, x**2 + 0.1 * e):
        for method in ("ksg1", "ksg2", "mixed_ksg"):
            assert _told(_fit, method, x[:1000], y[:1000], groups=0)[1] == [], method
        assert _told(gaussian_mi, x, y)[1] == []


def test_gaussian_mi_of_a_monotone_relation_warns_that_it_is_a_lower_figure() -> None:
    """gaussian_mi(x, x**3) gave 0.45 nats, silently, for an infinite MI; a linear relation
    gives inf and the jackknife's warning alone."""
    from mitools.classical import gaussian_mi

    x = np.random.default_rng(0).standard_normal(300)
    value, told = _told(gaussian_mi, x, x**3, groups=0)
    assert len(told) == 1 and told[0].startswith(f"gaussian_mi: the estimate, {value:.2f} nats, "
                                                 "is a lower figure") and _MONOTONE in told[0]
    value, told = _told(gaussian_mi, x, 2 * x + 1)
    assert value == np.inf and len(told) == 1 and _MONOTONE not in told[0]


def test_labels_and_tied_columns_are_not_called_exact() -> None:
    """A label that is a function of x has a finite MI, its entropy: mixed_ksg with
    discrete_x / discrete_y does not warn; equal binary columns get ksg's tie warning only
    (a UserWarning), not talk of an infinite MI, and gaussian_mi's x**2 on three values none."""
    from mitools.classical import gaussian_mi

    rng = np.random.default_rng(0)
    x = rng.standard_normal(600)
    label = (x > 0).astype(int) + (x > 1)
    assert _told(mixed_ksg, label, x, discrete_x=True, groups=0)[1] == []
    assert _told(mixed_ksg, x, label, discrete_y=True, groups=0)[1] == []
    b = rng.integers(0, 2, 600)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ksg(b, b, groups=0)
        mixed_ksg(b, 1 - b, groups=0)
    assert seen and not [w for w in seen if _MONOTONE in str(w.message)]
    three = rng.integers(0, 3, 600).astype(float)
    assert not [m for m in _told(gaussian_mi, three, three**2)[1] if _MONOTONE in m]


def test_mixed_ksg_near_its_ceiling_on_tied_data_says_it_is_a_lower_figure() -> None:
    """``mixed_ksg(x, floor(1000 x))`` at n = 500 read 4.9 nats (ceiling 5.3, MI 8.3) with no
    word: the ceiling rules ran only where no column had ties, and the mixed estimator draws
    no tie warning (a new-user tryout). A label of few classes, far below the ceiling, is
    not warned about (declared labels are not checked:
    test_labels_near_the_ceiling_do_not_warn)."""
    x = np.random.default_rng(0).standard_normal((500, 1))
    binned = np.floor(x * 1000)
    with pytest.warns(RuntimeWarning, match=r"mixed_ksg: the estimate, 4.9\d nats, is a lower "
                                            r"figure.*reaches 9\d% of the most"):
        mixed_ksg(binned, x, groups=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mixed_ksg((x > 0).astype(float), x, groups=0)


def test_mixed_ksg_does_not_advise_itself() -> None:
    """Its exact-relation warning advised 'mitools.classical.mixed_ksg with discrete_x=True'
    to a caller of mixed_ksg (on the command line, '--method mixed' to one using it)."""
    x = np.random.default_rng(1).standard_normal((300, 1))
    messages = _told(mixed_ksg, x, x**3, groups=0)[1]
    assert any(_MONOTONE in m for m in messages)
    assert not [m for m in messages if "mitools.classical.mixed_ksg" in m]
    assert any("(with discrete_x=True or discrete_y=True)" in m for m in messages)
    assert any("mitools.classical.mixed_ksg with" in m for m in _told(ksg, x, x**3, groups=0)[1])
