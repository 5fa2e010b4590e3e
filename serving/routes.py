"""HTTP endpoints: parse and check the request, call the runner, write the answer."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePosixPath
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from mlreg.errors import BackendUnavailable, PayloadTooLarge
from mlreg.serving import codecs, predict
from mlreg.serving.backends import Backend
from mlreg.serving.predict import Call, Notes
from mlreg.serving.prediction_log import Record
from mlreg.serving.settings import env_var
from mlreg.serving.state import Served, ServingState
from mlreg.uris import scheme_of
from mlreg.version import __version__
from mlreg.web.worker import BODY_KEY

bp = Blueprint("serving", __name__)

JSON = "application/json"
#: The setting a 413 names.
MAX_REQUEST_BYTES_VAR = env_var("max_request_bytes")


def state() -> ServingState:
    return current_app.extensions["mlreg"]


@contextmanager
def serving(protocol: str | None = None) -> Iterator[Served]:
    """The served version for this request: it answers the whole request even if a newer one
    is swapped in meanwhile, and its label goes into the response header and the metrics.

    A prediction route names its ``protocol``: the request may then be sampled for the
    prediction log (see :func:`run_call`)."""
    s = state()
    plog = s.prediction_log
    if protocol is not None and plog is not None and plog.sampled():
        g.log_protocol = protocol
    with s.serving(s.settings.timeout) as served:
        g.model_version = served.version
        g.model_name = served.backend.source.name
        yield served


def run_call(call: Call) -> Response:
    """Answer a prediction request through mlreg.serving.predict, on the served version's
    runner (its thread pool bounds the call by the timeout: 504), noting a sampled request's
    input and output for the prediction log."""
    s = state()
    with serving(call.route) as served:
        notes = Notes() if "log_protocol" in g else None
        try:
            answer = predict.answer(call, served, s.settings, served.runner.predict, notes)
        finally:
            if notes is not None:
                g.log_inputs, g.log_outputs = notes.inputs, notes.outputs
    return Response(
        answer.body,
        status=answer.status,
        content_type=answer.content_type,
        headers=answer.headers,
    )


def log_prediction(response: Response) -> Response:
    """After a sampled request: hand it to the prediction log (the writer does the rest)."""
    plog = state().prediction_log
    if plog is not None and "log_protocol" in g:
        plog.submit(
            Record(
                request_id=g.get("request_id", ""),
                model_name=g.get("model_name"),
                model_version=g.get("model_version", ""),
                protocol=g.log_protocol,
                status=response.status_code,
                seconds=time.perf_counter() - g.get("start", time.perf_counter()),
                inputs=g.get("log_inputs"),
                outputs=g.get("log_outputs"),
                error=g.get("error"),
            )
        )
    return response


def json_response(body: bytes, status: int = 200) -> Response:
    return Response(body, status=status, mimetype=JSON)


def read_body() -> bytes:
    """The request body, refusing bodies over MLREG_MAX_REQUEST_BYTES before reading them."""
    limit = state().max_request_bytes()
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge.body(length, limit, MAX_REQUEST_BYTES_VAR)
    body = request.environ.get(BODY_KEY)
    if body is not None:
        return body  # read by the HTTP worker (within the limit): no copy
    if length is None:
        # Chunked upload: read one byte past the limit straight from the server's stream
        # (werkzeug's limited stream would cut the body short without saying so).
        stream = request.environ["wsgi.input"]
        chunks, size = [], 0
        while size <= limit:
            chunk = stream.read(min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise PayloadTooLarge.body(None, limit, MAX_REQUEST_BYTES_VAR)
        return b"".join(chunks)
    try:
        return request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise PayloadTooLarge.body(None, limit, MAX_REQUEST_BYTES_VAR) from None


@bp.post("/invocations")
def invocations() -> Response:
    return run_call(Call("invocations", read_body(), request.headers.get("Content-Type", "")))


@bp.get("/ping")
def ping() -> Response:
    reason = state().unready_reason()
    if reason is not None:
        err = BackendUnavailable(reason)
        return json_response(orjson.dumps(err.to_dict()), err.status_code)
    return json_response(b'{"status":"ready"}')


@bp.get("/health")
def health() -> Response:
    return json_response(codecs.dumps({"status": "alive", "pid": os.getpid()}))


@bp.get("/version")
def version() -> Response:
    return json_response(codecs.dumps({"mlreg": __version__, "python": platform.python_version()}))


@bp.get("/metadata")
def metadata() -> Response:
    s = state()
    with s.serving(0) as served:
        doc = describe(served.backend)
    doc["follow"] = s.follow
    return json_response(codecs.dumps(doc))


@bp.get("/metrics")
def metrics() -> Response:
    m = state().metrics
    return Response(m.render(), mimetype=None, content_type=m.content_type)


def describe(backend: Backend) -> dict[str, Any]:
    """What /metadata says about the served model."""
    src = backend.source
    meta = backend.metadata
    example = backend.serving_input_example
    signature = backend.signature
    return {
        "name": src.name,
        "version": src.version,
        "stage": src.stage,
        "uri": public_uri(src.uri),
        "digest": src.digest,
        "run_id": meta.run_id,
        "model_uuid": meta.model_uuid,
        "flavors": sorted(meta.flavors),
        "signature": signature.to_json_dict() if signature is not None else None,
        "input_example": orjson.loads(example) if example is not None else None,
    }


def public_uri(uri: str) -> str:
    """A model URI as clients may see it: a registry URI as it is, a local directory by its
    name only (its absolute path says how the server's disk is laid out)."""
    if scheme_of(uri) in ("", "file"):
        return PurePosixPath(uri.rstrip("/")).name
    return uri


# --- TensorFlow Serving's REST API ------------------------------------------------------------


@bp.post("/v1/models/<name>:predict")
@bp.post("/v1/models/<name>/versions/<int:version>:predict")
def tfserving_predict(name: str, version: int | None = None) -> Response:
    content_type = request.headers.get("Content-Type", "")
    number = str(version) if version is not None else None
    return run_call(Call("tfserving", read_body(), content_type, name, number))


@bp.get("/v1/models/<name>")
@bp.get("/v1/models/<name>/versions/<int:version>")
def tfserving_status(name: str, version: int | None = None) -> Response:
    with state().serving(0) as served:
        backend = served.backend
    predict.check_tfserving(backend, state().settings, name, version)
    served = backend.source.version or 1
    return json_response(
        codecs.dumps(
            {
                "model_version_status": [
                    {
                        "version": str(served),
                        "state": "AVAILABLE",
                        "status": {"error_code": "OK", "error_message": ""},
                    }
                ]
            }
        )
    )


__all__ = ["bp", "describe"]
