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

import numpy as np
import orjson
from flask import Blueprint, Response, request

from mlreg.errors import BackendUnavailable, InvalidInput
from mlreg.serving import v2
from mlreg.serving.routes import predict, read_body, serving, state
from mlreg.serving.settings import ServingSettings
from mlreg.serving.state import Served
from mlreg.version import __version__

bp = Blueprint("v2", __name__)

HEADER_LENGTH = "Inference-Header-Content-Length"
JSON = "application/json"
BINARY = "application/octet-stream"
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
    with serving("v2") as served:
        model = served_model(served, state().settings)
        model.check(name, version)
        body = read_body()
        header, binary = _split(body)
        served.limits.check_json(header)
        decoded = v2.decode_json_request(header, binary)
        data, params = v2.model_input(decoded, served.backend)
        result = predict(served, data, params)
        outputs = v2.output_tensors(result, served.backend, decoded.outputs)
    return answer(decoded, outputs, model)


def _split(body: bytes) -> tuple[bytes, bytes]:
    """The JSON part and the binary part of a request."""
    raw = request.headers.get(HEADER_LENGTH)
    if raw is None:
        return body, b""
    if not raw.strip().isdigit() or int(raw) > len(body):
        raise InvalidInput(
            f"{HEADER_LENGTH}: expected the length of the JSON part (at most the body's "
            f"{len(body)} bytes), got {raw!r}"
        )
    size = int(raw)
    return body[:size], body[size:]


def served_model(served: Served, settings: ServingSettings) -> v2.ServedModel:
    """The name and version V2 clients address this model by."""
    source = served.backend.source
    name = settings.model_name or source.name or source.path.name
    return v2.ServedModel(name, served.version)


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


def answer(decoded: v2.InferRequest, outputs: list[v2.Tensor], model: v2.ServedModel) -> Response:
    """The V2 response: JSON, with binary outputs after it when asked for."""
    binary_names = {o.name for o in decoded.outputs or [] if o.binary}
    described, blobs = [], []
    for tensor in outputs:
        entry: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": list(tensor.shape),
        }
        if decoded.binary_output or tensor.name in binary_names:
            blob = _raw(tensor.array)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = _flat(tensor.array)
        described.append(entry)
    doc: dict[str, Any] = {"model_name": model.name, "model_version": model.version}
    if decoded.id is not None:
        doc["id"] = decoded.id
    doc["outputs"] = described
    header = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return Response(header, mimetype=JSON)
    response = Response(b"".join([header, *blobs]), mimetype=BINARY)
    response.headers[HEADER_LENGTH] = str(len(header))
    return response


def _raw(array: np.ndarray) -> bytes:
    if array.dtype.kind in "USO":
        return v2.pack_bytes(array)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def _flat(array: np.ndarray) -> Any:
    if array.dtype.kind in "USO":
        return [
            v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
            for v in array.reshape(-1)
        ]
    if array.dtype == np.float16:
        array = array.astype(np.float32)
    return np.ascontiguousarray(array).reshape(-1)


__all__ = ["HEADER_LENGTH", "bp"]
