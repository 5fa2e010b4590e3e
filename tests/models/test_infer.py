"""infer_signature: tensors, columns, params and every refusal."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from mlreg.errors import InvalidInput
from mlreg.models import ColSpec, ModelSignature, ParamSchema, ParamSpec, Schema, TensorSpec
from mlreg.models import infer_signature as exported
from mlreg.models.infer import infer_param_schema, infer_schema, infer_signature


def test_exported_from_the_package():
    assert exported is infer_signature


# --- tensors -----------------------------------------------------------------------------


def test_numpy_input_batch_dimension_becomes_a_wildcard():
    sig = infer_signature(np.zeros((5, 28, 28, 3), np.float32))
    assert sig == ModelSignature(Schema([TensorSpec("float32", (-1, 28, 28, 3))]))
    assert sig.outputs is None and sig.params is None
    assert sig.to_dict()["inputs"] == (
        '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 28, 28, 3]}}]'
    )


@pytest.mark.parametrize("dtype", ["float16", "float64", "int8", "int32", "int64", "uint8", "bool"])
def test_numpy_dtypes_are_kept(dtype):
    spec = infer_schema(np.zeros((2, 3), dtype)).inputs[0]
    assert spec == TensorSpec(dtype, (-1, 3))


def test_one_dimensional_array():
    assert infer_schema(np.arange(4)).inputs == (TensorSpec("int64", (-1,)),)


def test_string_and_bytes_arrays():
    assert infer_schema(np.array(["a", "bc"])).inputs[0].dtype_name == "str"
    assert infer_schema(np.array([b"a", b"bc"])).inputs[0].dtype_name == "bytes"
    assert infer_schema(np.array(["a", "bc"], dtype=object)).inputs[0].dtype_name == "str"
    assert infer_schema(np.array([b"a"], dtype=object)).inputs[0].dtype_name == "bytes"


def test_object_array_of_mixed_values_is_refused():
    with pytest.raises(InvalidInput, match="model_input: mixed value types; cannot infer a tensor"):
        infer_signature(np.array(["a", 1], dtype=object))


def test_dict_of_arrays_gives_named_tensors_in_order():
    sig = infer_signature({"b": np.zeros((2, 3), np.float32), "a": [1, 2], 7: np.ones((2, 1))})
    assert sig.inputs == Schema(
        [
            TensorSpec("float32", (-1, 3), "b"),
            TensorSpec("int64", (-1,), "a"),
            TensorSpec("float64", (-1, 1), "7"),
        ]
    )


def test_dict_of_scalars_is_one_record():
    sig = infer_signature({"x": 1.5, "n": 2, "s": "a"})
    assert sig.inputs == Schema(
        [ColSpec("double", "x"), ColSpec("long", "n"), ColSpec("string", "s")]
    )


def test_nested_lists_are_tensors():
    assert infer_signature([[1, 2], [3, 4]]).inputs == Schema([TensorSpec("int64", (-1, 2))])
    assert infer_signature([[1.0, 2.0]]).inputs == Schema([TensorSpec("float64", (-1, 2))])
    assert infer_signature([[[1], [2]], [[3], [4]]]).inputs == Schema(
        [TensorSpec("int64", (-1, 2, 1))]
    )
    assert infer_signature(([1, 2], [3, 4])).inputs == Schema([TensorSpec("int64", (-1, 2))])


def test_list_of_numbers():
    assert infer_signature([1.0, 2.0]).inputs == Schema([TensorSpec("float64", (-1,))])


def test_list_of_strings_and_bytes_are_columns():
    assert infer_signature(["a", "b"]).inputs == Schema([ColSpec("string")])
    assert infer_signature([b"a", b"b"]).inputs == Schema([ColSpec("binary")])
    assert infer_signature(["a"]).to_dict()["inputs"] == '[{"type": "string", "required": true}]'


# --- columns -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "col_type"),
    [
        (np.array([1, 2], np.int64), "long"),
        (np.array([1, 2], np.int32), "integer"),
        (np.array([1, 2], np.int16), "integer"),
        (np.array([1, 2], np.int8), "integer"),
        (np.array([1, 2], np.uint8), "integer"),
        (np.array([1, 2], np.uint16), "integer"),
        (np.array([1, 2], np.uint32), "long"),
        (np.array([1.5, 2.5], np.float64), "double"),
        (np.array([1.5, 2.5], np.float32), "float"),
        (np.array([1.5, 2.5], np.float16), "float"),
        (np.array([True, False]), "boolean"),
        (["a", "b"], "string"),
        (np.array(["a", "b"], dtype=object), "string"),
        ([b"a", b"b"], "binary"),
        (pd.to_datetime(["2024-01-01", "2024-01-02"]), "datetime"),
        ([datetime(2024, 1, 1), datetime(2024, 1, 2)], "datetime"),
        (pd.Categorical(["a", "b"]), "string"),
        ([True, None], "boolean"),
        ([1, None, 3], "double"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_dataframe_column_types(values, col_type):
    df = pd.DataFrame({"c": values})
    (spec,) = infer_signature(df).inputs.inputs
    assert spec.type == col_type
    assert spec.name == "c"


@pytest.mark.parametrize(
    "values",
    [
        [1.0, np.nan],
        ["a", None],
        [b"a", None],
        [True, None],
        pd.to_datetime(["2024-01-01", None]),
        pd.array([1, None], dtype="Int64"),
        [None, 2],
    ],
    ids=["double", "string", "binary", "boolean", "datetime", "nullable-int", "leading-none"],
)
def test_missing_values_make_a_column_optional(values):
    (spec,) = infer_signature(pd.DataFrame({"c": values})).inputs.inputs
    assert spec.required is False


def test_full_dataframe_json_matches_mlflow():
    df = pd.DataFrame(
        {
            "l": np.array([1, 2], np.int64),
            "i": np.array([1, 2], np.int32),
            "d": [1.0, np.nan],
            "f": np.array([1, 2], np.float32),
            "b": [True, False],
            "s": ["a", None],
            "y": [b"x", b"y"],
            "t": pd.to_datetime(["2024-01-01", "2024-01-02"]),
        }
    )
    assert json.loads(infer_signature(df).to_dict()["inputs"]) == [
        {"type": "long", "name": "l", "required": True},
        {"type": "integer", "name": "i", "required": True},
        {"type": "double", "name": "d", "required": False},
        {"type": "float", "name": "f", "required": True},
        {"type": "boolean", "name": "b", "required": True},
        {"type": "string", "name": "s", "required": False},
        {"type": "binary", "name": "y", "required": True},
        {"type": "datetime", "name": "t", "required": True},
    ]


def test_series_is_a_one_column_frame():
    assert infer_signature(pd.Series([1.5], name="x")).inputs == Schema([ColSpec("double", "x")])


def test_non_string_column_names_become_strings():
    assert infer_signature(pd.DataFrame({0: [1], 1: ["a"]})).inputs.input_names() == ["0", "1"]


def test_list_of_dicts_is_records():
    sig = infer_signature([{"x": 1.5, "s": "a"}, {"x": 2.5, "s": "b"}])
    assert sig.inputs == Schema([ColSpec("double", "x"), ColSpec("string", "s")])


def test_records_with_a_missing_key_make_that_column_optional():
    sig = infer_signature([{"x": 1.5, "s": "a"}, {"x": 2.5}])
    assert sig.inputs == Schema([ColSpec("double", "x"), ColSpec("string", "s", required=False)])


def test_object_column_of_ints_and_floats_is_double():
    df = pd.DataFrame({"c": pd.Series([1, 2.5, "x"], dtype=object).iloc[:2]})
    assert infer_signature(df).inputs.inputs[0] == ColSpec("double", "c")
    df = pd.DataFrame({"c": pd.Series([1, 2, "x"], dtype=object).iloc[:2]})
    assert infer_signature(df).inputs.inputs[0] == ColSpec("long", "c")


# --- outputs -------------------------------------------------------------------------------


def test_outputs_are_inferred_like_inputs():
    sig = infer_signature(np.zeros((5, 28, 28, 3), np.float32), np.zeros((5, 2), np.float32))
    assert sig.outputs == Schema([TensorSpec("float32", (-1, 2))])
    sig = infer_signature(np.zeros((1, 2)), {"score": np.zeros((1, 1)), "label": np.array(["a"])})
    assert sig.outputs.to_dict() == [
        {"name": "score", "type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 1]}},
        {"name": "label", "type": "tensor", "tensor-spec": {"dtype": "str", "shape": [-1]}},
    ]
    sig = infer_signature(np.zeros((1, 2)), pd.DataFrame({"p": [0.5]}))
    assert sig.outputs == Schema([ColSpec("double", "p")])


def test_output_errors_name_model_output():
    with pytest.raises(InvalidInput, match=r"^model_output: ragged nested list"):
        infer_signature(np.zeros((1, 2)), [[1, 2], [3]])
    with pytest.raises(InvalidInput, match=r"^model_output: cannot infer a schema from int"):
        infer_signature(np.zeros((1, 2)), 3)


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([[1, 2], [3]], "model_input: ragged nested list; rows must have equal lengths"),
        ([[1, 2], 3], "model_input: ragged nested list; rows must have equal lengths"),
        (
            [np.array([1, 2]), np.array([3])],
            "model_input: ragged nested list; rows must have equal lengths",
        ),
        (
            {"a": [[1, 2], [3]]},
            "model_input['a']: ragged nested list; rows must have equal lengths",
        ),
        (
            np.float32(3.0),
            "model_input: cannot infer a schema from float32; expected a numpy array, "
            "a dict of arrays, a pandas DataFrame or a list",
        ),
        (3, "model_input: cannot infer a schema from int"),
        ("abc", "model_input: cannot infer a schema from str"),
        (None, "model_input: cannot infer a schema from NoneType"),
        (
            np.array(3.0),
            "model_input: a scalar has no batch dimension; pass a list or an array",
        ),
        ([], "model_input: cannot infer a schema from an empty list"),
        ({}, "model_input: cannot infer a schema from an empty dict"),
        (
            pd.DataFrame({"x": [None, None]}),
            "column 'x': every value is missing; cannot infer its type",
        ),
        (
            pd.DataFrame({"x": [1, "a"]}),
            "column 'x': mixed value types; cannot infer a column type",
        ),
        (
            pd.DataFrame({"x": np.array([1], np.uint64)}),
            "column 'x': unsupported dtype uint64",
        ),
        (
            pd.DataFrame({"x": np.array([1 + 2j])}),
            "column 'x': unsupported dtype complex128",
        ),
    ],
    ids=[
        "ragged",
        "ragged-scalar-row",
        "ragged-arrays",
        "ragged-in-dict",
        "numpy-scalar",
        "int",
        "str",
        "none",
        "0d-array",
        "empty-list",
        "empty-dict",
        "all-missing",
        "mixed-column",
        "uint64-column",
        "complex-column",
    ],
)
def test_infer_refusals(data, message):
    with pytest.raises(InvalidInput) as e:
        infer_signature(data)
    assert e.value.message == message or e.value.message.startswith(message)


def test_scalar_in_a_dict_of_arrays_names_the_key():
    with pytest.raises(InvalidInput) as e:
        infer_signature({"a": 1, "b": [1, 2]})
    assert "model_input['a']" in e.value.message
    assert "a scalar has no batch dimension" in e.value.message


def test_list_mixing_str_and_bytes_is_refused():
    with pytest.raises(InvalidInput, match="mixed value types"):
        infer_signature(["a", b"b"])


# --- params --------------------------------------------------------------------------------


def test_params_of_each_type():
    sig = infer_signature(
        np.zeros((1, 2)),
        params={"on": True, "k": 3, "t": 0.5, "s": "x", "np_k": np.int32(4), "np_t": np.float32(2)},
    )
    assert sig.params == ParamSchema(
        [
            ParamSpec("on", "boolean", True),
            ParamSpec("k", "long", 3),
            ParamSpec("t", "double", 0.5),
            ParamSpec("s", "string", "x"),
            ParamSpec("np_k", "long", 4),
            ParamSpec("np_t", "double", 2.0),
        ]
    )
    assert type(sig.params.params[4].default) is int
    assert type(sig.params.params[5].default) is float
    assert json.loads(sig.to_dict()["params"])[0] == {
        "name": "on",
        "default": True,
        "shape": None,
        "type": "boolean",
    }


def test_numpy_bool_param_is_boolean_not_long():
    assert infer_param_schema({"on": np.bool_(True)}).params[0].dtype == "boolean"


def test_list_params():
    params = infer_param_schema(
        {"ids": [1, 2], "ws": (0.5, 1.5), "names": ["a"], "flags": [True, False]}
    )
    assert params == ParamSchema(
        [
            ParamSpec("ids", "long", [1, 2], (-1,)),
            ParamSpec("ws", "double", [0.5, 1.5], (-1,)),
            ParamSpec("names", "string", ["a"], (-1,)),
            ParamSpec("flags", "boolean", [True, False], (-1,)),
        ]
    )
    assert params.to_json() == (
        '[{"name": "ids", "default": [1, 2], "shape": [-1], "type": "long"}, '
        '{"name": "ws", "default": [0.5, 1.5], "shape": [-1], "type": "double"}, '
        '{"name": "names", "default": ["a"], "shape": [-1], "type": "string"}, '
        '{"name": "flags", "default": [true, false], "shape": [-1], "type": "boolean"}]'
    )


def test_list_param_of_numpy_scalars_can_be_written():
    sig = infer_signature(np.zeros((1, 2)), params={"ids": [np.int64(1), np.int64(2)]})
    assert sig.params.params[0].default == [1, 2]
    assert json.loads(sig.to_dict()["params"]) == [
        {"name": "ids", "default": [1, 2], "shape": [-1], "type": "long"}
    ]


def test_empty_params_mean_no_param_schema():
    assert infer_signature(np.zeros((1, 2)), params={}).params is None
    assert infer_signature(np.zeros((1, 2)), params=None).params is None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"bad": {}},
            "param 'bad': unsupported type dict; expected bool, int, float, str or a list of those",
        ),
        ({"bad": None}, "param 'bad': unsupported type NoneType"),
        ({"bad": b"x"}, "param 'bad': unsupported type bytes"),
        ({"bad": np.zeros(2)}, "param 'bad': unsupported type ndarray"),
        ({"when": datetime(2024, 1, 1)}, "param 'when': unsupported type datetime"),
        (
            {"mixed": [1, "a"]},
            "param 'mixed': a list param needs values of one type (bool, int, float or str)",
        ),
        ({"mixed": [1, 2.5]}, "param 'mixed': a list param needs values of one type"),
        ({"empty": []}, "param 'empty': a list param needs values of one type"),
        ({"nested": [[1]]}, "param 'nested': a list param needs values of one type"),
        ({"nones": [None]}, "param 'nones': a list param needs values of one type"),
    ],
    ids=[
        "dict",
        "none",
        "bytes",
        "ndarray",
        "datetime",
        "mixed-list",
        "int-and-float-list",
        "empty-list",
        "nested-list",
        "list-of-none",
    ],
)
def test_bad_params(params, message):
    with pytest.raises(InvalidInput) as e:
        infer_signature(np.zeros((1, 2)), params=params)
    assert e.value.message == message or e.value.message.startswith(message)


# --- the real MLflow package agrees ---------------------------------------------------------


@pytest.mark.mlflow
@pytest.mark.parametrize(
    "data",
    [
        np.zeros((3, 28, 28, 3), np.float32),
        {"a": np.zeros((2, 3), np.float32), "b": np.array([1, 2])},
        pd.DataFrame(
            {
                "l": np.array([1, 2], np.int64),
                "i": np.array([1, 2], np.int32),
                "d": [1.0, np.nan],
                "f": np.array([1, 2], np.float32),
                "b": [True, False],
                "s": ["a", None],
                "y": [b"x", b"y"],
                "t": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            }
        ),
        [{"x": 1.5}, {"x": 2.5}],
        ["a", "b"],
    ],
    ids=["ndarray", "dict", "dataframe", "records", "strings"],
)
def test_same_signature_as_mlflow(data):
    mlflow_models = pytest.importorskip("mlflow.models")
    theirs = mlflow_models.infer_signature(data, params={"k": 3, "s": ["a"]}).to_dict()
    ours = infer_signature(data, params={"k": 3, "s": ["a"]}).to_dict()
    assert ours == theirs


@pytest.mark.mlflow
def test_signature_json_is_byte_identical_to_mlflows():
    mlflow_models = pytest.importorskip("mlflow.models")
    x = {"a": np.ones((2, 3), np.float32), "b": np.ones((2,), np.int64)}
    params = {"k": 3, "names": ["a"]}
    ours = infer_signature(x, x["a"], params=params).to_dict()
    theirs = mlflow_models.infer_signature(x, x["a"], params=params).to_dict()
    assert ours == theirs
