"""A TCP proxy that loses one answer: it forwards a request to the server, lets the server
answer, then closes the client's connection instead of relaying the answer.

That is the fault a retry must survive without doing anything twice: the client cannot tell
whether its write was applied, and sends it again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class DroppingProxy:
    """Forwards 127.0.0.1:<port> to ``upstream``; drops the answer to the next ``drops``
    requests whose request line contains ``pattern`` (e.g. ``b"POST /api/v1/runs/"``)."""

    upstream: tuple[str, int]
    pattern: bytes = b""
    drops: int = 0
    dropped: list[bytes] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def arm(self, pattern: bytes, drops: int = 1) -> None:
        with self._lock:
            self.pattern, self.drops = pattern, drops

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            state = {"drop": False}
            threading.Thread(target=self._up, args=(client, upstream, state), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client, state), daemon=True).start()

    def _up(self, client: socket.socket, upstream: socket.socket, state: dict) -> None:
        """Client to server; a request line matching the pattern arms the drop."""
        try:
            while data := client.recv(65536):
                first_line = data.split(b"\r\n", 1)[0]
                with self._lock:
                    if self.drops and self.pattern and self.pattern in first_line:
                        self.drops -= 1
                        self.dropped.append(first_line)
                        state["drop"] = True
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            _shut(upstream)

    def _down(self, upstream: socket.socket, client: socket.socket, state: dict) -> None:
        """Server to client, unless armed: then the answer is read and the client cut off."""
        try:
            while data := upstream.recv(65536):
                if state["drop"]:
                    break  # the server answered (so it applied the request); lose it
                client.sendall(data)
        except OSError:
            pass
        finally:
            _shut(client)
            _shut(upstream)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
