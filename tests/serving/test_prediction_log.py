"""Prediction logging: sampled requests and answers as JSON lines or CloudEvents, written off the
request path through a bounded queue that drops (and counts) rather than slow predictions."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient

from mlreg.serving import ServingSettings, create_app
from mlreg.serving.state import ServingState
from tests.serving import fakes
from tests.serving.data import images
from tests.serving.server import Server, free_port
from tests.threads import serve_in_thread


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> fakes.NumpyModel:
    return fakes.cnn(tmp_path_factory.mktemp("plog") / "cnn")


def serve(model: fakes.NumpyModel, **settings: Any) -> tuple[FlaskClient, ServingState]:
    app = create_app(ServingSettings(**settings), model=model)
    return app.test_client(), app.extensions["mlreg"]


def lines(directory: Path, state: ServingState) -> list[dict]:
    # Writes what is queued; a generous bound, as a loaded machine may need more than the
    # shutdown's 5 s to serialise a few hundred records.
    if state.prediction_log is not None:
        state.prediction_log.close(timeout=120)
    state.close()
    [path] = directory.glob("predictions-*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_request_and_answer_is_one_json_line(cnn: fakes.NumpyModel, tmp_path: Path) -> None:
    client, state = serve(cnn, log_predictions=str(tmp_path))
    x = images(2)
    ok = client.post("/invocations", json={"inputs": x.tolist()}, headers={"X-Request-ID": "r-1"})
    bad = client.post("/invocations", json={"inputs": [[1.0]]}, headers={"X-Request-ID": "r-2"})
    v2 = client.post(
        "/v2/models/cnn/infer",
        json={
            "inputs": [
                {
                    "name": "image",
                    "shape": [2, 28, 28, 3],
                    "datatype": "FP32",
                    "data": x.reshape(-1).tolist(),
                }
            ]
        },
        headers={"X-Request-ID": "r-3"},
    )
    assert (ok.status_code, bad.status_code, v2.status_code) == (200, 400, 200)
    client.get("/ping")  # not a prediction: not logged
    first, second, third = lines(tmp_path, state)
    assert first["request_id"] == "r-1"
    assert (first["protocol"], first["status"], first["model_version"]) == ("invocations", 200, "")
    np.testing.assert_allclose(first["inputs"], x, rtol=1e-6)
    np.testing.assert_allclose(first["outputs"], cnn.predict(x), rtol=1e-6)
    assert first["latency_ms"] > 0 and first["time"].endswith("+00:00")
    assert (second["request_id"], second["status"], second["outputs"]) == ("r-2", 400, None)
    assert second["error"] == {
        "error_code": "SCHEMA_MISMATCH",
        "message": "input: expected shape (-1, 28, 28, 3), got (1, 1)",
    }
    assert (third["protocol"], third["request_id"]) == ("v2", "r-3")
    np.testing.assert_allclose(third["outputs"], cnn.predict(x), rtol=1e-6)
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'mlreg_predictions_logged_total{model_version=""} 3.0' in metrics


def test_a_large_tensor_is_summarised(cnn: fakes.NumpyModel, tmp_path: Path) -> None:
    client, state = serve(cnn, log_predictions=str(tmp_path), log_max_tensor_bytes=1000)
    assert client.post("/invocations", json={"inputs": images(3).tolist()}).status_code == 200
    [record] = lines(tmp_path, state)
    # 3 x 28 x 28 x 3 float32 is 28 kB: its shape and dtype, not its numbers.
    assert record["inputs"] == {"summary": True, "shape": [3, 28, 28, 3], "dtype": "float32"}
    assert len(record["outputs"]) == 3  # 24 bytes: kept


def test_only_the_sampled_fraction_is_logged(cnn: fakes.NumpyModel, tmp_path: Path) -> None:
    client, state = serve(cnn, log_predictions=str(tmp_path), log_sample_rate=0.25)
    body = {"inputs": images(1).tolist()}
    for _ in range(400):
        assert client.post("/invocations", json=body).status_code == 200
    logged = len(lines(tmp_path, state))
    assert 60 <= logged <= 140  # 100 expected; binomial sd 8.7
    client, state = serve(cnn, log_predictions=str(tmp_path / "none"), log_sample_rate=0.0)
    client.post("/invocations", json=body)
    assert lines(tmp_path / "none", state) == []


class Collector:
    """A CloudEvents collector on loopback: keeps each POST; can be made slow or failing."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], Any]] = []
        self.delay = 0.0
        self.status = 200
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                time.sleep(collector.delay)
                collector.posts.append((dict(self.headers), body))
                self.send_response(collector.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/events"
        self.stop = serve_in_thread(self.server, "collector")


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.stop()


def test_batches_go_to_a_collector_as_cloudevents(
    cnn: fakes.NumpyModel, collector: Collector
) -> None:
    client, state = serve(cnn, log_predictions=collector.url)
    for i in range(5):
        client.post(
            "/invocations", json={"inputs": images(1).tolist()}, headers={"X-Request-ID": f"e{i}"}
        )
    state.close()
    events = [event for headers, batch in collector.posts for event in batch]
    headers = collector.posts[0][0]
    assert headers["Content-Type"] == "application/cloudevents-batch+json"
    assert [e["data"]["request_id"] for e in events] == [f"e{i}" for i in range(5)]
    event = events[0]
    assert (event["specversion"], event["type"]) == ("1.0", "io.mlreg.prediction")
    assert event["datacontenttype"] == "application/json"
    assert event["source"].startswith("mlreg-serve/")
    assert len({e["id"] for e in events}) == 5
    assert event["data"]["status"] == 200


@pytest.mark.slow  # waits out a collector that takes seconds
def test_a_slow_collector_drops_records_not_predictions(
    cnn: fakes.NumpyModel, collector: Collector
) -> None:
    collector.delay = 3.0  # the writer is stuck on a POST
    client, state = serve(cnn, log_predictions=collector.url, log_queue_size=5)
    body = {"inputs": images(1).tolist()}
    start = time.perf_counter()
    for _ in range(200):
        assert client.post("/invocations", json=body).status_code == 200
    assert time.perf_counter() - start < 2.5  # never waited for the collector
    metrics = client.get("/metrics").get_data(as_text=True)
    counter = 'mlreg_prediction_log_dropped_total{model_version="",reason="queue_full"} '
    dropped = float(metrics.split(counter)[1].split()[0])
    assert dropped >= 80  # a batch (at most 100) in the writer, five queued, the rest dropped
    collector.delay = 0.0
    state.close()


def test_a_failing_collector_is_counted_and_logged_once(
    cnn: fakes.NumpyModel, collector: Collector, caplog: pytest.LogCaptureFixture
) -> None:
    collector.status = 503
    client, state = serve(cnn, log_predictions=collector.url)
    with caplog.at_level("WARNING", "mlreg.serving.prediction_log"):
        for _ in range(3):
            client.post("/invocations", json={"inputs": images(1).tolist()})
        state.close()
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'mlreg_prediction_log_dropped_total{model_version="",reason="sink_error"} 3.0' in metrics
    warnings = [r.getMessage() for r in caplog.records if r.name == "mlreg.serving.prediction_log"]
    assert warnings == ["prediction log: dropped 3 records: HTTPError: the collector answered 503"]


@pytest.mark.process  # a real `mlreg serve`
def test_the_real_server_logs_grpc_and_http_and_flushes_on_shutdown(tmp_path: Path) -> None:
    import tritonclient.grpc as tgrpc

    grpc_port = free_port()
    env = {"MLREG_LOG_PREDICTIONS": str(tmp_path / "log"), "MLREG_GRPC_PORT": str(grpc_port)}
    server = Server.fake("cnn", tmp_path / "cnn", tmp_path / "server.log", env=env).wait_ready()
    try:
        x = images(1)
        client = tgrpc.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        tensor = tgrpc.InferInput("image", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        client.infer("cnn", [tensor], request_id="g-1")
        client.close()
        # Connection: close, or the drain keeps the idle connection for its keep-alive (5 s).
        headers = {"X-Request-ID": "h-1", "Connection": "close"}
        r = server.post("/invocations", {"inputs": x.tolist()}, headers=headers)
        assert r.status_code == 200
    finally:
        assert server.stop() == 0  # SIGTERM: the drain writes what is queued
    [path] = (tmp_path / "log").glob("predictions-*.jsonl")
    records = {r["request_id"]: r for r in map(json.loads, path.read_text().splitlines())}
    assert (records["g-1"]["protocol"], records["g-1"]["status"]) == ("v2-grpc", 200)
    assert (records["h-1"]["protocol"], records["h-1"]["status"]) == ("invocations", 200)
    np.testing.assert_allclose(records["g-1"]["outputs"], records["h-1"]["outputs"], rtol=1e-6)
