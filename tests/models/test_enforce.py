from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from mlreg.errors import MlregError, SchemaError
from mlreg.models.enforce import enforce_params, enforce_schema
from mlreg.models.signature import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

IMAGE = Schema([TensorSpec(np.float32, (-1, 28, 28, 3))])
NAMED_X = Schema([TensorSpec(np.float32, (-1, 28, 28, 3), "x")])
INT_VEC = Schema([TensorSpec(np.int32, (-1, 2))])
TWO_INPUTS = Schema([TensorSpec(np.float32, (-1, 3), "a"), TensorSpec(np.int64, (-1,), "b")])
COLUMNS = Schema(
    [
        ColSpec("double", "x"),
        ColSpec("long", "n"),
        ColSpec("string", "s"),
        ColSpec("double", "opt", required=False),
    ]
)


def test_schema_error_is_a_400_mlreg_error():
    assert issubclass(SchemaError, MlregError)
    assert SchemaError.status_code == 400


# --- tensors -----------------------------------------------------------------------------


def test_matching_tensor_passes_through_unchanged():
    x = np.zeros((2, 28, 28, 3), np.float32)
    assert enforce_schema(x, IMAGE) is x


def test_nested_list_becomes_typed_array():
    out = enforce_schema([[1, 2], [3, 4]], INT_VEC)
    assert out.dtype == np.int32
    assert out.tolist() == [[1, 2], [3, 4]]


@pytest.mark.parametrize(
    ("schema", "data", "message"),
    [
        (
            NAMED_X,
            np.zeros((1, 3), np.float32),
            "input 'x': expected shape (-1, 28, 28, 3), got (1, 3)",
        ),
        (
            IMAGE,
            np.zeros((1, 28, 28), np.float32),
            "input: expected shape (-1, 28, 28, 3), got (1, 28, 28)",
        ),
        (INT_VEC, [[1, 2, 3]], "input: expected shape (-1, 2), got (1, 3)"),
        (INT_VEC, np.zeros((0, 2), np.int32), "input: empty batch (0 rows)"),
    ],
    ids=["wrong-shape-named", "wrong-rank", "wrong-width", "empty-batch"],
)
def test_shape_errors_name_input_expected_and_actual(schema, data, message):
    with pytest.raises(SchemaError) as e:
        enforce_schema(data, schema)
    assert message in e.value.message


def test_wildcard_batch_dimension_accepts_any_batch_size():
    for n in (1, 7, 256):
        assert enforce_schema(np.zeros((n, 28, 28, 3), np.float32), IMAGE).shape[0] == n


def test_ints_go_into_a_float_tensor():
    out = enforce_schema(np.ones((1, 28, 28, 3), np.int64), IMAGE)
    assert out.dtype == np.float32


def test_float64_narrows_into_float32_since_json_has_one_number_type():
    out = enforce_schema(np.full((1, 28, 28, 3), 0.1), IMAGE)
    assert out.dtype == np.float32


def test_float64_that_overflows_float32_is_an_error():
    x = np.full((1, 28, 28, 3), 1e300)
    with pytest.raises(SchemaError, match="expected float32, got values that overflow it"):
        enforce_schema(x, IMAGE)


def test_fraction_into_int_tensor_is_an_error_not_a_truncation():
    with pytest.raises(SchemaError) as e:
        enforce_schema([[1.5, 2.0]], INT_VEC)
    assert "expected int32" in e.value.message
    assert "not whole numbers (e.g. 1.5)" in e.value.message


def test_whole_floats_into_int_tensor_are_lossless():
    out = enforce_schema([[1.0, 2.0]], INT_VEC)
    assert out.dtype == np.int32 and out.tolist() == [[1, 2]]


def test_int_out_of_range_for_int32_is_an_error():
    with pytest.raises(SchemaError, match=r"outside \[-2147483648, 2147483647\]"):
        enforce_schema([[2**40, 1]], INT_VEC)


def test_large_int64_into_float32_that_would_round_is_an_error():
    with pytest.raises(SchemaError, match="too large to represent exactly"):
        enforce_schema({"a": np.full((1, 3), 2**25 + 1, np.int64), "b": [1]}, TWO_INPUTS)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([["a", "b"]], "input: expected int32, got strings"),
        ([[1, "b"]], "input: expected int32, got strings"),
        ([[1, 2], [3]], "ragged nested list"),
        ([[1, None]], "got null values"),
        ([[float("nan"), 1.0]], "expected int32, got NaN or Infinity"),
        ([[float("inf"), 1.0]], "expected int32, got NaN or Infinity"),
    ],
    ids=["strings", "mixed-strings", "ragged", "null", "nan-in-int", "inf-in-int"],
)
def test_bad_values_in_numeric_tensor(data, message):
    with pytest.raises(SchemaError) as e:
        enforce_schema(data, INT_VEC)
    assert message in e.value.message


def test_nan_is_allowed_in_a_float_tensor():
    x = np.full((1, 28, 28, 3), np.nan)
    assert np.isnan(enforce_schema(x, IMAGE)).all()


def test_named_inputs_by_name():
    out = enforce_schema({"b": [1, 2], "a": [[1, 2, 3], [4, 5, 6]]}, TWO_INPUTS)
    assert list(out) == ["a", "b"]
    assert out["a"].dtype == np.float32 and out["b"].dtype == np.int64


def test_missing_named_input_lists_what_is_expected():
    with pytest.raises(SchemaError) as e:
        enforce_schema({"a": [[1, 2, 3]]}, TWO_INPUTS)
    assert e.value.message == "missing input 'b'; expected inputs: 'a', 'b'"


def test_extra_named_input_is_rejected():
    with pytest.raises(SchemaError, match="unexpected input 'c'"):
        enforce_schema({"a": [[1, 2, 3]], "b": [1], "c": [1]}, TWO_INPUTS)


def test_named_inputs_with_different_batch_sizes():
    with pytest.raises(SchemaError, match=r"different batch sizes: \[1, 2\]"):
        enforce_schema({"a": [[1, 2, 3]], "b": [1, 2]}, TWO_INPUTS)


def test_array_for_multi_input_schema_asks_for_a_dict():
    with pytest.raises(SchemaError, match=r"expected named inputs 'a', 'b' \(a dict of tensors\)"):
        enforce_schema(np.zeros((1, 3)), TWO_INPUTS)


def test_single_named_input_accepts_a_bare_array():
    out = enforce_schema(np.zeros((1, 28, 28, 3)), NAMED_X)
    assert set(out) == {"x"}


def test_dict_with_one_key_for_unnamed_tensor():
    out = enforce_schema({"whatever": [[1, 2]]}, INT_VEC)
    assert out.tolist() == [[1, 2]]


# --- columns -----------------------------------------------------------------------------


def test_columns_reordered_widened_and_extra_dropped(caplog):
    df = pd.DataFrame({"s": ["a"], "extra": [1], "n": np.array([3], np.int32), "x": [1]})
    with caplog.at_level(logging.WARNING, logger="mlreg.models.enforce"):
        out = enforce_schema(df, COLUMNS)
    assert list(out.columns) == ["x", "n", "s", "opt"]
    assert out["x"].dtype == np.float64
    assert out["n"].dtype == np.int64
    assert out["x"].tolist() == [1.0]
    assert "dropping columns not in the model signature: extra" in caplog.text


def test_records_and_dicts_become_frames():
    records = [{"x": 1.5, "n": 2, "s": "a"}, {"x": 2.5, "n": 3, "s": "b"}]
    out = enforce_schema(records, COLUMNS)
    assert out["x"].tolist() == [1.5, 2.5]
    cols = enforce_schema({"x": [1.5], "n": [2], "s": ["a"]}, COLUMNS)
    assert cols["n"].tolist() == [2]


def test_missing_required_column():
    with pytest.raises(SchemaError) as e:
        enforce_schema({"x": [1.0], "s": ["a"]}, COLUMNS)
    assert e.value.message == (
        "missing required column 'n'; expected columns: 'x', 'n', 's', 'opt'"
    )


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ({"x": ["oops"], "n": [1], "s": ["a"]}, "column 'x': expected float64, got strings"),
        (
            {"x": [1.0], "n": [1.5], "s": ["a"]},
            "column 'n': expected int64, got float64 values that are not whole numbers",
        ),
        ({"x": [1.0], "n": [1], "s": [3]}, "column 's': expected string"),
        (
            {"x": [None], "n": [1], "s": ["a"]},
            "column 'x': missing values in a required double column",
        ),
        ({"x": [True], "n": [1], "s": ["a"]}, "column 'x': expected double, got boolean"),
    ],
    ids=[
        "string-in-double",
        "fraction-in-long",
        "number-in-string",
        "null-required",
        "bool-in-double",
    ],
)
def test_column_type_errors(frame, message):
    with pytest.raises(SchemaError) as e:
        enforce_schema(pd.DataFrame(frame), COLUMNS)
    assert message in e.value.message


def test_empty_frame_is_an_error():
    with pytest.raises(SchemaError, match="empty batch"):
        enforce_schema(pd.DataFrame({"x": [], "n": [], "s": []}), COLUMNS)


def test_unnamed_columns_from_2d_array():
    schema = Schema([ColSpec("double"), ColSpec("double")])
    out = enforce_schema(np.array([[1, 2], [3, 4]]), schema)
    assert out.shape == (2, 2) and out[0].dtype == np.float64
    with pytest.raises(SchemaError, match="expected 2 columns, got 3"):
        enforce_schema(np.array([[1, 2, 3]]), schema)


# --- params ------------------------------------------------------------------------------

PARAMS = ParamSchema(
    [
        ParamSpec("temperature", "double", 0.5),
        ParamSpec("top_k", "long", 3),
        ParamSpec("stop", "string", ["x"], shape=(-1,)),
    ]
)


def test_params_defaults_applied_and_ints_widen_to_double():
    assert enforce_params({"temperature": 1}, PARAMS) == {
        "temperature": 1.0,
        "top_k": 3,
        "stop": ["x"],
    }


def test_unknown_param_is_rejected():
    with pytest.raises(SchemaError) as e:
        enforce_params({"temp": 1.0}, PARAMS)
    assert (
        e.value.message == "unknown param 'temp'; expected one of: 'temperature', 'top_k', 'stop'"
    )


def test_params_for_a_model_without_params():
    with pytest.raises(SchemaError, match="unknown param 'a': this model takes no params"):
        enforce_params({"a": 1}, None)
    assert enforce_params(None, None) == {}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"top_k": 1.5}, "param 'top_k': expected long, got float 1.5"),
        ({"top_k": True}, "param 'top_k': expected long, got bool True"),
        ({"temperature": "hot"}, "param 'temperature': expected double, got str 'hot'"),
        ({"stop": "a"}, "param 'stop': expected a list of string"),
        ({"stop": ["a", 1]}, "param 'stop': expected a list of string"),
    ],
    ids=["float-for-long", "bool-for-long", "str-for-double", "scalar-for-list", "mixed-list"],
)
def test_param_type_errors(params, message):
    with pytest.raises(SchemaError) as e:
        enforce_params(params, PARAMS)
    assert message in e.value.message
