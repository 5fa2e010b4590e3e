"""HTTP servers the tests run in a thread of their own process."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Callable

#: How often serve_forever looks for a shutdown request: its default (0.5 s) made every stop
#: of every in-process server wait half a second (20 s of the fast selection).
POLL_SECONDS = 0.02


def serve_in_thread(server: socketserver.BaseServer, name: str) -> Callable[[], None]:
    """Start answering on ``server`` in a daemon thread; return what stops and closes it."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": POLL_SECONDS}, name=name, daemon=True
    )
    thread.start()

    def stop() -> None:
        server.shutdown()
        thread.join(10)
        server.server_close()

    return stop
