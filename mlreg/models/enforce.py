"""Signature enforcement: check data against a schema and convert it only when nothing is lost.

Every failure is a :class:`SchemaError` whose message names the input, what was
expected and what came, e.g. ``input 'x': expected shape (-1, 28, 28, 3), got (1, 3)``.

Conversion rules (stricter than MLflow, which silently truncates ``1.5`` into an int):

- integers and booleans go into float tensors/columns when every value survives the trip;
- floats go into integer tensors only when every value is a whole number in range;
- a float64 goes into a float32 (JSON has only one number type) unless it overflows;
- strings never go into numbers, numbers never into strings.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mlreg.errors import SchemaError
from mlreg.models.signature import (
    COLUMN_TYPES,
    ColSpec,
    ParamSchema,
    ParamSpec,
    Schema,
    TensorSpec,
    format_shape,
)

logger = logging.getLogger(__name__)

TensorData = np.ndarray | dict[str, np.ndarray]


def enforce_schema(data: Any, schema: Schema) -> TensorData | pd.DataFrame:
    """Return ``data`` converted to what ``schema`` describes, or raise SchemaError."""
    if schema.is_tensor_spec():
        return _enforce_tensors(data, schema)
    return _enforce_columns(data, schema)


# --- tensors -----------------------------------------------------------------------------


def _label(spec: TensorSpec | ColSpec, kind: str = "input") -> str:
    return f"{kind} '{spec.name}'" if spec.name is not None else kind


def _enforce_tensors(data: Any, schema: Schema) -> TensorData:
    specs: tuple[TensorSpec, ...] = schema.inputs  # type: ignore[assignment]
    if not schema.has_input_names():
        spec = specs[0]
        if isinstance(data, Mapping):
            if len(data) != 1:
                raise SchemaError(
                    f"input: expected a single {spec.describe()}, got named inputs "
                    f"{', '.join(map(repr, data))}"
                )
            data = next(iter(data.values()))
        elif isinstance(data, pd.DataFrame) and len(data.columns) == 1:
            column = data.iloc[:, 0]
            if column.dtype == object:  # cells that are arrays: one row of the tensor each
                data = _column_tensor(column, f"input {str(data.columns[0])!r}")
        return enforce_tensor(data, spec)

    if isinstance(data, pd.DataFrame):
        data = {str(c): _column_tensor(data[c], f"input {str(c)!r}") for c in data.columns}
    if not isinstance(data, Mapping):
        if len(specs) == 1:
            return {specs[0].name: enforce_tensor(data, specs[0])}  # type: ignore[dict-item]
        raise SchemaError(
            f"expected named inputs {', '.join(repr(s.name) for s in specs)} "
            f"(a dict of tensors), got {type(data).__name__}"
        )
    expected = [s.name for s in specs]
    missing = [n for n in expected if n not in data]
    if missing:
        raise SchemaError(
            f"missing input {', '.join(map(repr, missing))}; expected inputs: "
            f"{', '.join(map(repr, expected))}"
        )
    extra = [k for k in data if k not in expected]
    if extra:
        raise SchemaError(
            f"unexpected input {', '.join(map(repr, extra))}; expected inputs: "
            f"{', '.join(map(repr, expected))}"
        )
    out = {s.name: enforce_tensor(data[s.name], s) for s in specs}
    rows = {len(v) for v in out.values() if v.ndim}
    if len(rows) > 1:
        raise SchemaError(f"inputs have different batch sizes: {sorted(rows)}")
    return out  # type: ignore[return-value]


def _column_tensor(column: pd.Series, label: str) -> np.ndarray:
    """A DataFrame column as a tensor: cells that are arrays (``dataframe_records`` rows of
    ``{"x": [1, 2, 3]}``) stack into one row each."""
    values = column.to_numpy()
    if values.dtype != object or not any(isinstance(v, list | tuple | np.ndarray) for v in values):
        return values
    try:
        stacked = np.asarray(values.tolist())
    except ValueError:
        stacked = None
    if stacked is None or stacked.dtype == object:
        shapes = sorted({np.shape(v) for v in values}, key=str)[:3]
        described = ", ".join(format_shape(s) if s else "()" for s in shapes)
        raise SchemaError(
            f"{label}: each row's cell must be an array of the same shape, got shapes {described}"
        )
    return stacked


def enforce_tensor(value: Any, spec: TensorSpec) -> np.ndarray:
    """Check one tensor's dtype and shape and convert it losslessly."""
    label = _label(spec)
    arr = _as_array(value, label)
    arr = _convert_dtype(arr, spec.dtype, label)
    _check_shape(arr.shape, spec.shape, label)
    return arr


def _as_array(value: Any, label: str) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, pd.Series | pd.DataFrame):
        return value.to_numpy()
    try:
        arr = np.asarray(value)
    except ValueError:
        raise SchemaError(
            f"{label}: ragged nested list (rows of different lengths); expected a rectangular "
            "tensor"
        ) from None
    if arr.dtype == object and _is_ragged(value):
        raise SchemaError(
            f"{label}: ragged nested list (rows of different lengths); expected a rectangular "
            "tensor"
        )
    return arr


def _is_ragged(value: Any) -> bool:
    if not isinstance(value, list | tuple) or not value:
        return False
    first = value[0]
    if isinstance(first, list | tuple):
        return any(
            not isinstance(v, list | tuple) or len(v) != len(first) or _is_ragged(v) for v in value
        ) or _is_ragged(first)
    return any(isinstance(v, list | tuple) for v in value)


def _check_shape(actual: tuple[int, ...], expected: tuple[int, ...], label: str) -> None:
    ok = len(actual) == len(expected) and all(
        e == -1 or a == e for a, e in zip(actual, expected, strict=True)
    )
    if not ok:
        raise SchemaError(
            f"{label}: expected shape {format_shape(expected)}, got {format_shape(actual)}"
        )
    if actual and actual[0] == 0 and expected and expected[0] == -1:
        raise SchemaError(f"{label}: empty batch (0 rows); send at least one row")


def _convert_dtype(arr: np.ndarray, target: np.dtype, label: str) -> np.ndarray:
    """Return ``arr`` as ``target`` when no value changes, else raise SchemaError."""
    src = arr.dtype
    if src == target:
        return arr
    want = _dtype_words(target)
    if src.kind == "O":
        arr = _from_objects(arr, target, label)
        src = arr.dtype
        if src == target:
            return arr
    if target.kind in "USO":
        if src.kind in "USO":
            return arr.astype(target)
        raise SchemaError(f"{label}: expected {want}, got {_dtype_words(src)}")
    if src.kind in "USO":
        raise SchemaError(f"{label}: expected {want}, got strings")
    if target.kind == "f":
        if src.kind == "f":
            with np.errstate(over="ignore"):
                out = arr.astype(target)
            if np.any(np.isinf(out) & ~np.isinf(arr)):
                raise SchemaError(f"{label}: expected {want}, got values that overflow it")
            return out
        if src.kind in "iub":
            out = arr.astype(target)
            if src.kind != "b" and not np.array_equal(out.astype(src), arr):
                raise SchemaError(
                    f"{label}: expected {want}, got {_dtype_words(src)} values too large to "
                    "represent exactly"
                )
            return out
    if target.kind in "iu":
        if src.kind == "b":
            return arr.astype(target)
        if src.kind == "f":
            if not np.all(np.isfinite(arr)):
                raise SchemaError(f"{label}: expected {want}, got NaN or Infinity")
            bad = arr[arr != np.trunc(arr)]
            if bad.size:
                raise SchemaError(
                    f"{label}: expected {want}, got {_dtype_words(src)} values that are not "
                    f"whole numbers (e.g. {bad.flat[0].item()!r})"
                )
        if src.kind in "iuf":
            info = np.iinfo(target)
            if arr.size and (arr.min() < info.min or arr.max() > info.max):
                raise SchemaError(
                    f"{label}: expected {want}, got values outside [{info.min}, {info.max}]"
                )
            return arr.astype(target)
    if target.kind == "b" and src.kind == "b":
        return arr.astype(target)
    raise SchemaError(f"{label}: expected {want}, got {_dtype_words(src)}")


def _from_objects(arr: np.ndarray, target: np.dtype, label: str) -> np.ndarray:
    """Turn an object array (mixed JSON values) into a typed one, naming what does not fit."""
    flat = arr.ravel()
    if target.kind in "USO":
        if all(isinstance(v, str | bytes) for v in flat):
            return arr.astype(target)
        raise SchemaError(f"{label}: expected {_dtype_words(target)}, got non-string values")
    if any(isinstance(v, str | bytes) for v in flat):
        raise SchemaError(f"{label}: expected {_dtype_words(target)}, got strings")
    if any(v is None for v in flat):
        raise SchemaError(f"{label}: expected {_dtype_words(target)}, got null values")
    if any(isinstance(v, list | tuple | dict) for v in flat):
        raise SchemaError(f"{label}: ragged nested list; expected a rectangular tensor")
    try:
        return np.asarray(flat.tolist()).reshape(arr.shape)
    except (TypeError, ValueError):
        raise SchemaError(f"{label}: expected {_dtype_words(target)}, got mixed values") from None


def _dtype_words(dtype: np.dtype) -> str:
    if dtype.kind == "U":
        return "str"
    if dtype.kind == "S":
        return "bytes"
    if dtype.kind == "O":
        return "object"
    return dtype.name


# --- columns -----------------------------------------------------------------------------


def _to_frame(data: Any, schema: Schema) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    if isinstance(data, Mapping):
        try:
            if all(np.ndim(v) == 0 for v in data.values()):
                return pd.DataFrame([dict(data)])
            return pd.DataFrame(dict(data))
        except ValueError as e:
            raise SchemaError(f"columns have different lengths: {e}") from None
    if isinstance(data, list) and data and all(isinstance(r, Mapping) for r in data):
        return pd.DataFrame.from_records(data)
    arr = np.asarray(data, dtype=object) if isinstance(data, list) else data
    if isinstance(arr, np.ndarray):
        if arr.ndim == 1:
            arr = arr.reshape(-1, 1) if len(schema.inputs) == 1 else arr.reshape(1, -1)
        if arr.ndim != 2:
            raise SchemaError(f"expected a table of columns, got a {arr.ndim}-d array")
        if arr.shape[1] != len(schema.inputs):
            raise SchemaError(
                f"expected {len(schema.inputs)} columns, got {arr.shape[1]}"
                + (
                    f" (expected columns: {', '.join(schema.input_names())})"
                    if schema.has_input_names()
                    else ""
                )
            )
        names = schema.input_names() if schema.has_input_names() else list(range(arr.shape[1]))
        return pd.DataFrame(arr, columns=names)
    raise SchemaError(
        f"expected a DataFrame, a dict of columns or records, got {type(data).__name__}"
    )


def _enforce_columns(data: Any, schema: Schema) -> pd.DataFrame:
    specs: tuple[ColSpec, ...] = schema.inputs  # type: ignore[assignment]
    df = _to_frame(data, schema)
    if len(df) == 0:
        raise SchemaError("empty batch (0 rows); send at least one row")
    if not schema.has_input_names():
        if df.shape[1] != len(specs):
            raise SchemaError(f"expected {len(specs)} columns, got {df.shape[1]}")
        return pd.DataFrame(
            {i: _enforce_column(df.iloc[:, i], s, f"column {i}") for i, s in enumerate(specs)}
        )
    columns = {str(c): c for c in df.columns}
    expected = [s.name for s in specs]
    missing = [s.name for s in specs if s.required and s.name not in columns]
    if missing:
        raise SchemaError(
            f"missing required column {', '.join(map(repr, missing))}; expected columns: "
            f"{', '.join(map(repr, expected))}"
        )
    extra = [c for c in columns if c not in expected]
    if extra:
        logger.warning("dropping columns not in the model signature: %s", ", ".join(extra))
    out = {}
    for s in specs:
        if s.name in columns:
            out[s.name] = _enforce_column(df[columns[s.name]], s, f"column '{s.name}'")
        else:
            out[s.name] = pd.Series([None] * len(df), dtype=_column_dtype(s.type), index=df.index)
    return pd.DataFrame(out, index=df.index)


def _column_dtype(type_name: str) -> Any:
    if type_name in ("integer", "long", "boolean"):
        return object  # optional and missing: ints and bools cannot hold None
    return COLUMN_TYPES[type_name]


def _enforce_column(col: pd.Series, spec: ColSpec, label: str) -> pd.Series:
    values = col.to_numpy()
    nulls = pd.isna(col).to_numpy() if values.dtype == object else None
    if nulls is not None and nulls.any():
        if spec.required:
            raise SchemaError(f"{label}: missing values in a required {spec.type} column")
        return col
    if spec.type in ("string", "binary"):
        kinds = (str,) if spec.type == "string" else (bytes,)
        if not all(isinstance(v, kinds) for v in values):
            raise SchemaError(f"{label}: expected {spec.type}, got {_dtype_words(values.dtype)}")
        return col.astype(object)
    if spec.type == "datetime":
        try:
            return pd.to_datetime(col)
        except (ValueError, TypeError):
            raise SchemaError(f"{label}: expected datetime values") from None
    if spec.type == "boolean":
        if values.dtype == bool or (
            values.dtype == object and all(isinstance(v, bool) for v in values)
        ):
            return col.astype(bool)
        raise SchemaError(f"{label}: expected boolean, got {_dtype_words(values.dtype)}")
    if values.dtype.kind == "b":
        raise SchemaError(f"{label}: expected {spec.type}, got boolean")
    target = COLUMN_TYPES[spec.type]
    converted = _convert_dtype(values, target, label).astype(target, copy=False)
    return pd.Series(converted, index=col.index, name=col.name)


# --- params ------------------------------------------------------------------------------

_PARAM_CHECKS: dict[str, Any] = {
    "boolean": lambda v: isinstance(v, bool | np.bool_),
    "integer": lambda v: isinstance(v, int | np.integer) and not isinstance(v, bool),
    "long": lambda v: isinstance(v, int | np.integer) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float | np.number) and not isinstance(v, bool),
    "double": lambda v: isinstance(v, int | float | np.number) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "datetime": lambda v: isinstance(v, str | np.datetime64 | pd.Timestamp),
}


def enforce_params(params: Mapping[str, Any] | None, schema: ParamSchema | None) -> dict[str, Any]:
    """Apply defaults, reject unknown params and check each value's type and shape."""
    params = dict(params or {})
    if schema is None:
        if params:
            raise SchemaError(
                f"unknown param {', '.join(map(repr, params))}: this model takes no params"
            )
        return {}
    known = {p.name: p for p in schema.params}
    unknown = [k for k in params if k not in known]
    if unknown:
        raise SchemaError(
            f"unknown param {', '.join(map(repr, unknown))}; expected one of: "
            f"{', '.join(map(repr, known))}"
        )
    return {
        name: _enforce_param(params.get(name, spec.default), spec) for name, spec in known.items()
    }


def _enforce_param(value: Any, spec: ParamSpec) -> Any:
    if value is None:
        return None
    check = _PARAM_CHECKS[spec.dtype]
    if spec.shape is None:
        if not check(value):
            raise SchemaError(
                f"param '{spec.name}': expected {spec.dtype}, got {type(value).__name__} {value!r}"
            )
        if spec.dtype in ("float", "double"):
            return float(value)
        return value
    if not isinstance(value, list | tuple | np.ndarray) or not all(check(v) for v in value):
        raise SchemaError(f"param '{spec.name}': expected a list of {spec.dtype}, got {value!r}")
    return list(value)


__all__ = ["enforce_params", "enforce_schema", "enforce_tensor"]
