"""Run the scoring app under gunicorn: threaded workers, model loaded after the fork.

The master never imports TensorFlow (its state does not survive a fork): each worker
builds the app, answers /ping 503 while a background thread loads and warms up the
model, then 200. A worker whose model cannot load exits with gunicorn's boot-error code,
which stops the whole server instead of restarting the worker forever.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from functools import partial
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import TConn, ThreadWorker
from prometheus_client import multiprocess

from mlreg.serving.app import create_app
from mlreg.serving.backends import load_backend
from mlreg.serving.metrics import Metrics
from mlreg.serving.settings import ServingSettings
from mlreg.serving.state import ServingState
from mlreg.uris import ResolvedModel
from mlreg.web.logs import configure_logging, gunicorn_logconfig

#: gunicorn.arbiter.Arbiter.WORKER_BOOT_ERROR: the master halts when a worker exits with it.
WORKER_BOOT_ERROR = 3


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


def _worker_exit(server: Any, worker: Any) -> None:
    app = getattr(worker, "wsgi", None)
    state = app.extensions.get("mlreg") if isinstance(app, Flask) else None
    if state is not None:
        state.close()


def _child_exit(metrics_dir: str, server: Any, worker: Any) -> None:
    multiprocess.mark_process_dead(worker.pid, metrics_dir)


def _remove_metrics_dir(metrics_dir: str, server: Any) -> None:
    shutil.rmtree(metrics_dir, ignore_errors=True)


def _boot_failed() -> None:
    # Called from the loader thread: sys.exit there would only end the thread.
    os._exit(WORKER_BOOT_ERROR)


def gunicorn_options(settings: ServingSettings) -> dict[str, Any]:
    """gunicorn's settings for ours."""
    options: dict[str, Any] = {
        "bind": [settings.bind],
        "workers": settings.workers,
        "worker_class": "mlreg.serving.gunicorn_app.DrainingThreadWorker",
        "threads": settings.threads,
        # The request timeout (504) is enforced per request; gunicorn's heartbeat timeout
        # is the last resort for a worker whose main loop stops.
        "timeout": int(max(settings.timeout * 2, settings.timeout + 30)),
        "graceful_timeout": math.ceil(settings.graceful_timeout),
        "keepalive": 5,
        "proc_name": "mlreg-serve",
        "accesslog": None,
        "logconfig_dict": gunicorn_logconfig(settings.log_format, settings.log_level),
        "loglevel": settings.log_level,
        "worker_exit": _worker_exit,
        "preload_app": False,
        # gunicorn >= 25 opens a control socket at a fixed path; servers side by side would
        # fight over it, and we do not need runtime control.
        "control_socket_disable": True,
    }
    return options


class ServingApplication(BaseApplication):
    """gunicorn application whose workers each build the app and load the model."""

    def __init__(self, settings: ServingSettings, source: ResolvedModel | None = None) -> None:
        self.settings = settings
        self.source = source
        # Several workers share their metrics through files (see serving/metrics.py).
        self.metrics_dir = (
            tempfile.mkdtemp(prefix="mlreg-metrics-") if settings.workers > 1 else None
        )
        super().__init__()

    def load_config(self) -> None:
        options = gunicorn_options(self.settings)
        if self.metrics_dir is not None:
            options["child_exit"] = partial(_child_exit, self.metrics_dir)
            options["on_exit"] = partial(_remove_metrics_dir, self.metrics_dir)
        for key, value in options.items():
            if key in self.cfg.settings:  # older gunicorn lacks some settings
                self.cfg.set(key, value)

    def load(self) -> Flask:
        settings = self.settings
        configure_logging(settings.log_format, settings.log_level)
        state = ServingState(settings, Metrics(self.metrics_dir))
        app = create_app(settings, state=state)
        state.start_loading(
            lambda: load_backend(settings, self.source, state.metrics), on_failure=_boot_failed
        )
        return app


def run(settings: ServingSettings, source: ResolvedModel | None = None) -> None:
    """Serve in the foreground until SIGTERM / SIGINT."""
    ServingApplication(settings, source).run()


__all__ = ["DrainingThreadWorker", "ServingApplication", "gunicorn_options", "run"]
