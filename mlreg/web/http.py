"""Request ids, access logs and JSON errors for a Flask app: installed once by each app factory.

Every error leaves as ``{"error_code", "message"}`` with the status its class carries
(``mlreg.errors``); werkzeug's own HTTP errors are mapped onto those classes; anything
unexpected is a 500 whose body names the request id and whose traceback goes to the log.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
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
from mlreg.web.metrics import HttpMetrics

REQUEST_ID_HEADER = "X-Request-ID"
JSON = "application/json"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpConfig:
    """How an app logs and limits requests."""

    #: The logger of the one-line-per-request access log.
    access_logger: str
    #: Largest request body, and the setting that changes it (named in the 413 message).
    max_request_bytes: int
    max_request_setting: str
    #: Paths logged at DEBUG, not INFO (probes and scrapes; they are counted in metrics).
    quiet_paths: Collection[str] = frozenset()
    #: Requests by endpoint and status, latency, requests in flight.
    metrics: HttpMetrics | None = None
    #: Extra fields for an error body, from the path and the message (TF Serving's clients
    #: read "error").
    error_fields: Callable[[str, str], dict[str, Any]] = field(default=lambda path, message: {})
    #: An error as a page for people (status, error code, message), or None for the JSON body:
    #: a web UI answers its own requests (and browsers lost on its paths) with HTML.
    error_page: Callable[[int, str, str], Response | None] | None = None


def json_response(body: bytes, status: int = 200) -> Response:
    return Response(body, status=status, mimetype=JSON)


def error_response(status: int, error_code: str, message: str, config: HttpConfig) -> Response:
    g.error = (error_code, message)
    if config.error_page is not None:
        page = config.error_page(status, error_code, message)
        if page is not None:
            return page
    doc: dict[str, Any] = {"error_code": error_code, "message": message}
    doc.update(config.error_fields(request.path, message))
    response = json_response(orjson.dumps(doc), status)
    if status == 413:
        # The unread rest of the body would otherwise have to be drained to reuse the
        # connection; closing it is cheaper.
        response.headers["Connection"] = "close"
    return response


def as_error(e: http.HTTPException, config: HttpConfig) -> MlregError | None:
    """werkzeug's HTTP error (routing, body limit) as the class of ours that carries its code;
    None for a status none of our classes stands for."""
    if isinstance(e, http.NotFound):
        return EndpointNotFound(f"no endpoint {request.path}")
    if isinstance(e, http.MethodNotAllowed):
        allowed = ", ".join(sorted(e.valid_methods or []))
        message = f"method {request.method} is not allowed on {request.path}"
        return MethodNotAllowed(message + (f"; allowed: {allowed}" if allowed else ""))
    if isinstance(e, http.RequestEntityTooLarge):
        return PayloadTooLarge.body(None, config.max_request_bytes, config.max_request_setting)
    if isinstance(e, http.UnsupportedMediaType):
        return UnsupportedMediaType(e.description or e.name)
    if isinstance(e, http.BadRequest):
        return InvalidInput(e.description or e.name)
    return None


def printable(value: str) -> str:
    """``value`` with control characters escaped, so a logged field cannot forge a line."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", value)


def install(app: Flask, config: HttpConfig) -> None:
    """Add request ids, access logs, metrics callbacks and JSON error handlers to ``app``."""
    access_log = logging.getLogger(config.access_logger)
    metrics = config.metrics

    @app.before_request
    def _start() -> None:
        g.start = time.perf_counter()
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _VALID_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        if metrics is not None:
            metrics.in_flight.inc()
            g.counted = True

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
        response.headers["X-Content-Type-Options"] = "nosniff"
        start = g.get("start")
        elapsed = time.perf_counter() - start if start is not None else 0.0
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        if metrics is not None:
            metrics.observe(rule, request.method, response.status_code, elapsed)
        _log_request(access_log, config, response.status_code, elapsed)
        return response

    @app.teardown_request
    def _teardown(_exc: BaseException | None) -> None:
        if metrics is not None and g.pop("counted", False):
            metrics.in_flight.dec()

    @app.errorhandler(MlregError)
    def _mlreg_error(e: MlregError) -> Response:
        return error_response(e.status_code, e.error_code, e.message, config)

    @app.errorhandler(http.HTTPException)
    def _http_error(e: http.HTTPException) -> Response:
        error = as_error(e, config)
        if error is None:  # a status werkzeug raises that none of our classes stands for
            return error_response(e.code or 500, "HTTP_ERROR", e.description or e.name, config)
        return error_response(error.status_code, error.error_code, error.message, config)

    @app.errorhandler(Exception)
    def _unexpected(e: Exception) -> Response:
        # The traceback goes to the log, never into the body.
        logger.exception("unexpected error", extra={"request_id": g.get("request_id")})
        message = f"internal server error ({type(e).__name__}); request id {g.get('request_id')}"
        return error_response(500, "INTERNAL_ERROR", message, config)


def _log_request(
    access_log: logging.Logger, config: HttpConfig, status: int, elapsed: float
) -> None:
    if request.path in config.quiet_paths:
        level = logging.DEBUG  # probes and scrapes: counted in the metrics, not logged
    elif status >= 500:
        level = logging.WARNING if status == 503 else logging.ERROR
    else:
        level = logging.INFO
    if not access_log.isEnabledFor(level):
        return
    error = g.get("error")
    path = printable(request.path)
    fields: dict[str, Any] = {
        "request_id": g.get("request_id"),
        "method": printable(request.method),
        "path": path,
        "status": status,
        "duration_ms": round(elapsed * 1000, 3),
        "remote_addr": request.remote_addr,
    }
    user = g.get("user")
    if user is not None:
        fields["user"] = user
    if error is not None:
        fields["error_code"], fields["error_message"] = error[0], printable(error[1])
    text = f"{fields['method']} {path} {status} {fields['duration_ms']:.1f}ms"
    text += f" id={fields['request_id']}"
    if error is not None:
        text += f" {error[0]}: {fields['error_message']}"
    access_log.log(level, text, extra=fields)
