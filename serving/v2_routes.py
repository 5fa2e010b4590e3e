"""The Open Inference Protocol (V2) over REST, with the binary tensor data extension.

``GET /v2/health/live``, ``/v2/health/ready``, ``/v2``, ``/v2/models/{name}[/versions/{v}]``
(metadata) and ``.../ready``; ``POST /v2/models/{name}[/versions/{v}]/infer``. A body whose
``Inference-Header-Content-Length`` header is N holds N bytes of JSON and then the raw bytes
of every input whose ``parameters.binary_data_size`` says so, in order; outputs asked for
with ``binary_data`` (or every output, with ``binary_data_output``) come back the same way.
Errors are ``{"error": ...}`` as the protocol says, next to mlreg's ``error_code`` and
``message``.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Response, request

from mlreg.errors import BackendUnavailable
from mlreg.serving import v2
from mlreg.serving.predict import HEADER_LENGTH, Call, served_model
from mlreg.serving.routes import read_body, run_call, state
from mlreg.serving.state import Served
from mlreg.version import __version__

bp = Blueprint("v2", __name__)

JSON = "application/json"
EXTENSIONS = ["binary_tensor_data"]


def _json(doc: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(doc), status=status, mimetype=JSON)


@bp.get("/v2/health/live")
def live() -> Response:
    return _json({"live": True})


@bp.get("/v2/health/ready")
def ready() -> Response:
    reason = state().unready_reason()
    if reason is not None:
        raise BackendUnavailable(reason)
    return _json({"ready": True})


@bp.get("/v2")
def server_metadata() -> Response:
    return _json({"name": "mlreg", "version": __version__, "extensions": EXTENSIONS})


@bp.get("/v2/models/<name>")
@bp.get("/v2/models/<name>/versions/<version>")
def model_metadata(name: str, version: str | None = None) -> Response:
    with state().serving(0) as served:
        model = served_model(served, state().settings)
        model.check(name, version)
        return _json(describe(served, model))


@bp.get("/v2/models/<name>/ready")
@bp.get("/v2/models/<name>/versions/<version>/ready")
def model_ready(name: str, version: str | None = None) -> Response:
    s = state()
    reason = s.unready_reason()
    served = s.current
    if served is not None:
        served_model(served, s.settings).check(name, version)
    if reason is not None:
        raise BackendUnavailable(reason)
    return _json({"name": name, "ready": True})


@bp.post("/v2/models/<name>/infer")
@bp.post("/v2/models/<name>/versions/<version>/infer")
def infer(name: str, version: str | None = None) -> Response:
    content_type = request.headers.get("Content-Type", "")
    length = request.headers.get(HEADER_LENGTH)
    return run_call(Call("v2", read_body(), content_type, name, version, length))


def describe(served: Served, model: v2.ServedModel) -> dict[str, Any]:
    backend = served.backend
    signature = backend.signature
    outputs = signature.outputs if signature is not None else None
    return {
        "name": model.name,
        "versions": [model.version] if model.version else [],
        "platform": "mlreg_tensorflow",
        "inputs": v2.tensor_metadata(
            signature.inputs if signature is not None else None, served.tensor_names
        ),
        "outputs": v2.tensor_metadata(outputs, v2.output_names(backend)),
    }


__all__ = ["EXTENSIONS", "bp", "describe"]
