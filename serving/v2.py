"""The Open Inference Protocol (V2: KServe, Triton, Seldon MLServer, OpenVINO), without transport.

A request is a list of typed tensors (``name``, ``datatype``, ``shape``, data) and optional
requested outputs; the answer is a list of typed tensors. This module turns a request into
the model's input (the same signature enforcement as ``/invocations`` follows) and a
prediction into output tensors; ``v2_routes`` speaks it over REST (JSON, and the binary tensor
data extension), ``v2_grpc`` over gRPC.

Names: a model's tensor inputs are named by its signature, or, for one unnamed tensor, by its
SavedModel signature (mlreg.serving.backends.tensor_names); a column signature's columns are
inputs of shape ``[n]`` or ``[n, 1]``. Outputs are named likewise.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import simdjson

from mlreg.errors import InvalidInput, ModelNotFound, SchemaError
from mlreg.models.serving_export import ServingExport
from mlreg.models.signature import ColSpec, ModelSignature, Schema, TensorSpec
from mlreg.serving.backends import Backend, tensor_names
from mlreg.serving.codecs import as_tensors

#: V2 datatype -> numpy dtype (little-endian, as the binary extension sends them).
DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(bool),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
_BY_KIND = {dt.str.lstrip("<|>"): name for name, dt in DATATYPES.items() if name != "BYTES"}
_COLUMN_DATATYPES = {
    "boolean": "BOOL",
    "integer": "INT32",
    "long": "INT64",
    "float": "FP32",
    "double": "FP64",
    "string": "BYTES",
    "binary": "BYTES",
    "datetime": "BYTES",
}
#: Request parameters that belong to the protocol, not to the model's params.
PROTOCOL_PARAMETERS = frozenset(
    ["binary_data_output", "binary_data", "binary_data_size", "content_type", "headers"]
)
MAX_RANK = 32
_local = threading.local()
#: A request's fields; KServe's SDK also sends model_name (and model_version), which the URL
#: already says: tolerated, like KServe's own server does.
_REQUEST_FIELDS = frozenset(
    ["id", "parameters", "inputs", "outputs", "model_name", "model_version"]
)


def datatype_of(dtype: np.dtype) -> str:
    """The V2 datatype of a numpy dtype (strings, bytes and objects are BYTES)."""
    if dtype.kind in "USO":
        return "BYTES"
    name = _BY_KIND.get(dtype.newbyteorder("<").str.lstrip("<|>"))
    if name is None:
        raise InvalidInput(f"no V2 datatype for numpy dtype {dtype}")
    return name


@dataclass(frozen=True)
class Tensor:
    """One input or output tensor."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    array: np.ndarray
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool = False


@dataclass(frozen=True)
class InferRequest:
    """A decoded V2 inference request."""

    inputs: list[Tensor]
    outputs: list[RequestedOutput] | None = None
    id: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def binary_output(self) -> bool:
        return bool(self.parameters.get("binary_data_output", False))


# --- tensors from their parts -------------------------------------------------------------------


def tensor_from_data(name: str, datatype: str, shape: Sequence[Any], data: Any) -> Tensor:
    """A tensor from JSON data (a flat or nested list, or numbers already in an array)."""
    dtype, dims = _header(name, datatype, shape)
    if isinstance(data, np.ndarray):
        array = data
    else:
        try:
            array = np.asarray(data, dtype=object if datatype == "BYTES" else None)
        except ValueError:
            raise InvalidInput(f"input '{name}': 'data' is a ragged nested list") from None
        if datatype == "BYTES":
            array = np.asarray([_text(v, name) for v in array.reshape(-1)], dtype=object)
    return Tensor(name, datatype, dims, _cast(array.reshape(-1), dtype, dims, name))


def tensor_from_bytes(name: str, datatype: str, shape: Sequence[Any], raw: bytes) -> Tensor:
    """A tensor from the binary tensor data extension (or gRPC's ``raw_input_contents``)."""
    dtype, dims = _header(name, datatype, shape)
    count = int(np.prod(dims))
    if datatype == "BYTES":
        values = _unpack_bytes(raw, name)
        array = np.asarray(values, dtype=object)
    else:
        if len(raw) != count * dtype.itemsize:
            raise InvalidInput(
                f"input '{name}': shape {list(dims)} of {datatype} needs {count * dtype.itemsize} "
                f"bytes, got {len(raw)}"
            )
        array = np.frombuffer(raw, dtype=dtype)
    return Tensor(name, datatype, dims, _check_count(array, dims, name))


def _header(name: Any, datatype: Any, shape: Any) -> tuple[np.dtype, tuple[int, ...]]:
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"input name: expected a string, got {name!r}")
    if datatype not in DATATYPES:
        raise InvalidInput(
            f"input '{name}': unsupported datatype {datatype!r}; expected one of "
            f"{', '.join(DATATYPES)}"
        )
    if (
        not isinstance(shape, list | tuple)
        or len(shape) > MAX_RANK
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise InvalidInput(
            f"input '{name}': 'shape' must be a list of at most {MAX_RANK} integers >= 0, "
            f"got {shape!r}"
        )
    return DATATYPES[datatype], tuple(int(d) for d in shape)


def _cast(flat: np.ndarray, dtype: np.dtype, dims: tuple[int, ...], name: str) -> np.ndarray:
    if dtype.kind != "O":
        if flat.dtype.kind in "USO":
            raise InvalidInput(f"input '{name}': {_datatype_name(dtype)} data must be numbers")
        if dtype.kind == "b" and flat.dtype.kind != "b":
            raise InvalidInput(f"input '{name}': BOOL data must be true or false")
        if dtype.kind in "iu" and flat.dtype.kind == "f":
            whole = np.isfinite(flat) & (flat == np.trunc(flat))
            if not whole.all():
                raise InvalidInput(
                    f"input '{name}': {_datatype_name(dtype)} data must be whole numbers, got "
                    f"{flat[~whole][0].item()!r}"
                )
        if flat.dtype.kind == "b" and dtype.kind != "b":
            raise InvalidInput(f"input '{name}': {_datatype_name(dtype)} data must be numbers")
        if dtype.kind in "iu" and flat.size:
            info = np.iinfo(dtype)
            if flat.min() < info.min or flat.max() > info.max:
                raise InvalidInput(
                    f"input '{name}': values outside the range of {_datatype_name(dtype)}"
                )
        with np.errstate(over="ignore", invalid="ignore"):
            flat = flat.astype(dtype, copy=False)
    return _check_count(flat, dims, name)


def _datatype_name(dtype: np.dtype) -> str:
    return datatype_of(dtype)


def _check_count(flat: np.ndarray, dims: tuple[int, ...], name: str) -> np.ndarray:
    count = int(np.prod(dims))
    if flat.size != count:
        raise InvalidInput(
            f"input '{name}': shape {list(dims)} holds {count} values, 'data' has {flat.size}"
        )
    return flat.reshape(dims)


def _text(value: Any, name: str) -> Any:
    if isinstance(value, str | bytes):
        return value
    raise InvalidInput(f"input '{name}': BYTES data must be strings, got {value!r}")


def _unpack_bytes(raw: bytes, name: str) -> list[bytes]:
    """BYTES in the binary extension: each element as a 4-byte little-endian length + bytes."""
    values, pos = [], 0
    while pos < len(raw):
        if pos + 4 > len(raw):
            raise InvalidInput(f"input '{name}': BYTES data ends inside an element's length")
        (size,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if pos + size > len(raw):
            raise InvalidInput(f"input '{name}': BYTES element of {size} bytes runs past the data")
        values.append(raw[pos : pos + size])
        pos += size
    return values


def pack_bytes(array: np.ndarray) -> bytes:
    """BYTES as the binary extension sends them."""
    parts = []
    for value in array.reshape(-1):
        data = value.encode() if isinstance(value, str) else bytes(value)
        parts.append(struct.pack("<I", len(data)) + data)
    return b"".join(parts)


# --- requests as JSON (REST) --------------------------------------------------------------------


def decode_json_request(header: bytes, binary: bytes = b"") -> InferRequest:
    """A REST request: the JSON part, and the binary part that follows it (binary extension).

    Numbers go straight from the JSON bytes into arrays (simdjson): no Python object per number.
    """
    try:
        doc = _parse(header)
    except ValueError as e:
        raise InvalidInput(f"malformed JSON: {e}") from None
    if not isinstance(doc, simdjson.Object):
        raise InvalidInput("expected a JSON object with 'inputs'")
    unknown = [k for k in doc.keys() if k not in _REQUEST_FIELDS]  # noqa: SIM118
    if unknown:
        raise InvalidInput(
            f"unknown field {', '.join(map(repr, unknown))}; expected 'inputs' and optionally "
            "'id', 'parameters', 'outputs'"
        )
    inputs = doc.get("inputs")
    if not isinstance(inputs, simdjson.Array) or len(inputs) == 0:
        raise InvalidInput("'inputs': expected a non-empty list of tensors")
    parameters = _mapping(doc.get("parameters"), "parameters")
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput(f"'id': expected a string, got {request_id!r}")
    tensors, offset = [], 0
    for i, item in enumerate(inputs):
        tensor, offset = _json_tensor(item, i, binary, offset)
        tensors.append(tensor)
    if offset != len(binary):
        raise InvalidInput(
            f"the request has {len(binary) - offset} bytes of binary data no input claims "
            "(binary_data_size)"
        )
    return InferRequest(tensors, _requested(doc.get("outputs")), request_id, parameters)


def _parse(header: bytes) -> Any:
    # A new Parser per request was 4% of a one-image request's time (py-spy): reuse this
    # thread's, unless a document it made is still alive (then simdjson refuses the reuse).
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = simdjson.Parser()
    try:
        return parser.parse(header)
    except RuntimeError:
        return simdjson.Parser().parse(header)


def _json_tensor(item: Any, index: int, binary: bytes, offset: int) -> tuple[Tensor, int]:
    where = f"inputs[{index}]"
    if not isinstance(item, simdjson.Object):
        raise InvalidInput(f"{where}: expected an object with 'name', 'shape', 'datatype'")
    missing = [k for k in ("name", "shape", "datatype") if k not in item]
    if missing:
        raise InvalidInput(f"{where}: missing {', '.join(map(repr, missing))}")
    name, datatype = item["name"], item["datatype"]
    shape = item["shape"]
    shape = shape.as_list() if isinstance(shape, simdjson.Array) else shape
    parameters = _mapping(item.get("parameters"), f"{where}.parameters")
    size = parameters.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size < 0 or offset + size > len(binary):
            raise InvalidInput(
                f"input '{name}': binary_data_size {size!r} does not fit the "
                f"{len(binary) - offset} bytes of binary data left"
            )
        raw = binary[offset : offset + size]
        return tensor_from_bytes(name, datatype, shape, raw), offset + size
    if "data" not in item:
        raise InvalidInput(f"input '{name}': no 'data' and no binary_data_size")
    data = item["data"]
    if isinstance(data, simdjson.Array):
        data = _array(data, datatype, name)
    elif not isinstance(data, list):
        data = [data]
    return tensor_from_data(name, datatype, shape, data), offset


def _array(data: simdjson.Array, datatype: str, name: str) -> Any:
    """JSON data as numbers in an array when they are numbers, else as a list."""
    if datatype not in ("BYTES", "BOOL"):
        kind = "d" if datatype.startswith("FP") else ("u" if datatype.startswith("U") else "i")
        try:
            return np.frombuffer(
                data.as_buffer(of_type=kind),
                dtype={"d": np.float64, "i": np.int64, "u": np.uint64}[kind],
            )
        except (TypeError, ValueError):
            pass  # floats in integer data, or not numbers: the general path says what
    values = data.as_list()
    if datatype != "BYTES" and _depth(values) > MAX_RANK:
        raise InvalidInput(f"input '{name}': 'data' is nested more than {MAX_RANK} levels deep")
    return values


def _depth(value: Any) -> int:
    depth = 0
    while isinstance(value, list) and value:
        depth += 1
        value = value[0]
    return depth


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, simdjson.Object):
        return value.as_dict()
    if isinstance(value, dict):
        return value
    raise InvalidInput(f"'{where}': expected an object, got {value!r}")


def _requested(outputs: Any) -> list[RequestedOutput] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, simdjson.Array):
        raise InvalidInput("'outputs': expected a list of {\"name\": ...}")
    requested = []
    for i, item in enumerate(outputs):
        if not isinstance(item, simdjson.Object) or not isinstance(item.get("name"), str):
            raise InvalidInput(f"outputs[{i}]: expected an object with a 'name'")
        parameters = _mapping(item.get("parameters"), f"outputs[{i}].parameters")
        requested.append(RequestedOutput(item["name"], bool(parameters.get("binary_data"))))
    return requested


# --- the model's side ---------------------------------------------------------------------------


def model_input(request: InferRequest, backend: Backend) -> tuple[Any, dict[str, Any] | None]:
    """The model input and params a V2 request names, ready for signature enforcement."""
    signature = backend.signature
    names = [t.name for t in request.inputs]
    duplicate = sorted({n for n in names if names.count(n) > 1})
    if duplicate:
        raise InvalidInput(f"input {', '.join(map(repr, duplicate))} given more than once")
    expected = input_names(signature, backend)
    extra = [n for n in names if expected is not None and n not in expected]
    if extra:
        raise SchemaError(
            f"unexpected input {', '.join(map(repr, extra))}; expected inputs: "
            f"{', '.join(map(repr, expected or []))}"
        )
    arrays = {t.name: t.array for t in request.inputs}
    if signature is not None and not signature.inputs.is_tensor_spec():
        data: Any = _columns(arrays)
    elif signature is not None and not signature.inputs.has_input_names():
        data = next(iter(arrays.values())) if len(arrays) == 1 else arrays
    else:
        data = arrays
    params = None
    if signature is not None and signature.params is not None:
        known = {p.name for p in signature.params.params}
        params = {k: v for k, v in request.parameters.items() if k in known} or None
    return data, params


def _columns(arrays: Mapping[str, np.ndarray]) -> pd.DataFrame:
    columns = {}
    for name, array in arrays.items():
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise SchemaError(
                f"input '{name}': a column is a tensor of shape [n] or [n, 1], got "
                f"{list(array.shape)}"
            )
        columns[name] = array
    lengths = {len(a) for a in columns.values()}
    if len(lengths) > 1:
        raise SchemaError(f"columns have different lengths: {sorted(lengths)}")
    return pd.DataFrame(columns)


def input_names(signature: ModelSignature | None, backend: Backend) -> list[str] | None:
    """The input names a V2 request may use; None when any will do (no signature)."""
    if signature is None:
        return None
    if signature.inputs.is_tensor_spec():
        return tensor_names(backend)
    return [s.name if s.name is not None else str(i) for i, s in enumerate(signature.inputs.inputs)]


def output_names(backend: Backend) -> list[str]:
    """The names of the model's outputs, as a V2 answer gives them."""
    signature = backend.signature
    outputs = signature.outputs if signature is not None else None
    if outputs is not None and outputs.has_input_names():
        return outputs.input_names()
    export = ServingExport.of(backend.metadata)
    if export is not None and export.outputs:
        return list(export.outputs)
    count = len(outputs.inputs) if outputs is not None else 1
    return [f"output_{i}" for i in range(count)]


def output_tensors(
    result: Any, backend: Backend, requested: list[RequestedOutput] | None
) -> list[Tensor]:
    """A prediction as V2 output tensors, only those ``requested`` (all when None)."""
    tensors = as_tensors(result)
    if isinstance(tensors, Mapping):
        named = {str(k): np.asarray(v) for k, v in tensors.items()}
    elif isinstance(tensors, pd.DataFrame):
        named = {str(c): tensors[c].to_numpy() for c in tensors.columns}
    else:
        names = output_names(backend)
        named = {names[0] if len(names) == 1 else "output_0": np.asarray(tensors)}
    if requested is not None:
        unknown = [r.name for r in requested if r.name not in named]
        if unknown:
            raise InvalidInput(
                f"unknown output {', '.join(map(repr, unknown))}; the model's outputs: "
                f"{', '.join(map(repr, named))}"
            )
        named = {r.name: named[r.name] for r in requested}
    return [Tensor(n, datatype_of(a.dtype), tuple(a.shape), a) for n, a in named.items()]


# --- model metadata -----------------------------------------------------------------------------


def tensor_metadata(schema: Schema | None, names: list[str] | None) -> list[dict[str, Any]]:
    """V2 model metadata for a schema's tensors or columns."""
    if schema is None:
        return []
    described = []
    for i, spec in enumerate(schema.inputs):
        if isinstance(spec, TensorSpec):
            name = spec.name or (names[i] if names and i < len(names) else f"input_{i}")
            datatype = datatype_of(spec.dtype)
            shape = list(spec.shape)
        else:
            assert isinstance(spec, ColSpec)
            name = spec.name or str(i)
            datatype = _COLUMN_DATATYPES[spec.type]
            shape = [-1]
        described.append({"name": name, "datatype": datatype, "shape": shape})
    return described


class ServedModel:
    """The name and version clients address, checked against a request's URL."""

    def __init__(self, name: str, version: str) -> None:
        self.name = name
        self.version = version

    def check(self, name: str, version: str | None) -> None:
        if name != self.name:
            raise ModelNotFound(
                f"model '{name}' is not served here; this server serves '{self.name}'"
            )
        if version is not None and version != self.version:
            served = self.version or "no version (a model directory)"
            raise ModelNotFound(
                f"version {version} of '{name}' is not served here; this server serves {served}"
            )


__all__ = [
    "DATATYPES",
    "InferRequest",
    "RequestedOutput",
    "ServedModel",
    "Tensor",
    "datatype_of",
    "decode_json_request",
    "input_names",
    "model_input",
    "output_names",
    "output_tensors",
    "pack_bytes",
    "tensor_from_bytes",
    "tensor_from_data",
    "tensor_metadata",
]
