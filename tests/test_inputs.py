"""mitools.inputs, the one conversion of user samples: precision, dtypes and messages."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from mitools.inputs import (
    as_float64_columns,
    as_sample_tensor,
    check_paired,
    describe_column,
    label_codes,
    object_numbers,
    parses_as_number,
)

pd = pytest.importorskip("pandas")


def test_a_mixed_frame_shifts_its_integer_columns_before_float64() -> None:
    # float64 spacing near 1.7e18 is 256: a plain to_numpy() would merge these three rows
    ts = np.array([0, 1, 2], dtype=np.int64) + 1_700_000_000_000_000_000
    frame = pd.DataFrame({"ts": ts, "v": [0.5, 0.25, 0.0]})
    for out in (as_float64_columns(frame, "x"), as_sample_tensor(frame, "x").numpy()):
        np.testing.assert_array_equal(out, [[0.0, 0.5], [1.0, 0.25], [2.0, 0.0]])
    same = pd.DataFrame({"a": ts, "b": ts + 5})  # one dtype: kept as int64, exactly
    t = as_sample_tensor(same, "x")
    assert t.dtype == torch.int64 and int(t[2, 1] - t[0, 0]) == 7


def test_uint64_beyond_int64_is_shifted_not_rounded() -> None:
    big = np.uint64(2**63) + np.array([0, 1, 2], dtype=np.uint64)
    t = as_sample_tensor(big, "x")
    assert t.dtype == torch.int64 and t.ravel().tolist() == [0, 1, 2]
    np.testing.assert_array_equal(as_float64_columns(big, "x").ravel(), [0.0, 1.0, 2.0])


def test_half_precision_is_widened_exactly() -> None:
    h = torch.tensor([[1.5], [65504.0]], dtype=torch.float16)
    assert as_sample_tensor(h, "x").dtype == torch.float32
    assert as_sample_tensor(h.bfloat16(), "x").dtype == torch.float32
    np.testing.assert_array_equal(as_float64_columns(h, "x"), [[1.5], [65504.0]])


def test_messages_name_the_argument_the_rows_and_the_columns() -> None:
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": [1.0, 2.0, np.inf]})
    with pytest.raises(ValueError, match=r"y contains NaN or infinite values in 2 of 3 rows "
                                         r"\(first: row 1; columns 'a', 'b'\); drop or impute "
                                         r".* both variables at once"):
        as_float64_columns(frame, "y")
    with pytest.raises(TypeError, match=r"x must have numeric columns only; non-numeric: "
                                        r"'city' \(dtype \w+; row 0 holds 'p', not a number\)"):
        as_sample_tensor(pd.DataFrame({"v": [1.0], "city": ["p"]}), "x")
    with pytest.raises(TypeError, match=r"x must hold real numbers, got the column 's' "
                                        r"\(dtype \w+; row 0 holds 'p', not a number\)"):
        as_float64_columns(pd.Series(["p", "q"], name="s"), "x")
    with pytest.raises(ValueError, match=r"same number of pairs \(paired rows\): got x of "
                                         r"shape \(2, 1\) and y of shape \(3, 1\)"):
        check_paired(np.zeros((2, 1)), np.zeros((3, 1)), "pairs")
    assert describe_column(np.array([1, "q"], dtype=object), "c") == (
        "'c' (dtype object; row 1 holds 'q', not a number)")


def test_describe_column_names_the_first_value_that_is_not_a_number():
    """Regression (second tryout): a text column whose first cells are numeric text was shown
    by its first value, "e.g. '0.352'", which is a number; the message must show the culprit."""
    text = pd.DataFrame({"v": [1.0, 2.0, 3.0], "score": ["0.352", "0.1", "n/a "]})
    with pytest.raises(TypeError, match=r"'score' \(dtype \w+; row 2 holds 'n/a ', not a number\)"):
        as_sample_tensor(text, "x")
    assert describe_column(np.array(["1.5", "2"], dtype=object), "s") == (
        "'s' (dtype object: numbers stored as text; store them as numbers)")
    assert describe_column(np.array([None, "1", "x"], dtype=object), "s", row_label="data row") == (
        "'s' (dtype object; data row 2 holds 'x', not a number)")
    stamps = pd.Series(pd.to_datetime(["2026-01-01", "2026-01-02"]))
    assert "dates and times are not numbers" in describe_column(stamps, "t")
    assert "complex numbers" in describe_column(np.array([1 + 2j]), "z")
    assert parses_as_number(" 1e3") and parses_as_number("nan") and not parses_as_number("a")
    # review: pandas' parser refused text float() reads, so 'nan' was named the culprit
    assert describe_column(np.array(["nan", "1_000", "x"], dtype=object), "c") == (
        "'c' (dtype object; row 2 holds 'x', not a number)")


# --- text labels of a discrete variable: one coding for every entry point -------------------


def test_label_codes_number_each_text_column_in_sorted_order() -> None:
    from mitools.inputs import label_codes

    codes = label_codes(np.array(["cat", "dog", "cat", "bird"], dtype=object), "y")
    np.testing.assert_array_equal(codes.values, [1, 2, 1, 0])
    assert codes.categories == [["bird", "cat", "dog"]]
    # 2-D: each column alone, so that two rows are equal exactly when their labels are
    rows = label_codes([["a", "x"], ["b", "x"], ["a", "y"], ["a", "x"]], "x")
    np.testing.assert_array_equal(rows.values, [[0, 0], [1, 0], [0, 1], [0, 0]])
    # a frame keeps its numeric columns, names and index; a Series its name and index
    frame = pd.DataFrame({"v": [0.5, 1.5, 2.5], "lab": ["q", "p", "q"]}, index=[7, 8, 9])
    coded = label_codes(frame, "x")
    assert list(coded.values.columns) == ["v", "lab"] and list(coded.values.index) == [7, 8, 9]
    assert coded.values["lab"].tolist() == [1, 0, 1] and coded.categories == [None, ["p", "q"]]
    series = label_codes(pd.Series(["b", "a"], name="s", dtype="category"), "y").values
    assert series.name == "s" and series.tolist() == [1, 0]
    # numbers, and tensors, are left as they are (the numeric path reads them)
    numbers = np.array([3, 1, 3])
    assert label_codes(numbers, "x").values is numbers and label_codes(numbers, "x").categories \
        is None
    # the labels of a fit fix the codes of new samples; an unseen label is refused
    np.testing.assert_array_equal(label_codes(["dog", "bird"], "y", codes.categories).values,
                                  [2, 0])
    with pytest.raises(ValueError, match=r"y row 1 holds 'fish', not one of the 3 labels"):
        label_codes(["dog", "fish"], "y", codes.categories)


def test_discrete_text_reads_as_codes_and_continuous_text_is_still_refused() -> None:
    labels = ["cat", "dog", "cat", "bird"]
    np.testing.assert_array_equal(as_sample_tensor(label_codes(labels, "y").values, "y").ravel(),
                                  [1, 2, 1, 0])
    np.testing.assert_array_equal(as_float64_columns(np.array(labels), "y", discrete=True),
                                  [[1.0], [2.0], [1.0], [0.0]])
    with pytest.raises(TypeError, match=r"y must hold real numbers, got numpy dtype <U4; if it "
                                        r"holds labels, pass discrete_y=True"):
        as_sample_tensor(np.array(labels), "y")
    with pytest.raises(TypeError, match=r"non-numeric: 'lab' .* pass discrete_x=True"):
        as_float64_columns(pd.DataFrame({"lab": labels}), "x")


@pytest.mark.parametrize("missing", [None, float("nan"), pd.NA])
def test_a_missing_label_is_refused_like_nan(missing) -> None:
    from mitools.inputs import label_codes

    labels = np.array(["a", "b", missing, "a", missing], dtype=object)
    with pytest.raises(ValueError, match=r"x has missing labels \(None or NaN\) in 2 of 5 rows "
                                         r"\(first: row 2\); drop those rows first, from both"):
        as_sample_tensor(label_codes(labels, "x").values, "x")
    # the command line's choice: NaN codes, which --dropna drops like NaN in numbers
    codes = label_codes(pd.Series(labels), "x", missing="nan").values.to_numpy()
    np.testing.assert_array_equal(codes, [0.0, 1.0, np.nan, 0.0, np.nan])


@pytest.mark.parametrize("dtype", ["Int64", "category", "float64", "int64[pyarrow]"])
def test_a_missing_numeric_label_is_called_one(dtype) -> None:
    """Labels held as numbers (nullable Int64, a category of integers, floats, pyarrow) with
    a missing entry: the error says missing label for a discrete variable, as for text
    labels, and NaN for a continuous one (it said NaN for both)."""
    from mitools.classical import mixed_ksg
    from mitools.estimate import estimate_mi

    labels = pd.Series([0, 1, 2, 1] * 10, dtype="Int64")
    labels[5] = pd.NA
    labels = labels.astype(dtype)
    y = np.linspace(0.0, 1.0, 40)
    said = r"x contains missing labels \(NaN, None or pandas' NA\) or infinite values in 1 of 40"
    with pytest.raises(ValueError, match=said + r" rows \(first: row 5\)"):
        mixed_ksg(labels, y, discrete_x=True)
    with pytest.raises(ValueError, match=said):
        estimate_mi(labels, y, discrete_x=True, max_steps=1)
    with pytest.raises(ValueError, match=said):
        as_float64_columns(labels, "x", discrete=True)
    if dtype != "category":  # a category column is not a continuous variable
        with pytest.raises(ValueError, match=r"x contains NaN or infinite values in 1 of 40"):
            mixed_ksg(labels, y)


@pytest.mark.parametrize("labels, seen", [
    ([1, "1", "a"], r"mixes text with int values \(row 0 holds 1, row 1 holds '1'\)"),
    (np.array(["a", 2.5], dtype=object), r"mixes text with float values \(row 0 holds 'a', "
                                          r"row 1 holds 2.5\)"),
    (pd.Series(["a", True]), r"mixes text with bool values \(row 0 holds .a., row 1 holds True\)"),
])
def test_labels_mixing_text_and_numbers_are_refused(labels, seen) -> None:
    """1 and '1' are not equal: as labels they would be two classes, silently (and numpy's
    own conversion of [1, '1'] makes them one, '1'); the choice is to refuse them."""
    with pytest.raises(TypeError, match=seen + r": labels are compared by equality"):
        as_float64_columns(labels, "x", discrete=True)


def test_labels_that_are_neither_numbers_nor_text_are_refused() -> None:
    with pytest.raises(TypeError, match=r"x holds bytes values \(row 0: b'a'\); labels must be "
                                        r"numbers or text"):
        label_codes(np.array([b"a", b"b"], dtype=object), "x")


@pytest.mark.parametrize("column, says", [
    (pd.Series(np.arange(30.0).astype(str)), "column 0 (dtype "),
    (pd.Series(pd.date_range("2020-01-01", periods=30)), "column 0 (dtype datetime64"),
    (pd.Series(["a", "b"] * 15), "column 0 (dtype "),
])
@pytest.mark.parametrize("entry", ["gaussian_mi", "ksg", "estimate_mi", "as_float64_columns"])
def test_an_unnamed_series_is_not_called_none(column, says, entry) -> None:
    """Regression (fourth tryout): ``gaussian_mi(pd.Series(x.astype(str)), y)`` said "got a
    column of dtype str: 'None' (dtype str...)", and so did a datetime Series; the shared
    conversion now reads an unnamed Series as column 0, for every entry point."""
    from mitools import classical
    from mitools.estimate import estimate_mi

    y = np.arange(30.0)
    run = {"gaussian_mi": lambda: classical.gaussian_mi(column, y),
           "ksg": lambda: classical.ksg(column, y),
           "estimate_mi": lambda: estimate_mi(column, y, max_steps=1),
           "as_float64_columns": lambda: as_float64_columns(column, "x")}[entry]
    with pytest.raises(TypeError) as caught:
        run()
    message = str(caught.value)
    assert message.startswith("x must hold real numbers, got the column column 0 (dtype ")
    assert says in message and "'None'" not in message, message
    # dates are told to become numbers, not to be passed as labels (that advice did not fit)
    assert ("discrete_x=True" in message) == ("datetime" not in says), message
    named = column.rename("when")
    with pytest.raises(TypeError) as caught:
        as_float64_columns(named, "x")
    # the dtype once (tryout 6: "a column of dtype datetime64[us]: 'when' (dtype datetime64...")
    assert "got the column 'when' (dtype " in str(caught.value)
    assert str(caught.value).count("dtype") == 1, str(caught.value)


# --- a sixth new user's tryout ------------------------------------------------------------


def _ranks_and_y(n: int = 200):
    rng = np.random.default_rng(0)
    i = rng.permutation(n)
    return i, i + rng.normal(0, n / 10, n)


@pytest.mark.parametrize("wrap", [list, lambda v: np.array(v, dtype=object),
                                  lambda v: pd.Series(v, dtype=object)])
def test_python_integers_beyond_int64_are_not_merged(wrap) -> None:
    """Regression: ``[2**70 + i for i in ...]`` (a list, an object array or column) became
    one float64 value: ksg, gaussian_mi and estimate_mi answered exactly 0 with a warning
    that x "is constant", silently wrong; an object Series was refused as "numbers stored
    as text". They are shifted by their minimum exactly, as int64 and uint64 are."""
    from mitools.classical import gaussian_mi

    i, y = _ranks_and_y()
    big = wrap([int(v) + 2**70 for v in i])
    np.testing.assert_array_equal(as_float64_columns(big, "x").ravel(), i)
    t = as_sample_tensor(big, "x")
    assert t.dtype == torch.int64 and t.ravel().tolist() == i.tolist()
    assert gaussian_mi(big, y, groups=0).value == gaussian_mi(i, y, groups=0).value > 1.0


def test_integers_beyond_int64_beside_floats_and_missing_values() -> None:
    rows = np.array([[2**70, 0.5], [2**70 + 3, 0.25], [2**70 + 1, 0.0]], dtype=object)
    np.testing.assert_array_equal(as_float64_columns(rows, "x"),
                                  [[0.0, 0.5], [3.0, 0.25], [1.0, 0.0]])
    missing = pd.Series([2**70, None, 2**70 + 2], dtype=object)
    with pytest.raises(ValueError, match="NaN or infinite values in 1 of 3 rows"):
        as_float64_columns(missing, "x")
    assert np.isnan(object_numbers(missing)).tolist() == [False, True, False]
    assert object_numbers(missing)[[0, 2]].tolist() == [0.0, 2.0]  # exact, not merged


def test_a_pandas_object_column_of_numbers_is_read_as_numbers() -> None:
    """Regression: a column of float objects (after a concat or a transpose) was refused as
    "numbers stored as text; store them as numbers", where numpy's object array of the same
    numbers is accepted. Text that parses as a number is still refused."""
    values = [0.5, 1.5, -2.0, 3.25]
    frame = pd.DataFrame({"a": pd.Series(values, dtype=object), "b": [1, 2, 3, 4]})
    np.testing.assert_array_equal(as_float64_columns(frame, "x")[:, 0], values)
    np.testing.assert_array_equal(as_sample_tensor(frame["a"], "x").ravel().numpy(), values)
    with pytest.raises(TypeError, match="numbers stored as text"):
        as_float64_columns(pd.Series(["0.5", "1.5"], dtype=object), "x")


@pytest.mark.parametrize("convert", [as_float64_columns, as_sample_tensor])
def test_a_numpy_object_array_of_text_is_refused_like_a_pandas_object_column(convert) -> None:
    """Regression (docs audit): docs/guide/inputs.rst says text that parses as a number is
    refused, and a TypeError names the argument. A numpy object array broke both:
    ``['1', '2']`` was read as the numbers 1 and 2 (``astype(float)``), ``['0.5', '1']`` and
    ``[1.5, 'a']`` raised a bare ``ValueError: invalid literal for int() with base 10``, and
    ``[object(), 1]`` a bare ``TypeError`` from ``int()``, none naming ``x``."""
    stored_as_text = r"x must hold real numbers.*column 0 .*numbers stored as text.*discrete_x"
    for text in (["1", "2"], ["0.5", "1"], [1, "0.5"]):
        with pytest.raises(TypeError, match=stored_as_text):
            convert(np.array(text, dtype=object), "x")
    with pytest.raises(TypeError, match=r"x must hold real numbers.*column 0 .*row 1 holds 'a'"):
        convert(np.array([1.5, "a"], dtype=object), "x")
    with pytest.raises(TypeError, match=r"y must hold real numbers.*column 1 .*row 0 holds 'b'"):
        convert(np.array([[1.5, "b"], [2.5, "c"]], dtype=object), "y")
    with pytest.raises(TypeError, match=r"x must hold real numbers.*row 0 holds <object"):
        convert(np.array([object(), 1], dtype=object), "x")
    # numbers held as objects are still numbers, integers beyond float64 shifted exactly
    mixed = np.array([[1.5, 2**70], [2.5, 2**70 + 3], [True, 2**70 + 1]], dtype=object)
    np.testing.assert_array_equal(np.asarray(convert(mixed, "x"), dtype=np.float64),
                                  [[1.5, 0.0], [2.5, 3.0], [1.0, 1.0]])


def test_a_categorical_column_is_called_labels_not_text() -> None:
    with pytest.raises(TypeError, match=r"categories are labels, not numbers.*discrete_x=True"):
        as_float64_columns(pd.Series(pd.Categorical([0, 1, 1, 0])), "x")


def test_a_masked_array_is_refused_where_masked() -> None:
    """Regression: ``np.ma.masked_array(x, mask=x > 2)`` was read through its mask, the
    values under it taken as samples, silently (ksg gave the unmasked data's 0.354)."""
    x = np.ma.masked_array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]], mask=[[0, 0], [0, 1], [0, 0]])
    for read in (as_float64_columns, as_sample_tensor):
        with pytest.raises(ValueError, match=r"masked entries in 1 of 3 rows \(first: row 1\)"):
            read(x, "x")
    with pytest.raises(ValueError, match="masked entries"):
        label_codes(np.ma.masked_array(["a", "b"], mask=[0, 1]), "x")
    plain = np.ma.masked_array([1.0, 2.0])  # nothing masked: its values
    np.testing.assert_array_equal(as_float64_columns(plain, "x").ravel(), [1.0, 2.0])


def test_a_meta_tensor_is_refused_by_name() -> None:
    """Regression: estimate_mi raised "Tensor.item() cannot be called on meta tensors", the
    classical estimators "Cannot copy out of meta tensor; no data!"."""
    meta = torch.empty(5, 2, device="meta")
    for read in (as_float64_columns, as_sample_tensor):
        with pytest.raises(ValueError, match=r"y is a tensor on the 'meta' device.*\(5, 2\)"):
            read(meta, "y")


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_sparse_tensors_and_columns_are_densified() -> None:
    """Regression: a sparse tensor crashed estimate_mi in torch (``aten::ne.Scalar`` not
    implemented for SparseCPU), a pandas sparse column every entry point (AttributeError:
    'SparseDtype' object has no attribute 'numpy_dtype')."""
    dense = torch.tensor([[0.0, 1.5], [2.0, 0.0], [0.0, 0.0]])
    for sparse in (dense.to_sparse(), dense.to_sparse_csr()):
        assert torch.equal(as_sample_tensor(sparse, "x"), dense)
        np.testing.assert_array_equal(as_float64_columns(sparse, "x"), dense.numpy())
    column = pd.Series(pd.arrays.SparseArray([0.0, 1.5, 0.0, 0.0]))
    np.testing.assert_array_equal(as_float64_columns(column, "x").ravel(), [0, 1.5, 0, 0])
    ints = pd.DataFrame({"a": pd.arrays.SparseArray([0, 3, 0])})
    assert as_sample_tensor(ints, "x").ravel().tolist() == [0, 3, 0]


def test_long_double_is_read_as_float64_by_every_entry_point() -> None:
    """Regression: estimate_mi refused np.longdouble with torch's "can't convert np.ndarray
    of type numpy.longdouble", which the classical estimators read."""
    x = np.array([1.5, 2.5, -1.0], dtype=np.longdouble)
    t = as_sample_tensor(x, "x")
    assert t.dtype == torch.float64 and t.ravel().tolist() == [1.5, 2.5, -1.0]


def test_pyarrow_decimals_are_numbers_as_floats_are() -> None:
    # a decimal128[pyarrow] column was refused as "numbers stored as text" (also with
    # discrete_x=True, whose message then told the user to pass discrete_x=True)
    pa = pytest.importorskip("pyarrow")
    values = [1.5, 2.25, -0.75, 1.5]
    dec = pd.Series(values, dtype=pd.ArrowDtype(pa.decimal128(10, 2)))
    np.testing.assert_array_equal(as_float64_columns(dec, "x").ravel(), values)
    np.testing.assert_array_equal(as_sample_tensor(dec, "x").numpy().ravel(), values)
    frame = pd.DataFrame({"d": dec, "i": [3, 1, 2, 0]})
    np.testing.assert_array_equal(as_float64_columns(frame, "x"),
                                  np.c_[values, [3.0, 1.0, 2.0, 0.0]])
    np.testing.assert_array_equal(
        as_float64_columns(dec, "x", discrete=True).ravel(), values)
    with pytest.raises(ValueError, match=r"x contains NaN or infinite values in 1 of 2 rows"):
        as_float64_columns(pd.Series([1.5, None], dtype=dec.dtype), "x")


def test_text_where_the_fit_had_numbers_is_refused() -> None:
    # fitted labels [['p', 'q'], None]: column 'b' held numbers; text there was coded anew
    frame = pd.DataFrame({"a": ["p", "q", "p"], "b": ["1", "2", "1"]})
    with pytest.raises(TypeError, match=r"x column 'b' was fitted on numbers; pass the same "
                                        r"numbers, not text labels"):
        label_codes(frame, "x", [["p", "q"], None])
    ok = label_codes(frame.assign(b=[1, 2, 1]), "x", [["p", "q"], None]).values
    np.testing.assert_array_equal(ok.to_numpy(), [[0, 1], [1, 2], [0, 1]])


def test_a_column_of_missing_values_is_not_called_numbers_stored_as_text() -> None:
    # string / null[pyarrow] columns of NA only read "numbers stored as text; store them as
    # numbers", which is not what they hold
    pytest.importorskip("pyarrow")
    for dtype in ("string", "null[pyarrow]"):
        with pytest.raises(TypeError, match=rf"'c' \(dtype {re.escape(dtype)}: every value is "
                                            r"missing\)"):
            as_float64_columns(pd.DataFrame({"c": pd.Series([None] * 3, dtype=dtype)}), "x")
