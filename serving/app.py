"""The Flask app factory: routes, one JSON error handler, request ids, access logs, metrics."""

from __future__ import annotations

from typing import Any

from flask import Flask

from mlreg.serving.backends import Backend
from mlreg.serving.metrics import Metrics
from mlreg.serving.routes import MAX_REQUEST_BYTES_VAR, bp
from mlreg.serving.settings import ServingSettings
from mlreg.serving.state import ServingState
from mlreg.web.http import REQUEST_ID_HEADER, HttpConfig, install

ACCESS_LOGGER = "mlreg.serving.access"
#: Probes and scrapes: answered at any rate, logged only at DEBUG (counted in the metrics).
QUIET_PATHS = frozenset(["/ping", "/health", "/metrics"])


def create_app(
    settings: ServingSettings, model: Backend | None = None, state: ServingState | None = None
) -> Flask:
    """Build the scoring app; with ``model`` it is loaded and warmed up before this returns.

    Without ``model`` the app answers /ping 503 until someone loads one into
    ``app.extensions["mlreg"]`` (the gunicorn worker does, in a background thread).
    """
    app = Flask("mlreg.serving")
    # Bodies over the limit fail while being read too (chunked uploads have no length).
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    state = state or ServingState(settings, Metrics())
    app.extensions["mlreg"] = state
    if model is not None:
        state.load(lambda: model)
    app.register_blueprint(bp)
    install(
        app,
        HttpConfig(
            access_logger=ACCESS_LOGGER,
            max_request_bytes=settings.max_request_bytes,
            max_request_setting=MAX_REQUEST_BYTES_VAR,
            quiet_paths=QUIET_PATHS,
            metrics=state.metrics,
            error_fields=_tfserving_error_field,
        ),
    )
    return app


def _tfserving_error_field(path: str, message: str) -> dict[str, Any]:
    # TensorFlow Serving's clients read "error".
    return {"error": message} if path.startswith("/v1/") else {}


__all__ = ["ACCESS_LOGGER", "REQUEST_ID_HEADER", "create_app"]
