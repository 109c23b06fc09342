r"""Samples a user has (arrays, tensors, tables, lists) as numbers, without losing precision.

:func:`~mitools.estimate.estimate_mi`, :func:`~mitools.estimate.pointwise_mi`, the classical
estimators (:mod:`mitools.classical`) and the command line (:mod:`mitools.cli`) all read their
samples here, so they accept the same inputs and fail with the same messages:

* **Inputs**: numpy arrays, torch tensors (any device), pandas DataFrames and Series (pandas'
  nullable dtypes included: a missing value becomes NaN), lists and tuples, and anything with
  ``__array__``. ``(n,)`` is ``n`` scalar samples, ``(n, d)`` is ``n`` samples of ``d``
  features. Booleans count as 0 and 1. Numbers held as objects (a numpy or pandas ``object``
  column, pyarrow decimals, Python integers beyond ``int64``) are read as numbers
  (:func:`object_numbers`); sparse tensors and pandas' sparse columns are densified; long
  double is read as float64. A masked array with masked entries is refused (a
  ``ValueError`` naming the first masked row), as is a tensor on the ``meta`` device,
  which holds no values.
* **Errors** name the argument, the dtype or shape seen (for a DataFrame, the offending
  columns) and what to do: a ``TypeError`` for what is not real numbers (strings, complex,
  dates, objects), a ``ValueError`` for a shape that is not ``(n, d)``, no features, NaN or
  infinite values (with the first bad row), or two variables of different lengths.
* **Labels**: a variable declared discrete (``discrete_x=True`` / ``discrete_y=True``, the
  command line's ``--discrete-x`` / ``--discrete-y``) may hold text: :func:`label_codes`
  numbers each text column's distinct labels ``0, 1, ...`` in sorted order, and every entry
  point reads those codes. A discrete variable is compared by equality only, so the estimate
  is the one of any integer coding (value for value). A missing label (``None``, NaN) is a
  ``ValueError`` naming its row, like NaN in numbers; a column mixing text and numbers
  (``1`` and ``'1'``) is a ``TypeError``, since ``1 != '1'`` would make them two classes
  silently. Continuous variables refuse text, as before.
* **Pairing**: rows are paired by position. Two pandas objects whose indexes differ (one of
  them shuffled, or filtered) are paired by position all the same, with a warning
  (:func:`warn_if_unaligned`); the estimators also warn when ``(x, y)`` rows repeat exactly
  (:func:`repeated_rows`), which continuous estimators read as structure.
* **Precision**: nothing is rounded before the location is removed. :func:`as_sample_tensor`
  keeps every dtype that loses nothing (integers as ``int64``, float32 and float64 as given,
  half precision widened to float32) and leaves centring and scaling to its caller (in
  float64); :func:`as_float64_columns` shifts every integer column by its minimum *before* the
  conversion to float64. Either way ``1_700_000_000 + i`` as ``int64`` (timestamps, where
  float32's spacing is 128) gives the same numbers to an estimator as ``i``, and so the same
  estimate: mutual information does not change under a shift.

See :doc:`/guide/inputs` for every entry point of mitools and what it does with dtypes.

Layout: ``mitools.inputs.conversion`` (arrays as numbers), ``mitools.inputs.labels`` (text
labels as codes), ``mitools.inputs.columns`` (a column read, or described for a message),
``mitools.inputs.pairing`` (rows of ``x`` and ``y`` paired) and ``mitools.inputs.constant`` (a
variable of one value).
"""

from mitools.inputs.columns import (
    column_values,
    describe_column,
    object_numbers,
    parses_as_number,
)
from mitools.inputs.constant import warn_if_constant
from mitools.inputs.conversion import as_float64_columns, as_sample_tensor
from mitools.inputs.labels import LabelCodes, label_codes
from mitools.inputs.pairing import (
    check_paired,
    repeated_rows,
    warn_if_unaligned,
    warn_repeated_rows,
)

__all__ = [
    "LabelCodes",
    "as_float64_columns",
    "as_sample_tensor",
    "check_paired",
    "column_values",
    "describe_column",
    "label_codes",
    "object_numbers",
    "parses_as_number",
    "repeated_rows",
    "warn_if_constant",
    "warn_if_unaligned",
    "warn_repeated_rows",
]
