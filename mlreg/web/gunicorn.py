"""gunicorn for mlreg's servers: threaded workers that drain on SIGTERM, shared metrics.

Each server gives its gunicorn options and a factory of its Flask app; this module runs it.
With several workers, their Prometheus values go to files in a directory made here (see
mlreg.web.metrics) and removed on exit.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import socket
import tempfile
from collections.abc import Callable
from functools import partial
from typing import Any

import gunicorn
from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import TConn, ThreadWorker
from prometheus_client import multiprocess

from mlreg.errors import AddressInUse

#: gunicorn.arbiter.Arbiter.WORKER_BOOT_ERROR: the master halts when a worker exits with it.
WORKER_BOOT_ERROR = 3
#: gunicorn 26 rewrote the threaded worker; its shutdown waits on idle keep-alive connections
#: (earlier ones wait only on requests in flight). MLflow 2.x, a test peer, pins gunicorn < 24.
KEEPS_IDLE_AT_SHUTDOWN = gunicorn.version_info >= (26,)
DRAINING_WORKER = "mlreg.web.gunicorn.DrainingThreadWorker"


class DrainingThreadWorker(ThreadWorker):
    """gunicorn's threaded worker, minus the requests it would drop on SIGTERM.

    On SIGTERM the master closes its copy of the listening socket and the worker stops
    polling it, but the kernel keeps completing handshakes into the backlog until the
    last copy closes, and those connections are reset when the worker exits. This worker
    accepts everything already in the backlog, then closes its listeners at once, so a
    client is either served or cleanly refused (and retries elsewhere).
    """

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:
            self._drain_listeners()
            if KEEPS_IDLE_AT_SHUTDOWN:
                self._close_idle()

    def _close_idle(self) -> None:
        """Close the keep-alive connections waiting for a next request. gunicorn's shutdown
        waits for every connection to end, sleeping until an event or the graceful timeout:
        one idle client (a pooled connection) held every SIGTERM for the whole 30 s. An idle
        connection carries no request; a client sees it closed and retries (HTTP lets it)."""
        while self.keepalived_conns:
            conn = self.keepalived_conns.popleft()
            with contextlib.suppress(OSError, KeyError, ValueError):  # already gone
                self.poller.unregister(conn.sock)
            self.nr_conns -= 1
            conn.close()

    def _drain_listeners(self) -> None:
        for listener in self.sockets:
            while True:
                try:
                    client, addr = listener.accept()
                except OSError:  # EAGAIN: the backlog is empty (or the socket is gone)
                    break
                self.nr_conns += 1
                client.setblocking(True)
                self.enqueue_req(TConn(self.cfg, client, addr, listener.getsockname()))
            listener.close()


def check_bind(host: str, port: int) -> None:
    """Raise AddressInUse (one line) when ``host:port`` cannot be listened on, before gunicorn
    would retry it for seconds with a screen of errors."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise AddressInUse(
                    f"port {port} is in use on {host}; pick another with --port"
                ) from None
            raise AddressInUse(f"cannot listen on {host}:{port}: {e.strerror}") from None


def _child_exit(metrics_dir: str, server: Any, worker: Any) -> None:
    multiprocess.mark_process_dead(worker.pid, metrics_dir)


def _remove_metrics_dir(metrics_dir: str, server: Any) -> None:
    shutil.rmtree(metrics_dir, ignore_errors=True)


class Application(BaseApplication):
    """A gunicorn application whose workers each build their app with ``make_app``.

    ``make_app(metrics_dir)`` runs in the worker, after the fork; ``metrics_dir`` is where
    the workers' metrics meet (None with one worker).
    """

    def __init__(
        self,
        options: dict[str, Any],
        make_app: Callable[[str | None], Flask],
    ) -> None:
        self.options = options
        self.make_app = make_app
        workers = int(options.get("workers", 1))
        self.metrics_dir = tempfile.mkdtemp(prefix="mlreg-metrics-") if workers > 1 else None
        super().__init__()

    def load_config(self) -> None:
        options = {
            # gunicorn >= 25 opens a control socket at a fixed path; servers side by side
            # would fight over it, and we do not need runtime control.
            "control_socket_disable": True,
            "preload_app": False,
            "accesslog": None,
            **self.options,
        }
        if self.metrics_dir is not None:
            options["child_exit"] = partial(_child_exit, self.metrics_dir)
            options["on_exit"] = partial(_remove_metrics_dir, self.metrics_dir)
        for key, value in options.items():
            if key in self.cfg.settings:  # older gunicorn lacks some settings
                self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.make_app(self.metrics_dir)
