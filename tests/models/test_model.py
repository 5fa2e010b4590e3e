"""The MLmodel file: round trips, MLflow-written files and every broken-file error."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from mlreg.errors import MLmodelError, ModelNotFound
from mlreg.models import ColSpec, ModelSignature, ParamSchema, ParamSpec, Schema, TensorSpec
from mlreg.models import Model as ExportedModel
from mlreg.models.model import MLMODEL_FILE, Model
from mlreg.version import __version__

SIGNATURE = ModelSignature(Schema([TensorSpec("float32", (-1, 28, 28, 3))]))
FULL_SIGNATURE = ModelSignature(
    Schema([ColSpec("double", "x"), ColSpec("string", "s", required=False)]),
    Schema([TensorSpec("float32", (-1, 2))]),
    ParamSchema([ParamSpec("k", "long", 3), ParamSpec("ids", "long", [1, 2], (-1,))]),
)
IMAGE_JSON = '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 28, 28, 3]}}]'


def write(tmp_path, doc) -> str:
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc)
    (tmp_path / "MLmodel").write_text(text)
    return str(tmp_path / "MLmodel")


def minimal(**extra):
    return {"flavors": {"python_function": {"loader_module": "mlreg.tensorflow"}}, **extra}


def saved_doc(tmp_path) -> dict:
    return yaml.safe_load((tmp_path / "MLmodel").read_text())


def full_model() -> Model:
    return Model(
        artifact_path="model",
        run_id="abc",
        model_uuid="0123456789abcdef0123456789abcdef",
        utc_time_created="2026-01-02 03:04:05.000006",
        signature=FULL_SIGNATURE,
        saved_input_example_info={
            "artifact_path": "input_example.json",
            "serving_input_path": "serving_input_example.json",
            "type": "ndarray",
        },
        model_size_bytes=123,
        metadata={"team": "vision", "tags": ["a", "b"]},
        mlreg_version="0.0.9",
        extra={"mlflow_version": "3.17.2", "custom": {"nested": [1, {"x": None}]}},
    ).add_flavor("tensorflow", model_type="keras", data="data", code=None)


def test_model_is_exported_from_the_package():
    assert ExportedModel is Model
    assert MLMODEL_FILE == "MLmodel"


# --- round trips ---------------------------------------------------------------------------


def test_round_trip_keeps_every_field(tmp_path):
    model = full_model()
    model.save(tmp_path)
    again = Model.load(tmp_path)
    assert again.to_dict() == model.to_dict()
    for field in (
        "artifact_path",
        "flavors",
        "model_uuid",
        "run_id",
        "utc_time_created",
        "signature",
        "saved_input_example_info",
        "model_size_bytes",
        "metadata",
        "mlreg_version",
        "extra",
    ):
        assert getattr(again, field) == getattr(model, field), field
    assert again.flavor("tensorflow") == {"model_type": "keras", "data": "data", "code": None}
    assert again.get_input_example_info() == model.saved_input_example_info
    # A second save writes the very same text.
    assert again.to_yaml() == model.to_yaml()


def test_saved_yaml_layout(tmp_path):
    full_model().save(tmp_path)
    doc = saved_doc(tmp_path)
    assert list(doc) == sorted(doc)
    assert doc == {
        "artifact_path": "model",
        "custom": {"nested": [1, {"x": None}]},
        "flavors": {"tensorflow": {"code": None, "data": "data", "model_type": "keras"}},
        "metadata": {"tags": ["a", "b"], "team": "vision"},
        "mlflow_version": "3.17.2",
        "mlreg_version": "0.0.9",
        "model_size_bytes": 123,
        "model_uuid": "0123456789abcdef0123456789abcdef",
        "run_id": "abc",
        "saved_input_example_info": {
            "artifact_path": "input_example.json",
            "serving_input_path": "serving_input_example.json",
            "type": "ndarray",
        },
        "signature": FULL_SIGNATURE.to_dict(),
        "utc_time_created": "2026-01-02 03:04:05.000006",
    }


def test_signature_is_written_as_mlflow_json_strings(tmp_path):
    Model(signature=SIGNATURE).add_flavor("python_function").save(tmp_path)
    doc = saved_doc(tmp_path)
    assert doc["signature"] == {"inputs": IMAGE_JSON, "outputs": None, "params": None}
    assert doc["mlreg_version"] == __version__


def test_unset_optional_fields_are_left_out(tmp_path):
    Model().add_flavor("python_function").save(tmp_path)
    doc = saved_doc(tmp_path)
    assert set(doc) == {"flavors", "model_uuid", "utc_time_created", "mlreg_version"}
    assert doc["flavors"] == {"python_function": {}}


def test_defaults_for_a_new_model():
    model = Model()
    assert re.fullmatch(r"[0-9a-f]{32}", model.model_uuid)
    assert Model().model_uuid != model.model_uuid
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", model.utc_time_created)
    assert model.mlreg_version == __version__
    assert model.flavors == {} and model.extra == {}
    assert model.signature is None and model.get_input_example_info() is None


def test_zero_and_empty_values_are_kept(tmp_path):
    Model(model_size_bytes=0, metadata={}).add_flavor("python_function").save(tmp_path)
    doc = saved_doc(tmp_path)
    assert doc["model_size_bytes"] == 0
    assert doc["metadata"] == {}
    again = Model.load(tmp_path)
    assert again.model_size_bytes == 0 and again.metadata == {}


def test_unknown_keys_from_other_tools_are_preserved_verbatim(tmp_path):
    unknown = {
        "mlflow_version": "3.17.2",
        "model_id": None,
        "prompts": None,
        "is_signature_from_type_hint": False,
        "type_hint_from_example": False,
        "custom": {"a": 1, "list": [1, "two", {"three": 3.0}]},
        "databricks_runtime": "15.4",
    }
    write(tmp_path, minimal(**unknown))
    model = Model.load(tmp_path)
    assert model.extra == unknown
    model.save(tmp_path)
    doc = saved_doc(tmp_path)
    for key, value in unknown.items():
        assert key in doc
        assert doc[key] == value and type(doc[key]) is type(value)
    assert Model.load(tmp_path).extra == unknown


def test_unknown_keys_inside_a_flavor_are_preserved(tmp_path):
    write(
        tmp_path,
        {
            "flavors": {
                "tensorflow": {"model_type": "keras", "code": None, "new_option": [1, 2]},
                "sklearn": {"pickled_model": "model.pkl"},
            }
        },
    )
    Model.load(tmp_path).save(tmp_path)
    assert saved_doc(tmp_path)["flavors"] == {
        "tensorflow": {"model_type": "keras", "code": None, "new_option": [1, 2]},
        "sklearn": {"pickled_model": "model.pkl"},
    }


def test_load_and_save_accept_the_file_itself(tmp_path):
    path = write(tmp_path, minimal())
    assert Model.load(path).flavors == minimal()["flavors"]
    target = tmp_path / "other.yaml"
    assert Model.load(path).save(target) == target
    assert Model.load(target).flavors == minimal()["flavors"]


def test_save_into_a_directory_returns_the_file(tmp_path):
    assert Model().add_flavor("python_function").save(tmp_path) == tmp_path / "MLmodel"
    assert Model.load(str(tmp_path)).flavors == {"python_function": {}}


def test_signature_params_round_trip(tmp_path):
    params = '[{"name": "k", "type": "long", "default": 3, "shape": null}]'
    write(
        tmp_path,
        minimal(signature={"inputs": '[{"type": "double", "name": "x"}]', "params": params}),
    )
    model = Model.load(tmp_path)
    assert model.signature.params.params[0].default == 3
    assert model.signature.inputs == Schema([ColSpec("double", "x")])
    model.save(tmp_path)
    assert json.loads(saved_doc(tmp_path)["signature"]["params"]) == json.loads(params)


def test_a_null_signature_is_no_signature(tmp_path):
    write(tmp_path, minimal(signature=None))
    assert Model.load(tmp_path).signature is None


def test_unquoted_timestamp_is_read_as_a_string(tmp_path):
    # YAML reads an unquoted timestamp as a datetime; the model keeps MLflow's string form.
    write(
        tmp_path, "flavors:\n  python_function: {}\nutc_time_created: 2026-11-23 12:40:34.491575\n"
    )
    model = Model.load(tmp_path)
    assert model.utc_time_created == "2026-11-23 12:40:34.491575"


def test_from_dict_names_mlmodel_by_default():
    with pytest.raises(MLmodelError) as e:
        Model.from_dict({})
    assert e.value.message == "MLmodel: (top level): 'flavors' is a required property"
    model = Model.from_dict(minimal(run_id="r"))
    assert model.run_id == "r" and model.extra == {}


def test_repr():
    model = Model(model_uuid="u").add_flavor("tensorflow").add_flavor("python_function")
    assert repr(model) == "Model(flavors=['python_function', 'tensorflow'], model_uuid='u')"


# --- flavors -------------------------------------------------------------------------------


def test_add_flavor_returns_the_model_and_replaces():
    model = Model()
    assert model.add_flavor("tensorflow", model_type="keras") is model
    model.add_flavor("tensorflow", model_type="tf2-module")
    assert model.flavor("tensorflow") == {"model_type": "tf2-module"}


def test_flavor_lookup_says_what_exists():
    model = Model(flavors={"sklearn": {}, "python_function": {}})
    with pytest.raises(MLmodelError) as e:
        model.flavor("tensorflow")
    assert e.value.message == "model has no 'tensorflow' flavor; it has: python_function, sklearn"


def test_flavor_lookup_on_a_model_without_flavors():
    with pytest.raises(MLmodelError) as e:
        Model().flavor("x")
    assert e.value.message == "model has no 'x' flavor; it has: none"


# --- broken files ----------------------------------------------------------------------------


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(ModelNotFound) as e:
        Model.load(tmp_path)
    assert e.value.message == f"no MLmodel file at {tmp_path / 'MLmodel'}"
    with pytest.raises(ModelNotFound, match=f"no MLmodel file at {tmp_path / 'nope'}$"):
        Model.load(tmp_path / "nope")


def test_mlmodel_that_is_a_directory_is_not_found(tmp_path):
    (tmp_path / "MLmodel").mkdir()
    with pytest.raises(ModelNotFound, match="no MLmodel file at"):
        Model.load(tmp_path / "MLmodel")


def test_binary_file(tmp_path):
    (tmp_path / "MLmodel").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(MLmodelError) as e:
        Model.load(tmp_path)
    assert e.value.message == f"{tmp_path / 'MLmodel'}: not a text file"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("", "expected a mapping of MLmodel keys, the file is empty"),
        ("# only a comment\n", "expected a mapping of MLmodel keys, the file is empty"),
        ("- a\n- b\n", "expected a mapping of MLmodel keys, the file is a list"),
        ("just text\n", "expected a mapping of MLmodel keys, the file is a str"),
        ("42\n", "expected a mapping of MLmodel keys, the file is a int"),
        ("flavors: [unclosed\n", "not valid YAML (line 2)"),
        ("flavors:\n  a: 1\n b: 2\n", "not valid YAML (line 3)"),
        ({"model_uuid": "x"}, "(top level): 'flavors' is a required property"),
        ({"flavors": {}}, "flavors: {} should be non-empty"),
        ({"flavors": ["tensorflow"]}, "flavors: ['tensorflow'] is not of type 'object'"),
        (
            {"flavors": {"tensorflow": "keras"}},
            "flavors.tensorflow: 'keras' is not of type 'object'",
        ),
        (
            {"flavors": {"sklearn": None}},
            "flavors.sklearn: None is not of type 'object'",
        ),
        (
            {"flavors": {"python_function": {"loader_module": 3}}},
            "flavors.python_function.loader_module: 3 is not of type 'string'",
        ),
        (minimal(model_size_bytes=-1), "model_size_bytes: -1 is less than the minimum of 0"),
        (minimal(model_size_bytes="big"), "model_size_bytes: 'big' is not of type 'integer'"),
        (minimal(model_size_bytes=1.5), "model_size_bytes: 1.5 is not of type 'integer'"),
        (
            {"flavors": {"tensorflow": {"model_type": "pytorch"}}},
            "flavors.tensorflow.model_type: 'pytorch' is not one of "
            "['keras', 'tf2-module', 'tf1-estimator']",
        ),
        (
            {"flavors": {"tensorflow": {"model_type": 3}}},
            "flavors.tensorflow.model_type: 3 is not one of",
        ),
        (
            {"flavors": {"tensorflow": {"serving": {"path": "tfs"}}}},
            "flavors.tensorflow.serving: 'version' is a required property",
        ),
        (
            {
                "flavors": {
                    "tensorflow": {
                        "serving": {"path": "tfs", "version": 0, "inputs": {}, "outputs": {}}
                    }
                }
            },
            "flavors.tensorflow.serving.version: 0 is less than the minimum of 1",
        ),
        (minimal(run_id=5), "run_id: 5 is not of type 'string', 'null'"),
        (minimal(metadata=[1]), "metadata: [1] is not of type 'object', 'null'"),
        (
            minimal(saved_input_example_info={"type": "ndarray"}),
            "saved_input_example_info: 'artifact_path' is a required property",
        ),
        (minimal(signature="[]"), "signature: '[]' is not of type 'object', 'null'"),
        (minimal(signature={"outputs": "[]"}), "signature: 'inputs' is a required property"),
        (
            minimal(signature={"inputs": [{"type": "double"}]}),
            "signature.inputs: [{'type': 'double'}] is not of type 'string', 'null'",
        ),
        (minimal(signature={"inputs": "[not json"}), "signature.inputs is not valid JSON"),
        (
            minimal(signature={"inputs": IMAGE_JSON, "outputs": "{oops"}),
            "signature.outputs is not valid JSON",
        ),
        (minimal(signature={"inputs": None}), "signature.inputs is missing"),
        (
            minimal(
                signature={"inputs": '[{"type": "tensor", "tensor-spec": {"dtype": "float32"}}]'}
            ),
            "signature is malformed: 'shape'",
        ),
        (
            minimal(signature={"inputs": '[{"type": "decimal", "name": "x"}]'}),
            "signature is malformed: unsupported column type 'decimal'",
        ),
        (
            minimal(
                signature={
                    "inputs": '[{"type": "tensor", "tensor-spec": {"dtype": "floaty", '
                    '"shape": [-1]}}]'
                }
            ),
            "signature is malformed: ",
        ),
    ],
    ids=[
        "empty",
        "only-comment",
        "list",
        "scalar-str",
        "scalar-int",
        "bad-yaml",
        "bad-indent",
        "no-flavors",
        "empty-flavors",
        "flavors-list",
        "flavor-not-mapping",
        "flavor-null",
        "loader-module-not-str",
        "negative-size",
        "size-not-int",
        "size-float",
        "bad-model-type",
        "model-type-int",
        "serving-incomplete",
        "serving-version-0",
        "run-id-int",
        "metadata-list",
        "example-info-without-path",
        "signature-not-mapping",
        "signature-without-inputs",
        "signature-inputs-not-string",
        "signature-inputs-not-json",
        "signature-outputs-not-json",
        "signature-inputs-null",
        "tensor-spec-without-shape",
        "bad-column-type",
        "unknown-dtype",
    ],
)
def test_broken_files_name_the_file_and_the_field(tmp_path, doc, message):
    path = write(tmp_path, doc)
    with pytest.raises(MLmodelError) as e:
        Model.load(tmp_path)
    assert e.value.message.startswith(f"{path}: ")
    assert message in e.value.message


@pytest.mark.parametrize("part", ["inputs", "outputs"])
def test_signature_entry_without_type_names_the_file_and_the_field(tmp_path, part):
    signature = {"inputs": IMAGE_JSON, part: '[{"name": "x"}]'}
    path = write(tmp_path, minimal(signature=signature))
    with pytest.raises(MLmodelError) as e:
        Model.load(tmp_path)
    assert e.value.message.startswith(f"{path}: ")
    assert "a schema entry must be an object with a 'type'" in e.value.message
    assert f"signature.{part}" in e.value.message


def test_signature_shape_that_is_not_a_number(tmp_path):
    spec = '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": ["a"]}}]'
    path = write(tmp_path, minimal(signature={"inputs": spec}))
    with pytest.raises(MLmodelError) as e:
        Model.load(tmp_path)
    assert e.value.message.startswith(f"{path}: ")
    assert "signature" in e.value.message


def test_errors_carry_the_mlmodel_error_code(tmp_path):
    write(tmp_path, {"flavors": {}})
    with pytest.raises(MLmodelError) as e:
        Model.load(tmp_path)
    assert e.value.to_dict()["error_code"] == "INVALID_MLMODEL"
    assert e.value.status_code == 400 and e.value.exit_code == 3


# --- MLflow writes it, mlreg reads it (and back) ---------------------------------------------


@pytest.fixture(scope="module")
def mlflow_mod():
    return pytest.importorskip("mlflow")


@pytest.mark.mlflow
def test_mlflow_loads_a_model_written_by_mlreg(tmp_path, mlflow_mod):
    full_model().save(tmp_path)
    theirs = mlflow_mod.models.Model.load(str(tmp_path))
    assert theirs.flavors == {"tensorflow": {"model_type": "keras", "data": "data", "code": None}}
    assert theirs.run_id == "abc"
    assert theirs.artifact_path == "model"
    assert theirs.model_uuid == "0123456789abcdef0123456789abcdef"
    assert theirs.signature.to_dict() == FULL_SIGNATURE.to_dict()
    assert theirs.metadata == {"team": "vision", "tags": ["a", "b"]}
