"""Rows → model input (tensors from list columns, columns by name) and outputs → columns."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from mlreg.batch.features import Feeder, output_columns, tensor_array, to_tensor
from mlreg.batch.formats import json_field
from mlreg.errors import InvalidInput, SchemaError
from mlreg.models.signature import ColSpec, ModelSignature, Schema, TensorSpec

IMAGE = TensorSpec(np.dtype("float32"), (-1, 2, 2, 3))
X = np.arange(24, dtype=np.float32).reshape(2, 2, 2, 3)


def signature(*specs):
    return ModelSignature(Schema(list(specs)))


def names(*columns):
    return pa.schema([(c, pa.float64()) for c in columns])


@pytest.mark.parametrize(
    "column",
    [
        pa.array(X.tolist()),  # nested lists
        tensor_array(X),  # nested fixed-size lists
        pa.array(X.reshape(2, -1).tolist()),  # flat lists, reshaped
        pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1)), 12),  # flat fixed-size
        pa.array([str(row.tolist()) for row in X]),  # JSON text in a CSV cell
    ],
    ids=["nested", "nested-fixed", "flat", "flat-fixed", "json-text"],
)
def test_a_row_holds_a_tensor_nested_or_flat(column):
    table = pa.table({"image": column})
    got = Feeder(signature(IMAGE), table.schema, None).feed(table)
    np.testing.assert_array_equal(got, X)


def test_ragged_rows_are_a_schema_error():
    table = pa.table({"image": pa.array([[1.0, 2.0], [3.0]])})
    with pytest.raises(SchemaError) as e:
        Feeder(signature(IMAGE), table.schema, None).feed(table)
    assert e.value.message == (
        "column 'image': rows of different lengths (1 to 2 values at depth 1); "
        "expected a rectangular tensor"
    )


def test_scalar_columns_make_a_one_dimensional_tensor_row():
    table = pa.table({"f0": [1.0, 2.0], "f1": [3.0, 4.0], "id": [7, 8]})
    spec = TensorSpec(np.dtype("float32"), (-1, 2))
    got = Feeder(signature(spec), table.schema, ["f0", "f1"]).feed(table)
    np.testing.assert_array_equal(got, [[1.0, 3.0], [2.0, 4.0]])


def test_named_tensors_come_from_columns_of_their_names():
    a = TensorSpec(np.dtype("float32"), (-1, 3), "a")
    b = TensorSpec(np.dtype("float32"), (-1, 2), "b")
    table = pa.table({"b": pa.array([[1.0, 2.0]]), "id": [1], "a": pa.array([[1.0, 2.0, 3.0]])})
    got = Feeder(signature(a, b), table.schema, None).feed(table)
    assert sorted(got) == ["a", "b"]
    assert got["a"].shape == (1, 3) and got["b"].shape == (1, 2)


def test_missing_named_tensor_input_is_reported_up_front():
    a = TensorSpec(np.dtype("float32"), (-1, 3), "a")
    b = TensorSpec(np.dtype("float32"), (-1, 2), "b")
    with pytest.raises(SchemaError) as e:
        Feeder(signature(a, b), names("a", "id"), None)
    assert e.value.message == "missing input 'b'; expected inputs: 'a', 'b' (one column each)"


def test_columns_by_name_ignore_other_columns():
    sig = signature(ColSpec("double", "a"), ColSpec("long", "c"))
    table = pa.table({"id": [1], "c": [2], "a": [0.5]})
    frame = Feeder(sig, table.schema, None).feed(table)
    assert list(frame.columns) == ["a", "c"]


def test_missing_required_column_names_it_like_the_server():
    sig = signature(ColSpec("double", "a"), ColSpec("long", "c"))
    with pytest.raises(SchemaError) as e:
        Feeder(sig, names("a", "id"), None)
    assert e.value.message == "missing required column 'c'; expected columns: 'a', 'c'"


def test_columns_flag_must_name_existing_columns():
    with pytest.raises(InvalidInput) as e:
        Feeder(None, names("a", "b"), ["a", "zz"])
    assert e.value.message == (
        "--columns names 'zz', which the input does not have; its columns: 'a', 'b'"
    )


def test_json_text_columns_are_decoded_to_their_values():
    table = pa.Table.from_arrays([pa.array(["1", '"x"'])], schema=pa.schema([json_field("a")]))
    frame = Feeder(signature(ColSpec("long", "a")), table.schema, None).feed(table)
    assert frame["a"].tolist() == [1, "x"]


def test_to_tensor_refuses_null_rows():
    column = pa.chunked_array([pa.array([[1.0, 2.0], None])])
    with pytest.raises(SchemaError, match=r"column 'x': missing values \(null rows\)"):
        to_tensor(column, pa.field("x", column.type), (2,))


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (np.array([[0.1, 0.9], [0.2, 0.8]], np.float32), {"p": pa.list_(pa.float32(), 2)}),
        (np.array([[1.0], [2.0]]), {"p": pa.float64()}),
        (np.zeros((2, 2, 3), np.float32), {"p": pa.list_(pa.list_(pa.float32(), 3), 2)}),
        (
            {"score": np.zeros((2, 1)), "probs": np.zeros((2, 2))},
            {"score": pa.float64(), "probs": pa.list_(pa.float64(), 2)},
        ),
    ],
    ids=["matrix", "column-vector", "rank-3", "named"],
)
def test_outputs_keep_their_dtype_and_shape(result, expected):
    got = output_columns(result, "p")
    assert {k: v.type for k, v in got.items()} == expected


@pytest.mark.parametrize("kind", ["fixed", "variable"])
def test_a_row_can_hold_a_tensor_as_its_raw_bytes(kind):
    cells = [row.tobytes() for row in X]
    column = pa.array(cells, pa.binary(48) if kind == "fixed" else pa.binary())
    table = pa.table({"image": column}).slice(1)  # offsets into shared buffers are honoured
    got = Feeder(signature(IMAGE), table.schema, None).feed(table)
    np.testing.assert_array_equal(got, X[1:])


def test_raw_bytes_of_the_wrong_size_name_the_expected_size():
    table = pa.table({"image": pa.array([b"\0" * 48, b"\0" * 44])})
    with pytest.raises(SchemaError) as e:
        Feeder(signature(IMAGE), table.schema, None).feed(table)
    assert e.value.message == (
        "column 'image': expected 48 bytes per row (a float32 tensor of shape (-1, 2, 2, 3), "
        "raw float32), got 44"
    )


def test_one_tensor_comes_from_the_one_list_column_next_to_others():
    table = pa.table({"id": [1, 2], "key": ["a", "b"], "image": tensor_array(X)})
    got = Feeder(signature(IMAGE), table.schema, None).feed(table)
    np.testing.assert_array_equal(got, X)
