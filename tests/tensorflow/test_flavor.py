"""The tensorflow flavor: layout, round trips of each model kind, errors while saving."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from mlreg import pyfunc
from mlreg.errors import AlreadyExists, InvalidInput, MLmodelError, ModelExecutionError, SchemaError
from mlreg.models import ColSpec, ModelSignature, Schema, TensorSpec

# TensorFlow, Keras, mlreg.tensorflow and the zoo come from fixtures (see conftest.py).
pytestmark = pytest.mark.slow


def read_mlmodel(path):
    return yaml.safe_load((path / "MLmodel").read_text())


# --- layout ------------------------------------------------------------------------------


def test_saved_layout_matches_mlflow_and_adds_a_tf_serving_export(cnn_dir):
    names = {p.relative_to(cnn_dir).as_posix() for p in cnn_dir.rglob("*") if p.is_file()}
    for expected in [
        "MLmodel",
        "data/model.keras",
        "data/keras_module.txt",
        "data/save_format.txt",
        "requirements.txt",
        "python_env.yaml",
        "conda.yaml",
        "input_example.json",
        "serving_input_example.json",
        "tfserving/1/saved_model.pb",
    ]:
        assert expected in names
    doc = read_mlmodel(cnn_dir)
    flavor = doc["flavors"]["tensorflow"]
    assert flavor["model_type"] == "keras"
    assert flavor["data"] == "data"
    assert flavor["serving"]["path"] == "tfserving"
    assert flavor["serving"]["version"] == 1
    assert flavor["serving"]["signature_name"] == "serving_default"
    assert doc["flavors"]["python_function"]["loader_module"] == "mlflow.tensorflow"
    assert doc["model_size_bytes"] == sum(
        p.stat().st_size for p in cnn_dir.rglob("*") if p.is_file() and p.name != "MLmodel"
    )


def test_signature_inferred_from_input_example_in_mlflow_json_form(cnn_dir):
    sig = read_mlmodel(cnn_dir)["signature"]
    assert json.loads(sig["inputs"]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 28, 28, 3]}}
    ]
    assert json.loads(sig["outputs"]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 2]}}
    ]


def test_requirements_are_pinned_to_installed_versions(cnn_dir, tf):
    reqs = (cnn_dir / "requirements.txt").read_text().split()
    tf_req = [r for r in reqs if r.startswith(("tensorflow-cpu==", "tensorflow=="))]
    assert tf_req and tf_req[0].split("==")[1] == tf.__version__
    assert any(r.startswith("mlreg==") for r in reqs)


def test_pip_requirements_replace_and_extra_extend(tmp_path, cnn, mlreg_tf):
    mlreg_tf.save_model(cnn, tmp_path / "a", pip_requirements=["tensorflow-cpu==2.21.0"])
    assert (tmp_path / "a" / "requirements.txt").read_text().split() == ["tensorflow-cpu==2.21.0"]
    mlreg_tf.save_model(cnn, tmp_path / "b", extra_pip_requirements=["pillow>=10"])
    assert (tmp_path / "b" / "requirements.txt").read_text().split()[-1] == "pillow>=10"


# --- round trips for each model kind -----------------------------------------------------


def test_sequential_round_trip(cnn, cnn_dir, images, keras, mlreg_tf):
    model = pyfunc.load_model(cnn_dir)
    np.testing.assert_allclose(model.predict(images), cnn(images).numpy(), rtol=1e-5)
    native = mlreg_tf.load_model(cnn_dir)
    assert isinstance(native, keras.Model)
    np.testing.assert_allclose(native(images).numpy(), cnn(images).numpy(), rtol=1e-5)


def test_file_uri_loads_too(cnn_dir, images):
    model = pyfunc.load_model(cnn_dir.as_uri())
    assert model.predict(images).shape == (4, 2)


def test_functional_multi_input_multi_output(tmp_path, zoo, mlreg_tf):
    model = zoo.two_in_two_out()
    x = {"a": np.ones((3, 3), np.float32), "b": np.zeros((3, 2), np.float32)}
    mlreg_tf.save_model(model, tmp_path / "m", input_example=x)
    loaded = pyfunc.load_model(tmp_path / "m")
    sig = loaded.signature
    assert sig.inputs.input_names() == ["a", "b"]
    assert sorted(sig.outputs.input_names()) == ["probs", "score"]
    out = loaded.predict({"b": [[0, 0]], "a": [[1, 1, 1]]})
    expected = model({"a": x["a"][:1], "b": x["b"][:1]})
    assert set(out) == {"score", "probs"}
    np.testing.assert_allclose(out["score"], expected["score"].numpy(), rtol=1e-5)
    np.testing.assert_allclose(out["probs"], expected["probs"].numpy(), rtol=1e-5)
    with pytest.raises(SchemaError, match="missing input 'b'"):
        loaded.predict({"a": [[1, 1, 1]]})


def test_subclassed_model_round_trip(tmp_path, keras, zoo, mlreg_tf):
    keras.utils.set_random_seed(2)
    model = zoo.Doubler()
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    mlreg_tf.save_model(model, tmp_path / "m", input_example=x)
    out = pyfunc.load_model(tmp_path / "m").predict(x)
    np.testing.assert_allclose(out, model(x).numpy(), rtol=1e-5)


def test_unbuilt_subclassed_model_without_example_is_a_clear_error(tmp_path, zoo, mlreg_tf):
    with pytest.raises(InvalidInput, match="has not been built yet"):
        mlreg_tf.save_model(zoo.Doubler(), tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_tf_module_round_trip(tmp_path, tf, zoo, mlreg_tf):
    module = zoo.Scaler()
    sig = ModelSignature(
        Schema([TensorSpec(np.float32, (-1, 3))]), Schema([TensorSpec(np.float32, (-1, 3), "y")])
    )
    mlreg_tf.save_model(module, tmp_path / "m", signature=sig)
    flavor = read_mlmodel(tmp_path / "m")["flavors"]["tensorflow"]
    assert flavor["model_type"] == "tf2-module"
    assert flavor["saved_model_dir"] == "tfserving/1"
    out = pyfunc.load_model(tmp_path / "m").predict([[1, 2, 3]])
    np.testing.assert_allclose(out, [[3, 6, 9]])
    native = mlreg_tf.load_model(tmp_path / "m")
    np.testing.assert_allclose(native(tf.constant([[1.0, 1.0, 1.0]]))["y"].numpy(), [[3, 3, 3]])


def test_tf_module_without_serving_signature(tmp_path, tf, mlreg_tf):
    class NoSignature(tf.Module):
        @tf.function
        def __call__(self, x):
            return x

    with pytest.raises(InvalidInput, match="has no serving signature"):
        mlreg_tf.save_model(NoSignature(), tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_column_signature_model_takes_frames(tmp_path, keras, mlreg_tf):
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    sig = ModelSignature(
        Schema([ColSpec("double", "x1"), ColSpec("double", "x2"), ColSpec("double", "x3")]),
        Schema([TensorSpec(np.float32, (-1, 1))]),
    )
    df = pd.DataFrame({"x1": [1.0, 2.0], "x2": [0.5, 0.1], "x3": [3.0, 4.0]})
    mlreg_tf.save_model(model, tmp_path / "m", signature=sig, input_example=df)
    loaded = pyfunc.load_model(tmp_path / "m")
    shuffled = df[["x3", "x1", "x2"]]
    out = loaded.predict(shuffled)
    assert isinstance(out, pd.DataFrame)
    np.testing.assert_allclose(out.to_numpy(), model(df.to_numpy(np.float32)).numpy(), rtol=1e-5)
    with pytest.raises(SchemaError, match="missing required column 'x2'"):
        loaded.predict(df[["x1", "x3"]])


# --- errors while saving -----------------------------------------------------------------


def test_saving_over_an_existing_model_is_refused(cnn, cnn_dir, mlreg_tf):
    before = (cnn_dir / "MLmodel").read_bytes()
    with pytest.raises(AlreadyExists, match="already exists"):
        mlreg_tf.save_model(cnn, cnn_dir)
    assert (cnn_dir / "MLmodel").read_bytes() == before


def test_input_example_not_matching_signature_leaves_nothing(tmp_path, cnn, mlreg_tf):
    sig = ModelSignature(Schema([TensorSpec(np.float32, (-1, 28, 28, 3))]))
    with pytest.raises(InvalidInput, match="input_example does not match the signature"):
        mlreg_tf.save_model(
            cnn, tmp_path / "m", signature=sig, input_example=np.zeros((1, 5), np.float32)
        )
    assert list(tmp_path.iterdir()) == []


def test_signature_with_wrong_rank_is_refused(tmp_path, cnn, mlreg_tf):
    sig = ModelSignature(Schema([TensorSpec(np.float32, (-1, 784))]))
    with pytest.raises(InvalidInput, match="expects rank 4"):
        mlreg_tf.save_model(cnn, tmp_path / "m", signature=sig)


def test_not_a_model(tmp_path, mlreg_tf):
    with pytest.raises(InvalidInput, match="expected a Keras model"):
        mlreg_tf.save_model(object(), tmp_path / "m")


def test_mlmodel_path_escaping_the_model_dir_is_refused(tmp_path, zoo, mlreg_tf):
    mlreg_tf.save_model(zoo.Scaler(), tmp_path / "m")
    doc = read_mlmodel(tmp_path / "m")
    doc["flavors"]["tensorflow"]["saved_model_dir"] = "../../etc"
    (tmp_path / "m" / "MLmodel").write_text(yaml.safe_dump(doc))
    with pytest.raises(MLmodelError, match="points outside the model directory"):
        mlreg_tf.load_model(tmp_path / "m")


# --- pyfunc behaviour on real models -----------------------------------------------------


def test_shape_error_message_through_pyfunc(cnn_dir):
    with pytest.raises(SchemaError) as e:
        pyfunc.load_model(cnn_dir).predict(np.zeros((1, 3), np.float32))
    assert e.value.message == "input: expected shape (-1, 28, 28, 3), got (1, 3)"


def test_fraction_into_int_model_is_refused(tmp_path, tf, mlreg_tf):
    class IntModel(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.int32)])
        def __call__(self, x):
            return {"y": x * 2}

    mlreg_tf.save_model(IntModel(), tmp_path / "m", input_example=np.array([[1, 2]], np.int32))
    model = pyfunc.load_model(tmp_path / "m")
    assert model.predict([[1, 2]]).tolist() == [[2, 4]]
    with pytest.raises(SchemaError, match=r"expected int32, got float64 values that are not whole"):
        model.predict([[1.5, 2]])


def test_error_inside_the_model_is_a_model_execution_error(tmp_path, zoo, mlreg_tf):
    mlreg_tf.save_model(zoo.Guarded(), tmp_path / "m", input_example=np.zeros((1, 2), np.float32))
    model = pyfunc.load_model(tmp_path / "m")
    assert model.predict([[1, 2]]).tolist() == [[2, 3]]
    with pytest.raises(ModelExecutionError, match="input too large") as e:
        model.predict([[1000, 2]])
    assert e.value.status_code == 500


def test_input_examples_load_back(cnn_dir, images):
    model = pyfunc.load_model(cnn_dir)
    np.testing.assert_allclose(model.input_example, images[:2], rtol=1e-6)
    body = json.loads(model.serving_input_example)
    assert np.asarray(body["inputs"]).shape == (2, 28, 28, 3)
    assert model.predict(body["inputs"]).shape == (2, 2)


def test_any_batch_size_without_retracing(cnn_dir):
    model = pyfunc.load_model(cnn_dir)
    for n in (1, 32, 256, 3):
        assert model.predict(np.zeros((n, 28, 28, 3), np.float32)).shape == (n, 2)


def test_fresh_reference_model_predictions_are_a_distribution(tmp_path, images, zoo, mlreg_tf):
    mlreg_tf.save_model(zoo.reference_cnn(), tmp_path / "m", input_example=images[:1])
    out = pyfunc.load_model(tmp_path / "m").predict(images)
    np.testing.assert_allclose(out.sum(axis=1), np.ones(4), rtol=1e-5)
