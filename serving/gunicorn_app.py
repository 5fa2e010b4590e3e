"""Run the scoring app under gunicorn: threaded workers, model loaded after the fork.

The master never imports TensorFlow (its state does not survive a fork): each worker
builds the app, answers /ping 503 while a background thread loads and warms up the
model, then 200. A worker whose model cannot load exits with gunicorn's boot-error code,
which stops the whole server instead of restarting the worker forever.
"""

from __future__ import annotations

import math
import os
from typing import Any

from flask import Flask

from mlreg.serving.app import create_app, grpc_observer
from mlreg.serving.backends import Loader, load_backend
from mlreg.serving.follow import Follower
from mlreg.serving.metrics import Metrics
from mlreg.serving.settings import ServingSettings
from mlreg.serving.state import ServingState
from mlreg.uris import ResolvedModel
from mlreg.web.gunicorn import WORKER_BOOT_ERROR, Application
from mlreg.web.logs import capture_native_stderr, configure_logging, gunicorn_logconfig
from mlreg.web.worker import WORKER_CLASS


def _worker_exit(server: Any, worker: Any) -> None:
    app = getattr(worker, "wsgi", None)
    state = app.extensions.get("mlreg") if isinstance(app, Flask) else None
    if state is not None:
        state.close()


def _boot_failed() -> None:
    # Called from the loader thread: sys.exit there would only end the thread.
    os._exit(WORKER_BOOT_ERROR)


def gunicorn_options(settings: ServingSettings) -> dict[str, Any]:
    """gunicorn's settings for ours."""
    options: dict[str, Any] = {
        "bind": [settings.bind],
        "workers": settings.workers,
        # Requests are read on an event loop and run on threads (mlreg.web.worker): stalled
        # clients cost nothing, probes answer while the model is busy, SIGTERM loses nothing.
        "worker_class": WORKER_CLASS,
        "threads": settings.threads,
        # The request timeout (504) is enforced per request; gunicorn's heartbeat timeout
        # is the last resort for a worker whose main loop stops.
        "timeout": int(max(settings.timeout * 2, settings.timeout + 30)),
        "graceful_timeout": math.ceil(settings.graceful_timeout),
        "keepalive": 5,
        "proc_name": "mlreg-serve",
        "logconfig_dict": gunicorn_logconfig(settings.log_format, settings.log_level),
        "loglevel": settings.log_level,
        "worker_exit": _worker_exit,
        "preload_app": False,  # TensorFlow never in the master: its state does not survive a fork
    }
    return options


def run(
    settings: ServingSettings, source: ResolvedModel | None = None, loader: Loader = load_backend
) -> None:
    """Serve in the foreground until SIGTERM / SIGINT; each worker loads its model with
    ``loader`` (the backend the settings name, unless a test gives a stand-in)."""

    def make_app(metrics_dir: str | None) -> Flask:
        configure_logging(settings.log_format, settings.log_level)
        capture_native_stderr()  # TensorFlow's C++ lines become (JSON) log records
        state = ServingState(settings, Metrics(metrics_dir))
        app = create_app(settings, state=state)
        if settings.grpc_port is not None:
            from mlreg.serving import v2_grpc  # tritonclient's protos: only when asked for

            server = v2_grpc.start_server(
                state, settings.host, settings.grpc_port, settings.threads, grpc_observer(app)
            )
            state.on_drain(lambda: server.stop(settings.graceful_timeout))
        state.start_loading(lambda: loader(settings, source, state.metrics), _boot_failed)
        if settings.follow and settings.model_uri:
            follower = Follower(
                state,
                settings.model_uri,
                lambda moved: loader(settings, moved, state.metrics),
                settings.poll_interval,
                settings.allow_signature_change,
            )
            follower.start()
            state.on_drain(follower.stop)
        return app

    Application(gunicorn_options(settings), make_app).run()


__all__ = ["gunicorn_options", "run"]
