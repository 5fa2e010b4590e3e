"""Input examples: input_example.json, serving_input_example.json and the info dict."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from mlreg.errors import InvalidInput, MLmodelError
from mlreg.models.example import (
    EXAMPLE_FILE,
    SERVING_EXAMPLE_FILE,
    load_input_example,
    load_serving_input_example,
    save_input_example,
)

NDARRAY_INFO = {
    "artifact_path": "input_example.json",
    "serving_input_path": "serving_input_example.json",
    "type": "ndarray",
}
DATAFRAME_INFO = {
    "artifact_path": "input_example.json",
    "serving_input_path": "serving_input_example.json",
    "type": "dataframe",
    "pandas_orient": "split",
}
JSON_INFO = {
    "artifact_path": "input_example.json",
    "serving_input_path": "serving_input_example.json",
    "type": "json_object",
}


def stored(tmp_path):
    """(input_example.json, serving_input_example.json), parsed."""
    return (
        json.loads((tmp_path / EXAMPLE_FILE).read_text()),
        json.loads((tmp_path / SERVING_EXAMPLE_FILE).read_text()),
    )


def test_file_names_are_mlflows():
    assert EXAMPLE_FILE == "input_example.json"
    assert SERVING_EXAMPLE_FILE == "serving_input_example.json"


# --- numpy arrays --------------------------------------------------------------------------


def test_float32_array(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(2, 2, 3) / 4
    info = save_input_example(tmp_path, x)
    assert info == NDARRAY_INFO
    example, serving = stored(tmp_path)
    assert example == x.tolist()
    assert serving == {"inputs": x.tolist()}
    assert json.loads(load_serving_input_example(tmp_path, info)) == serving
    back = load_input_example(tmp_path, info)
    assert isinstance(back, np.ndarray)
    assert back.shape == (2, 2, 3)
    np.testing.assert_array_equal(back, x)


def test_float32_values_come_back_bit_exact_as_float32(tmp_path):
    x = np.random.default_rng(0).uniform(size=(3, 5)).astype(np.float32)
    x[0, 0] = np.float32(0.1)
    x[0, 1] = np.finfo(np.float32).max
    x[0, 2] = np.finfo(np.float32).tiny
    info = save_input_example(tmp_path, x)
    back = load_input_example(tmp_path, info).astype(np.float32)
    np.testing.assert_array_equal(back, x)
    served = np.asarray(json.loads(load_serving_input_example(tmp_path, info))["inputs"])
    np.testing.assert_array_equal(served.astype(np.float32), x)


def test_serving_body_is_indented_json(tmp_path):
    save_input_example(tmp_path, np.array([[1.0]], np.float32))
    assert (tmp_path / SERVING_EXAMPLE_FILE).read_text() == (
        '{\n  "inputs": [\n    [\n      1.0\n    ]\n  ]\n}'
    )
    assert (tmp_path / EXAMPLE_FILE).read_text() == "[[1.0]]"


@pytest.mark.parametrize(
    "x",
    [
        np.array([[1, 2], [3, 4]], np.int64),
        np.array([1, 2], np.uint8),
        np.array([True, False]),
        np.array([1.5, 2.5], np.float64),
        np.array(["a", "bc"]),
        np.array(["a", "bc"], dtype=object),
        np.array([[1.0, 2.0]], np.float16),
    ],
    ids=["int64", "uint8", "bool", "float64", "str", "object-str", "float16"],
)
def test_other_arrays(tmp_path, x):
    info = save_input_example(tmp_path, x)
    assert info == NDARRAY_INFO
    example, serving = stored(tmp_path)
    assert example == x.tolist()
    assert serving == {"inputs": x.tolist()}
    back = load_input_example(tmp_path, info)
    np.testing.assert_array_equal(back, x)


def test_non_contiguous_array(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(3, 4).T
    save_input_example(tmp_path, x)
    assert stored(tmp_path)[0] == x.tolist()


def test_list_of_numbers_is_an_ndarray_example(tmp_path):
    info = save_input_example(tmp_path, [[1.5, 2.5], [3.5, 4.5]])
    assert info == NDARRAY_INFO
    assert stored(tmp_path) == ([[1.5, 2.5], [3.5, 4.5]], {"inputs": [[1.5, 2.5], [3.5, 4.5]]})
    assert load_input_example(tmp_path, info).tolist() == [[1.5, 2.5], [3.5, 4.5]]


# --- dicts of arrays -------------------------------------------------------------------------


def test_dict_of_arrays(tmp_path):
    x = {
        "a": np.full((2, 3), 0.5, np.float32),
        "b": np.array([1, 2], np.int64),
        "c": [1, 2],
        "d": ("x", "y"),
        "e": np.array(["p", "q"]),
    }
    info = save_input_example(tmp_path, x)
    assert info == NDARRAY_INFO
    example, serving = stored(tmp_path)
    expected = {
        "a": [[0.5] * 3] * 2,
        "b": [1, 2],
        "c": [1, 2],
        "d": ["x", "y"],
        "e": ["p", "q"],
    }
    assert example == expected
    assert serving == {"inputs": expected}
    back = load_input_example(tmp_path, info)
    assert list(back) == ["a", "b", "c", "d", "e"]
    assert all(isinstance(v, np.ndarray) for v in back.values())
    np.testing.assert_array_equal(back["a"], x["a"])
    np.testing.assert_array_equal(back["b"], x["b"])
    assert back["d"].tolist() == ["x", "y"]
    assert back["e"].tolist() == ["p", "q"]


def test_dict_keys_become_strings(tmp_path):
    save_input_example(tmp_path, {1: np.array([1.0])})
    assert stored(tmp_path)[0] == {"1": [1.0]}


# --- DataFrames ------------------------------------------------------------------------------


def test_dataframe_uses_split_orient(tmp_path):
    df = pd.DataFrame({"x": [1.5, 2.5], "n": [1, 2], "s": ["a", "b"], "b": [True, False]})
    info = save_input_example(tmp_path, df)
    assert info == DATAFRAME_INFO
    example, serving = stored(tmp_path)
    split = {"columns": ["x", "n", "s", "b"], "data": [[1.5, 1, "a", True], [2.5, 2, "b", False]]}
    assert example == split
    assert serving == {"dataframe_split": split}
    pd.testing.assert_frame_equal(load_input_example(tmp_path, info), df)


def test_dataframe_index_is_not_stored(tmp_path):
    df = pd.DataFrame({"x": [1.5, 2.5]}, index=[10, 20])
    info = save_input_example(tmp_path, df)
    assert "index" not in stored(tmp_path)[0]
    pd.testing.assert_frame_equal(load_input_example(tmp_path, info), df.reset_index(drop=True))


def test_dataframe_missing_strings_are_null(tmp_path):
    df = pd.DataFrame({"s": ["a", None]})
    save_input_example(tmp_path, df)
    assert stored(tmp_path)[0] == {"columns": ["s"], "data": [["a"], [None]]}


def test_dataframe_datetimes_are_iso_strings(tmp_path):
    df = pd.DataFrame({"t": pd.to_datetime(["2024-01-02 03:04:05"])})
    save_input_example(tmp_path, df)
    (value,) = stored(tmp_path)[0]["data"][0]
    assert value.startswith("2024-01-02T03:04:05")


def test_series_is_saved_as_a_one_column_frame(tmp_path):
    info = save_input_example(tmp_path, pd.Series([1.5, 2.5], name="x"))
    assert info == DATAFRAME_INFO
    assert stored(tmp_path)[1] == {"dataframe_split": {"columns": ["x"], "data": [[1.5], [2.5]]}}


# --- JSON objects ------------------------------------------------------------------------------


def test_list_of_dicts_is_a_json_object(tmp_path):
    records = [{"x": 1, "s": "a"}, {"x": 2, "s": "b"}]
    info = save_input_example(tmp_path, records)
    assert info == JSON_INFO
    assert stored(tmp_path) == (records, {"inputs": records})
    assert load_input_example(tmp_path, info) == records


def test_dict_of_scalars_is_a_json_object(tmp_path):
    x = {"question": "hello", "n": 3, "nested": {"k": [1, 2]}}
    info = save_input_example(tmp_path, x)
    assert info == JSON_INFO
    assert stored(tmp_path) == (x, {"inputs": x})
    assert load_input_example(tmp_path, info) == x


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("example", "message"),
    [
        (np.array([[1.0, np.nan]]), "input example: contains NaN or Infinity"),
        (np.array([np.inf], np.float32), "contains NaN or Infinity, which JSON cannot hold"),
        (np.array([-np.inf], np.float16), "contains NaN or Infinity"),
        ([1.0, math.nan], "contains NaN or Infinity"),
        ({"a": np.array([np.nan])}, "input example 'a': contains NaN or Infinity"),
        ({"a": [1.0, math.inf]}, "input example 'a': contains NaN or Infinity"),
        (pd.DataFrame({"x": [1.0, np.nan]}), "input example column 'x': contains NaN"),
        (pd.DataFrame({"x": np.array([np.inf], np.float32)}), "column 'x': contains NaN"),
        (pd.Series([np.nan], name="y"), "input example column 'y': contains NaN"),
    ],
    ids=[
        "array-nan",
        "array-inf",
        "float16-minus-inf",
        "list-nan",
        "dict-array-nan",
        "dict-list-inf",
        "frame-nan",
        "frame-float32-inf",
        "series-nan",
    ],
)
def test_nan_and_infinity_are_refused(tmp_path, example, message):
    with pytest.raises(InvalidInput) as e:
        save_input_example(tmp_path, example)
    assert message in e.value.message
    assert not (tmp_path / EXAMPLE_FILE).exists()
    assert not (tmp_path / SERVING_EXAMPLE_FILE).exists()


@pytest.mark.parametrize(
    "example",
    [[{"x": math.nan}], {"x": math.inf, "s": "a"}],
    ids=["records-nan", "json-dict-inf"],
)
def test_nan_in_a_json_object_is_refused(tmp_path, example):
    # orjson would silently write NaN as null, changing the example.
    with pytest.raises(InvalidInput, match="NaN or Infinity"):
        save_input_example(tmp_path, example)


@pytest.mark.parametrize(
    ("example", "name"),
    [
        (object(), "object"),
        (3, "int"),
        (2.5, "float"),
        ("text", "str"),
        (None, "NoneType"),
        ((1, 2), "tuple"),
        ({1, 2}, "set"),
        (b"bytes", "bytes"),
    ],
)
def test_unsupported_types(tmp_path, example, name):
    with pytest.raises(InvalidInput) as e:
        save_input_example(tmp_path, example)
    assert e.value.message == (
        f"unsupported input example type {name}: expected a numpy array, a dict of arrays, "
        "a pandas DataFrame, or a list / dict of JSON values"
    )


@pytest.mark.parametrize(
    "example",
    [[{"x": object()}], {"x": {1, 2}}, np.array([1 + 2j])],
    ids=["object-in-records", "set-in-dict", "complex-array"],
)
def test_values_json_cannot_hold(tmp_path, example):
    with pytest.raises(InvalidInput, match=r"^input example cannot be stored as JSON: "):
        save_input_example(tmp_path, example)


@pytest.mark.parametrize(
    "example",
    [[[1, 2], [3]], {"a": [[1, 2], [3]]}],
    ids=["ragged-list", "ragged-in-dict"],
)
def test_ragged_examples_are_invalid_input(tmp_path, example):
    with pytest.raises(InvalidInput):
        save_input_example(tmp_path, example)


# --- loading -------------------------------------------------------------------------------


def test_missing_example_file(tmp_path):
    with pytest.raises(MLmodelError) as e:
        load_input_example(tmp_path, NDARRAY_INFO)
    assert e.value.message == f"input example file {tmp_path.resolve() / EXAMPLE_FILE} is missing"
    with pytest.raises(MLmodelError, match=r"serving_input_example\.json is missing"):
        load_serving_input_example(tmp_path, NDARRAY_INFO)


@pytest.mark.parametrize("rel", ["../secret.json", "/etc/passwd", "sub/../../x.json"])
def test_paths_outside_the_model_directory_are_refused(tmp_path, rel):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (tmp_path / "secret.json").write_text("[1]")
    with pytest.raises(MLmodelError) as e:
        load_input_example(model_dir, {"artifact_path": rel, "type": "ndarray"})
    assert e.value.message == f"input example path {rel!r} points outside the model directory"
    with pytest.raises(MLmodelError, match="points outside the model directory"):
        load_serving_input_example(model_dir, {"artifact_path": "x", "serving_input_path": rel})


def test_invalid_json_example(tmp_path):
    (tmp_path / EXAMPLE_FILE).write_text("[1,")
    with pytest.raises(MLmodelError) as e:
        load_input_example(tmp_path, NDARRAY_INFO)
    assert e.value.message.startswith(f"input example in {tmp_path} is not valid JSON: ")


def test_no_serving_example_means_none(tmp_path):
    # Models saved by older MLflow versions have no serving_input_path.
    assert load_serving_input_example(tmp_path, {"artifact_path": EXAMPLE_FILE}) is None


def test_example_without_a_type_is_returned_as_json(tmp_path):
    (tmp_path / EXAMPLE_FILE).write_text('{"a": [1, 2]}')
    assert load_input_example(tmp_path, {"artifact_path": EXAMPLE_FILE}) == {"a": [1, 2]}


def test_example_in_a_subdirectory(tmp_path):
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "x.json").write_text("[[1, 2]]")
    back = load_input_example(tmp_path, {"artifact_path": "examples/x.json", "type": "ndarray"})
    assert back.tolist() == [[1, 2]]


# --- the real MLflow package agrees ---------------------------------------------------------


@pytest.mark.mlflow
@pytest.mark.parametrize(
    "example",
    [
        np.array([[0.5, 1.5], [2.5, 3.5]], np.float32),
        {"a": np.ones((1, 2), np.float32), "b": np.array(["x"])},
        pd.DataFrame({"x": [1.5, 2.5], "s": ["a", "b"], "i": [1, 2]}),
        [{"x": 1}, {"x": 2}],
        {"q": "hello", "n": 3},
    ],
    ids=["ndarray", "dict-of-arrays", "dataframe", "records", "json-dict"],
)
def test_serving_body_matches_mlflows(tmp_path, example):
    mlflow_models = pytest.importorskip("mlflow.models")
    theirs = json.loads(mlflow_models.convert_input_example_to_serving_input(example))
    info = save_input_example(tmp_path, example)
    assert json.loads(load_serving_input_example(tmp_path, info)) == theirs
