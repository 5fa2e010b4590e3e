"""The Flask app factory: routes, one JSON error handler, request ids, access logs, metrics."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, g, has_request_context

from mlreg.serving import v2_routes
from mlreg.serving.backends import Backend
from mlreg.serving.direct import DirectPredictions
from mlreg.serving.limits import MAX_LIMIT
from mlreg.serving.metrics import Metrics
from mlreg.serving.predict import MODEL_VERSION_HEADER, version_header
from mlreg.serving.prediction_log import PredictionLog, open_sink
from mlreg.serving.routes import MAX_REQUEST_BYTES_VAR, bp, log_prediction
from mlreg.serving.settings import ServingSettings
from mlreg.serving.state import ServingState
from mlreg.web.http import REQUEST_ID_HEADER, HttpConfig, install, log_access, refusal_reporter
from mlreg.web.request_ids import request_id
from mlreg.web.routing import App
from mlreg.web.worker import WorkerOptions

ACCESS_LOGGER = "mlreg.serving.access"
#: Probes and scrapes: answered at any rate, logged only at DEBUG (counted in the metrics).
QUIET_PATHS = frozenset(["/ping", "/health", "/metrics", "/v2/health/live", "/v2/health/ready"])
#: Answered on the HTTP worker's event loop, never queued behind predictions: a probe must
#: answer while every request thread is busy with the model.
INLINE_PATHS = frozenset([*QUIET_PATHS, "/version"])


def create_app(
    settings: ServingSettings, model: Backend | None = None, state: ServingState | None = None
) -> Flask:
    """Build the scoring app; with ``model`` it is loaded and warmed up before this returns.

    Without ``model`` the app answers /ping 503 until someone loads one into
    ``app.extensions["mlreg"]`` (the gunicorn worker does, in a background thread).
    """
    app = App("mlreg.serving")
    # Bodies over the limit fail while being read too (chunked uploads have no length); a
    # limit derived from the signature is checked by the routes and the HTTP worker.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    state = state or ServingState(settings, Metrics())
    app.extensions["mlreg"] = state
    if settings.log_predictions and state.prediction_log is None:
        state.prediction_log = PredictionLog(
            open_sink(settings),
            state.metrics,
            settings.log_sample_rate,
            settings.log_max_tensor_bytes,
            settings.log_queue_size,
        )
        state.on_drain(state.prediction_log.close)
    if model is not None:
        state.load(lambda: model)
    app.register_blueprint(bp)
    app.register_blueprint(v2_routes.bp)
    app.after_request(log_prediction)

    def model_version() -> str:
        # The version that answered this request; else the one served now.
        if has_request_context() and "model_version" in g:
            return g.model_version
        return state.version

    config = HttpConfig(
        access_logger=ACCESS_LOGGER,
        max_request_bytes=settings.max_request_bytes or MAX_LIMIT,
        max_request_setting=MAX_REQUEST_BYTES_VAR,
        quiet_paths=QUIET_PATHS,
        metrics=state.metrics,
        error_fields=_tfserving_error_field,
        metric_labels=lambda: (model_version(),),
        response_headers=lambda: version_header(model_version()),
    )
    install(app, config)
    app.extensions["mlreg.http"] = config
    # What mlreg.web.worker.AsyncWorker reads when it serves this app: predictions go its
    # direct path (mlreg.serving.direct), everything else through this Flask app.
    direct = DirectPredictions(state, config)
    app.worker_options = WorkerOptions(  # type: ignore[attr-defined]
        read_timeout=settings.read_timeout,
        max_body=state.max_request_bytes,
        max_body_setting=MAX_REQUEST_BYTES_VAR,
        inline=_inline,
        on_refused=refusal_reporter(app, config),
        on_drain=state.drain,
        direct=direct.handler,
    )
    return app


def grpc_observer(app: Flask) -> GrpcObserver:
    """Count and log a V2 gRPC call like an HTTP request (endpoint ``grpc:<method>``)."""
    config: HttpConfig = app.extensions["mlreg.http"]
    access_log = logging.getLogger(ACCESS_LOGGER)

    def observe(call: GrpcCall) -> None:
        endpoint = f"grpc:{call.method}"
        if config.metrics is not None:
            config.metrics.observe(endpoint, "POST", call.status, call.seconds, call.version)
        log_access(
            access_log,
            config,
            method="GRPC",
            path=endpoint,
            status=call.status,
            seconds=call.seconds,
            request_id=request_id(call.request_id or None),
            remote_addr=call.peer,
            error=call.error,
        )

    return observe


@dataclass(frozen=True)
class GrpcCall:
    """One answered gRPC call, for the access log and the metrics."""

    method: str
    status: int  # the HTTP status of the outcome (200, or the error class's)
    seconds: float
    version: str
    request_id: str = ""
    peer: str | None = None
    error: tuple[str, str] | None = None


GrpcObserver = Callable[[GrpcCall], None]


def _inline(method: str, path: str) -> bool:
    return method == "GET" and (path in INLINE_PATHS or path.endswith("/ready"))


def _tfserving_error_field(path: str, message: str) -> dict[str, Any]:
    # TensorFlow Serving's clients and V2 (Open Inference Protocol) clients read "error".
    return {"error": message} if path.startswith(("/v1/", "/v2")) else {}


__all__ = ["ACCESS_LOGGER", "MODEL_VERSION_HEADER", "REQUEST_ID_HEADER", "create_app"]
