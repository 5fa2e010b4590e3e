"""A webhook receiver on a loopback port: a real HTTP server that records every delivery and
answers as the test says (a status per attempt, or holding the request until released)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.threads import serve_in_thread


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def event_id(self) -> str:
        return self.headers["X-Mlreg-Event-Id"]


class Receiver:
    def __init__(self, answer: Callable[[Received, int], int] | None = None, port: int = 0) -> None:
        #: (the request, how many times this event arrived before) -> the status to answer.
        self.answer = answer or (lambda request, seen: 200)
        self.received: list[Received] = []
        self.gate = threading.Event()
        self.gate.set()
        self.held = threading.Semaphore(0)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k: v for k, v in self.headers.items()}
                if not receiver.gate.is_set():
                    receiver.held.release()
                    receiver.gate.wait(60)
                with receiver._lock:
                    seen = sum(
                        1 for r in receiver.received if r.event_id == headers["X-Mlreg-Event-Id"]
                    )
                    status = receiver.answer(Received(headers, body, 0), seen)
                    receiver.received.append(Received(headers, body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self._stop = serve_in_thread(self.server, "webhook-receiver")
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def ok(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if 200 <= r.status < 300]

    def wait(self, condition: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; received {len(self.received)} deliveries")
            time.sleep(0.02)

    def stop(self) -> None:
        self.gate.set()
        self._stop()
