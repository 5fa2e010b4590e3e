"""The app factory with an in-process model (Flask's test client): names, versions, readiness."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from flask.testing import FlaskClient
from werkzeug import exceptions as http

from mlreg.errors import BackendUnavailable
from mlreg.models.signature import ColSpec, ModelSignature, Schema, TensorSpec
from mlreg.pyfunc import load_model
from mlreg.serving import ServingSettings, create_app
from mlreg.serving.metrics import Metrics
from mlreg.serving.state import ServingState, synthetic_input
from tests.serving import fakes
from tests.serving.data import images


@pytest.fixture(
    scope="module", params=["numpy", pytest.param("tensorflow", marks=pytest.mark.slow)]
)
def client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    """The app with the cnn's numpy stand-in, or (slow) with the TensorFlow model itself."""
    if request.param == "numpy":
        model = fakes.cnn(tmp_path_factory.mktemp("app") / "cnn")
    else:
        model = load_model(request.getfixturevalue("cnn_dir"))
    # As if resolved from models:/mnist/3 by the registry.
    model.source = dataclasses.replace(model.source, name="mnist", version=3, digest="sha256:x")
    return create_app(ServingSettings(), model=model).test_client()


def test_metadata_names_the_registry_version(client: FlaskClient) -> None:
    got = client.get("/metadata").get_json()
    assert (got["name"], got["version"], got["digest"]) == ("mnist", 3, "sha256:x")


def test_tfserving_routes_check_the_name_and_version(client: FlaskClient) -> None:
    body = {"instances": images(1).tolist()}
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
    sig = ModelSignature(Schema([TensorSpec(np.dtype("int32"), (-1, 4), "t")]))
    x = synthetic_input(sig)
    assert x["t"].shape == (1, 4) and x["t"].dtype == np.int32
    cols = ModelSignature(Schema([ColSpec("double", "a"), ColSpec("string", "s")]))
    assert synthetic_input(cols) == [{"a": 0, "s": ""}]
    assert synthetic_input(None) is None


def test_state_has_its_own_metrics() -> None:
    a, b = ServingState(ServingSettings(), Metrics()), ServingState(ServingSettings(), Metrics())
    a.metrics.timeouts.labels("3").inc()
    assert b'mlreg_prediction_timeouts_total{model_version="3"} 1.0' in a.metrics.render()
    assert b"mlreg_prediction_timeouts_total{" not in b.metrics.render()


@pytest.mark.parametrize(
    ("raised", "status", "error_code", "message"),
    [
        (http.BadRequest("form broken"), 400, "INVALID_PARAMETER_VALUE", "form broken"),
        (http.UnsupportedMediaType("send JSON"), 415, "UNSUPPORTED_MEDIA_TYPE", "send JSON"),
        (
            http.RequestEntityTooLarge(),
            413,
            "PAYLOAD_TOO_LARGE",
            "request body is larger than the limit of 1000 bytes (MLREG_MAX_REQUEST_BYTES)",
        ),
        (http.ImATeapot("short and stout"), 418, "HTTP_ERROR", "short and stout"),
    ],
    ids=["bad-request", "media-type", "too-large", "unmapped"],
)
def test_werkzeug_errors_answer_with_our_codes(
    raised: http.HTTPException, status: int, error_code: str, message: str
) -> None:
    app = create_app(ServingSettings(max_request_bytes=1000))

    @app.get("/raise")
    def fail() -> None:
        raise raised

    r = app.test_client().get("/raise")
    assert r.status_code == status
    assert r.get_json() == {"error_code": error_code, "message": message}


DOWN = "TensorFlow Serving at 127.0.0.1:1 is unavailable: connection refused"


class ServerDown(fakes.NumpyModel):
    """A remote backend whose server is down: it knows the model but cannot compute."""

    remote = True

    def predict_unchecked(self, data: object, params: object = None) -> object:
        raise BackendUnavailable(DOWN)

    def unready_reason(self) -> str | None:
        return DOWN


def test_a_remote_backend_that_is_down_loads_and_ping_says_why(tmp_path: Path) -> None:
    # The failed warm-up is the remote server's state, not a reason to stop.
    model = fakes.cnn(tmp_path / "cnn", ServerDown)
    client = create_app(ServingSettings(), model=model).test_client()
    r = client.get("/ping")
    assert (r.status_code, r.get_json()["message"]) == (503, DOWN)
    r = client.post("/invocations", json={"inputs": images(1).tolist()})
    assert (r.status_code, r.get_json()["error_code"]) == (503, "BACKEND_UNAVAILABLE")
    assert client.get("/metadata").status_code == 200


def test_a_backend_that_cannot_be_reached_yet_is_retried_and_requests_say_why_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mlreg.serving.state.LOAD_RETRY_SECONDS", 0.05)
    down = "TensorFlow Serving at 127.0.0.1:1 is unreachable (UNAVAILABLE: connection refused)"
    reachable = threading.Event()
    attempts = []

    def loader() -> fakes.NumpyModel:
        attempts.append(1)
        if not reachable.is_set():
            raise BackendUnavailable(down)
        return fakes.cnn(tmp_path / "cnn")

    app = create_app(ServingSettings(timeout=60))
    state: ServingState = app.extensions["mlreg"]
    client = app.test_client()
    state.start_loading(loader, on_failure=lambda: pytest.fail("the load was given up"))
    while len(attempts) < 2:
        time.sleep(0.01)
    r = client.get("/ping")
    assert (r.status_code, r.get_json()["message"]) == (503, f"{down}; retrying every 0.05 s")
    started = time.monotonic()
    r = client.post("/invocations", json={"inputs": images(1).tolist()})
    assert time.monotonic() - started < 5  # answered at once, not after the 60 s timeout
    assert r.status_code == 503 and r.get_json()["message"].startswith(down)
    reachable.set()
    deadline = time.monotonic() + 10
    while client.get("/ping").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert client.post("/invocations", json={"inputs": images(1).tolist()}).status_code == 200
    assert state.waiting is None


def test_a_local_backend_that_fails_its_warm_up_does_not_load(tmp_path: Path) -> None:
    class Broken(ServerDown):
        remote = False

    app = create_app(ServingSettings())
    state: ServingState = app.extensions["mlreg"]
    with pytest.raises(BackendUnavailable):
        state.load(lambda: fakes.cnn(tmp_path / "cnn", Broken))
    r = app.test_client().get("/ping")
    assert (r.status_code, r.get_json()["message"]) == (503, f"the model failed to load: {DOWN}")


@pytest.mark.process  # a fresh interpreter
def test_the_app_and_its_codecs_import_without_tensorflow() -> None:
    # Only the local backend's load imports it, in the worker, after the fork.
    code = "import sys, mlreg.serving.app, mlreg.serving.codecs; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("given", ["{dir}/cnn", "{dir}/cnn/", "file://{dir}/cnn"])
def test_metadata_names_a_local_model_without_its_path(tmp_path: Path, given: str) -> None:
    model = fakes.cnn(tmp_path / "private" / "cnn")
    model.source = dataclasses.replace(model.source, uri=given.format(dir=tmp_path / "private"))
    r = create_app(ServingSettings(), model=model).test_client().get("/metadata")
    assert r.get_json()["uri"] == "cnn"
    assert str(tmp_path) not in r.get_data(as_text=True)
