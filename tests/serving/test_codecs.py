"""Payload decoding and prediction encoding, without a server."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest

from mlreg.errors import InvalidInput, SchemaError, UnsupportedMediaType
from mlreg.models.signature import ColSpec, Schema, TensorSpec
from mlreg.serving import codecs

TENSOR = Schema([TensorSpec(np.dtype("float32"), (-1, 2))])
COLUMNS = Schema([ColSpec("double", "a"), ColSpec("long", "b")])


def test_json_decodes_with_orjson_and_nan_falls_back() -> None:
    assert codecs.decode_json(b'{"inputs": [[1, 2]]}') == {"inputs": [[1, 2]]}
    doc = codecs.decode_json(b'{"inputs": [[NaN, -Infinity]]}')
    assert np.isnan(doc["inputs"][0][0]) and doc["inputs"][0][1] == float("-inf")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty request body; expected a JSON object"),
        (b'{"a": NaNa}', "malformed JSON: ..."),
        (b'{"a": "NaN"', "malformed JSON: ..."),
        (b"[" * 2000 + b"]" * 2000, "malformed JSON: nested too deeply (more than 1024 levels)"),
    ],
    ids=["empty", "nan-like-word", "nan-in-string-unterminated", "too-deep"],
)
def test_json_errors(body: bytes, message: str) -> None:
    with pytest.raises(InvalidInput) as e:
        codecs.decode_json(body)
    if message.endswith("..."):
        assert e.value.message.startswith(message[:-3])
    else:
        assert e.value.message == message


def test_content_types() -> None:
    allowed = codecs.JSON_TYPES | codecs.CSV_TYPES
    assert codecs.check_content_type("application/json", "UTF-8", allowed) == "application/json"
    assert codecs.check_content_type("text/csv", "utf8", allowed) == "text/csv"
    with pytest.raises(UnsupportedMediaType, match="unsupported charset 'utf-16'"):
        codecs.check_content_type("application/json", "utf-16", allowed)
    with pytest.raises(UnsupportedMediaType, match=r"expected application/json$"):
        codecs.check_content_type("text/csv", None, codecs.JSON_TYPES)


def test_forms() -> None:
    split = codecs.decode_invocations(
        {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2]], "index": [7]}}, COLUMNS
    )
    assert isinstance(split.data, pd.DataFrame) and list(split.data.index) == [7]
    assert split.form == "dataframe_split" and split.params is None
    rows = codecs.decode_invocations({"instances": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}, None)
    assert rows.data == {"a": [1, 3], "b": [2, 4]}
    tensor = codecs.decode_invocations({"inputs": [[1, 2]], "params": {"k": 1}}, TENSOR)
    assert tensor.data == [[1, 2]] and tensor.params == {"k": 1}


@pytest.mark.parametrize(
    ("doc", "error", "message"),
    [
        (
            {"instances": [{"a": 1}, {"b": 2}]},
            InvalidInput,
            "'instances'[1]: missing ['a']; every row needs the keys ['a']",
        ),
        (
            {"instances": [{"a": 1}, [1]]},
            InvalidInput,
            "'instances'[1]: expected an object like the first row, got a JSON list",
        ),
        (
            {"inputs": 3},
            InvalidInput,
            "'inputs': expected a list (a tensor) or an object of named tensors, got a JSON number",
        ),
        (
            {"inputs": {}},
            SchemaError,
            "empty batch: 'inputs' is an empty object; send named tensors",
        ),
        (
            {"dataframe_split": {"columns": ["a"], "data": [[1]], "rows": 1}},
            InvalidInput,
            "'dataframe_split': unknown field 'rows'; expected 'columns', 'data' and optionally "
            "'index'",
        ),
        (
            {"dataframe_split": {"data": 1}},
            InvalidInput,
            "'dataframe_split.data': expected a list of rows",
        ),
        (
            {"dataframe_records": [1]},
            InvalidInput,
            "'dataframe_records'[0]: expected an object of column values, got a JSON number",
        ),
        (
            {"inputs": {"a": [1.0], "z": [1]}},
            SchemaError,
            "unexpected column 'z' in 'inputs'; expected columns: 'a', 'b'",
        ),
    ],
    ids=[
        "rows-differ",
        "row-not-object",
        "inputs-scalar",
        "inputs-empty-object",
        "split-unknown-field",
        "split-data-not-list",
        "record-not-object",
        "extra-column-in-inputs",
    ],
)
def test_form_errors(doc: dict, error: type, message: str) -> None:
    with pytest.raises(error) as e:
        codecs.decode_invocations(doc, COLUMNS)
    assert e.value.message == message


def test_csv() -> None:
    df = codecs.decode_csv(b"a,b\n1.5,2\n")
    assert df.to_dict("list") == {"a": [1.5], "b": [2]}
    with pytest.raises(InvalidInput, match="malformed CSV"):
        codecs.decode_csv(b'a,b\n"1,2\n')


def test_encode_predictions() -> None:
    arr = np.array([[0.25, 0.75]], np.float32)
    assert orjson.loads(codecs.encode_predictions(arr)) == {"predictions": [[0.25, 0.75]]}
    assert orjson.loads(codecs.encode_predictions(arr.T.T[:, ::-1])) == {
        "predictions": [[0.75, 0.25]]
    }
    named = {"s": np.array([1, 2], np.int64), "t": np.array([b"x", b"y"], dtype=object)}
    assert orjson.loads(codecs.encode_predictions(named)) == {
        "predictions": {"s": [1, 2], "t": ["x", "y"]}
    }
    assert orjson.loads(codecs.encode_predictions(np.array([1.5], np.float16))) == {
        "predictions": [1.5]
    }
    assert orjson.loads(codecs.encode_predictions(np.array([np.nan], np.float32))) == {
        "predictions": [None]
    }
    frame = pd.DataFrame({0: [0.5, 1.5]})
    assert orjson.loads(codecs.encode_predictions(frame)) == {
        "predictions": [{"0": 0.5}, {"0": 1.5}]
    }


def test_encode_tfserving() -> None:
    named = {"s": np.array([[1.0], [2.0]]), "p": np.array([[0.1, 0.9], [0.2, 0.8]])}
    rows = orjson.loads(codecs.encode_tfserving(named, row_form=True))
    assert rows == {"predictions": [{"s": [1.0], "p": [0.1, 0.9]}, {"s": [2.0], "p": [0.2, 0.8]}]}
    cols = orjson.loads(codecs.encode_tfserving(named, row_form=False))
    assert cols == {"outputs": {"s": [[1.0], [2.0]], "p": [[0.1, 0.9], [0.2, 0.8]]}}
    frame = pd.DataFrame({0: [0.5]})
    assert orjson.loads(codecs.encode_tfserving(frame, row_form=False)) == {"outputs": [[0.5]]}


def test_csv_payload_checks_the_column_names() -> None:
    payload = codecs.decode_csv_payload(b"a,b\n1.5,2\n", COLUMNS)
    assert (payload.form, payload.params) == ("csv", None)
    assert payload.data.to_dict("list") == {"a": [1.5], "b": [2]}
    with pytest.raises(SchemaError) as e:
        codecs.decode_csv_payload(b"a,b,z\n1.5,2,3\n", COLUMNS)
    assert e.value.message == "unexpected column 'z' in 'csv'; expected columns: 'a', 'b'"


def test_tfserving_forms() -> None:
    rows = codecs.decode_tfserving({"instances": [{"a": 1, "b": 2}]}, COLUMNS, "serving_default")
    assert (rows.form, rows.data, rows.params) == ("instances", {"a": [1], "b": [2]}, None)
    cols = codecs.decode_tfserving(
        {"inputs": [[1, 2]], "signature_name": "predict"}, TENSOR, "predict"
    )
    assert (cols.form, cols.data) == ("inputs", [[1, 2]])


@pytest.mark.parametrize(
    ("doc", "error", "message"),
    [
        (
            [[1, 2]],
            InvalidInput,
            "expected a JSON object with 'instances' or 'inputs', got a JSON list",
        ),
        (
            {"signature_name": "serving_default"},
            InvalidInput,
            "expected exactly one of 'instances' or 'inputs' (and optionally 'signature_name'); "
            "got neither",
        ),
        (
            {"instances": [[1]], "inputs": [[1]]},
            InvalidInput,
            "expected exactly one of 'instances' or 'inputs' (and optionally 'signature_name'); "
            "got 'instances' and 'inputs'",
        ),
        (
            {"inputs": [[1]], "params": {}},
            InvalidInput,
            "expected exactly one of 'instances' or 'inputs' (and optionally 'signature_name'); "
            "unknown field 'params'",
        ),
        (
            {"inputs": [[1]], "signature_name": "nope"},
            InvalidInput,
            "signature_name 'nope' not found; this model serves 'serving_default'",
        ),
        (
            {"instances": []},
            SchemaError,
            "empty batch: 'instances' has no rows; send at least one",
        ),
        (
            {"inputs": {"a": [1.0], "z": [1]}},
            SchemaError,
            "unexpected column 'z' in 'inputs'; expected columns: 'a', 'b'",
        ),
    ],
    ids=[
        "not-an-object",
        "neither-key",
        "both-keys",
        "unknown-field",
        "other-signature",
        "empty-instances",
        "extra-column",
    ],
)
def test_tfserving_errors(doc: object, error: type, message: str) -> None:
    with pytest.raises(error) as e:
        codecs.decode_tfserving(doc, COLUMNS, "serving_default")
    assert e.value.message == message
