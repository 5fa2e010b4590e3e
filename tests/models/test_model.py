from __future__ import annotations

import json

import pytest
import yaml

from mlreg.errors import MLmodelError, ModelNotFound
from mlreg.models import ModelSignature, Schema, TensorSpec
from mlreg.models.model import Model

SIGNATURE = ModelSignature(Schema([TensorSpec("float32", (-1, 28, 28, 3))]))


def write(tmp_path, doc) -> str:
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc)
    (tmp_path / "MLmodel").write_text(text)
    return str(tmp_path / "MLmodel")


def minimal(**extra):
    return {"flavors": {"python_function": {"loader_module": "mlreg.tensorflow"}}, **extra}


def test_round_trip_keeps_every_field(tmp_path):
    model = Model(
        artifact_path="model",
        run_id="abc",
        signature=SIGNATURE,
        saved_input_example_info={"artifact_path": "input_example.json", "type": "ndarray"},
        model_size_bytes=123,
        metadata={"team": "vision"},
    ).add_flavor("tensorflow", model_type="keras", data="data")
    model.save(tmp_path)
    again = Model.load(tmp_path)
    assert again.to_dict() == model.to_dict()
    assert again.signature == SIGNATURE
    assert again.flavor("tensorflow") == {"model_type": "keras", "data": "data"}


def test_signature_is_written_as_mlflow_json_strings(tmp_path):
    Model(signature=SIGNATURE).add_flavor("python_function").save(tmp_path)
    doc = yaml.safe_load((tmp_path / "MLmodel").read_text())
    assert doc["signature"]["inputs"] == (
        '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 28, 28, 3]}}]'
    )
    assert doc["signature"]["outputs"] is None
    assert doc["mlreg_version"]


def test_unknown_keys_from_other_tools_are_preserved(tmp_path):
    write(tmp_path, minimal(mlflow_version="3.17.2", model_id=None, prompts=None, custom={"a": 1}))
    model = Model.load(tmp_path)
    model.save(tmp_path)
    doc = yaml.safe_load((tmp_path / "MLmodel").read_text())
    assert doc["mlflow_version"] == "3.17.2"
    assert doc["custom"] == {"a": 1}
    assert "model_id" in doc and doc["model_id"] is None


def test_load_accepts_the_file_itself(tmp_path):
    path = write(tmp_path, minimal())
    assert Model.load(path).flavors == minimal()["flavors"]


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(ModelNotFound, match=f"no MLmodel file at {tmp_path}/MLmodel"):
        Model.load(tmp_path)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("", "expected a mapping of MLmodel keys, the file is empty"),
        ("- a\n- b\n", "expected a mapping of MLmodel keys, the file is a list"),
        ("flavors: [unclosed\n", "not valid YAML (line 2)"),
        ({"model_uuid": "x"}, "(top level): 'flavors' is a required property"),
        ({"flavors": {}}, "flavors: {} should be non-empty"),
        (
            {"flavors": {"tensorflow": "keras"}},
            "flavors.tensorflow: 'keras' is not of type 'object'",
        ),
        (minimal(model_size_bytes=-1), "model_size_bytes: -1 is less than the minimum of 0"),
        (
            {"flavors": {"tensorflow": {"model_type": 3}}},
            "flavors.tensorflow.model_type: 3 is not one of",
        ),
        (minimal(signature={"inputs": "[not json"}), "signature.inputs is not valid JSON"),
        (minimal(signature={"inputs": '[{"name": "x"}]'}), "a schema entry must be an object"),
        (minimal(signature={"outputs": "[]"}), "signature: 'inputs' is a required property"),
        (
            minimal(
                signature={"inputs": '[{"type": "tensor", "tensor-spec": {"dtype": "float32"}}]'}
            ),
            "signature is malformed",
        ),
    ],
    ids=[
        "empty",
        "list",
        "bad-yaml",
        "no-flavors",
        "empty-flavors",
        "flavor-not-mapping",
        "negative-size",
        "bad-model-type",
        "signature-not-json",
        "signature-entry-without-type",
        "signature-without-inputs",
        "tensor-spec-without-shape",
    ],
)
def test_broken_files_name_the_file_and_the_field(tmp_path, doc, message):
    path = write(tmp_path, doc)
    with pytest.raises(MLmodelError) as e:
        Model.load(tmp_path)
    assert e.value.message.startswith(f"{path}: ")
    assert message in e.value.message


def test_flavor_lookup_says_what_exists():
    model = Model(flavors={"sklearn": {}, "python_function": {}})
    with pytest.raises(MLmodelError) as e:
        model.flavor("tensorflow")
    assert e.value.message == "model has no 'tensorflow' flavor; it has: python_function, sklearn"


def test_signature_params_round_trip(tmp_path):
    params = '[{"name": "k", "type": "long", "default": 3, "shape": null}]'
    write(
        tmp_path,
        minimal(signature={"inputs": '[{"type": "double", "name": "x"}]', "params": params}),
    )
    model = Model.load(tmp_path)
    assert model.signature.params.params[0].default == 3
    model.save(tmp_path)
    assert json.loads(
        yaml.safe_load((tmp_path / "MLmodel").read_text())["signature"]["params"]
    ) == (json.loads(params))
