"""The app factory with an in-process model (Flask's test client): names, versions, readiness."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from flask.testing import FlaskClient

from mlreg.pyfunc import load_model
from mlreg.serving import ServingSettings, create_app
from mlreg.serving.metrics import Metrics
from mlreg.serving.state import ServingState, synthetic_input
from tests.serving import models

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(cnn_dir: Path) -> FlaskClient:
    model = load_model(cnn_dir)
    # As if resolved from models:/mnist/3 by the registry.
    model.source = dataclasses.replace(model.source, name="mnist", version=3, digest="sha256:x")
    return create_app(ServingSettings(), model=model).test_client()


def test_metadata_names_the_registry_version(client: FlaskClient) -> None:
    got = client.get("/metadata").get_json()
    assert (got["name"], got["version"], got["digest"]) == ("mnist", 3, "sha256:x")


def test_tfserving_routes_check_the_name_and_version(client: FlaskClient) -> None:
    body = {"instances": models.images(1).tolist()}
    assert client.post("/v1/models/mnist:predict", json=body).status_code == 200
    assert client.post("/v1/models/mnist/versions/3:predict", json=body).status_code == 200
    r = client.post("/v1/models/other:predict", json=body)
    assert r.status_code == 404
    assert r.get_json() == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": "model 'other' is not served here; this server serves 'mnist'",
        "error": "model 'other' is not served here; this server serves 'mnist'",
    }
    r = client.post("/v1/models/mnist/versions/2:predict", json=body)
    assert r.status_code == 404
    assert r.get_json()["message"] == "version 2 is not served here; this server serves 3"
    status = client.get("/v1/models/mnist").get_json()
    assert status["model_version_status"][0]["version"] == "3"


def test_not_ready_answers_503_everywhere() -> None:
    settings = ServingSettings(timeout=0.05)
    app = create_app(settings)
    c = app.test_client()
    assert c.get("/health").status_code == 200
    for r in (c.get("/ping"), c.post("/invocations", json={"inputs": [[1]]}), c.get("/metadata")):
        assert r.status_code == 503
        assert r.get_json()["error_code"] == "BACKEND_UNAVAILABLE"


def test_a_failed_load_is_reported_by_ping(tmp_path: Path) -> None:
    app = create_app(ServingSettings())
    state: ServingState = app.extensions["mlreg"]
    with pytest.raises(Exception, match="no model at"):
        state.load(lambda: load_model(tmp_path / "nope"))
    r = app.test_client().get("/ping")
    assert r.status_code == 503
    assert r.get_json()["message"].startswith("the model failed to load: no model at")


def test_unexpected_errors_are_json_without_a_traceback() -> None:
    app = create_app(ServingSettings())
    client = app.test_client()

    @app.get("/boom")  # an endpoint that fails in a way nobody planned for
    def boom() -> None:
        raise RuntimeError("secret detail")

    r = client.get("/boom", headers={"X-Request-ID": "rid-1"})
    assert r.status_code == 500
    assert r.get_json() == {
        "error_code": "INTERNAL_ERROR",
        "message": "internal server error (RuntimeError); request id rid-1",
    }


def test_synthetic_warm_up_input() -> None:
    from mlreg.models.signature import ColSpec, ModelSignature, Schema, TensorSpec

    sig = ModelSignature(Schema([TensorSpec(np.dtype("int32"), (-1, 4), "t")]))
    x = synthetic_input(sig)
    assert x["t"].shape == (1, 4) and x["t"].dtype == np.int32
    cols = ModelSignature(Schema([ColSpec("double", "a"), ColSpec("string", "s")]))
    assert synthetic_input(cols) == [{"a": 0, "s": ""}]
    assert synthetic_input(None) is None


def test_state_has_its_own_metrics() -> None:
    a, b = ServingState(ServingSettings(), Metrics()), ServingState(ServingSettings(), Metrics())
    a.metrics.timeouts.inc()
    assert b"mlreg_prediction_timeouts_total 0.0" in b.metrics.render()
