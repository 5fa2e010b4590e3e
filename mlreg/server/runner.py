"""Run the registry server under gunicorn: threaded workers, each opening the store after the
fork (connections never cross a fork), draining in-flight requests on SIGTERM."""

from __future__ import annotations

import math
import secrets
from typing import Any

from flask import Flask

from mlreg.server.app import create_app
from mlreg.server.metrics import ServerMetrics
from mlreg.server.settings import ServerSettings
from mlreg.web.gunicorn import DRAINING_WORKER, Application
from mlreg.web.logs import configure_logging, gunicorn_logconfig


def _worker_exit(server: Any, worker: Any) -> None:
    app = worker.wsgi if isinstance(getattr(worker, "wsgi", None), Flask) else None
    if app is not None:
        app.extensions["mlreg.server"].close()


def gunicorn_options(settings: ServerSettings) -> dict[str, Any]:
    return {
        "bind": [settings.bind],
        "workers": settings.workers,
        "worker_class": DRAINING_WORKER,
        "threads": settings.threads,
        "timeout": int(settings.timeout + 30),
        "graceful_timeout": math.ceil(settings.graceful_timeout),
        "keepalive": 5,
        "proc_name": "mlreg-server",
        "logconfig_dict": gunicorn_logconfig(settings.log_format, settings.log_level),
        "loglevel": settings.log_level,
        "worker_exit": _worker_exit,
        # Uploads of large models stream through; no request line or header is that big.
        "limit_request_line": 8190,
    }


def run(settings: ServerSettings) -> None:
    """Serve in the foreground until SIGTERM / SIGINT."""
    if settings.secret_key is None:
        # Made here, before the fork, so every worker signs and checks the UI's forms alike.
        settings = settings.replace(secret_key=secrets.token_urlsafe(32))

    def make_app(metrics_dir: str | None) -> Flask:
        configure_logging(settings.log_format, settings.log_level)
        return create_app(settings, metrics=ServerMetrics(metrics_dir))

    Application(gunicorn_options(settings), make_app).run()
