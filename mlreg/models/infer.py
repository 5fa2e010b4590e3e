"""Infer a model signature from example inputs, outputs and params."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mlreg.errors import InvalidInput
from mlreg.models.signature import (
    ColSpec,
    ModelSignature,
    ParamSchema,
    ParamSpec,
    Schema,
    TensorSpec,
)

_NUMPY_TO_COLUMN = {
    "b": "boolean",
    "int8": "integer",
    "int16": "integer",
    "int32": "integer",
    "uint8": "integer",
    "uint16": "integer",
    "int64": "long",
    "uint32": "long",
    "float16": "float",
    "float32": "float",
    "float64": "double",
    "M": "datetime",
}


def infer_signature(
    model_input: Any, model_output: Any = None, params: Mapping[str, Any] | None = None
) -> ModelSignature:
    """Describe ``model_input`` (and optionally outputs and params) as a ModelSignature."""
    return ModelSignature(
        inputs=infer_schema(model_input, "model_input"),
        outputs=infer_schema(model_output, "model_output") if model_output is not None else None,
        params=infer_param_schema(params) if params else None,
    )


def infer_schema(data: Any, what: str = "data") -> Schema:
    """Tensor specs for arrays and dicts of arrays; column specs for frames and records."""
    if isinstance(data, pd.Series):
        data = data.to_frame()
    if isinstance(data, pd.DataFrame):
        return Schema([_col_spec(data[c], str(c)) for c in data.columns])
    if isinstance(data, np.ndarray):
        return Schema([_tensor_spec(data, None, what)])
    if isinstance(data, Mapping):
        if not data:
            raise InvalidInput(f"{what}: cannot infer a schema from an empty dict")
        arrays = {k: _array(v, f"{what}[{k!r}]") for k, v in data.items()}
        if all(a.ndim == 0 for a in arrays.values()):
            return infer_schema(pd.DataFrame([dict(data)]), what)
        return Schema([_tensor_spec(a, str(k), f"{what}[{k!r}]") for k, a in arrays.items()])
    if isinstance(data, list | tuple):
        if not data:
            raise InvalidInput(f"{what}: cannot infer a schema from an empty list")
        if all(isinstance(r, Mapping) for r in data):
            return infer_schema(pd.DataFrame.from_records(list(data)), what)
        if all(isinstance(v, str) for v in data):
            return Schema([ColSpec("string")])
        if all(isinstance(v, bytes) for v in data):
            return Schema([ColSpec("binary")])
        if all(isinstance(v, str | bytes) for v in data):
            raise InvalidInput(f"{what}: mixed value types (str and bytes); cannot infer a type")
        return Schema([_tensor_spec(_array(data, what), None, what)])
    raise InvalidInput(
        f"{what}: cannot infer a schema from {type(data).__name__}; expected a numpy array, "
        "a dict of arrays, a pandas DataFrame or a list"
    )


def _array(value: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except ValueError:
        raise InvalidInput(f"{what}: ragged nested list; rows must have equal lengths") from None
    if arr.dtype == object and any(isinstance(v, list | tuple | np.ndarray) for v in arr.ravel()):
        raise InvalidInput(f"{what}: ragged nested list; rows must have equal lengths")
    return arr


def _tensor_spec(arr: np.ndarray, name: str | None, what: str) -> TensorSpec:
    if arr.ndim == 0:
        raise InvalidInput(f"{what}: a scalar has no batch dimension; pass a list or an array")
    dtype = arr.dtype
    if dtype.kind == "O":
        values = arr.ravel()
        if all(isinstance(v, str) for v in values):
            dtype = np.dtype(str)
        elif all(isinstance(v, bytes) for v in values):
            dtype = np.dtype(bytes)
        else:
            raise InvalidInput(f"{what}: mixed value types; cannot infer a tensor dtype")
    return TensorSpec(dtype, (-1, *arr.shape[1:]), name)


def _col_spec(col: pd.Series, name: str) -> ColSpec:
    values = col.to_numpy()
    missing = bool(pd.isna(col).any())
    kind = values.dtype
    if kind.kind == "O":
        present = [v for v in values if not _is_missing(v)]
        if not present:
            raise InvalidInput(f"column {name!r}: every value is missing; cannot infer its type")
        if all(isinstance(v, str) for v in present):
            return ColSpec("string", name, required=not missing)
        if all(isinstance(v, bytes) for v in present):
            return ColSpec("binary", name, required=not missing)
        if all(isinstance(v, bool) for v in present):
            return ColSpec("boolean", name, required=not missing)
        if all(isinstance(v, int) for v in present):
            return ColSpec("long", name, required=not missing)
        if all(isinstance(v, int | float) for v in present):
            return ColSpec("double", name, required=not missing)
        raise InvalidInput(f"column {name!r}: mixed value types; cannot infer a column type")
    col_type = _NUMPY_TO_COLUMN.get(kind.name) or _NUMPY_TO_COLUMN.get(kind.kind)
    if col_type is None:
        raise InvalidInput(f"column {name!r}: unsupported dtype {kind.name}")
    return ColSpec(col_type, name, required=not missing)


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def infer_param_schema(params: Mapping[str, Any]) -> ParamSchema:
    """Types from the Python values: bool, int, float, str, or a list of one of them."""
    return ParamSchema([_param_spec(k, v) for k, v in params.items()])


def _param_type(value: Any) -> str | None:
    if isinstance(value, bool | np.bool_):
        return "boolean"
    if isinstance(value, int | np.integer):
        return "long"
    if isinstance(value, float | np.floating):
        return "double"
    if isinstance(value, str):
        return "string"
    return None


def _param_spec(name: str, value: Any) -> ParamSpec:
    if isinstance(value, list | tuple):
        types = {_param_type(v) for v in value}
        if len(types) == 1 and None not in types:
            plain = [v.item() if isinstance(v, np.generic) else v for v in value]
            return ParamSpec(name, types.pop(), plain, shape=(-1,))  # type: ignore[arg-type]
        raise InvalidInput(
            f"param {name!r}: a list param needs values of one type (bool, int, float or str)"
        )
    param_type = _param_type(value)
    if param_type is None:
        raise InvalidInput(
            f"param {name!r}: unsupported type {type(value).__name__}; "
            "expected bool, int, float, str or a list of those"
        )
    return ParamSpec(name, param_type, value.item() if isinstance(value, np.generic) else value)
