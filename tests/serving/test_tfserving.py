"""The tfserving backend through real gunicorn, real gRPC and the TF Serving test peer."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pandas as pd
import pytest
import requests

from tests.serving.data import FRAME, images, multi_example
from tests.serving.server import MLREG, Peer, Server, free_port

# TF Serving's API stubs import TensorFlow: the tests import them when they run.
pytestmark = pytest.mark.slow


def export(model_dir: Path, base: Path, version: int = 1) -> None:
    """Put the model's SavedModel export where TF Serving looks: <base>/<version>."""
    shutil.copytree(model_dir / "tfserving" / "1", base / str(version))


def forward(peer: Peer, *args: str) -> tuple[str, ...]:
    return ("--backend", "tfserving", "--tfserving-target", peer.target,
            "--tfserving-model-name", peer.name, *args)  # fmt: skip


def pair(
    root: Path, model_dir: Path, name: str, peer_args: tuple[str, ...] = (), *serve_args: str
) -> tuple[Peer, Server]:
    base = root / name
    export(model_dir, base)
    peer = Peer(name, base, root / f"{name}-peer.log", *peer_args).start()
    server = Server(model_dir, root / f"{name}-serve.log", args=forward(peer, *serve_args))
    return peer, server.wait_ready()


@pytest.fixture(scope="module")
def cnn_tfs(tmp_path_factory: pytest.TempPathFactory, cnn_dir: Path) -> Iterator[tuple]:
    peer, server = pair(
        tmp_path_factory.mktemp("tfs"), cnn_dir, "cnn", (), "--tfserving-timeout-ms", "1000"
    )
    yield peer, server
    server.stop()
    peer.stop()


def wait_for(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def ping(server: Server) -> int | None:
    try:
        return server.get("/ping", timeout=5).status_code
    except requests.ConnectionError:
        return None  # not listening yet


def calls(server: Server, method: str, code: str) -> float:
    found = re.search(
        rf'^mlreg_tfserving_calls_total{{code="{code}",method="{method}",model_version=""}} (\S+)$',
        server.get("/metrics").text,
        re.M,
    )
    return float(found.group(1)) if found else 0.0


# --- the same answers as the in-process backend --------------------------------------------


def test_cnn_answers_like_the_local_backend(cnn_tfs, cnn_server: Server) -> None:
    _, tfs = cnn_tfs
    for body in (
        {"inputs": images(5, seed=11).tolist()},
        {"instances": images(1, seed=12).tolist()},
    ):
        remote, local = tfs.post("/invocations", body), cnn_server.post("/invocations", body)
        assert remote.status_code == local.status_code == 200, remote.text
        np.testing.assert_allclose(
            remote.json()["predictions"], local.json()["predictions"], rtol=1e-6, atol=1e-7
        )
    # TF Serving's own REST form works in front of it too
    body = {"instances": images(2, seed=13).tolist()}
    remote, local = (
        tfs.post("/v1/models/cnn:predict", body),
        cnn_server.post("/v1/models/cnn:predict", body),
    )
    assert remote.status_code == 200, remote.text
    np.testing.assert_allclose(remote.json()["predictions"], local.json()["predictions"], 1e-6)


def test_named_inputs_and_outputs_are_mapped(
    tmp_path: Path, multi_dir: Path, multi_server: Server
) -> None:
    peer, tfs = pair(tmp_path, multi_dir, "multi")
    try:
        x = multi_example(4, seed=9)
        body = {"inputs": {k: v.tolist() for k, v in x.items()}}
        remote, local = (
            tfs.post("/invocations", body).json(),
            multi_server.post("/invocations", body).json(),
        )
        assert set(remote["predictions"]) == set(local["predictions"]) and len(local) == 1
        for key, value in local["predictions"].items():
            np.testing.assert_allclose(remote["predictions"][key], value, rtol=1e-6)
    finally:
        tfs.stop()
        peer.stop()


def test_column_signature_feeds_named_tensors(
    tmp_path: Path, columns_dir: Path, columns_server: Server
) -> None:
    peer, tfs = pair(tmp_path, columns_dir, "columns")
    try:
        csv = FRAME.to_csv(index=False).encode()
        headers = {"Content-Type": "text/csv"}
        remote = tfs.post("/invocations", data=csv, headers=headers)
        local = columns_server.post("/invocations", data=csv, headers=headers)
        assert remote.status_code == 200, remote.text
        assert remote.json().keys() == local.json().keys()
        np.testing.assert_allclose(
            pd.DataFrame(remote.json()["predictions"]).to_numpy(dtype=float),
            pd.DataFrame(local.json()["predictions"]).to_numpy(dtype=float),
            rtol=1e-6,
        )
        # a missing column is refused here, with the same message as in-process
        records = {"dataframe_records": FRAME.drop(columns="c").to_dict("records")}
        remote, local = (
            tfs.post("/invocations", records),
            columns_server.post("/invocations", records),
        )
        assert remote.status_code == local.status_code == 400
        assert remote.json() == local.json()
    finally:
        tfs.stop()
        peer.stop()


# --- errors --------------------------------------------------------------------------------


def test_bad_input_is_refused_before_tf_serving(cnn_tfs) -> None:
    _, tfs = cnn_tfs
    before = calls(tfs, "Predict", "OK") + calls(tfs, "Predict", "INVALID_ARGUMENT")
    r = tfs.post("/invocations", {"inputs": [[1.0, 2.0]]})
    assert r.status_code == 400
    assert r.json()["error_code"] == "SCHEMA_MISMATCH"
    assert "expected shape (-1, 28, 28, 3)" in r.json()["message"]
    assert calls(tfs, "Predict", "OK") + calls(tfs, "Predict", "INVALID_ARGUMENT") == before


@pytest.mark.parametrize(
    ("code", "status", "error_code", "says"),
    [
        ("INVALID_ARGUMENT", 400, "INVALID_PARAMETER_VALUE", "TensorFlow Serving refused the req"),
        ("NOT_FOUND", 404, "RESOURCE_DOES_NOT_EXIST", "model 'cnn' (latest version)"),
        ("INTERNAL", 502, "BACKEND_ERROR", "failed: INTERNAL"),
        ("RESOURCE_EXHAUSTED", 502, "BACKEND_ERROR", "failed: RESOURCE_EXHAUSTED"),
        ("FAILED_PRECONDITION", 502, "BACKEND_ERROR", "failed: FAILED_PRECONDITION"),
    ],
)
def test_grpc_errors_map_to_http(cnn_tfs, code, status, error_code, says) -> None:
    peer, tfs = cnn_tfs
    body = {"inputs": images(1).tolist()}
    before = calls(tfs, "Predict", code)
    peer.set(fail=code, message=f"the peer says {code.lower()}")
    try:
        r = tfs.post("/invocations", body)
    finally:
        peer.set()
    assert r.status_code == status
    assert r.json()["error_code"] == error_code
    assert says in r.json()["message"] and f"the peer says {code.lower()}" in r.json()["message"]
    assert calls(tfs, "Predict", code) == before + 1
    assert tfs.post("/invocations", body).status_code == 200  # and it keeps serving


def test_deadline_exceeded_is_a_504(cnn_tfs) -> None:
    peer, tfs = cnn_tfs
    peer.set(delay_ms=4000)
    try:
        start = time.monotonic()
        r = tfs.post("/invocations", {"inputs": images(1).tolist()})
        seconds = time.monotonic() - start
    finally:
        peer.set()
    assert r.status_code == 504
    assert r.json()["error_code"] == "TIMEOUT"
    assert "did not answer within 1000 ms (MLREG_TFSERVING_TIMEOUT_MS)" in r.json()["message"]
    assert seconds < 3.5  # the deadline, not the peer's 4 s, ended the call
    assert calls(tfs, "Predict", "DEADLINE_EXCEEDED") >= 1


def test_tf_serving_going_away_and_coming_back(cnn_tfs) -> None:
    peer, tfs = cnn_tfs
    body = {"inputs": images(1).tolist()}
    assert tfs.get("/ping").status_code == 200
    peer.stop()
    try:
        r = tfs.post("/invocations", body)
        assert r.status_code == 503
        assert r.json()["error_code"] == "BACKEND_UNAVAILABLE"
        says = f"TensorFlow Serving at {peer.target} is unreachable (UNAVAILABLE: "
        assert says in r.json()["message"]
        answer = tfs.get("/ping")
        assert answer.status_code == 503 and peer.target in answer.json()["message"]
        assert tfs.get("/health").status_code == 200  # alive, just not ready
    finally:
        peer.start()
    wait_for(lambda: ping(tfs) == 200)
    assert tfs.post("/invocations", body).status_code == 200
    assert tfs.proc.poll() is None  # the same server process throughout
    assert calls(tfs, "Predict", "UNAVAILABLE") >= 1


def test_an_unreachable_tf_serving_is_a_503_at_once_that_names_it(
    tmp_path: Path, cnn_dir: Path
) -> None:
    target = f"127.0.0.1:{free_port()}"  # nothing listens there
    args = ("--backend", "tfserving", "--tfserving-target", target, "--timeout", "60")
    server = Server(cnn_dir, tmp_path / "serve.log", args=args)
    says = f"TensorFlow Serving at {target} is unreachable (UNAVAILABLE: "
    try:
        wait_for(lambda: ping(server) == 503, timeout=60)
        wait_for(lambda: says in server.get("/ping").json()["message"])
        started = time.monotonic()
        r = server.post("/invocations", {"inputs": images(1).tolist()})
        waited = time.monotonic() - started
        assert r.status_code == 503, r.text
        assert r.json()["error_code"] == "BACKEND_UNAVAILABLE"
        assert says in r.json()["message"] and r.json()["message"].endswith("retrying every 1 s")
        assert waited < 10  # not the 60 s request timeout
        assert server.get("/health").status_code == 200
        assert server.proc.poll() is None  # it keeps trying
    finally:
        server.stop()
    log = server.log()
    # Once (again every 30 s), not once per attempt: the server retried every second.
    assert 1 <= log.count(f"waiting for the backend: {says}") <= 2, log
    assert "Traceback" not in log


def test_readiness_follows_the_model_status(tmp_path: Path, cnn_dir: Path) -> None:
    base = tmp_path / "cnn"
    base.mkdir()
    peer = Peer("cnn", base, tmp_path / "peer.log", "--load_delay_seconds", "1.5").start()
    server = Server(
        cnn_dir, tmp_path / "serve.log", args=forward(peer, "--tfserving-model-version", "1")
    )
    try:
        # nothing exported yet: TF Serving has no version, so the server waits and says so
        wait_for(lambda: ping(server) == 503, timeout=60)
        wait_for(lambda: "is not loaded" in server.get("/ping").json()["message"])
        says = server.get("/ping").json()["message"]
        assert says.startswith("model 'cnn' (version 1) in TensorFlow Serving at "), says
        assert says.endswith("; retrying every 1 s"), says
        export(cnn_dir, base, 1)
        server.wait_ready(timeout=60)
        body = {"inputs": images(1).tolist()}
        assert server.post("/invocations", body).status_code == 200
        # version 2 appears; TF Serving's default policy unloads the pinned version 1
        export(cnn_dir, base, 2)
        wait_for(lambda: ping(server) == 503)
        assert "version 1 END" in server.get("/ping").json()["message"]
        r = server.post("/invocations", body)
        assert r.status_code == 404
        assert "Servable not found for request: Specific(cnn, 1)" in r.json()["message"]
        assert server.proc.poll() is None
    finally:
        server.stop()
        peer.stop()


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ((), "does not match what model 'cnn' (latest version) in TensorFlow Serving at"),
        (
            ("--tfserving-signature", "nope"),
            "has no signature 'nope' (it has serve, serving_default)",
        ),
    ],
)
def test_a_mismatch_stops_start_up_in_one_line(
    cnn_tfs, multi_dir, tf_models, tmp_path, extra, says
):
    peer, _ = cnn_tfs
    model = multi_dir if not extra else tf_models.save_cnn(tmp_path / "cnn")
    server = Server(model, tmp_path / "serve.log", args=forward(peer, *extra))
    try:
        assert server.proc.wait(timeout=120) != 0
    finally:
        server.stop()
    lines = [line for line in server.log().splitlines() if "failed to load" in line]
    assert len(lines) == 1 and says in lines[0], server.log()
    assert "Traceback" not in server.log()
    if not extra:
        assert "input 'a' (SavedModel name 'a') is not in the served signature" in lines[0]


def test_tfserving_needs_a_target(cnn_dir: Path) -> None:
    proc = subprocess.run(
        [MLREG, "serve", "-m", str(cnn_dir), "--backend", "tfserving"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "Error: MLREG_TFSERVING_TARGET: expected HOST:PORT of TensorFlow Serving's gRPC port "
        "when the backend is tfserving"
    ]


# --- the peer answers as TF Serving documents ----------------------------------------------


@pytest.fixture
def stubs(cnn_tfs):
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    peer, _ = cnn_tfs
    with grpc.insecure_channel(peer.target) as channel:
        yield (
            prediction_service_pb2_grpc.PredictionServiceStub(channel),
            model_service_pb2_grpc.ModelServiceStub(channel),
        )


def _predict(stub, name: str = "cnn", **inputs: np.ndarray) -> grpc.RpcError:
    from tensorflow_serving.apis import predict_pb2

    from mlreg.serving.tensor_proto import to_proto

    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(to_proto(value))
    with pytest.raises(grpc.RpcError) as e:
        stub.Predict(request, timeout=10)
    return e.value


def test_peer_status_codes_and_messages(stubs) -> None:
    from tensorflow_serving.apis import get_model_status_pb2

    predict, status = stubs
    x = images(1)
    e = _predict(predict, "nope", x=x)
    assert (e.code(), e.details()) == (
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Latest(nope)",
    )
    e = _predict(predict, "cnn", pixels=x)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.details().startswith("input tensor alias not found in signature: pixels.")
    alias = e.details().split("{")[1].rstrip("}.")
    e = _predict(predict, "cnn", **{alias: x.astype(np.float64)})
    assert (e.code(), e.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Expects arg[0] to be float but double is provided",
    )
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "nope"
    with pytest.raises(grpc.RpcError) as e:
        status.GetModelStatus(request, timeout=10)
    assert (e.value.code(), e.value.details()) == (
        grpc.StatusCode.NOT_FOUND,
        "Could not find any versions of model nope",
    )
