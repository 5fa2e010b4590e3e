from __future__ import annotations

import numpy as np
import pytest

import mlreg
from mlreg import pyfunc
from mlreg.errors import InvalidInput, ModelNotFound
from mlreg.registry import reset_default_client
from mlreg.tensorflow import save_model
from mlreg.uris import resolve_model_uri
from tests.conftest import make_model_dir
from tests.tensorflow.zoo import reference_cnn


def test_local_path_and_file_uri(tmp_path):
    src = make_model_dir(tmp_path / "my model")
    assert resolve_model_uri(str(src)).path == src.resolve()
    assert resolve_model_uri(src.as_uri()).path == src.resolve()  # percent-encoded space
    assert resolve_model_uri(str(src / "MLmodel")).path == src.resolve()


@pytest.mark.parametrize(
    ("uri", "error", "message"),
    [
        ("", InvalidInput, "model URI is empty"),
        ("s3://bucket/model", InvalidInput, "unsupported model URI scheme 's3'"),
        ("file://otherhost/x", InvalidInput, "names a remote host"),
        ("/does/not/exist", ModelNotFound, "no model at /does/not/exist: the path does not exist"),
    ],
    ids=["empty", "scheme", "remote-file", "missing"],
)
def test_bad_uris(uri, error, message):
    with pytest.raises(error, match=message):
        resolve_model_uri(uri)


@pytest.fixture
def registry_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MLREG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLREG_REGISTRY_URI", raising=False)
    monkeypatch.delenv("MLREG_ARTIFACT_ROOT", raising=False)
    reset_default_client()
    yield tmp_path / "home"
    reset_default_client()


@pytest.mark.slow
def test_pyfunc_loads_registry_uris_of_a_real_model(registry_home, tmp_path):
    model = reference_cnn()
    x = np.random.default_rng(0).uniform(size=(3, 28, 28, 3)).astype(np.float32)
    save_model(model, tmp_path / "cnn", input_example=x[:1])
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
