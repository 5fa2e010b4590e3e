"""The prediction routes without a web framework: which route, the content type and the body
in; the status, content type and body out.

``POST /invocations`` (MLflow's forms and CSV), ``POST /v1/models/{name}[/versions/{v}]:predict``
(TF Serving's REST) and ``POST /v2/models/{name}[/versions/{v}]/infer`` (the Open Inference
Protocol, JSON and binary). The Flask routes (mlreg.serving.routes, v2_routes) and the HTTP
worker's direct path (mlreg.serving.direct) both answer through :func:`answer`, so the payload
formats, the checks and the error texts are one implementation.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from werkzeug.http import parse_options_header

from mlreg.errors import InvalidInput, ModelNotFound
from mlreg.models.serving_export import DEFAULT_SIGNATURE, ServingExport
from mlreg.serving import codecs, v2
from mlreg.serving.backends import Backend, input_schema
from mlreg.serving.settings import ServingSettings
from mlreg.serving.state import Served

JSON = "application/json"
BINARY = "application/octet-stream"
#: The registry version that answered (absent for a model served from a directory).
MODEL_VERSION_HEADER = "X-Model-Version"
#: V2's binary tensor data extension: the length of the JSON part of a body.
HEADER_LENGTH = "Inference-Header-Content-Length"

#: What predicts: (data, params, shown the enforced data) -> the model's result.
Predict = Callable[[Any, "dict[str, Any] | None", "Callable[[Any], None] | None"], Any]


@dataclass(frozen=True)
class Call:
    """A prediction request, whatever carried it."""

    #: "invocations", "tfserving" or "v2".
    route: str
    body: bytes
    #: The Content-Type header as sent ("" when missing).
    content_type: str = ""
    #: From the URL: the model's name and version (TF Serving's and V2's routes).
    name: str | None = None
    version: str | None = None
    #: V2: the Inference-Header-Content-Length header, when sent.
    header_length: str | None = None


@dataclass
class Answer:
    body: bytes
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200


@dataclass
class Notes:
    """A sampled request's model input (as decoded, then as enforced) and output, for the
    prediction log."""

    inputs: Any = None
    outputs: Any = None

    def enforced(self, data: Any) -> None:
        self.inputs = data


#: The prediction routes as regular expressions over the path, for the direct path (the Flask
#: routes declare the same), with the rule each is counted under in the metrics.
ROUTES: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"/invocations"), "invocations", "/invocations"),
    (re.compile(r"/v1/models/(?P<name>[^/]+):predict"), "tfserving", "/v1/models/<name>:predict"),
    (
        re.compile(r"/v1/models/(?P<name>[^/]+)/versions/(?P<version>[0-9]+):predict"),
        "tfserving",
        "/v1/models/<name>/versions/<int:version>:predict",
    ),
    (re.compile(r"/v2/models/(?P<name>[^/]+)/infer"), "v2", "/v2/models/<name>/infer"),
    (
        re.compile(r"/v2/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)/infer"),
        "v2",
        "/v2/models/<name>/versions/<version>/infer",
    ),
]


def version_header(version: str) -> dict[str, str]:
    """The header naming the version that answered; none for a model from a directory."""
    return {MODEL_VERSION_HEADER: version} if version else {}


def match(path: str) -> tuple[str, str, dict[str, str]] | None:
    """(route, metrics rule, URL parameters) of a prediction path; None for any other."""
    for pattern, route, rule in ROUTES:
        found = pattern.fullmatch(path)
        if found is not None:
            return route, rule, found.groupdict()
    return None


def answer(
    call: Call,
    served: Served,
    settings: ServingSettings,
    predict: Predict,
    notes: Notes | None = None,
) -> Answer:
    """Decode, check, predict and encode one request; raises mlreg's errors (4xx, 5xx)."""
    if call.route == "invocations":
        return _invocations(call, served, predict, notes)
    if call.route == "tfserving":
        return _tfserving(call, served, settings, predict, notes)
    return _v2(call, served, settings, predict, notes)


def _predict(
    served: Served, data: Any, params: dict[str, Any] | None, predict: Predict, notes: Notes | None
) -> Any:
    codecs.check_tensor_names(data, served.tensor_names)
    if notes is None:
        return predict(data, params, None)
    notes.inputs = data
    notes.outputs = predict(data, params, notes.enforced)
    return notes.outputs


def _media(call: Call, allowed: frozenset[str]) -> str:
    mimetype, options = parse_options_header(call.content_type)
    return codecs.check_content_type(mimetype.lower(), options.get("charset"), allowed)


# --- MLflow's /invocations ----------------------------------------------------------------------


def _invocations(call: Call, served: Served, predict: Predict, notes: Notes | None) -> Answer:
    mimetype = _media(call, codecs.JSON_TYPES | codecs.CSV_TYPES)
    schema = input_schema(served.backend)
    if mimetype in codecs.CSV_TYPES:
        payload = codecs.decode_csv_payload(call.body, schema)
    else:
        payload = codecs.decode_invocations_body(call.body, schema, served.limits)
    result = _predict(served, payload.data, payload.params, predict, notes)
    return Answer(codecs.encode_predictions(result))


# --- TF Serving's REST predict ------------------------------------------------------------------


def tfserving_name(backend: Backend, settings: ServingSettings) -> str | None:
    """The servable name TF Serving's clients use (None: any name is taken)."""
    return settings.model_name or backend.source.name


def check_tfserving(
    backend: Backend, settings: ServingSettings, name: str, version: int | None
) -> None:
    served = tfserving_name(backend, settings)
    if served is not None and name != served:
        raise ModelNotFound(f"model '{name}' is not served here; this server serves '{served}'")
    number = backend.source.version
    if version is not None and number is not None and version != number:
        raise ModelNotFound(f"version {version} is not served here; this server serves {number}")


def _signature_name(backend: Backend) -> str:
    export = ServingExport.of(backend.metadata)
    return export.signature_name if export is not None else DEFAULT_SIGNATURE


def _tfserving(
    call: Call, served: Served, settings: ServingSettings, predict: Predict, notes: Notes | None
) -> Answer:
    backend = served.backend
    version = int(call.version) if call.version is not None else None
    check_tfserving(backend, settings, str(call.name), version)
    _media(call, codecs.JSON_TYPES)
    payload = codecs.decode_tfserving_body(
        call.body, input_schema(backend), _signature_name(backend), served.limits
    )
    result = _predict(served, payload.data, None, predict, notes)
    return Answer(codecs.encode_tfserving(result, row_form=payload.form == "instances"))


# --- the Open Inference Protocol (V2) -----------------------------------------------------------


def served_model(served: Served, settings: ServingSettings) -> v2.ServedModel:
    """The name and version V2 clients address this model by."""
    source = served.backend.source
    name = settings.model_name or source.name or source.path.name
    return v2.ServedModel(name, served.version)


def _v2(
    call: Call, served: Served, settings: ServingSettings, predict: Predict, notes: Notes | None
) -> Answer:
    model = served_model(served, settings)
    model.check(str(call.name), call.version)
    header, binary = _split(call)
    served.limits.check_json(header)
    decoded = v2.decode_json_request(header, binary)
    data, params = v2.model_input(decoded, served.backend)
    result = _predict(served, data, params, predict, notes)
    outputs = v2.output_tensors(result, served.backend, decoded.outputs)
    return v2_answer(decoded, outputs, model)


def _split(call: Call) -> tuple[bytes, bytes]:
    """The JSON part and the binary part of a V2 request."""
    raw, body = call.header_length, call.body
    if raw is None:
        return body, b""
    if not raw.strip().isdigit() or int(raw) > len(body):
        raise InvalidInput(
            f"{HEADER_LENGTH}: expected the length of the JSON part (at most the body's "
            f"{len(body)} bytes), got {raw!r}"
        )
    size = int(raw)
    return body[:size], body[size:]


def v2_answer(decoded: v2.InferRequest, outputs: list[v2.Tensor], model: v2.ServedModel) -> Answer:
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
            blob = raw_bytes(tensor.array)
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
        return Answer(header)
    return Answer(b"".join([header, *blobs]), BINARY, {HEADER_LENGTH: str(len(header))})


def raw_bytes(array: np.ndarray) -> bytes:
    """A tensor as the binary extension and gRPC's raw contents send it."""
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


__all__ = [
    "HEADER_LENGTH",
    "MODEL_VERSION_HEADER",
    "ROUTES",
    "Answer",
    "Call",
    "Notes",
    "Predict",
    "answer",
    "check_tfserving",
    "match",
    "raw_bytes",
    "served_model",
    "tfserving_name",
    "v2_answer",
    "version_header",
]
