"""MLflow saves real TensorFlow models (Keras and tf.Module); mlreg reads and rewrites them.

Saving them needs TensorFlow, which MLflow imports: these are slow, and every import of
TensorFlow (or of mlflow.tensorflow) happens in a fixture, never while collecting.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from mlreg.models import ModelSignature, Schema, TensorSpec
from mlreg.models.env import read_requirements
from mlreg.models.example import load_input_example, load_serving_input_example
from mlreg.models.model import Model
from mlreg.version import __version__

pytestmark = [pytest.mark.slow, pytest.mark.mlflow]


def saved_doc(path) -> dict:
    return yaml.safe_load((path / "MLmodel").read_text())


@pytest.fixture(scope="module")
def mlflow_mod():
    return pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def example_images() -> np.ndarray:
    return np.random.default_rng(0).uniform(size=(2, 6, 6, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def mlflow_keras_dir(tmp_path_factory, mlflow_mod, example_images):
    """A tiny Keras model saved by the real mlflow.tensorflow.save_model."""
    mlflow_tf = pytest.importorskip("mlflow.tensorflow")
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input([6, 6, 3]), keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    path = tmp_path_factory.mktemp("mlflow") / "keras_model"
    mlflow_tf.save_model(model, str(path), input_example=example_images)
    return path


@pytest.fixture(scope="module")
def mlflow_module_dir(tmp_path_factory, mlflow_mod):
    """A tf.Module saved by MLflow with an explicit signature (model_type tf2-module)."""
    mlflow_tf = pytest.importorskip("mlflow.tensorflow")
    tf = pytest.importorskip("tensorflow")
    from mlflow.models import infer_signature as mlflow_infer

    class Doubler(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
        def __call__(self, x):
            return {"y": x * 2.0}

    path = tmp_path_factory.mktemp("mlflow") / "tfmod_model"
    x = np.ones((2, 3), np.float32)
    mlflow_tf.save_model(Doubler(), str(path), signature=mlflow_infer(x, x))
    return path


def test_mlreg_reads_an_mlflow_keras_model(mlflow_keras_dir, mlflow_mod):
    model = Model.load(mlflow_keras_dir)
    original = yaml.safe_load((mlflow_keras_dir / "MLmodel").read_text())
    assert set(model.flavors) == {"python_function", "tensorflow"}
    assert model.flavor("tensorflow")["model_type"] == "keras"
    assert model.flavor("python_function")["loader_module"] == "mlflow.tensorflow"
    assert model.signature == ModelSignature(
        Schema([TensorSpec("float32", (-1, 6, 6, 3))]), Schema([TensorSpec("float32", (-1, 2))])
    )
    assert model.saved_input_example_info == {
        "artifact_path": "input_example.json",
        "serving_input_path": "serving_input_example.json",
        "type": "ndarray",
    }
    assert model.model_uuid == original["model_uuid"]
    assert model.utc_time_created == original["utc_time_created"]
    assert model.model_size_bytes == original["model_size_bytes"] > 0
    assert model.extra["mlflow_version"] == mlflow_mod.__version__
    assert model.mlreg_version == __version__  # MLflow writes none; ours is filled in
    assert model.to_dict()["signature"] == original["signature"]


def test_mlreg_reads_an_mlflow_tf_module(mlflow_module_dir):
    model = Model.load(mlflow_module_dir)
    assert model.flavor("tensorflow")["model_type"] == "tf2-module"
    assert model.flavor("tensorflow")["saved_model_dir"] == "tf2model"
    assert model.signature.inputs == Schema([TensorSpec("float32", (-1, 3))])
    assert model.saved_input_example_info is None


@pytest.mark.parametrize("which", ["mlflow_keras_dir", "mlflow_module_dir"])
def test_load_save_keeps_mlflows_file_except_our_version(request, tmp_path, which):
    src = request.getfixturevalue(which)
    Model.load(src).save(tmp_path)
    original = yaml.safe_load((src / "MLmodel").read_text())
    assert saved_doc(tmp_path) == {**original, "mlreg_version": __version__}


@pytest.mark.parametrize("which", ["mlflow_keras_dir", "mlflow_module_dir"])
def test_mlflow_still_loads_what_mlreg_rewrote(request, tmp_path, which, mlflow_mod):
    src = request.getfixturevalue(which)
    ours = Model.load(src)
    ours.save(tmp_path)
    before = mlflow_mod.models.Model.load(str(src))
    after = mlflow_mod.models.Model.load(str(tmp_path))
    assert after.flavors == before.flavors
    assert after.model_uuid == before.model_uuid
    assert after.utc_time_created == before.utc_time_created
    assert after.signature == before.signature
    assert after.signature.to_dict() == ours.signature.to_dict()
    assert after.saved_input_example_info == before.saved_input_example_info
    assert after.model_size_bytes == before.model_size_bytes
    assert after.mlflow_version == before.mlflow_version


def test_mlflow_input_example_and_requirements_are_readable(mlflow_keras_dir, example_images):
    info = Model.load(mlflow_keras_dir).saved_input_example_info
    back = load_input_example(mlflow_keras_dir, info)
    np.testing.assert_array_equal(back.astype(np.float32), example_images)
    body = json.loads(load_serving_input_example(mlflow_keras_dir, info))
    np.testing.assert_array_equal(np.asarray(body["inputs"], np.float32), example_images)
    reqs = read_requirements(mlflow_keras_dir)
    assert any(r.startswith("mlflow==") for r in reqs)
