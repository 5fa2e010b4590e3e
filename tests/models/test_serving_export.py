"""The tensorflow flavor's serving section, read and written without TensorFlow."""

from __future__ import annotations

from typing import Any

import pytest

from mlreg.errors import MLmodelError
from mlreg.models import Model, ServingExport

SECTION = {
    "path": "tfserving",
    "version": 1,
    "signature_name": "serving_default",
    "inputs": {"image": "keras_tensor"},
    "outputs": {"probs": "output_0"},
}


def test_round_trip_through_the_mlmodel_file(tmp_path) -> None:
    Model().add_flavor("tensorflow", model_type="keras", serving=SECTION).save(tmp_path)
    export = ServingExport.of(Model.load(tmp_path))
    assert export == ServingExport(inputs={"image": "keras_tensor"}, outputs={"probs": "output_0"})
    assert export.saved_model_dir == "tfserving/1"
    assert export.to_dict() == SECTION


def test_signature_name_defaults_to_serving_default() -> None:
    section = {k: v for k, v in SECTION.items() if k != "signature_name"}
    assert ServingExport.from_dict(section).signature_name == "serving_default"


def test_models_without_a_section_have_no_export() -> None:
    # MLflow's TensorFlow models, and models of other flavors.
    assert ServingExport.of(Model().add_flavor("tensorflow", model_type="keras")) is None
    assert ServingExport.of(Model().add_flavor("python_function")) is None
    assert ServingExport.from_flavor({"model_type": "tf2-module"}) is None


def test_it_is_frozen_mappings_included() -> None:
    inputs = {"a": "x"}
    export = ServingExport(inputs=inputs)
    inputs["b"] = "y"  # the caller's dict is not the export's
    assert dict(export.inputs) == {"a": "x"}
    with pytest.raises(TypeError):
        export.inputs["b"] = "y"  # type: ignore[index]
    with pytest.raises(AttributeError):
        export.version = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (["tfserving"], "flavors.tensorflow.serving: expected a mapping, got a list"),
        (
            {"path": "tfserving", "version": 1},
            "flavors.tensorflow.serving: missing 'inputs', 'outputs'",
        ),
        (
            {**SECTION, "path": ""},
            "flavors.tensorflow.serving.path: expected a directory name, got ''",
        ),
        (
            {**SECTION, "version": "1"},
            "flavors.tensorflow.serving.version: expected an integer >= 1, got '1'",
        ),
        (
            {**SECTION, "version": 0},
            "flavors.tensorflow.serving.version: expected an integer >= 1, got 0",
        ),
        (
            {**SECTION, "version": True},
            "flavors.tensorflow.serving.version: expected an integer >= 1, got True",
        ),
        (
            {**SECTION, "signature_name": None},
            "flavors.tensorflow.serving.signature_name: expected a name, got None",
        ),
        (
            {**SECTION, "inputs": ["image"]},
            "flavors.tensorflow.serving.inputs: expected a mapping of names, got a list",
        ),
        (
            {**SECTION, "outputs": {"probs": 0}},
            "flavors.tensorflow.serving.outputs: expected names (strings) on both sides, "
            "got 'probs': 0",
        ),
    ],
    ids=[
        "not-a-mapping",
        "missing-keys",
        "empty-path",
        "version-a-string",
        "version-0",
        "version-a-boolean",
        "signature-name-null",
        "inputs-a-list",
        "output-name-a-number",
    ],
)
def test_malformed_sections_name_the_field(section: Any, message: str) -> None:
    with pytest.raises(MLmodelError) as e:
        ServingExport.from_dict(section)
    assert e.value.message == message
