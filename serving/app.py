"""The Flask app factory: routes, one JSON error handler, request ids, access logs, metrics."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

import orjson
from flask import Flask, Response, g, request
from werkzeug import exceptions as http

from mlreg.errors import (
    EndpointNotFound,
    InvalidInput,
    MethodNotAllowed,
    MlregError,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from mlreg.serving.backends import Backend
from mlreg.serving.metrics import Metrics
from mlreg.serving.routes import MAX_REQUEST_BYTES_VAR, bp
from mlreg.serving.settings import ServingSettings
from mlreg.serving.state import ServingState

ACCESS_LOGGER = "mlreg.serving.access"
logger = logging.getLogger(__name__)
access_log = logging.getLogger(ACCESS_LOGGER)

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")


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
    _install_hooks(app, state)
    return app


def _error_response(status: int, error_code: str, message: str) -> Response:
    g.error = (error_code, message)
    doc: dict[str, Any] = {"error_code": error_code, "message": message}
    if request.path.startswith("/v1/"):
        doc["error"] = message  # TensorFlow Serving clients read "error"
    response = Response(orjson.dumps(doc), status=status, mimetype="application/json")
    if status == 413:
        # The unread rest of the body would otherwise have to be drained to reuse the
        # connection; closing it is cheaper.
        response.headers["Connection"] = "close"
    return response


def _install_hooks(app: Flask, state: ServingState) -> None:
    metrics = state.metrics

    @app.before_request
    def _start() -> None:
        g.start = time.perf_counter()
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        metrics.in_flight.inc()
        g.counted = True

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
        start = g.get("start")
        elapsed = time.perf_counter() - start if start is not None else 0.0
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics.requests.labels(rule, request.method, str(response.status_code)).inc()
        metrics.latency.labels(rule).observe(elapsed)
        _log_request(response.status_code, elapsed)
        return response

    @app.teardown_request
    def _teardown(_exc: BaseException | None) -> None:
        if g.pop("counted", False):
            metrics.in_flight.dec()

    @app.errorhandler(MlregError)
    def _mlreg_error(e: MlregError) -> Response:
        return _error_response(e.status_code, e.error_code, e.message)

    @app.errorhandler(http.HTTPException)
    def _http_error(e: http.HTTPException) -> Response:
        error = _as_mlreg_error(e, state.settings.max_request_bytes)
        if error is not None:
            return _error_response(error.status_code, error.error_code, error.message)
        # A status werkzeug raises that none of our classes stands for.
        return _error_response(e.code or 500, "HTTP_ERROR", e.description or e.name)

    @app.errorhandler(Exception)
    def _unexpected(e: Exception) -> Response:
        # The traceback goes to the log, never into the body.
        logger.exception("unexpected error", extra={"request_id": g.get("request_id")})
        return _error_response(
            500,
            "INTERNAL_ERROR",
            f"internal server error ({type(e).__name__}); request id {g.get('request_id')}",
        )


def _as_mlreg_error(e: http.HTTPException, max_request_bytes: int) -> MlregError | None:
    """werkzeug's HTTP error (routing, body limit) as the class of ours that carries its code."""
    if isinstance(e, http.NotFound):
        return EndpointNotFound(f"no endpoint {request.path}")
    if isinstance(e, http.MethodNotAllowed):
        allowed = ", ".join(sorted(e.valid_methods or []))
        message = f"method {request.method} is not allowed on {request.path}"
        return MethodNotAllowed(message + (f"; allowed: {allowed}" if allowed else ""))
    if isinstance(e, http.RequestEntityTooLarge):
        return PayloadTooLarge.body(None, max_request_bytes, MAX_REQUEST_BYTES_VAR)
    if isinstance(e, http.UnsupportedMediaType):
        return UnsupportedMediaType(e.description or e.name)
    if isinstance(e, http.BadRequest):
        return InvalidInput(e.description or e.name)
    return None


def _log_request(status: int, elapsed: float) -> None:
    error = g.get("error")
    fields: dict[str, Any] = {
        "request_id": g.get("request_id"),
        "method": request.method,
        "path": request.path,
        "status": status,
        "duration_ms": round(elapsed * 1000, 3),
        "remote_addr": request.remote_addr,
    }
    if error is not None:
        fields["error_code"], fields["error_message"] = error
    level = logging.INFO if status < 500 else logging.WARNING if status == 503 else logging.ERROR
    if not access_log.isEnabledFor(level):
        return
    text = f"{request.method} {request.path} {status} {fields['duration_ms']:.1f}ms"
    text += f" id={fields['request_id']}"
    if error is not None:
        text += f" {error[0]}: {error[1]}"
    access_log.log(level, text, extra=fields)


__all__ = ["REQUEST_ID_HEADER", "create_app"]
