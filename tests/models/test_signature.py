"""Signature and schema types: MLflow's exact JSON, round trips and validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlreg.errors import InvalidInput, MLmodelError
from mlreg.models.signature import (
    COLUMN_TYPES,
    ColSpec,
    ModelSignature,
    ParamSchema,
    ParamSpec,
    Schema,
    TensorSpec,
    format_shape,
)

IMAGE_JSON = '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 28, 28, 3]}}]'
COLUMN_JSON = '[{"type": "double", "name": "x", "required": true}]'


# --- exact JSON text ---------------------------------------------------------------------


def test_unnamed_tensor_json_is_mlflows_text():
    assert Schema([TensorSpec("float32", (-1, 28, 28, 3))]).to_json() == IMAGE_JSON


def test_column_json_is_mlflows_text():
    assert Schema([ColSpec("double", "x")]).to_json() == COLUMN_JSON


def test_named_tensors_put_the_name_first():
    schema = Schema([TensorSpec(np.float32, (-1, 3), "a"), TensorSpec(np.int64, (-1,), "b")])
    assert schema.to_json() == (
        '[{"name": "a", "type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}}, '
        '{"name": "b", "type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'
    )


def test_optional_and_unnamed_columns():
    assert ColSpec("string", "s", required=False).to_dict() == {
        "type": "string",
        "name": "s",
        "required": False,
    }
    assert ColSpec("string").to_dict() == {"type": "string", "required": True}


def test_param_json_is_mlflows_text():
    params = ParamSchema([ParamSpec("k", "long", 3), ParamSpec("s", "string", ["a"], (-1,))])
    assert params.to_json() == (
        '[{"name": "k", "default": 3, "shape": null, "type": "long"}, '
        '{"name": "s", "default": ["a"], "shape": [-1], "type": "string"}]'
    )


def test_signature_to_dict_holds_json_strings():
    sig = ModelSignature(
        Schema([TensorSpec("float32", (-1, 28, 28, 3))]),
        Schema([TensorSpec("float32", (-1, 2))]),
        ParamSchema([ParamSpec("t", "double", 0.5)]),
    )
    assert sig.to_dict() == {
        "inputs": IMAGE_JSON,
        "outputs": '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}]',
        "params": '[{"name": "t", "default": 0.5, "shape": null, "type": "double"}]',
    }
    assert sig.to_json_dict() == {
        "inputs": json.loads(IMAGE_JSON),
        "outputs": [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}],
        "params": [{"name": "t", "default": 0.5, "shape": None, "type": "double"}],
    }


def test_signature_without_outputs_or_params_writes_nulls():
    sig = ModelSignature(Schema([ColSpec("double", "x")]))
    assert sig.to_dict() == {"inputs": COLUMN_JSON, "outputs": None, "params": None}
    assert sig.to_json_dict()["outputs"] is None


@pytest.mark.parametrize(
    ("dtype", "name"),
    [
        (np.float32, "float32"),
        ("float64", "float64"),
        (np.uint8, "uint8"),
        (bool, "bool"),
        (str, "str"),
        ("<U7", "str"),
        (bytes, "bytes"),
        ("S4", "bytes"),
        (object, "object"),
    ],
)
def test_tensor_dtype_names(dtype, name):
    spec = TensorSpec(dtype, (-1,))
    assert spec.dtype_name == name
    assert spec.to_dict()["tensor-spec"]["dtype"] == name
    assert TensorSpec.from_dict(spec.to_dict()).dtype_name == name


def test_tensor_spec_normalises_dtype_and_shape():
    spec = TensorSpec("float32", [np.int64(-1), 28.0])
    assert spec.dtype == np.dtype(np.float32)
    assert spec.shape == (-1, 28)
    assert all(type(d) is int for d in spec.shape)
    assert spec.describe() == "float32 tensor of shape (-1, 28)"


def test_format_shape():
    assert format_shape((-1,)) == "(-1,)"
    assert format_shape([-1, 28, 28, 3]) == "(-1, 28, 28, 3)"


def test_column_types_and_their_numpy_dtypes():
    assert sorted(COLUMN_TYPES) == [
        "binary",
        "boolean",
        "datetime",
        "double",
        "float",
        "integer",
        "long",
        "string",
    ]
    assert COLUMN_TYPES["integer"] == np.dtype(np.int32)
    assert COLUMN_TYPES["long"] == np.dtype(np.int64)
    assert COLUMN_TYPES["float"] == np.dtype(np.float32)
    assert COLUMN_TYPES["double"] == np.dtype(np.float64)


# --- round trips ---------------------------------------------------------------------------


ROUND_TRIP_SIGNATURES = {
    "tensor": ModelSignature(Schema([TensorSpec("float32", (-1, 28, 28, 3))])),
    "named-tensors": ModelSignature(
        Schema([TensorSpec("float32", (-1, 3), "a"), TensorSpec("int64", (-1, 2), "b")]),
        Schema([TensorSpec("float32", (-1, 1), "score"), TensorSpec("str", (-1,), "label")]),
    ),
    "columns": ModelSignature(
        Schema([ColSpec(t, f"c_{t}", required=(t != "string")) for t in sorted(COLUMN_TYPES)]),
        Schema([ColSpec("double")]),
    ),
    "params": ModelSignature(
        Schema([ColSpec("string")]),
        None,
        ParamSchema(
            [
                ParamSpec("on", "boolean", True),
                ParamSpec("k", "long", 3),
                ParamSpec("n", "integer", 1),
                ParamSpec("t", "double", 0.5),
                ParamSpec("f", "float", 0.25),
                ParamSpec("s", "string", "x"),
                ParamSpec("when", "datetime", "2024-01-01T00:00:00"),
                ParamSpec("ids", "long", [1, 2], (-1,)),
            ]
        ),
    ),
}


@pytest.mark.parametrize("sig", ROUND_TRIP_SIGNATURES.values(), ids=ROUND_TRIP_SIGNATURES.keys())
def test_signature_round_trips_through_to_dict(sig):
    again = ModelSignature.from_dict(sig.to_dict())
    assert again == sig
    assert again.to_dict() == sig.to_dict()


@pytest.mark.parametrize("sig", ROUND_TRIP_SIGNATURES.values(), ids=ROUND_TRIP_SIGNATURES.keys())
def test_signature_round_trips_through_plain_json(sig):
    # from_dict accepts the parts as already-parsed JSON as well as JSON strings.
    assert ModelSignature.from_dict(sig.to_json_dict()) == sig


def test_string_tensor_specs_round_trip_equal_whatever_the_length():
    # "str" / "bytes" carry no length in the JSON, so a spec made from data (<U7, S4)
    # must still equal the spec read back from its own JSON.
    for dtype in ("<U7", "S4"):
        sig = ModelSignature(Schema([TensorSpec(dtype, (-1,))]))
        assert ModelSignature.from_dict(sig.to_dict()) == sig


def test_schema_from_json_and_back():
    schema = Schema.from_json(IMAGE_JSON)
    assert schema == Schema([TensorSpec("float32", (-1, 28, 28, 3))])
    assert schema.to_json() == IMAGE_JSON
    assert Schema.from_json(COLUMN_JSON).to_json() == COLUMN_JSON


def test_col_spec_from_dict_defaults():
    assert ColSpec.from_dict({"type": "long"}) == ColSpec("long", None, True)
    assert ColSpec.from_dict({"type": "long", "name": "n", "required": False}) == ColSpec(
        "long", "n", False
    )


def test_param_spec_from_dict():
    spec = ParamSpec.from_dict({"name": "ids", "type": "long", "default": [1], "shape": [-1]})
    assert spec == ParamSpec("ids", "long", [1], (-1,))
    assert spec.shape == (-1,)
    no_default = ParamSpec.from_dict({"name": "k", "type": "long"})
    assert no_default.default is None and no_default.shape is None


def test_empty_outputs_and_params_read_as_none():
    sig = ModelSignature.from_dict({"inputs": COLUMN_JSON, "outputs": "[]", "params": "[]"})
    assert sig.outputs is None and sig.params is None


def test_schema_helpers():
    cols = Schema([ColSpec("double", "x"), ColSpec("string", "s", required=False)])
    assert not cols.is_tensor_spec()
    assert cols.has_input_names()
    assert cols.input_names() == ["x", "s"]
    assert cols.required_input_names() == ["x"]
    tensors = Schema([TensorSpec("float32", (-1, 2))])
    assert tensors.is_tensor_spec()
    assert not tensors.has_input_names()
    assert tensors.input_names() == []
    assert tensors.required_input_names() == []


def test_specs_are_immutable():
    spec = TensorSpec("float32", (-1,))
    with pytest.raises(AttributeError):
        spec.shape = (1,)  # type: ignore[misc]


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: Schema([TensorSpec("float32", (-1,), "a"), ColSpec("double", "b")]),
            "a schema cannot mix tensor specs and column specs",
        ),
        (
            lambda: Schema([ColSpec("double", "a"), ColSpec("long", "a")]),
            "duplicate names in schema: ['a', 'a']",
        ),
        (
            lambda: Schema([TensorSpec("float32", (-1,), "t"), TensorSpec("int64", (-1,), "t")]),
            "duplicate names in schema: ['t', 't']",
        ),
        (
            lambda: Schema([TensorSpec("float32", (-1,)), TensorSpec("float32", (-1,))]),
            "a schema with several tensors must name each of them",
        ),
        (
            lambda: Schema([ColSpec("double", "a"), ColSpec("double")]),
            "either every spec in a schema has a name or none has",
        ),
        (lambda: Schema([]), "a schema needs at least one input"),
        (
            lambda: ColSpec("decimal", "a"),
            "unsupported column type 'decimal'; expected one of ['binary', 'boolean', "
            "'datetime', 'double', 'float', 'integer', 'long', 'string']",
        ),
        (lambda: ColSpec("tensor"), "unsupported column type 'tensor'"),
        (lambda: TensorSpec("complex64", (-1,)), "unsupported tensor dtype 'complex64'"),
        (lambda: TensorSpec("datetime64[ns]", (-1,)), "unsupported tensor dtype 'datetime64[ns]'"),
        (
            lambda: ParamSpec("p", "dict", {}),
            "param 'p': unsupported type 'dict'; expected one of ['boolean', 'datetime', "
            "'double', 'float', 'integer', 'long', 'string']",
        ),
        (lambda: ParamSpec("p", "binary", b""), "param 'p': unsupported type 'binary'"),
        (
            lambda: ParamSchema([ParamSpec("k", "long", 1), ParamSpec("k", "double", 1.0)]),
            "duplicate param names: ['k', 'k']",
        ),
    ],
    ids=[
        "mixed",
        "duplicate-columns",
        "duplicate-tensors",
        "unnamed-multi-tensor",
        "partly-named",
        "empty",
        "bad-column-type",
        "tensor-as-column-type",
        "bad-dtype",
        "datetime-tensor",
        "bad-param-type",
        "binary-param",
        "duplicate-params",
    ],
)
def test_validation_errors(build, message):
    with pytest.raises(InvalidInput) as e:
        build()
    assert message in e.value.message
    assert type(e.value) is InvalidInput


def test_single_unnamed_tensor_and_named_multi_tensor_are_fine():
    assert len(Schema([TensorSpec("float32", (-1,))]).inputs) == 1
    assert len(Schema([ColSpec("double"), ColSpec("long")]).inputs) == 2  # positional columns


def test_unknown_dtype_name_is_invalid_input():
    # np.dtype() raises TypeError for a name it does not know; the spec should say which.
    with pytest.raises(InvalidInput, match="floaty32"):
        TensorSpec("floaty32", (-1,))


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"outputs": COLUMN_JSON}, "signature.inputs is missing"),
        ({"inputs": None}, "signature.inputs is missing"),
        ({"inputs": "[not json"}, "signature.inputs is not valid JSON: "),
        ({"inputs": COLUMN_JSON, "outputs": "{"}, "signature.outputs is not valid JSON: "),
        ({"inputs": COLUMN_JSON, "params": "nope"}, "signature.params is not valid JSON: "),
        ({"inputs": "[]"}, "signature is malformed: a schema needs at least one input"),
        ({"inputs": '[{"name": "x"}]'}, "a schema entry must be an object with a 'type', got"),
        ({"inputs": "[3]"}, "a schema entry must be an object with a 'type', got 3"),
        ({"inputs": '[{"type": "tensor"}]'}, "signature is malformed: 'tensor-spec'"),
        (
            {"inputs": '[{"type": "tensor", "tensor-spec": {"dtype": "float32"}}]'},
            "signature is malformed: 'shape'",
        ),
        (
            {"inputs": '[{"type": "tensor", "tensor-spec": {"dtype": "complex64", "shape": [1]}}]'},
            "signature is malformed: unsupported tensor dtype 'complex64'",
        ),
        (
            {"inputs": '[{"type": "decimal", "name": "x"}]'},
            "signature is malformed: unsupported column type 'decimal'",
        ),
        (
            {"inputs": '[{"type": "double", "name": "x"}, {"type": "double", "name": "x"}]'},
            "signature is malformed: duplicate names in schema",
        ),
        (
            {"inputs": COLUMN_JSON, "params": '[{"type": "long"}]'},
            "signature is malformed: 'name'",
        ),
        ({"inputs": COLUMN_JSON, "params": "5"}, "signature is malformed: "),
        ({"inputs": "5"}, "signature is malformed: "),
    ],
    ids=[
        "no-inputs",
        "null-inputs",
        "inputs-not-json",
        "outputs-not-json",
        "params-not-json",
        "empty-inputs",
        "entry-without-type",
        "entry-not-object",
        "tensor-without-spec",
        "tensor-without-shape",
        "bad-dtype",
        "bad-column-type",
        "duplicate-names",
        "param-without-name",
        "params-not-list",
        "inputs-not-list",
    ],
)
def test_malformed_signature_dicts_raise_mlmodel_error(doc, message):
    with pytest.raises(MLmodelError) as e:
        ModelSignature.from_dict(doc)
    assert message in e.value.message


def test_non_integer_shape_is_mlmodel_error():
    doc = {"inputs": '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": ["a"]}}]'}
    with pytest.raises(MLmodelError, match="signature is malformed"):
        ModelSignature.from_dict(doc)


# --- the real MLflow package agrees ---------------------------------------------------------


@pytest.fixture(scope="module")
def mlflow_schema():
    return pytest.importorskip("mlflow.types.schema")


@pytest.mark.mlflow
@pytest.mark.parametrize("sig", ROUND_TRIP_SIGNATURES.values(), ids=ROUND_TRIP_SIGNATURES.keys())
def test_mlflow_reads_our_signature_and_writes_the_same_text(sig, mlflow_schema):
    from mlflow.models import ModelSignature as MlflowSignature

    theirs = MlflowSignature.from_dict(sig.to_dict())
    assert theirs.to_dict() == sig.to_dict()


@pytest.mark.mlflow
def test_mlflow_writes_what_we_write(mlflow_schema):
    ms = mlflow_schema
    pairs = [
        (
            ms.Schema([ms.TensorSpec(np.dtype(np.float32), (-1, 28, 28, 3))]),
            Schema([TensorSpec(np.float32, (-1, 28, 28, 3))]),
        ),
        (
            ms.Schema(
                [
                    ms.TensorSpec(np.dtype(np.float32), (-1, 3), "a"),
                    ms.TensorSpec(np.dtype(str), (-1,), "b"),
                ]
            ),
            Schema([TensorSpec(np.float32, (-1, 3), "a"), TensorSpec(str, (-1,), "b")]),
        ),
        (
            ms.Schema([ms.ColSpec("double", "x"), ms.ColSpec("string", "s", required=False)]),
            Schema([ColSpec("double", "x"), ColSpec("string", "s", required=False)]),
        ),
    ]
    for theirs, ours in pairs:
        assert ours.to_json() == theirs.to_json()
    params_theirs = ms.ParamSchema(
        [ms.ParamSpec("k", "long", 3), ms.ParamSpec("s", "string", ["a"], (-1,))]
    )
    params_ours = ParamSchema([ParamSpec("k", "long", 3), ParamSpec("s", "string", ["a"], (-1,))])
    assert params_ours.to_json() == params_theirs.to_json()
