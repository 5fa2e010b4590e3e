"""models:/ URIs of a real TensorFlow model: registered, promoted, loaded by stage."""

from __future__ import annotations

import numpy as np
import pytest

import mlreg
from mlreg import pyfunc
from mlreg.registry import reset_default_client

pytestmark = pytest.mark.slow


@pytest.fixture
def registry_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MLREG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLREG_REGISTRY_URI", raising=False)
    monkeypatch.delenv("MLREG_ARTIFACT_ROOT", raising=False)
    reset_default_client()
    yield tmp_path / "home"
    reset_default_client()


def test_pyfunc_loads_registry_uris_of_a_real_model(registry_home, tmp_path, mlreg_tf, zoo):
    model = zoo.reference_cnn()
    x = np.random.default_rng(0).uniform(size=(3, 28, 28, 3)).astype(np.float32)
    mlreg_tf.save_model(model, tmp_path / "cnn", input_example=x[:1])
    version = mlreg.register_model(str(tmp_path / "cnn"), "mnist", tags={"data": "random"})
    assert version.version == 1
    assert (registry_home / "registry.db").is_file()
    client = mlreg.MlregClient()
    client.transition_model_version_stage("mnist", 1, "Production")
    client.close()
    loaded = pyfunc.load_model("models:/mnist/Production")
    assert (loaded.source.name, loaded.source.version, loaded.source.stage) == (
        "mnist",
        1,
        "Production",
    )
    np.testing.assert_allclose(loaded.predict(x), model(x).numpy(), rtol=1e-5)
