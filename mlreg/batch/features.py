"""Arrow tables of rows → the model's input, and the model's output → Arrow columns.

How a row holds the model's input:

- a column signature: one column per input, by name (positionally for unnamed columns);
- a tensor input: one list column whose cells are the row's tensor, either nested to the
  tensor's shape (``[[[r, g, b], ...], ...]`` for 28x28x3) or flat (2352 values, reshaped in
  C order), as Parquet lists/fixed-size lists or JSON arrays (also as JSON text in a CSV
  cell); or, for a tensor of one dimension per row, one scalar column per element;
- several named tensor inputs: one column per input name.

The data is only gathered here; :meth:`PyFuncModel.enforce` then checks it with the exact
rules and messages of the server. Tensors go from Arrow buffers to numpy without a Python
object per row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlreg.batch.formats import is_json_field
from mlreg.errors import InvalidInput, SchemaError
from mlreg.models.signature import ModelSignature, TensorSpec


class Feeder:
    """Decide once which columns feed which input, then gather them batch by batch."""

    def __init__(
        self, signature: ModelSignature | None, fields: pa.Schema, columns: list[str] | None
    ) -> None:
        self.signature = signature
        available = list(fields.names)
        missing = [c for c in columns or [] if c not in available]
        if missing:
            raise InvalidInput(
                f"--columns names {', '.join(map(repr, missing))}, which the input does not "
                f"have; its columns: {', '.join(map(repr, available))}"
            )
        schema = signature.inputs if signature is not None else None
        self.tensors: list[TensorSpec] | None = None
        if schema is None:
            self.columns = columns or available
        elif schema.is_tensor_spec():
            self.tensors = list(schema.inputs)  # type: ignore[arg-type]
            if schema.has_input_names():
                names = schema.input_names()
                self.columns = columns or [n for n in names if n in available]
                absent = [n for n in names if n not in self.columns]
                if absent and not columns:
                    raise SchemaError(
                        f"missing input {', '.join(map(repr, absent))}; expected inputs: "
                        f"{', '.join(map(repr, names))} (one column each)"
                    )
                if len(self.columns) != len(names):
                    raise SchemaError(
                        f"expected {len(names)} columns, one per input "
                        f"({', '.join(map(repr, names))}), got {len(self.columns)}"
                    )
            else:
                # One tensor: the input's one list (or raw bytes) column, next to ids and
                # such; failing that, every column is an element of a one-dimensional row.
                tensors = [f.name for f in fields if _is_listish(f.type) or _is_binary(f.type)]
                self.columns = columns or (tensors if len(tensors) == 1 else available)
        elif schema.has_input_names():
            names = schema.input_names()
            self.columns = columns or [n for n in names if n in available]
            required = [n for n in schema.required_input_names() if n not in self.columns]
            if required:
                raise SchemaError(
                    f"missing required column {', '.join(map(repr, required))}; expected "
                    f"columns: {', '.join(map(repr, names))}"
                )
        else:
            self.columns = columns or available
        if not self.columns:
            raise SchemaError("the input has no columns to feed the model")

    def feed(self, table: pa.Table) -> Any:
        """The batch as the model takes it (not yet enforced); SchemaError if it cannot be."""
        if self.tensors is None:
            if self.signature is None and len(self.columns) == 1:
                column = table.column(self.columns[0])
                if _is_listish(column.type) or is_json_field(table.field(self.columns[0])):
                    return to_tensor(column, table.field(self.columns[0]), None)
            return frame(table.select(self.columns))
        if self.tensors[0].name is None:
            return self._tensor(table, self.columns, self.tensors[0])
        return {
            spec.name: self._tensor(table, [column], spec)
            for column, spec in zip(self.columns, self.tensors, strict=True)
        }

    def _tensor(self, table: pa.Table, columns: list[str], spec: TensorSpec) -> np.ndarray:
        row_shape = spec.shape[1:]
        if len(columns) == 1:
            field = table.field(columns[0])
            column = table.column(columns[0])
            if _is_binary(field.type) and spec.dtype.kind in "biuf":
                return from_bytes(column, field, spec)
            if _is_listish(column.type) or is_json_field(field) or pa.types.is_string(field.type):
                return to_tensor(column, field, row_shape)
            if len(row_shape) == 0:
                return _numpy(column)
        values = np.column_stack([_numpy(table.column(c)) for c in columns])
        return fit_row_shape(values, row_shape)


def frame(table: pa.Table) -> pd.DataFrame:
    """A DataFrame of the columns, as the server's decoders would build it."""
    out = {}
    for field, column in zip(table.schema, table.columns, strict=True):
        if is_json_field(field):
            out[field.name] = pd.Series(_decoded(column), dtype=object)
        elif _is_listish(field.type):
            out[field.name] = pd.Series(column.to_pylist(), dtype=object)
        else:
            out[field.name] = column.to_pandas()
    return pd.DataFrame(out)


def _decoded(column: pa.ChunkedArray) -> list[Any]:
    return [None if v is None else orjson.loads(v) for v in column.to_pylist()]


def _numpy(column: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return np.asarray(column.to_pylist(), dtype=object)
    return column.to_numpy()


def _is_listish(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _is_binary(t: pa.DataType) -> bool:
    return pa.types.is_fixed_size_binary(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t)


def from_bytes(column: pa.ChunkedArray, field: pa.Field, spec: TensorSpec) -> np.ndarray:
    """Tensors stored as their raw bytes (C order, little-endian, the signature's dtype).

    The fastest layout to read: Parquet decodes a binary cell with one copy, where a list
    column costs a repetition and definition level per value (8x slower for 28x28x3 images).
    """
    row_shape = spec.shape[1:]
    if -1 in row_shape:
        raise SchemaError(
            f"{_label(field)}: raw tensor bytes need a fixed shape, but the input is "
            f"{spec.describe()}; store the rows as lists"
        )
    dtype = spec.dtype.newbyteorder("<")
    width = math.prod(row_shape) * dtype.itemsize
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if array.null_count:
        raise SchemaError(f"{_label(field)}: missing values (null rows); expected a tensor")
    if pa.types.is_fixed_size_binary(array.type):
        size = array.type.byte_width
        if size != width:
            raise SchemaError(_width_message(field, spec, width, size))
        data = array.buffers()[1]
        start = array.offset * size
    else:
        lengths = pc.binary_length(array).to_numpy()
        bad = np.flatnonzero(lengths != width)
        if bad.size:
            raise SchemaError(_width_message(field, spec, width, int(lengths[bad[0]])))
        offsets = np.frombuffer(
            array.buffers()[1], np.int64 if pa.types.is_large_binary(array.type) else np.int32
        )
        data = array.buffers()[2]
        start = int(offsets[array.offset])
    flat = np.frombuffer(data, dtype, count=len(array) * math.prod(row_shape), offset=start)
    return flat.reshape(len(array), *row_shape).astype(spec.dtype, copy=False)


def _width_message(field: pa.Field, spec: TensorSpec, width: int, got: int) -> str:
    return (
        f"{_label(field)}: expected {width} bytes per row (a {spec.describe()}, raw "
        f"{spec.dtype_name}), got {got}"
    )


def to_tensor(
    column: pa.ChunkedArray, field: pa.Field, row_shape: tuple[int, ...] | None
) -> np.ndarray:
    """One tensor per row from a list column (nested or flat) or a column of JSON arrays."""
    if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
        values = _decoded(column) if is_json_field(field) else _json_cells(column)
        return fit_row_shape(_rectangular(values), row_shape)
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    rows = len(array)
    dims: list[int] = []
    while _is_listish(array.type):
        if array.null_count:
            raise SchemaError(_label(field) + ": missing values (null rows); expected a tensor")
        if pa.types.is_fixed_size_list(array.type):
            length = array.type.list_size
        else:
            lengths = pc.list_value_length(array)
            low, high = (v.as_py() for v in pc.min_max(lengths).values())
            if low != high:
                raise SchemaError(
                    f"{_label(field)}: rows of different lengths ({low} to {high} values at "
                    f"depth {len(dims) + 1}); expected a rectangular tensor"
                )
            length = low if low is not None else 0
        dims.append(length)
        array = array.flatten()
    if array.null_count:
        raise SchemaError(f"{_label(field)}: missing values (nulls) inside a tensor")
    values = array.to_numpy(zero_copy_only=False)
    return fit_row_shape(values.reshape(rows, *dims), row_shape)


def _label(field: pa.Field) -> str:
    return f"column '{field.name}'"


def _json_cells(column: pa.ChunkedArray) -> list[Any]:
    out = []
    for text in column.to_pylist():
        if text is None:
            raise SchemaError("missing values (empty cells); expected a tensor per row")
        try:
            out.append(orjson.loads(text))
        except orjson.JSONDecodeError:
            raise SchemaError(
                f"expected a tensor as a JSON array in each cell, got {text[:40]!r}"
            ) from None
    return out


def _rectangular(values: list[Any]) -> np.ndarray:
    try:
        array = np.asarray(values)
    except ValueError:
        array = None
    if array is None or array.dtype == object:
        raise SchemaError("ragged nested list (rows of different lengths); expected a tensor")
    return array


def fit_row_shape(values: np.ndarray, row_shape: tuple[int, ...] | None) -> np.ndarray:
    """A flat row (or a row of scalar columns) reshaped to the tensor's shape, if it fits."""
    if row_shape is None or values.ndim != 2 or len(row_shape) < 2 or -1 in row_shape:
        return values
    if values.shape[1] == math.prod(row_shape):
        return values.reshape(values.shape[0], *row_shape)
    return values


# --- predictions → columns ------------------------------------------------------------------


def output_columns(result: Any, name: str) -> dict[str, pa.Array]:
    """The model's answer for a batch as Arrow columns: one per output, tensors as lists."""
    if isinstance(result, pd.DataFrame):
        if len(result.columns) == 1:
            return {name: _column(result.iloc[:, 0])}
        if all(isinstance(c, int | np.integer) for c in result.columns):
            return {name: _column(result.to_numpy())}
        return {str(c): _column(result[c]) for c in result.columns}
    if isinstance(result, Mapping):
        if len(result) == 1:
            return {name: _column(next(iter(result.values())))}
        return {str(k): _column(v) for k, v in result.items()}
    return {name: _column(result)}


def _column(values: Any) -> pa.Array:
    if isinstance(values, pd.Series):
        values = values.to_numpy()
    array = np.asarray(values)
    if array.dtype == object:
        return pa.array([v.tolist() if isinstance(v, np.ndarray) else v for v in array])
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]  # one value per row: a number, not a list of one
    if array.dtype == np.float16:
        array = array.astype(np.float32)
    return tensor_array(np.ascontiguousarray(array))


def tensor_array(array: np.ndarray) -> pa.Array:
    """Rows of an n-d array as nested fixed-size lists (Parquet keeps the shape and dtype)."""
    out = pa.array(array.reshape(-1))
    for size in reversed(array.shape[1:]):
        out = pa.FixedSizeListArray.from_arrays(out, size)
    return out


__all__ = [
    "Feeder",
    "fit_row_shape",
    "frame",
    "from_bytes",
    "output_columns",
    "tensor_array",
    "to_tensor",
]
