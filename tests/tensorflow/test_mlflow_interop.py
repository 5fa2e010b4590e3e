"""Models move both ways between mlreg and MLflow (the real mlflow package as a peer)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from mlreg import pyfunc
from mlreg.errors import SchemaError
from mlreg.models import Model

# TensorFlow, mlreg.tensorflow and the zoo come from fixtures (see conftest.py); so does
# mlflow.tensorflow, which imports TensorFlow too.
pytestmark = [pytest.mark.slow, pytest.mark.mlflow]


@pytest.fixture(scope="module")
def mlflow() -> ModuleType:
    return pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def mlflow_tf(mlflow: ModuleType, tf: ModuleType) -> ModuleType:
    return pytest.importorskip("mlflow.tensorflow")


def test_mlflow_opens_a_model_saved_by_mlreg(cnn, cnn_dir, images, mlflow, mlflow_tf):
    native = mlflow_tf.load_model(str(cnn_dir))
    np.testing.assert_allclose(native(images).numpy(), cnn(images).numpy(), rtol=1e-5)
    meta = mlflow.models.Model.load(str(cnn_dir))
    assert json.loads(meta.signature.inputs.to_json()) == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 28, 28, 3]}}
    ]
    assert meta.saved_input_example_info["serving_input_path"] == "serving_input_example.json"


def test_mlflow_opens_a_tf_module_saved_by_mlreg(tmp_path, tf, zoo, mlreg_tf, mlflow_tf):
    mlreg_tf.save_model(zoo.Scaler(), tmp_path / "m")
    native = mlflow_tf.load_model(str(tmp_path / "m"))
    out = native(tf.constant([[1.0, 2.0, 3.0]]))["y"].numpy()
    np.testing.assert_allclose(out, [[3, 6, 9]])


def test_mlreg_opens_an_mlflow_keras_model(tmp_path, images, zoo, mlflow, mlflow_tf):
    model = zoo.reference_cnn()
    mlflow_tf.save_model(model, str(tmp_path / "m"), input_example=images[:2])
    loaded = pyfunc.load_model(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict(images), model(images).numpy(), rtol=1e-5)
    assert loaded.metadata.extra["mlflow_version"] == mlflow.__version__
    # The signature MLflow wrote is enforced by mlreg too.
    with pytest.raises(SchemaError, match=r"expected shape \(-1, 28, 28, 3\), got \(1, 3\)"):
        loaded.predict(np.zeros((1, 3), np.float32))


def test_mlreg_opens_an_mlflow_multi_io_keras_model(tmp_path, zoo, mlflow_tf):
    model = zoo.two_in_two_out()
    x = {"a": np.ones((2, 3), np.float32), "b": np.ones((2, 2), np.float32)}
    mlflow_tf.save_model(model, str(tmp_path / "m"), input_example=x)
    out = pyfunc.load_model(tmp_path / "m").predict(x)
    expected = model(x)
    for key in ("score", "probs"):
        np.testing.assert_allclose(out[key], expected[key].numpy(), rtol=1e-5)


def test_mlreg_opens_an_mlflow_tf2_module(tmp_path, zoo, mlflow, mlflow_tf):
    x = np.ones((2, 3), np.float32)
    mlflow_tf.save_model(
        zoo.Scaler(), str(tmp_path / "m"), signature=mlflow.models.infer_signature(x, x * 3)
    )
    out = pyfunc.load_model(tmp_path / "m").predict(x)
    np.testing.assert_allclose(out, x * 3)


def test_unknown_mlflow_keys_survive_an_mlreg_rewrite(tmp_path, images, zoo, mlflow, mlflow_tf):
    mlflow_tf.save_model(zoo.reference_cnn(), str(tmp_path / "m"), input_example=images[:1])
    Model.load(tmp_path / "m").save(tmp_path / "m")
    reread = mlflow.models.Model.load(str(tmp_path / "m"))
    assert reread.mlflow_version == mlflow.__version__
    assert pyfunc.load_model(tmp_path / "m").predict(images).shape == (4, 2)


# --- MLflow's pyfunc on mlreg models -------------------------------------------------------


def test_mlflow_pyfunc_loads_an_mlreg_keras_model(cnn, cnn_dir, images, mlflow, mlflow_tf):
    assert Model.load(cnn_dir).flavors["python_function"]["loader_module"] == "mlflow.tensorflow"
    loaded = mlflow.pyfunc.load_model(str(cnn_dir))
    np.testing.assert_allclose(loaded.predict(images), cnn(images).numpy(), rtol=1e-5)
    # mlreg opens what it now writes through its own flavor, as before.
    np.testing.assert_allclose(pyfunc.load_model(cnn_dir).predict(images), cnn(images).numpy())


def test_mlflow_pyfunc_loads_an_mlreg_tf_module(tmp_path, zoo, mlreg_tf, mlflow, mlflow_tf):
    x = np.ones((2, 3), np.float32)
    mlreg_tf.save_model(zoo.Scaler(), tmp_path / "m", input_example=x)
    out = mlflow.pyfunc.load_model(str(tmp_path / "m")).predict(x)
    np.testing.assert_allclose(out["y"] if isinstance(out, dict) else out, x * 3)


def test_mlflow_pyfunc_loads_older_mlreg_models_through_mlreg(
    tmp_path, cnn, images, mlreg_tf, mlflow, mlflow_tf
):
    """Models saved before the change name ``loader_module: mlreg.tensorflow``."""
    mlreg_tf.save_model(cnn, tmp_path / "old", input_example=images[:1])
    meta = Model.load(tmp_path / "old")
    meta.flavors["python_function"]["loader_module"] = "mlreg.tensorflow"
    meta.save(tmp_path / "old")
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "old"))
    np.testing.assert_allclose(loaded.predict(images), cnn(images).numpy(), rtol=1e-5)
    np.testing.assert_allclose(pyfunc.load_model(tmp_path / "old").predict(images), cnn(images))
    with pytest.raises(Exception, match="expected shape"):  # mlreg's enforcement speaks
        mlreg_tf._load_pyfunc(str(tmp_path / "old" / "data")).predict(np.zeros((1, 3), "f4"))


def _without_mlreg() -> str:
    """An environment whose Python cannot import mlreg (as in MLflow's own environment)."""
    blocker = (
        "import sys\n"
        "class _NoMlreg:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'mlreg' or name.startswith('mlreg.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}')\n"
        "sys.meta_path.insert(0, _NoMlreg())\n"
    )
    return blocker


def test_mlflow_loads_an_mlreg_model_where_mlreg_is_not_installed(cnn_dir, images, tmp_path):
    np.save(tmp_path / "x.npy", images)
    script = _without_mlreg() + (
        "import numpy as np, mlflow.pyfunc\n"
        f"m = mlflow.pyfunc.load_model({str(cnn_dir)!r})\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, m.predict(np.load({str(tmp_path / 'x.npy')!r})))\n"
        "assert not any(k == 'mlreg' or k.startswith('mlreg.') for k in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    expected = pyfunc.load_model(cnn_dir).predict(images)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-5)


def test_mlflow_models_predict_on_an_mlreg_model(cnn_dir, images, tmp_path):
    mlflow_cli = Path(sys.executable).parent / "mlflow"
    out = tmp_path / "predictions.json"
    done = subprocess.run(
        [
            str(mlflow_cli),
            "models",
            "predict",
            "-m",
            str(cnn_dir),
            "-i",
            str(cnn_dir / "serving_input_example.json"),
            "-t",
            "json",
            "-o",
            str(out),
            "--env-manager",
            "local",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    predictions = json.loads(out.read_text())["predictions"]
    expected = pyfunc.load_model(cnn_dir).predict(images[:2])
    np.testing.assert_allclose(np.asarray(predictions), expected, rtol=1e-5)
