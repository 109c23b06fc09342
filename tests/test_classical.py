"""Tests of mitools.classical: brute-force references, closed forms, sklearn, inputs, errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from scipy.special import digamma

from mitools import CorrelatedGaussian
from mitools.classical import canonical_correlations, gaussian_mi, ksg, mixed_ksg
from mitools.classical.inputs import as_float64_columns
from mitools.classical.jackknife import assign_groups
from mitools.classical.knn import ceiling
from mitools.classical.knn.counts import ESTIMATORS
from mitools.classical.neighbours import count_within, kth_neighbours
from mitools.classical.pairwise import subset_counts


def _gaussian(n: int, dim: int = 1, mi: float = 0.5, seed: int = 0):
    x, y = CorrelatedGaussian(dim, mi).sample(n, generator=seed)
    return x.double().numpy(), y.double().numpy()


# --- O(n^2) brute-force references, written from the papers' definitions -------------------


def _maxdist(a: np.ndarray, i: int, j: int) -> float:
    return max(abs(float(a[i, c]) - float(a[j, c])) for c in range(a.shape[1]))


def _reference_counts(x: np.ndarray, y: np.ndarray, k: int, kind: str):
    """Per-sample (k_tilde, n_x, n_y) by double loops over pairs."""
    n = x.shape[0]
    k_tilde, n_x, n_y = [], [], []
    for i in range(n):
        others = [j for j in range(n) if j != i]
        dx = {j: _maxdist(x, i, j) for j in others}
        dy = {j: _maxdist(y, i, j) for j in others}
        joint = sorted(others, key=lambda j: max(dx[j], dy[j]))
        eps = max(dx[joint[k - 1]], dy[joint[k - 1]])
        if kind == "ksg1":
            n_x.append(sum(dx[j] < eps for j in others))
            n_y.append(sum(dy[j] < eps for j in others))
            k_tilde.append(k)
        elif kind == "ksg2":
            ex = max(dx[j] for j in joint[:k])
            ey = max(dy[j] for j in joint[:k])
            n_x.append(sum(dx[j] <= ex for j in others))
            n_y.append(sum(dy[j] <= ey for j in others))
            k_tilde.append(k)
        else:  # mixed (Gao et al.)
            if eps > 0:
                k_tilde.append(k)
                n_x.append(sum(dx[j] < eps for j in others))
                n_y.append(sum(dy[j] < eps for j in others))
            else:
                k_tilde.append(1 + sum(max(dx[j], dy[j]) == 0 for j in others))
                n_x.append(sum(dx[j] == 0 for j in others))
                n_y.append(sum(dy[j] == 0 for j in others))
    return np.array(k_tilde), np.array(n_x), np.array(n_y)


def _reference_value(x: np.ndarray, y: np.ndarray, k: int, kind: str) -> float:
    n = x.shape[0]
    kt, nx, ny = _reference_counts(x, y, k, kind)
    if kind == "ksg1":
        return digamma(k) + digamma(n) - np.mean(digamma(nx + 1) + digamma(ny + 1))
    if kind == "ksg2":
        return digamma(k) - 1 / k + digamma(n) - np.mean(digamma(nx) + digamma(ny))
    return np.mean(digamma(kt) + math.log(n) - digamma(nx + 1) - digamma(ny + 1))


def _small_continuous(seed: int, n: int = 60, dx: int = 2, dy: int = 1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dx))
    y = x[:, :dy] ** 3 + 0.5 * rng.standard_normal((n, dy))
    return x, y


def _small_ties(seed: int, n: int = 60):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, (n, 1)).astype(float)  # a label
    y = np.round(x + rng.standard_normal((n, 1)), 1)  # a rounded feature: ties
    y[: n // 3] = 0.0  # a point mass
    return x, y


@pytest.mark.parametrize("seed", [0, 1])
def test_neighbour_primitives_match_brute_force(seed: int) -> None:
    for x, y in (_small_continuous(seed), _small_ties(seed)):
        z = np.hstack([x, y])
        n = z.shape[0]
        d = np.array([[_maxdist(z, i, j) for j in range(n)] for i in range(n)])
        np.fill_diagonal(d, np.inf)
        for k in (1, 3):
            radius, nearest = kth_neighbours(z, k, threads=2)
            np.testing.assert_array_equal(radius, np.sort(d, axis=1)[:, k - 1])
            assert not (nearest == np.arange(n)[:, None]).any()  # never the sample itself
            picked = np.take_along_axis(d, nearest, axis=1)
            np.testing.assert_array_equal(picked, np.sort(d, axis=1)[:, :k])
            for strict in (True, False):
                counts = count_within(z, radius, strict=strict, threads=2)
                expect = (d < radius[:, None]) if strict else (d <= radius[:, None])
                np.testing.assert_array_equal(counts, expect.sum(axis=1))


@pytest.mark.parametrize("kind", ["ksg1", "ksg2", "mixed"])
@pytest.mark.parametrize("k", [1, 3])
def test_both_backends_match_the_brute_force_reference(kind: str, k: int) -> None:
    """Counts and value of the k-d tree path and of the distance-block rules, against loops."""
    tree_counts, rule, finish = ESTIMATORS["mixed_ksg" if kind == "mixed" else kind]
    cases = [_small_continuous(0), _small_continuous(1, dx=1, dy=2)]
    if kind == "mixed":
        cases += [_small_ties(0), _small_ties(1)]
    for x, y in cases:
        expect = _reference_counts(x, y, k, kind)
        value = _reference_value(x, y, k, kind)
        for counts in (tree_counts(x, y, k, 2), subset_counts(x, y, rule, k, threads=2)[-1]):
            for got, want in zip(counts, expect, strict=True):
                np.testing.assert_array_equal(got, want)
            assert finish(counts, k) == pytest.approx(value, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_the_ceiling_is_the_formula_with_every_count_at_its_minimum(k: int) -> None:
    """y = x without noise, every distance from a sample distinct: the loops' counts sit at
    their minimum (k - 1 strictly inside the k-th neighbour's distance for estimator 1 and the
    mixed one, the k neighbours themselves for estimator 2), and the estimate is the ceiling,
    exactly, on both backends; random small continuous inputs never exceed it."""
    x = (2.0 ** np.arange(9) - 1)[:, None]  # |2^i - 2^j| differ for every j: no ties
    n = len(x)
    for kind, method in (("ksg1", "ksg1"), ("ksg2", "ksg2"), ("mixed", "mixed_ksg")):
        _, n_x, n_y = _reference_counts(x, x, k, kind)
        minimum = k if kind == "ksg2" else k - 1
        assert (n_x == minimum).all() and (n_y == minimum).all()
        top = ceiling(method, n, k)
        assert _reference_value(x, x, k, kind) == pytest.approx(top, abs=1e-12)
        for algorithm in ("kdtree", "brute"):
            # (9 samples: below CEILING_MIN_SAMPLES the ceiling warning does not speak, as on
            # a dozen samples independent data reach it too; test_classical_edge_cases
            # checks it on y = x**3 and friends at n = 5,000)
            # (y = x is an exact relation, which is told at any n: that warning alone)
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("ignore", UserWarning)  # ties warnings, if any
                warnings.simplefilter("always", RuntimeWarning)
                fit = (mixed_ksg(x, x, k=k, groups=0, algorithm=algorithm) if kind == "mixed"
                       else ksg(x, x, k=k, estimator=int(kind[-1]), noise=0.0, groups=0,
                                algorithm=algorithm))
            assert [str(w.message).count("an increasing or decreasing function of x")
                    for w in seen] == [1], [str(w.message) for w in seen]
            assert fit.value == pytest.approx(top, abs=1e-12)
    assert ceiling("ksg1", n, k) - ceiling("ksg2", n, k) == pytest.approx(1 / k)
    rng = np.random.default_rng(k)
    for _ in range(60):  # a loop over random small inputs, each checked by brute force
        m = int(rng.integers(k + 2, 12))
        a = rng.standard_normal((m, int(rng.integers(1, 3))))
        b = a[:, :1] * rng.choice([-2.0, 1.0, 3.0]) + rng.choice([0.0, 1e-6, 0.1, 1.0]) * (
            rng.standard_normal((m, 1)))
        for kind, method in (("ksg1", "ksg1"), ("ksg2", "ksg2"), ("mixed", "mixed_ksg")):
            assert _reference_value(a, b, k, kind) <= ceiling(method, m, k) + 1e-12


@pytest.mark.parametrize("kind", ["ksg1", "ksg2", "mixed_ksg"])
def test_distance_blocks_give_every_jackknife_subsample_exactly(kind: str) -> None:
    """subset_counts's subsamples (columns set to inf) equal the k-d tree on each subsample."""
    tree_counts, rule, _ = ESTIMATORS[kind]
    x, y = _small_ties(2, n=90) if kind == "mixed_ksg" else _small_continuous(2, n=90)
    group_of, g = assign_groups(90, 7, seed=3)
    blocks = subset_counts(x, y, rule, 3, group_of, g, threads=2)
    for j in range(g):
        keep = group_of != j
        for got, want in zip(blocks[j], tree_counts(x[keep], y[keep], 3, 1), strict=True):
            np.testing.assert_array_equal(got, want)


def test_backends_and_threads_give_identical_results() -> None:
    x, y = _gaussian(700, dim=3, mi=1.0, seed=3)
    for f in (lambda **kw: ksg(x, y, **kw), lambda **kw: ksg(x, y, estimator=2, **kw),
              lambda **kw: mixed_ksg(np.round(x, 1), y, **kw)):
        a = f(algorithm="kdtree", threads=1, groups=3)
        b = f(algorithm="brute", threads=2, groups=3)
        assert a.value == pytest.approx(b.value, rel=1e-13)
        assert a.stderr == pytest.approx(b.stderr, rel=1e-9)


# --- accuracy on data of known MI ----------------------------------------------------------


@pytest.mark.parametrize("estimator", [1, 2])
@pytest.mark.parametrize("dim, mi", [(1, 0.5), (2, 1.0)])
def test_ksg_on_correlated_gaussians(estimator: int, dim: int, mi: float) -> None:
    first = ksg(*_gaussian(2000, dim, mi, seed=0), estimator=estimator)
    assert abs(first.value - mi) < 4 * first.stderr + 0.02  # KSG's bias is small here
    values = [first.value] + [ksg(*_gaussian(2000, dim, mi, seed=seed),
                                  estimator=estimator, groups=0).value for seed in range(1, 8)]
    assert np.mean(values) == pytest.approx(mi, abs=0.05)  # the mean's sd is about 0.01


def test_gaussian_mi_is_exact_on_large_gaussian_samples() -> None:
    x, y = _gaussian(50_000, dim=3, mi=1.5, seed=2)
    result = gaussian_mi(x, y)
    assert result.value == pytest.approx(1.5, abs=0.02)
    assert result.interval[0] < 1.5 < result.interval[1]


def test_gaussian_mi_equals_the_log_determinant_formula() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((500, 3))
    y = np.hstack([x @ rng.standard_normal((3, 2)), rng.standard_normal((500, 2))])
    y += rng.standard_normal(y.shape)
    c = np.cov(np.hstack([x, y]).T)
    logdet = lambda m: np.linalg.slogdet(m)[1]  # noqa: E731
    expect = 0.5 * (logdet(c[:3, :3]) + logdet(c[3:, 3:]) - logdet(c))
    assert gaussian_mi(x, y, groups=0).value == pytest.approx(expect, rel=1e-10)


def test_gaussian_mi_ignores_redundant_columns_and_is_blind_to_nonlinear() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4000, 1))
    y = x + rng.standard_normal((4000, 1))
    padded = np.hstack([x, 2 * x, np.ones((4000, 1))])  # a copy and a constant add nothing
    assert gaussian_mi(padded, y, groups=0).value == pytest.approx(
        gaussian_mi(x, y, groups=0).value, rel=1e-9)
    assert gaussian_mi(x, x**2, groups=0).value < 0.005  # y = x^2: dependent, uncorrelated
    with pytest.warns(RuntimeWarning, match="is a lower figure"):  # infinite MI: a floor
        assert ksg(x, x**2, groups=0).value > 1.0  # KSG sees it
    assert gaussian_mi(x, 3 * x - 1, groups=0).value > 15  # deterministic: infinite or huge
    np.testing.assert_allclose(canonical_correlations(x, y), [np.corrcoef(x.T, y.T)[0, 1]])


def test_where_each_estimator_fails() -> None:
    """The guide's warnings (docs/guide/classical.rst), checked."""
    x, y = _gaussian(2000, dim=8, mi=4.0, seed=0)  # 8 + 8 dimensions, 4 nats
    assert ksg(x, y, groups=0).value < 2.6  # KSG: far below the truth in high dimension
    assert gaussian_mi(x, y, groups=0).value == pytest.approx(4.0, abs=0.15)
    rng = np.random.default_rng(0)
    b = rng.integers(0, 2, 5000)
    c = np.where(rng.random(5000) < 0.95, b, 1 - b)  # agree 95 % of the time
    truth = math.log(2) + 0.95 * math.log(0.95) + 0.05 * math.log(0.05)  # 0.495 nats
    assert gaussian_mi(b, c, groups=0).value > truth + 0.25  # correlation 0.9: 0.83 nats
    assert mixed_ksg(b, c, groups=0).value == pytest.approx(truth, abs=0.02)


def test_independence_gives_about_zero() -> None:
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((2000, 2)), rng.standard_normal((2000, 2))
    for result in (ksg(x, y), ksg(x, y, estimator=2), gaussian_mi(x, y),
                   mixed_ksg(rng.integers(0, 3, 2000), y)):
        assert abs(result.value) < 0.02, result
        assert result.interval[0] < 0.0 + 4 / 2000 < result.interval[1] + 0.01, result


def _label_feature_truth(weights, means, sds) -> float:
    """I(C; Y) = h(Y) - sum_c w_c h(N(mu_c, sd_c^2)) by quadrature of the mixture's entropy."""
    grid = np.linspace(min(means) - 12 * max(sds), max(means) + 12 * max(sds), 400_001)
    p = sum(w * stats.norm.pdf(grid, m, s) for w, m, s in zip(weights, means, sds,
                                                             strict=True))
    h_mix = -integrate.trapezoid(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0.0), grid)
    return h_mix - sum(w * 0.5 * math.log(2 * math.pi * math.e * s**2)
                       for w, s in zip(weights, sds, strict=True))


def test_mixed_ksg_label_against_feature_of_known_mi() -> None:
    weights, means, sds = (0.5, 0.3, 0.2), (0.0, 1.5, 3.5), (1.0, 0.7, 1.3)
    truth = _label_feature_truth(weights, means, sds)  # about 0.5 nats
    rng = np.random.default_rng(7)
    label = rng.choice(3, size=3000, p=weights)
    feature = rng.normal(np.array(means)[label], np.array(sds)[label])
    result = mixed_ksg(label, feature)
    assert result.value == pytest.approx(truth, abs=0.04)
    assert abs(result.value - truth) < 4 * result.stderr + 0.01
    # symmetric in its arguments, and indifferent to how the label is coded
    assert mixed_ksg(feature, label).value == pytest.approx(result.value, abs=1e-12)
    assert mixed_ksg(10 * label - 3, feature).value == pytest.approx(result.value, abs=1e-12)


def test_mixed_ksg_on_discrete_data_tends_to_the_plug_in_estimate() -> None:
    rng = np.random.default_rng(8)
    a = rng.integers(0, 3, 4000)
    b = (a + (rng.random(4000) < 0.3)) % 3  # b = a, or a + 1 with probability 0.3
    joint = np.histogram2d(a, b, bins=(3, 3))[0] / 4000
    seen = joint > 0
    plug_in = float(np.sum(joint[seen] * np.log(
        joint[seen] / np.outer(joint.sum(1), joint.sum(0))[seen])))
    assert mixed_ksg(a, b, groups=0).value == pytest.approx(plug_in, abs=0.01)


def test_ksg1_matches_sklearn_mutual_info_regression() -> None:
    feature_selection = pytest.importorskip("sklearn.feature_selection")
    for seed in range(3):
        x, y = _gaussian(1000, 1, 0.4 + 0.3 * seed, seed=seed)
        # sklearn: KSG estimator 1, columns scaled and jittered by 1e-10 (its own noise)
        theirs = feature_selection.mutual_info_regression(
            x, y.ravel(), n_neighbors=3, random_state=0)[0]
        ours = ksg(x, y, k=3, groups=0).value
        assert ours == pytest.approx(theirs, abs=1e-9)


# --- the interval --------------------------------------------------------------------------


def test_interval_and_fields() -> None:
    x, y = _gaussian(1000, 1, 0.5, seed=9)
    result = ksg(x, y, level=0.9, groups=8)
    low, high = result.interval
    assert low < result.value < high and result.stderr > 0 and result.level == 0.9
    assert high - result.value == pytest.approx(stats.t.ppf(0.95, 7) * result.stderr, rel=1e-4)
    assert "jackknife" in result.uncertainty and "8 groups" in result.uncertainty
    assert result.method == "ksg1" and result.bound is None and result.folds == ()
    wider = ksg(x, y, level=0.99, groups=8)
    assert wider.interval[0] < low and wider.interval[1] > high
    none = ksg(x, y, groups=0)
    assert none.value == result.value and math.isnan(none.stderr)
    other = ksg(x, y, level=0.9, groups=8, seed=1)  # other noise, other groups
    assert other.value == pytest.approx(result.value, abs=1e-6) and other.stderr != result.stderr
    assert ksg(x, y, noise=0.0, groups=0).value == pytest.approx(result.value, abs=1e-6)


def test_why_not_the_bootstrap() -> None:
    """Repeated samples are their own neighbours at distance 0: KSG on a bootstrap resample of
    independent data is far above 0, so its spread says nothing about KSG's."""
    rng = np.random.default_rng(12)
    x, y = rng.standard_normal(2000), rng.standard_normal(2000)
    assert abs(ksg(x, y, groups=0).value) < 0.03
    i = rng.integers(0, 2000, 2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the resample's ties are flagged
        assert ksg(x[i], y[i], groups=0).value > 0.5


@pytest.mark.slow
def test_jackknife_stderr_matches_the_spread_over_samples() -> None:
    """The jackknife's standard error against the Monte-Carlo spread of the estimate."""
    for estimate in (ksg, gaussian_mi):
        values, stderrs = [], []
        for seed in range(40):
            x, y = _gaussian(1000, 2, 1.0, seed=100 + seed)
            r = estimate(x, y)
            values.append(r.value)
            stderrs.append(r.stderr)
        ratio = np.sqrt(np.mean(np.square(stderrs))) / np.std(values, ddof=1)
        assert 0.7 < ratio < 1.4, (estimate.__name__, ratio)


# --- inputs --------------------------------------------------------------------------------


def test_inputs_a_user_has() -> None:
    pd = pytest.importorskip("pandas")
    x, y = _gaussian(400, 2, 0.5, seed=10)
    expect = ksg(x, y, groups=0).value
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1]})
    assert ksg(frame, pd.DataFrame(y), groups=0).value == expect
    assert ksg(torch.from_numpy(x), y.tolist(), groups=0).value == expect
    assert ksg(x, torch.from_numpy(y).float(), groups=0).value == pytest.approx(expect, abs=1e-5)
    one = ksg(pd.Series(x[:, 0]), y[:, 0], groups=0).value
    assert one == ksg(x[:, 0], y[:, :1], groups=0).value
    labels = mixed_ksg(x[:, 0] > 0, y, groups=0).value  # booleans are 0 / 1
    assert labels == mixed_ksg((x[:, 0] > 0).astype(int), y, groups=0).value


def test_integer_timestamps_keep_their_precision() -> None:
    """Issue 15, item 1: shifting x must not change the estimate (float32 would lose it)."""
    rng = np.random.default_rng(0)
    i = rng.permutation(600)
    y = i + rng.normal(0, 5, 600)
    for base in (1_700_000_000, 1_700_000_000_000_000_000):  # seconds, nanoseconds
        x = base + i.astype(np.int64)
        for f in (ksg, mixed_ksg, gaussian_mi):
            shifted = f(x - x.min(), y, groups=0).value
            assert f(x, y, groups=0).value == shifted
            assert f(torch.from_numpy(x), y, groups=0).value == shifted
    assert ksg(1_700_000_000 + i, y, groups=0).value == ksg(i.astype(float), y, groups=0).value
    np.testing.assert_array_equal(as_float64_columns(np.array([2**62, 2**62 + 1]), "x").ravel(),
                                  [0.0, 1.0])


def test_ksg_warns_about_discrete_columns() -> None:
    rng = np.random.default_rng(11)
    y = rng.standard_normal(500)
    with pytest.warns(UserWarning, match="x column 0 repeats values.*mixed_ksg"):
        ksg(rng.integers(0, 4, 500), y, groups=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ksg(rng.standard_normal(500), y, groups=0)  # continuous: silent
        mixed_ksg(rng.integers(0, 4, 500), y, groups=0)  # the estimator made for ties


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: ksg(np.zeros(10), np.zeros(11)), ValueError, "same number of samples"),
        (lambda: ksg([1.0, math.nan, 2.0] * 5, np.arange(15.0)), ValueError, "NaN or inf"),
        (lambda: ksg(["a", "b", "c"], [1, 2, 3]), TypeError, "real numbers"),
        (lambda: ksg(np.zeros((4, 2, 2)), np.zeros(4)), ValueError, r"shape \(n, d\)"),
        (lambda: ksg(np.zeros((4, 0)), np.zeros(4)), ValueError, "at least one feature"),
        (lambda: ksg({"x": 1}, [1]), TypeError, "array-like"),
        (lambda: ksg(np.arange(3.0), np.arange(3.0)), ValueError,
         r"ksg1 needs at least 20 samples \(every sample needs k=3 neighbours.*got 3"),
        (lambda: ksg(np.arange(3.0), np.arange(3.0), groups=0), ValueError,
         "needs at least 5 samples"),
        (lambda: gaussian_mi(np.zeros((6, 3)), np.zeros((6, 2))), ValueError,
         r"gaussian needs at least 20 samples \(more than dx \+ dy \+ 1 = 6"),
        (lambda: gaussian_mi(np.zeros((6, 3)), np.zeros((6, 2)), groups=0), ValueError,
         r"gaussian needs at least 7 samples \(more than dx \+ dy \+ 1 = 6.*got 6$"),
        (lambda: ksg(np.arange(9.0), np.arange(9.0), k=0), ValueError, "k must be an int >= 1"),
        (lambda: ksg(np.arange(9.0), np.arange(9.0), estimator=3), ValueError,
         "estimator must be 1 or 2"),
        (lambda: ksg(np.arange(9.0), np.arange(9.0), groups=1), ValueError, "groups must be"),
        (lambda: mixed_ksg(np.arange(9.0), np.arange(9.0), level=1.0), ValueError, "level"),
        (lambda: ksg(np.arange(9.0), np.arange(9.0), threads=0), ValueError, "threads"),
        (lambda: ksg(np.arange(9.0), np.arange(9.0), algorithm="ball"), ValueError,
         "algorithm must be"),
        (lambda: ksg(np.arange(9.0), np.arange(9.0), noise=-1.0), ValueError, "noise"),
        (lambda: ksg(torch.zeros(9, dtype=torch.complex64), np.arange(9.0)), TypeError,
         "real numbers"),
    ],
)
def test_errors_in_the_users_terms(call, error, match) -> None:
    with pytest.raises(error, match=match):
        call()


def test_five_samples_get_no_zero_width_interval() -> None:
    # a new user's ksg on 5 samples printed the interval [0.0667, 0.0667] (stderr 0)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(5), rng.standard_normal(5)
    with pytest.raises(ValueError, match=r"ksg1 needs at least 20 samples .*groups of at least 2 "
                                         r"samples.*got 5\. Use groups=0 for the value alone"):
        ksg(x, y)
    x12, y12 = rng.standard_normal(12), rng.standard_normal(12)
    with pytest.raises(ValueError, match=r"got 12\. Use groups=6 \(a rougher interval\)"):
        ksg(x12, y12)
    assert np.isfinite(ksg(x12, y12, groups=6).stderr)  # the advice works
    assert all(math.isnan(v) for v in ksg(x, y, groups=0).interval)  # the value, no interval


def test_equal_left_out_values_give_nan_and_a_warning_not_a_zero_width_interval() -> None:
    # every left-out value equal: k = n - 1 neighbours, so the counts are the same everywhere
    from mitools.classical.jackknife import summarize

    with pytest.warns(RuntimeWarning, match=r"ksg1: the jackknife's 4 leave-group-out values "
                                            r"are all equal \(0.0667 nats\).*NaN"):
        r = summarize(0.0667, [0.0667] * 4, 0.95, "ksg1", "recomputed")
    assert math.isnan(r.stderr) and all(math.isnan(v) for v in r.interval)
    assert "all equal" in r.uncertainty
    # y = x: every sample's counts are k - 1 whatever the subsample, so every subsample of
    # the same size gives the same value (KSG on a deterministic relation)
    x = np.random.default_rng(0).standard_normal(40)
    for fit in (lambda: ksg(x, x, groups=4), lambda: mixed_ksg(x, x)):
        with pytest.warns(RuntimeWarning, match="leave-group-out values are all equal"):
            r = fit()
        assert math.isnan(r.stderr) and math.isnan(r.interval[0]) and r.value > 2
        assert str(r).endswith(f"nats (no interval) [{r.method}]"), str(r)


def test_dataframe_with_text_columns_names_them() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "city": ["x", "y", "z"]})
    # the message shared with estimate_mi (mitools.inputs): the column, its dtype and a value
    with pytest.raises(TypeError, match=r"x must have numeric columns only; non-numeric: "
                                        r"'city' \(dtype \w+; row 0 holds 'x', not a number\)"):
        ksg(frame, [1.0, 2.0, 3.0])
