"""Request bodies → model input (numpy or pandas, per the signature) and predictions → JSON bytes.

MLflow's ``/invocations`` forms are JSON objects with exactly one of ``dataframe_split``,
``dataframe_records``, ``instances`` or ``inputs`` (plus optional ``params``), or a CSV
table; TF Serving's REST predict takes ``instances`` or ``inputs`` (and a ``signature_name``).
Tensor data stays as parsed lists here; signature enforcement turns it into typed numpy
arrays in one ``np.asarray`` per input, so the tensor path never touches pandas.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pandas as pd

from mlreg.errors import InvalidInput, SchemaError, UnsupportedMediaType
from mlreg.models.signature import Schema, TensorSpec
from mlreg.serving.limits import Limits
from mlreg.serving.tensor_json import tensor_document

PAYLOAD_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
#: TF Serving's REST predict: rows (``instances``) or columns (``inputs``).
TFSERVING_KEYS = ("instances", "inputs")
JSON_TYPES = frozenset(["application/json"])
CSV_TYPES = frozenset(["text/csv"])
#: numpy refuses more than 64 dimensions; no model takes anything near this many.
MAX_TENSOR_RANK = 32

_DUMP_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_NON_FINITE = re.compile(rb"(?<![\"\w])-?(?:NaN|Infinity)(?![\"\w])")


@dataclass(frozen=True)
class Payload:
    """A decoded request: the model input, the params, and which form it came in."""

    data: Any
    params: dict[str, Any] | None
    form: str


# --- content type and JSON ----------------------------------------------------------------


def check_content_type(mimetype: str, charset: str | None, allowed: frozenset[str]) -> str:
    """Return the media type if it is one we read, else raise UnsupportedMediaType (415)."""
    expected = " or ".join(sorted(allowed))
    if not mimetype:
        raise UnsupportedMediaType(f"missing Content-Type header; expected {expected}")
    if mimetype not in allowed:
        raise UnsupportedMediaType(f"unsupported Content-Type '{mimetype}'; expected {expected}")
    if charset is not None and charset.lower().replace("-", "") != "utf8":
        raise UnsupportedMediaType(
            f"unsupported charset '{charset}' in Content-Type; send the body as UTF-8"
        )
    return mimetype


def decode_json(body: bytes) -> Any:
    """Parse a JSON body with orjson, with errors that say what is wrong and where."""
    if not body.strip():
        raise InvalidInput("empty request body; expected a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        msg = str(e)
    if "recursion limit" in msg.lower() or "depth limit" in msg.lower():
        raise InvalidInput("malformed JSON: nested too deeply (more than 1024 levels)")
    if "utf-8" in msg.lower():
        raise InvalidInput(f"malformed JSON: the body is not valid UTF-8 ({msg})")
    if _NON_FINITE.search(body):
        # NaN and Infinity are not JSON, but Python clients (and MLflow's server) use them;
        # accept them here and let the signature decide whether the dtype can hold them.
        return _decode_non_finite(body)
    raise InvalidInput(f"malformed JSON: {msg}")


def _decode_non_finite(body: bytes) -> Any:
    try:
        return json.loads(body)
    except RecursionError:
        raise InvalidInput("malformed JSON: nested too deeply") from None
    except ValueError as e:
        raise InvalidInput(f"malformed JSON: {e}") from None


def decode_csv(body: bytes) -> pd.DataFrame:
    """Read a CSV table with a header row."""
    if not body.strip():
        raise SchemaError("empty batch: the CSV body has no rows; send a header and rows")
    try:
        df = pd.read_csv(io.BytesIO(body), encoding="utf-8")
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise InvalidInput(f"malformed CSV: {str(e).strip()}") from None
    if len(df) == 0:
        first = body.lstrip().splitlines()[0][:80].decode("utf-8", errors="replace")
        if all(_is_number(c) for c in df.columns):
            # One line of numbers is a row without its header, not a header without rows.
            raise SchemaError(
                f"the CSV body has no header row: its first line ({first}) holds values; send "
                "a header line naming the columns, then the rows"
            )
        raise SchemaError("empty batch: the CSV body has a header but no rows")
    return df


def _is_number(text: object) -> bool:
    try:
        float(str(text))
    except ValueError:
        return False
    return True


# --- MLflow /invocations --------------------------------------------------------------------


def decode_invocations_body(body: bytes, schema: Schema | None, limits: Limits) -> Payload:
    """An ``/invocations`` JSON body as model input: a lone numeric tensor straight to numpy,
    anything else parsed (after the body's lists were counted against ``limits``)."""
    fast = _lone_tensor(body, schema, PAYLOAD_KEYS[2:])
    if fast is not None:
        return fast
    limits.check_json(body)
    return decode_invocations(decode_json(body), schema)


def _lone_tensor(body: bytes, schema: Schema | None, keys: tuple[str, ...]) -> Payload | None:
    """``{"inputs": <tensor>}`` (or ``instances``) for a model with one tensor input, read
    without a Python object per number (mlreg.serving.tensor_json); None otherwise."""
    if schema is None or len(schema.inputs) != 1 or not isinstance(schema.inputs[0], TensorSpec):
        return None
    for key in keys:
        tensor = tensor_document(body, key, schema.inputs[0])
        if tensor is not None:
            return Payload(tensor, None, key)
    return None


def decode_invocations(doc: Any, schema: Schema | None) -> Payload:
    """Turn a parsed ``/invocations`` JSON document into model input and params."""
    if not isinstance(doc, dict):
        raise InvalidInput(
            f"expected a JSON object with one of {_keys_text()}, got a JSON {_json_type(doc)}"
        )
    keys = [k for k in PAYLOAD_KEYS if k in doc]
    unknown = [k for k in doc if k not in PAYLOAD_KEYS and k != "params"]
    if unknown:
        raise InvalidInput(
            f"unknown field {', '.join(map(repr, unknown))}; expected exactly one of "
            f"{_keys_text()}, and optionally 'params'"
        )
    if len(keys) != 1:
        got = "none" if not keys else ", ".join(map(repr, keys))
        raise InvalidInput(f"expected exactly one of {_keys_text()}, got {got}")
    form = keys[0]
    params = decode_params(doc.get("params"))
    value = doc[form]
    if form == "dataframe_split":
        data: Any = _dataframe_split(value)
    elif form == "dataframe_records":
        data = _dataframe_records(value)
    elif form == "instances":
        data = decode_instances(value)
    else:
        data = decode_inputs(value)
    check_column_names(data, schema, form)
    return Payload(data, params, form)


def decode_csv_payload(body: bytes, schema: Schema | None) -> Payload:
    """Turn a CSV ``/invocations`` body into model input."""
    frame = decode_csv(body)
    check_column_names(frame, schema, "csv")
    return Payload(frame, None, "csv")


# --- TF Serving's REST predict --------------------------------------------------------------


def decode_tfserving_body(
    body: bytes, schema: Schema | None, signature_name: str, limits: Limits
) -> Payload:
    """A TF Serving predict body as model input (see :func:`decode_invocations_body`)."""
    fast = _lone_tensor(body, schema, TFSERVING_KEYS)
    if fast is not None:
        return fast
    limits.check_json(body)
    return decode_tfserving(decode_json(body), schema, signature_name)


def decode_tfserving(doc: Any, schema: Schema | None, signature_name: str) -> Payload:
    """Turn a parsed TF Serving predict body into model input; ``form`` says how to answer.

    ``signature_name`` is the one the model serves; a body naming another is refused.
    """
    if not isinstance(doc, dict):
        raise InvalidInput(
            f"expected a JSON object with 'instances' or 'inputs', got a JSON {_json_type(doc)}"
        )
    unknown = [k for k in doc if k not in (*TFSERVING_KEYS, "signature_name")]
    keys = [k for k in TFSERVING_KEYS if k in doc]
    if unknown or len(keys) != 1:
        what = (
            f"unknown field {', '.join(map(repr, unknown))}"
            if unknown
            else ("got " + (" and ".join(map(repr, keys)) or "neither"))
        )
        raise InvalidInput(
            f"expected exactly one of 'instances' or 'inputs' (and optionally "
            f"'signature_name'); {what}"
        )
    asked = doc.get("signature_name")
    if asked is not None and asked != signature_name:
        raise InvalidInput(
            f"signature_name {asked!r} not found; this model serves {signature_name!r}"
        )
    form = keys[0]
    data = decode_instances(doc[form]) if form == "instances" else decode_inputs(doc[form])
    check_column_names(data, schema, form)
    return Payload(data, None, form)


def decode_params(params: Any) -> dict[str, Any] | None:
    if params is None:
        return None
    if not isinstance(params, dict):
        raise InvalidInput(f"'params': expected a JSON object, got a JSON {_json_type(params)}")
    return params


def decode_instances(value: Any) -> Any:
    """Rows: tensors, or dicts of named values (TF Serving's row form) turned into columns."""
    if not isinstance(value, list):
        raise InvalidInput(f"'instances': expected a list of rows, got a JSON {_json_type(value)}")
    if not value:
        raise SchemaError("empty batch: 'instances' has no rows; send at least one")
    if not isinstance(value[0], dict):
        _check_rank(value, "instances")
        return value
    names = list(value[0])
    columns: dict[str, list[Any]] = {n: [] for n in names}
    for i, row in enumerate(value):
        if not isinstance(row, dict):
            raise InvalidInput(
                f"'instances'[{i}]: expected an object like the first row, got a JSON "
                f"{_json_type(row)}"
            )
        if row.keys() != columns.keys():
            missing = [n for n in names if n not in row]
            extra = [n for n in row if n not in columns]
            what = f"missing {missing}" if missing else f"unexpected {extra}"
            raise InvalidInput(f"'instances'[{i}]: {what}; every row needs the keys {names}")
        for n in names:
            columns[n].append(row[n])
    for n, col in columns.items():
        _check_rank(col, f"instances '{n}'")
    return columns


def decode_inputs(value: Any) -> Any:
    """Columnar: one tensor (a nested list) or a dict of named tensors."""
    if isinstance(value, dict):
        if not value:
            raise SchemaError("empty batch: 'inputs' is an empty object; send named tensors")
        for name, tensor in value.items():
            _check_rank(tensor, f"inputs '{name}'")
        return value
    if isinstance(value, list):
        if not value:
            raise SchemaError("empty batch: 'inputs' has no rows; send at least one")
        _check_rank(value, "inputs")
        return value
    raise InvalidInput(
        f"'inputs': expected a list (a tensor) or an object of named tensors, got a JSON "
        f"{_json_type(value)}"
    )


def _dataframe_split(value: Any) -> pd.DataFrame:
    if not isinstance(value, dict):
        raise InvalidInput(
            "'dataframe_split': expected an object with 'columns' and 'data', got a JSON "
            f"{_json_type(value)}"
        )
    unknown = [k for k in value if k not in ("columns", "data", "index")]
    if unknown:
        raise InvalidInput(
            f"'dataframe_split': unknown field {', '.join(map(repr, unknown))}; expected "
            "'columns', 'data' and optionally 'index'"
        )
    data = value.get("data")
    if not isinstance(data, list):
        raise InvalidInput("'dataframe_split.data': expected a list of rows")
    if not data:
        raise SchemaError("empty batch: 'dataframe_split.data' has no rows; send at least one")
    columns = value.get("columns")
    if columns is not None and not isinstance(columns, list):
        raise InvalidInput("'dataframe_split.columns': expected a list of column names")
    width = len(columns) if columns is not None else None
    for i, row in enumerate(data):
        if not isinstance(row, list):
            row = [row]
        if width is None:
            width = len(row)
        if len(row) != width:
            raise SchemaError(
                f"'dataframe_split.data'[{i}]: expected {width} values (one per column), "
                f"got {len(row)}"
            )
    try:
        return pd.DataFrame(data, columns=columns, index=value.get("index"))
    except (ValueError, TypeError) as e:
        raise SchemaError(f"'dataframe_split': cannot build a table: {e}") from None


def _dataframe_records(value: Any) -> pd.DataFrame:
    if not isinstance(value, list):
        raise InvalidInput(
            f"'dataframe_records': expected a list of objects, got a JSON {_json_type(value)}"
        )
    if not value:
        raise SchemaError("empty batch: 'dataframe_records' has no rows; send at least one")
    for i, row in enumerate(value):
        if not isinstance(row, dict):
            raise InvalidInput(
                f"'dataframe_records'[{i}]: expected an object of column values, got a JSON "
                f"{_json_type(row)}"
            )
    return pd.DataFrame.from_records(value)


def check_column_names(data: Any, schema: Schema | None, form: str) -> None:
    """Refuse columns a column signature does not name (MLflow drops them silently)."""
    if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
        return
    if isinstance(data, pd.DataFrame):
        names = [str(c) for c in data.columns]
    elif isinstance(data, Mapping):
        names = [str(k) for k in data]
    else:
        return
    expected = schema.input_names()
    extra = [n for n in names if n not in expected]
    if extra:
        raise SchemaError(
            f"unexpected column {', '.join(map(repr, extra))} in '{form}'; expected columns: "
            f"{', '.join(map(repr, expected))}"
        )


def check_tensor_names(data: Any, names: list[str] | None) -> None:
    """Refuse named tensors the model does not have. A model with one unnamed input used to
    take ``{"inputs": {"any_name": [...]}}``; its input has a name (``names``), and a misspelt
    one is a mistake worth a 400 (MLflow refuses it too)."""
    if names is None or not isinstance(data, Mapping):
        return
    extra = [k for k in data if k not in names]
    if extra:
        raise SchemaError(
            f"unexpected input {', '.join(map(repr, extra))}; expected inputs: "
            f"{', '.join(map(repr, names))}"
        )


def _check_rank(value: Any, label: str) -> None:
    # Follow the first element down: O(depth), and enough to stop a 1000-deep list before
    # numpy fails on it with a message about something else.
    depth = 0
    while isinstance(value, list) and value:
        depth += 1
        if depth > MAX_TENSOR_RANK:
            raise SchemaError(
                f"{label}: nested more than {MAX_TENSOR_RANK} levels deep; expected a tensor of "
                f"at most {MAX_TENSOR_RANK} dimensions"
            )
        value = value[0]


def _keys_text() -> str:
    return ", ".join(f"'{k}'" for k in PAYLOAD_KEYS)


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


# --- predictions → JSON ---------------------------------------------------------------------


def jsonable(result: Any) -> Any:
    """Make a prediction something orjson writes without Python loops over elements."""
    if isinstance(result, np.ndarray):
        if result.dtype.kind in "OUSMm":
            return result.tolist()
        if result.dtype == np.float16:
            return result.astype(np.float32)
        return result if result.flags.c_contiguous else np.ascontiguousarray(result)
    if isinstance(result, pd.DataFrame):
        return result.to_dict(orient="records")
    if isinstance(result, pd.Series):
        return jsonable(result.to_numpy())
    if isinstance(result, Mapping):
        return {k: jsonable(v) for k, v in result.items()}
    if isinstance(result, list | tuple):
        return [jsonable(v) for v in result]
    return result


def _default(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return obj.decode("utf-8", errors="replace")
    if isinstance(obj, np.ndarray):
        return jsonable(obj)
    if isinstance(obj, pd.Timestamp | np.datetime64):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def dumps(doc: Any) -> bytes:
    """Write a response document."""
    return orjson.dumps(doc, default=_default, option=_DUMP_OPTS)


def encode_predictions(result: Any) -> bytes:
    """``{"predictions": ...}`` as MLflow writes it."""
    return dumps({"predictions": jsonable(result)})


def as_tensors(result: Any) -> Any:
    """A prediction as a tensor or a dict of named tensors (for TF Serving's answers)."""
    if isinstance(result, pd.DataFrame):
        if all(result[c].dtype.kind in "biuf" for c in result.columns):
            return result.to_numpy()
        return {str(c): np.asarray(result[c].tolist()) for c in result.columns}
    if isinstance(result, pd.Series):
        return result.to_numpy()
    return result


def encode_tfserving(result: Any, row_form: bool) -> bytes:
    """TF Serving's answer: ``predictions`` (row form) or ``outputs`` (columnar form)."""
    tensors = as_tensors(result)
    if not row_form:
        return dumps({"outputs": jsonable(tensors)})
    if isinstance(tensors, Mapping):
        named = {k: jsonable(np.asarray(v)) for k, v in tensors.items()}
        rows = len(next(iter(named.values()))) if named else 0
        return dumps({"predictions": [{k: v[i] for k, v in named.items()} for i in range(rows)]})
    return dumps({"predictions": jsonable(tensors)})


__all__ = [
    "CSV_TYPES",
    "JSON_TYPES",
    "PAYLOAD_KEYS",
    "TFSERVING_KEYS",
    "Payload",
    "as_tensors",
    "check_column_names",
    "check_content_type",
    "check_tensor_names",
    "decode_csv",
    "decode_csv_payload",
    "decode_inputs",
    "decode_instances",
    "decode_invocations",
    "decode_invocations_body",
    "decode_json",
    "decode_params",
    "decode_tfserving",
    "decode_tfserving_body",
    "dumps",
    "encode_predictions",
    "encode_tfserving",
    "jsonable",
]
