"""Readiness, model errors, timeouts, JSON logs, several workers and graceful shutdown."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests

from mlreg.serving.cpus import available_cpus, threads_per_worker
from mlreg.version import __version__
from tests.serving.server import Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trouble_server(tmp_path_factory: pytest.TempPathFactory, trouble_dir: Path) -> Iterator[Server]:
    server = Server(
        trouble_dir,
        tmp_path_factory.mktemp("logs") / "trouble.log",
        args=("--timeout", "1", "--max-request-bytes", "1000"),
        # TF_CPP_MIN_LOG_LEVEL unset: serve itself must keep TensorFlow's C++ logging quiet.
        env={"MLREG_LOG_FORMAT": "json", "TF_CPP_MIN_LOG_LEVEL": ""},
    ).wait_ready()
    yield server
    server.stop()


def spin(seconds: float) -> dict:
    return {"inputs": [[seconds, 0.0]]}


def test_model_exception_is_a_500_with_a_message(trouble_server: Server) -> None:
    r = trouble_server.post("/invocations", {"inputs": [[150.0, 0.0]]})
    assert r.status_code == 500
    body = r.json()
    assert body["error_code"] == "MODEL_EXECUTION_ERROR"
    assert body["message"].startswith("the model failed: InvalidArgumentError:")
    assert "input too large" in body["message"]
    assert "Traceback" not in r.text
    assert trouble_server.post("/invocations", spin(0)).json() == {"predictions": [[1.0, 1.0]]}


def test_timeout_is_a_504_and_the_worker_keeps_serving(trouble_server: Server) -> None:
    start = time.monotonic()
    r = trouble_server.post("/invocations", spin(4.0))
    elapsed = time.monotonic() - start
    assert r.status_code == 504, r.text
    assert r.json() == {
        "error_code": "TIMEOUT",
        "message": "the prediction did not finish within 1 s (MLREG_TIMEOUT); send fewer rows "
        "or raise the timeout",
    }
    assert elapsed < 3.0
    # The 4 s call still runs on its pool thread; the worker answers meanwhile.
    assert trouble_server.get("/ping", timeout=2).status_code == 200
    fast = trouble_server.post("/invocations", spin(0), timeout=5)
    assert fast.status_code == 200
    text = trouble_server.get("/metrics").text
    assert 'mlreg_prediction_timeouts_total{model_version=""} 1.0' in text


def test_chunked_body_over_the_limit_is_a_413(trouble_server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"inputs": ['
        for _ in range(400):
            yield b"[1.0, 2.0],"
        yield b"[1.0, 2.0]]}"

    r = trouble_server.post(
        "/invocations", data=chunks(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert r.json()["error_code"] == "PAYLOAD_TOO_LARGE"
    assert r.json()["message"] == (
        "request body is larger than the limit of 1000 bytes (MLREG_MAX_REQUEST_BYTES)"
    )
    small = trouble_server.post(
        "/invocations",
        data=iter([b'{"inputs": ', b"[[0.0, 1.0]]}"]),
        headers={"Content-Type": "application/json"},
    )
    assert small.json() == {"predictions": [[1.0, 2.0]]}


def test_json_logs_one_line_per_request(trouble_server: Server) -> None:
    trouble_server.post("/invocations", {"inputs": [[1]]}, headers={"X-Request-ID": "json-log-1"})
    lines = [line for line in trouble_server.log().splitlines() if "json-log-1" in line]
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["request_id"] == "json-log-1"
    assert record["status"] == 400
    assert record["path"] == "/invocations"
    assert record["error_code"] == "SCHEMA_MISMATCH"
    assert record["error_message"] == "input: expected shape (-1, 2), got (1, 1)"
    assert record["logger"] == "mlreg.serving.access"
    assert isinstance(record["duration_ms"], float)
    # Every line is JSON: gunicorn's own (not named as errors), the banner, TensorFlow's
    # C++ logging is quiet, and the readiness probes that waited for the load are not logged.
    lines = [line for line in trouble_server.log().splitlines() if line.strip()]
    assert [line for line in lines if not line.startswith("{")] == []
    records = [json.loads(line) for line in lines]
    assert "gunicorn" in {r["logger"] for r in records}
    assert "gunicorn.error" not in {r["logger"] for r in records}
    assert not [r for r in records if r.get("path") in ("/ping", "/health", "/metrics")]
    banner = next(r for r in records if r["logger"] == "mlreg.serve")
    assert banner["message"].startswith(f"mlreg {__version__} serving {banner['model_uri']} -> ")
    assert banner["mlreg_version"] == __version__
    ready = next(r for r in records if r["message"].startswith("model ready: "))
    assert ready["load_seconds"] > 0
    # The message says it to 2 decimals, the field to 3: rounding twice may differ by 0.01.
    said = re.search(r"loaded and warmed up in (\d+\.\d\d) s$", ready["message"])
    assert said is not None, ready["message"]
    assert abs(float(said.group(1)) - ready["load_seconds"]) <= 0.0051


# --- startup and shutdown of a two-worker server ------------------------------------------


def test_readiness_then_sigterm_under_load_loses_nothing(
    tmp_path_factory: pytest.TempPathFactory, trouble_dir: Path
) -> None:
    server = Server(
        trouble_dir,
        tmp_path_factory.mktemp("logs") / "graceful.log",
        args=("--workers", "2", "--threads", "4", "--graceful-timeout", "20"),
    )
    try:
        statuses = _ping_until_ready(server)
        assert statuses[0] == 503 and statuses[-1] == 200
        ready_pids = {
            line.split("[")[1].split("]")[0]
            for line in server.log().splitlines()
            if "model ready" in line
        }
        deadline = time.monotonic() + 60
        while len(ready_pids) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            ready_pids = {
                line.split("[")[1].split("]")[0]
                for line in server.log().splitlines()
                if "model ready" in line
            }
        assert len(ready_pids) == 2  # each worker loaded the model after the fork

        results = _load_then_sigterm(server, clients=8, warm=1.5)
    finally:
        code = server.stop()
    assert code == 0, server.log()
    assert results["failed"] == [], results["failed"][:3]
    assert results["ok"] > 10
    assert results["ok_after_sigterm"] > 0  # requests in flight at SIGTERM were finished


def _ping_until_ready(server: Server) -> list[int]:
    statuses: list[int] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            r = requests.get(server.url + "/ping", timeout=2)
        except requests.ConnectionError:
            time.sleep(0.05)
            continue
        statuses.append(r.status_code)
        if r.status_code == 503:
            assert r.json() == {
                "error_code": "BACKEND_UNAVAILABLE",
                "message": "the model is still loading; retry when GET /ping answers 200",
            }
        if r.status_code == 200:
            return statuses
        time.sleep(0.05)
    raise AssertionError(f"never ready: {statuses[-5:]}\n{server.log()}")


def _load_then_sigterm(server: Server, clients: int, warm: float) -> dict:
    """Bounded load from a thread pool; SIGTERM the master mid-way; sort every outcome."""
    stop = threading.Event()
    lock = threading.Lock()
    sigterm_at: list[float] = []
    out: dict = {"ok": 0, "ok_after_sigterm": 0, "refused": 0, "failed": []}

    def client() -> None:
        while not stop.is_set():
            sent = time.monotonic()
            try:
                # A new connection per request: a closed keep-alive connection is the
                # client's race, not a lost request.
                r = requests.post(
                    server.url + "/invocations",
                    json=spin(0.1),
                    headers={"Connection": "close"},
                    timeout=30,
                )
            except requests.ConnectionError as e:
                if "refused" in str(e).lower():  # not accepted: the server stopped listening
                    with lock:
                        out["refused"] += 1
                    return
                with lock:
                    out["failed"].append(repr(e))
                continue
            with lock:
                if r.status_code == 200:
                    out["ok"] += 1
                    if sigterm_at and sent < sigterm_at[0] < time.monotonic():
                        out["ok_after_sigterm"] += 1
                else:
                    out["failed"].append((r.status_code, r.text))

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(client) for _ in range(clients)]
        time.sleep(warm)
        sigterm_at.append(time.monotonic())
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=60)
        stop.set()
        for f in futures:
            f.result(timeout=60)
    return out


OK_INVOCATIONS = (
    r'^mlreg_requests_total\{endpoint="/invocations",method="POST",model_version="",'
    r'status="200"\} (\S+)'
)


def test_metrics_add_up_over_all_workers(tmp_path, cnn_dir) -> None:
    """Two workers: whichever one answers the scrape, the counts are the server's total."""
    server = Server(cnn_dir, tmp_path / "server.log", args=("--workers", "2", "--threads", "2"))
    try:
        server.wait_ready()
        # both workers must be up before the count starts, or one still loading would miss it
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready = re.search(
                r'^mlreg_model_ready\{model_version=""\} (\S+)', server.get("/metrics").text, re.M
            )
            pids = set(re.findall(r"Booting worker with pid: (\d+)", server.log()))
            if ready and float(ready.group(1)) == 1.0 and len(pids) == 2:
                break
            time.sleep(0.2)
        body = {"inputs": np.zeros((1, 28, 28, 3)).tolist()}
        for _ in range(30):
            assert server.post("/invocations", body).status_code == 200
        totals = set()
        for _ in range(10):
            text = server.get("/metrics").text
            line = re.search(OK_INVOCATIONS, text, re.M)
            totals.add(float(line.group(1)))
        assert totals == {30.0}
        # Each worker's TensorFlow made pools of its share of the CPUs, not of all of them:
        # its inter-op pool's threads are named tf_Compute.
        share = threads_per_worker(available_cpus(), 2)
        assert f"TensorFlow {share} thread(s) per pool" in server.log()
        for pid in pids:
            names = [
                (task / "comm").read_text().strip() for task in Path(f"/proc/{pid}/task").iterdir()
            ]
            assert names.count("tf_Compute") == share, (pid, sorted(names))
    finally:
        server.stop()
