"""The HTTP worker under clients that misbehave: stalled and slow senders, clients that hang up,
oversize headers and bodies, and SIGTERM with keep-alive clients.

A real ``mlreg serve`` server (gunicorn, mlreg.web.worker, the app) on a numpy stand-in of a
model that sleeps for as long as it is asked (tests/serving/fake_server.py): no TensorFlow.
"""

from __future__ import annotations

import collections
import http.client
import json
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.serving.server import Server

pytestmark = pytest.mark.process  # a real `mlreg serve` (gunicorn) under misbehaving clients

READ_TIMEOUT = 1.5
HEAD = (
    b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n"
)


JSON = {"Content-Type": "application/json"}


def spin(seconds: float) -> bytes:
    return json.dumps({"inputs": [[seconds, 0.0]]}).encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Two request threads, as few as a small pod would have: easy to exhaust.
    tmp = tmp_path_factory.mktemp("worker")
    env = {"MLREG_THREADS": "2", "MLREG_READ_TIMEOUT": str(READ_TIMEOUT)}
    server = Server.fake("sleepy", tmp / "model", tmp / "server.log", env=env).wait_ready()
    yield server
    server.stop()
    assert "Traceback" not in server.log()  # every misbehaving client was handled, not crashed on


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, dict(response.getheaders()), response.read()


def probe(server: Server, path: str) -> float:
    start = time.monotonic()
    r = requests.get(server.url + path, timeout=3)
    assert r.status_code == 200, r.text
    return time.monotonic() - start


def test_stalled_and_slow_clients_leave_probes_and_predictions_alone(server: Server) -> None:
    # Eight clients send headers and no body, four trickle a byte at a time: with one thread
    # per connection being read, these would hold every thread (and /ping) for their lifetime.
    stalled = [connect(server) for _ in range(8)]
    for sock in stalled:
        sock.sendall(HEAD % 100)
    slow = [connect(server) for _ in range(4)]
    body = spin(0)
    stop = threading.Event()

    def trickle(sock: socket.socket) -> None:
        sock.sendall(HEAD % len(body))
        for byte in body:
            if stop.is_set():
                return
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return  # the server gave up on us: that is the point
            time.sleep(0.2)

    threads = [threading.Thread(target=trickle, args=(s,)) for s in slow]
    for t in threads:
        t.start()
    try:
        for _ in range(4):
            assert probe(server, "/ping") < 0.5
            assert probe(server, "/health") < 0.5
            r = server.post("/invocations", data=body, headers={"Content-Type": "application/json"})
            assert r.json() == {"predictions": [[1.0, 1.0]]}
        # Past the read deadline every one of them gets a 408 that says why, and is closed.
        time.sleep(READ_TIMEOUT + 0.5)
        for sock in stalled + slow:
            status, headers, answer = read_response(sock)
            assert status == 408
            assert headers["Connection"] == "close"
            doc = json.loads(answer)
            assert doc["error_code"] == "REQUEST_TIMEOUT"
            assert doc["message"].startswith(
                f"the request was not received within {READ_TIMEOUT:g} s ("
            )
            assert sock.recv(1) == b""  # closed
    finally:
        stop.set()
        for t in threads:
            t.join()
        for sock in stalled + slow:
            sock.close()
    log = server.log()
    assert log.count("POST /invocations 408") >= 12
    assert "Traceback" not in log


def test_probes_answer_while_every_thread_runs_the_model(server: Server) -> None:
    with ThreadPoolExecutor(4) as pool:
        busy = [
            pool.submit(server.post, "/invocations", {"inputs": [[1.5, 0.0]]}) for _ in range(4)
        ]
        time.sleep(0.3)  # both threads are in the model now, two more requests queue
        for path in ("/ping", "/health", "/metrics", "/version"):
            assert probe(server, path) < 0.5, path
        assert [f.result().status_code for f in busy] == [200] * 4


def test_a_client_that_hangs_up_mid_body_is_a_499_without_a_traceback(server: Server) -> None:
    sock = connect(server)
    sock.sendall(HEAD % 1000 + b'{"inputs": [[0.0, ')
    time.sleep(0.2)
    sock.close()
    deadline = time.monotonic() + 5
    while "CLIENT_CLOSED_REQUEST" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    [line] = [line for line in server.log().splitlines() if "CLIENT_CLOSED_REQUEST" in line]
    assert " INFO " in line  # the client's doing, not a server error
    assert "POST /invocations 499" in line
    assert line.endswith(
        "CLIENT_CLOSED_REQUEST: the client closed the connection after 18 of 1000 body bytes"
    )
    assert "Traceback" not in server.log()
    metrics = server.get("/metrics").text
    assert 'endpoint="/invocations",method="POST",model_version="",status="499"} 1.0' in metrics


@pytest.mark.parametrize(
    ("request_bytes", "status", "error_code", "message"),
    [
        (
            # The limit comes from the signature: 256 rows of two floats fit in 1 MiB.
            HEAD % (2 * 1024 * 1024),
            413,
            "PAYLOAD_TOO_LARGE",
            "request body is 2097152 bytes; the limit is 1048576 bytes (MLREG_MAX_REQUEST_BYTES)",
        ),
        (
            b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
            431,
            "REQUEST_HEADER_FIELDS_TOO_LARGE",
            "request headers are over 65536 bytes",
        ),
        (
            b"GARBAGE\r\n\r\n",
            400,
            "INVALID_PARAMETER_VALUE",
            "malformed HTTP request: illegal request line",
        ),
        (
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
            b"Content-Length: 2\r\n\r\nab",
            400,
            "INVALID_PARAMETER_VALUE",
            "malformed HTTP request: conflicting Content-Length headers",
        ),
    ],
    ids=["body-over-the-limit", "headers-too-large", "garbage", "two-lengths"],
)
def test_the_worker_refuses_what_it_cannot_read_with_json(
    server: Server, request_bytes: bytes, status: int, error_code: str, message: str
) -> None:
    sock = connect(server)
    try:
        sock.sendall(request_bytes)  # a 413 comes from the length alone: no body is sent
        got, headers, answer = read_response(sock)
    finally:
        sock.close()
    assert got == status
    assert headers["Content-Type"] == "application/json"
    assert json.loads(answer) == {"error_code": error_code, "message": message}


def test_expect_100_continue_is_honoured(server: Server) -> None:
    # curl sends this for bodies over 1 kB and waits for the 100 before sending the body.
    body = spin(0)
    sock = connect(server)
    try:
        sock.sendall(HEAD.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n") % len(body))
        assert sock.recv(100).startswith(b"HTTP/1.1 100 ")
        sock.sendall(body)
        status, _, answer = read_response(sock)
    finally:
        sock.close()
    assert (status, json.loads(answer)) == (200, {"predictions": [[1.0, 1.0]]})


# --- quick predictions on the loop ----------------------------------------------------------


def test_quick_predictions_run_on_the_loop_until_one_is_slow(tmp_path: Path) -> None:
    """MLREG_INLINE_MS=2: while a model's small predictions are quick, the loop computes them
    itself, and a probe waits for one that turns out slow (the cost of the option, with a
    model whose time depends on its input). That one sends the next ones to the threads
    (probes answer at once) until quick ones bring the average back under the budget."""
    env = {"MLREG_INLINE_MS": "2"}
    server = Server.fake("sleepy", tmp_path / "model", tmp_path / "server.log", env=env)
    server.wait_ready()

    def probe_during(seconds: float) -> float:
        """How long /ping takes while a prediction that sleeps ``seconds`` is computed."""
        with ThreadPoolExecutor(1) as pool:
            busy = pool.submit(predict, seconds)
            time.sleep(0.15)
            start = time.monotonic()
            assert requests.get(server.url + "/ping", timeout=5).status_code == 200
            waited = time.monotonic() - start
            assert busy.result().json() == {"predictions": [[pytest.approx(seconds + 1), 1.0]]}
        return waited

    def predict(seconds: float) -> requests.Response:
        return server.post("/invocations", data=spin(seconds), headers=JSON)

    try:
        for _ in range(3):
            predict(0)  # quick: the next runs on the loop
        assert probe_during(0.8) > 0.4  # the probe waited for the prediction
        assert probe_during(0.8) < 0.3  # on a thread: the loop answered at once
        for _ in range(40):  # each quick one brings the average a fifth of the way down
            predict(0)
        assert probe_during(0.8) > 0.4  # on the loop again
    finally:
        server.stop()
    assert "Traceback" not in server.log()


# --- SIGTERM with keep-alive clients --------------------------------------------------------


def test_sigterm_answers_every_request_sent_on_an_open_keepalive_connection(
    tmp_path: Path,
) -> None:
    """Two workers, eight clients each POSTing on one keep-alive connection. During the drain
    a request that arrives on an open connection is answered (with Connection: close), never
    dropped; a client then finds the port closed and would retry elsewhere."""
    env = {"MLREG_WORKERS": "2", "MLREG_THREADS": "4", "MLREG_GRACEFUL_TIMEOUT": "20"}
    server = Server.fake("sleepy", tmp_path / "model", tmp_path / "server.log", env=env)
    server.wait_ready()
    _wait_for_workers(server, 2)
    lock = threading.Lock()
    out: dict = {"ok": 0, "closed_by_server": 0, "refused": 0, "dropped": []}
    sigterm = threading.Event()
    body = spin(0.02)

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        while True:
            try:
                conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
            except ConnectionRefusedError:
                with lock:
                    out["refused"] += 1
                return
            except (http.client.RemoteDisconnected, ConnectionError) as e:
                with lock:  # a request went out on an open connection and got no answer
                    out["dropped"].append(repr(e))
                return
            with lock:
                if response.status == 200:
                    out["ok"] += 1
                else:
                    out["dropped"].append((response.status, response.read()))
            if response.getheader("Connection") == "close":
                with lock:
                    out["closed_by_server"] += 1
                conn.close()  # the next request opens a new connection

    try:
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(client) for _ in range(8)]
            time.sleep(1.0)
            sigterm.set()
            server.proc.send_signal(signal.SIGTERM)
            server.proc.wait(timeout=30)
            for f in futures:
                f.result(timeout=30)
    finally:
        code = server.stop()
    assert code == 0, server.log()
    assert out["dropped"] == [], out
    assert out["ok"] > 20
    assert out["closed_by_server"] >= 8  # each client was told, on a response, to go
    assert "Traceback" not in server.log()


def test_connections_opened_at_once_are_shared_by_the_workers(tmp_path: Path) -> None:
    """Sixteen keep-alive connections opened together (as wrk, or a client's pool, opens
    them): each worker takes some, rather than the first to wake taking them all."""
    env = {"MLREG_WORKERS": "2", "MLREG_THREADS": "16"}
    server = Server.fake("sleepy", tmp_path / "model", tmp_path / "server.log", env=env)
    server.wait_ready()
    _wait_for_workers(server, 2)
    try:
        socks = [connect(server) for _ in range(16)]
        body = spin(0)
        for sock in socks:
            sock.sendall(HEAD % len(body) + body)
        assert [read_response(sock)[0] for sock in socks] == [200] * 16
        for sock in socks:
            sock.close()
    finally:
        server.stop()
    pids = re.findall(r"\[(\d+)\] mlreg\.serving\.access: POST /invocations 200", server.log())
    shares = sorted(collections.Counter(pids).values())
    assert len(pids) == 16 and len(shares) == 2 and shares[0] >= 4, shares


def _wait_for_workers(server: Server, n: int) -> None:
    deadline = time.monotonic() + 30
    while server.log().count("model ready") < n:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)
