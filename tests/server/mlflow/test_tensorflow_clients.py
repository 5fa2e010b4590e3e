"""MLflow's TensorFlow clients against ``mlreg server`` (gunicorn): the reference documents'
tracking, autolog, callback, model and registry examples run unchanged but for the tracking
URI; what they logged is mlreg's own data (runs in ``mlreg runs list``, versions READY with a
digest, loaded by mlreg.pyfunc, served by ``mlreg serve``, a build context for its image);
and a model registered with mlreg loads in ``mlflow.pyfunc``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

mlflow = pytest.importorskip("mlflow")

from mlreg.registry import MlregClient  # noqa: E402
from mlreg.registry.artifacts import dir_digest  # noqa: E402
from mlreg.store import StoreSettings  # noqa: E402
from tests.server.mlflow.peers import MLFLOW_ENV, start_mlreg  # noqa: E402
from tests.serving.server import Server  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.mlflow]

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "mlflow_clients"
MLREG = str(Path(sys.executable).with_name("mlreg"))
#: What each example prints when it worked.
EXPECTED = {
    "tracking.py": "versioning 0.35",
    "autolog.py": "'sparse_categorical_accuracy'",
    "keras_callback.py": "'average_weight'",
    "log_model.py": "nested ['model_1', 'model_2']",
    "registry.py": "production (2, 2) champion (2, 2)",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process = start_mlreg(tmp_path_factory.mktemp("mlreg-server"))
    yield process
    process.stop()


def _env(server, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLREG_", "MLFLOW_"))}
    return {**env, **MLFLOW_ENV, "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


@pytest.fixture(scope="module")
def examples_ran(server, tmp_path_factory) -> dict[str, str]:
    """Each example's output, run as a user runs it (its own process, only the URI set)."""
    outputs = {}
    for script in sorted(EXPECTED):
        result = subprocess.run(
            [sys.executable, str(EXAMPLES / script)],
            cwd=tmp_path_factory.mktemp(script.removesuffix(".py")),
            env=_env(server, MLFLOW_TRACKING_URI=server.url),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, f"{script}:\n{result.stderr[-4000:]}"
        outputs[script] = result.stdout
    return outputs


@pytest.mark.parametrize("script", sorted(EXPECTED), ids=lambda s: s.removesuffix(".py"))
def test_reference_examples_run_unchanged(examples_ran, script):
    assert EXPECTED[script] in examples_ran[script]


def _mlreg(server, home: Path, *args: str) -> str:
    result = subprocess.run(
        [MLREG, *args],
        env=_env(server, MLREG_TRACKING_URI=server.url, MLREG_HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_what_mlflow_logged_is_mlreg_data(examples_ran, server, tmp_path):
    runs = json.loads(_mlreg(server, tmp_path, "runs", "list", "-e", "autolog", "--json"))
    [run] = runs["items"]  # the CLI's one --json listing shape: {items, next_page_token}
    assert run["status"] == "FINISHED" and "sparse_categorical_accuracy" in run["metrics"]
    assert run["params"]["epochs"] == "2"
    listed = _mlreg(server, tmp_path, "versions", "list", "autolog-cnn")
    assert "READY" in listed
    settings = StoreSettings(server.url, tmp_path / "unused", "tester", home=tmp_path / "home")
    with MlregClient(settings) as registry:
        version = registry.get_version_for_uri("models:/autolog-cnn/1")
        assert version.run_id == run["run_id"]
        assert version.source.startswith("models:/m-") and version.model_id == version.source[8:]
        files = registry.resolve("models:/autolog-cnn/1").path  # downloaded, digest checked
        assert version.digest == dir_digest(files)
        production = registry.get_version_for_uri("models:/keras-dense/Production")
        assert production.description == "the dense one"
        assert registry.get_version_for_uri("models:/keras-dense@champion") == production


def test_mlreg_loads_and_serves_the_model_mlflow_logged(examples_ran, server, tmp_path, mlreg_tf):
    from mlreg import pyfunc

    settings = StoreSettings(server.url, tmp_path / "unused", "tester", home=tmp_path / "home")
    with MlregClient(settings) as registry:
        resolved = registry.resolve("models:/keras-dense/Production")
        digest = registry.get_version_for_uri("models:/keras-dense/Production").digest
    example = json.loads((resolved.path / "serving_input_example.json").read_text())
    inputs = np.asarray(example["inputs"], dtype=np.float32)
    mine = pyfunc.load_model(str(resolved.path)).predict(inputs)
    mlflow.set_tracking_uri(server.url)
    try:
        theirs = mlflow.pyfunc.load_model("models:/keras-dense/Production").predict(inputs)
    finally:
        mlflow.set_tracking_uri(None)
    np.testing.assert_allclose(mine, theirs, rtol=1e-5)

    serving = Server(
        "models:/keras-dense/Production",
        tmp_path / "serve.log",
        env={"MLREG_TRACKING_URI": server.url, "MLREG_HOME": str(tmp_path / "serve-home")},
    )
    try:
        serving.wait_ready()
        answer = serving.post("/invocations", example)
        assert answer.status_code == 200, answer.text
        np.testing.assert_allclose(answer.json()["predictions"], mine, rtol=1e-5)
        metadata = serving.get("/metadata").json()
        assert (metadata["name"], metadata["version"], metadata["stage"]) == (
            "keras-dense",
            2,
            "Production",
        )
        assert metadata["digest"] == digest
    finally:
        assert serving.stop() == 0


def test_mlreg_writes_an_image_build_context_for_it(examples_ran, server, tmp_path):
    with MlregClient(
        StoreSettings(server.url, tmp_path / "unused", "tester", home=tmp_path / "home")
    ) as registry:
        digest = registry.get_version_for_uri("models:/keras-dense/Production").digest
    out = _mlreg(
        server,
        tmp_path / "home",
        "generate-dockerfile",
        "-m",
        "models:/keras-dense/Production",
        "-d",
        str(tmp_path / "image"),
    )
    assert out.startswith(f"Wrote build context to {tmp_path / 'image'}")
    dockerfile = (tmp_path / "image" / "Dockerfile").read_text()
    assert '"io.mlreg.model.name"="keras-dense"' in dockerfile
    assert '"io.mlreg.model.stage"="Production"' in dockerfile
    assert f'"io.mlreg.model.digest"="sha256:{digest}"' in dockerfile


def test_mlflow_loads_a_model_registered_with_mlreg(server, tmp_path, mlreg_tf, keras):
    from mlreg import pyfunc

    model = keras.Sequential([keras.Input([4]), keras.layers.Dense(3)])
    x = np.random.uniform(size=[5, 4]).astype(np.float32)
    mlreg_tf.save_model(model, tmp_path / "native", input_example=x[:2])
    settings = StoreSettings(server.url, tmp_path / "unused", "tester", home=tmp_path / "home")
    with MlregClient(settings) as registry:
        version = registry.register_model(str(tmp_path / "native"), "mlreg-native")
        registry.set_alias("mlreg-native", "champion", version.version)
    expected = pyfunc.load_model(str(tmp_path / "native")).predict(x)
    mlflow.set_tracking_uri(server.url)
    try:
        by_alias = mlflow.pyfunc.load_model("models:/mlreg-native@champion")
        keras_model = mlflow.tensorflow.load_model(f"models:/mlreg-native/{version.version}")
    finally:
        mlflow.set_tracking_uri(None)
    np.testing.assert_allclose(by_alias.predict(x), expected, rtol=1e-5)
    np.testing.assert_allclose(keras_model.predict(x, verbose=0), expected, rtol=1e-5)
