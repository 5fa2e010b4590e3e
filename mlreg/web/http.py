"""Request ids, access logs and JSON errors for a Flask app: installed once by each app factory.

Every error leaves as ``{"error_code", "message"}`` with the status its class carries
(``mlreg.errors``); werkzeug's own HTTP errors are mapped onto those classes; anything
unexpected is a 500 whose body names the request id and whose traceback goes to the log.
"""

from __future__ import annotations

import logging
import re
import time
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
from mlreg.web.request_ids import REQUEST_ID_HEADER, request_id
from mlreg.web.worker import Refusal

JSON = "application/json"
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

    #: Values of the metrics' extra labels (HttpMetrics.labels) for the current request.
    metric_labels: Callable[[], tuple[str, ...]] = field(default=lambda: ())
    #: Headers every response gets, from the current request (the served model version).
    response_headers: Callable[[], dict[str, str]] = field(default=lambda: {})


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
        g.request_id = request_id(request.headers.get(REQUEST_ID_HEADER))
        if metrics is not None:
            gauge = metrics.in_flight_of(*config.metric_labels())
            gauge.inc()
            g.in_flight = gauge

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers.update(config.response_headers())
        start = g.get("start")
        elapsed = time.perf_counter() - start if start is not None else 0.0
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        if metrics is not None:
            labels = config.metric_labels()
            metrics.observe(rule, request.method, response.status_code, elapsed, *labels)
        _log_request(access_log, config, response.status_code, elapsed)
        return response

    @app.teardown_request
    def _teardown(_exc: BaseException | None) -> None:
        gauge = g.pop("in_flight", None)
        if gauge is not None:
            gauge.dec()

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
    error = g.get("error")
    log_access(
        access_log,
        config,
        method=request.method,
        path=request.path,
        status=status,
        seconds=elapsed,
        request_id=g.get("request_id"),
        remote_addr=request.remote_addr,
        error=error,
        extra={"user": g.get("user")} if g.get("user") is not None else None,
    )


def log_access(
    access_log: logging.Logger,
    config: HttpConfig,
    *,
    method: str,
    path: str,
    status: int,
    seconds: float,
    request_id: str | None,
    remote_addr: str | None,
    error: tuple[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write one access-log line (text, or the fields as JSON): a request the app answered, or
    one the HTTP worker answered itself."""
    if path in config.quiet_paths:
        level = logging.DEBUG  # probes and scrapes: counted in the metrics, not logged
    elif status >= 500:
        level = logging.WARNING if status == 503 else logging.ERROR
    else:
        level = logging.INFO
    if not access_log.isEnabledFor(level):
        return
    path = printable(path)
    fields: dict[str, Any] = {
        "request_id": request_id,
        "method": printable(method),
        "path": path,
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
        "remote_addr": remote_addr,
        **(extra or {}),
    }
    if error is not None:
        fields["error_code"], fields["error_message"] = error[0], printable(error[1])
    text = f"{fields['method']} {path} {status} {fields['duration_ms']:.1f}ms"
    text += f" id={fields['request_id']}"
    if error is not None:
        text += f" {error[0]}: {fields['error_message']}"
    access_log.log(level, text, extra=fields)


def refusal_reporter(app: Flask, config: HttpConfig) -> Callable[[Refusal], None]:
    """What the HTTP worker calls for a request it answered itself (408, 413, a client that
    hung up): an access-log line and the metrics, under the endpoint the path would have hit."""
    access_log = logging.getLogger(config.access_logger)
    adapter = app.url_map.bind("localhost")

    def report(refusal: Refusal) -> None:
        if config.metrics is not None:
            try:
                rule, _ = adapter.match(refusal.path, method=refusal.method, return_rule=True)
                endpoint = rule.rule
            except http.HTTPException:
                endpoint = "unmatched"
            config.metrics.observe(
                endpoint, refusal.method, refusal.status, refusal.seconds, *config.metric_labels()
            )
        log_access(
            access_log,
            config,
            method=refusal.method,
            path=refusal.path,
            status=refusal.status,
            seconds=refusal.seconds,
            request_id=refusal.request_id,
            remote_addr=refusal.remote_addr,
            error=(refusal.error_code, refusal.message),
        )

    return report
