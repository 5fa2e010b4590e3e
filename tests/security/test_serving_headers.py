"""Every answer of ``mlreg serve`` says ``X-Content-Type-Options: nosniff`` (issue 21, 15), whoever
wrote it: the event loop (probes, the HTTP worker's own errors), the direct prediction path,
or the Flask app; and /metadata names a local model without locating it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.serving.data import images
from tests.serving.server import Server

pytestmark = pytest.mark.process  # a real `mlreg serve`: the worker answers some requests itself


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("headers")
    server = Server.fake("cnn", tmp / "private" / "cnn", tmp / "server.log").wait_ready()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/ping", None, 200),  # answered on the event loop
        ("POST", "/invocations", {"inputs": images(1).tolist()}, 200),  # the direct path
        ("POST", "/invocations", {"inputs": [[1]]}, 400),
        ("GET", "/metadata", None, 200),  # the Flask app
        ("GET", "/nope", None, 404),
    ],
)
def test_every_answer_says_nosniff(
    server: Server, method: str, path: str, body: dict | None, status: int
) -> None:
    r = requests.request(method, server.url + path, json=body, timeout=30)
    assert r.status_code == status, r.text
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_the_worker_s_own_errors_say_nosniff_too(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n")
        head = s.recv(65536).split(b"\r\n\r\n")[0].decode()
    assert head.startswith("HTTP/1.1 400")
    assert "x-content-type-options: nosniff" in head.lower()


def test_metadata_does_not_show_where_the_model_is(server: Server, tmp_path: Path) -> None:
    text = requests.get(server.url + "/metadata", timeout=30).text
    assert "private" not in text and str(Path(server.log_path).parent) not in text
