"""Writers: Arrow tables out as CSV, JSON (MLflow's ``{"predictions": ...}``), JSONL or Parquet.

A file is written next to its destination under a temporary name and renamed into place
only when the run succeeds, so a failed run never leaves half an output behind. Parquet keeps
dtypes, and tensors as (fixed-size) list columns; CSV writes a tensor cell as a JSON array;
JSON and JSON Lines write numbers as numpy holds them (a float32 prints as ``0.24``).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, Protocol

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mlreg.batch.formats import STDIO, is_json_field
from mlreg.errors import InvalidInput

_DUMP = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


class Writer(Protocol):
    def write(self, table: pa.Table) -> None: ...

    def close(self) -> None:
        """Finish the output (rename it into place)."""

    def abort(self) -> None:
        """Drop what was written."""


class _Sink:
    """A binary destination: standard output, or a temporary file renamed on commit."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._tmp: str | None = None
        if path == STDIO:
            self.stream: IO[bytes] = sys.stdout.buffer
            return
        target = Path(path)
        if target.is_dir():
            raise InvalidInput(f"output {path} is a directory; name a file")
        if not target.parent.is_dir():
            raise InvalidInput(f"cannot write {path}: the directory {target.parent} does not exist")
        fd, self._tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        self.stream = os.fdopen(fd, "wb")

    def commit(self) -> None:
        self.stream.flush()
        if self._tmp is not None:
            self.stream.close()
            os.replace(self._tmp, self.path)
            self._tmp = None

    def abort(self) -> None:
        if self._tmp is not None:
            self.stream.close()
            Path(self._tmp).unlink(missing_ok=True)
            self._tmp = None


def open_writer(path: str, fmt: str) -> Writer:
    if fmt == "parquet":
        return ParquetWriter(path)
    if fmt == "csv":
        return CsvWriter(path)
    if fmt == "jsonl":
        return JsonLinesWriter(path)
    if fmt == "json":
        return JsonWriter(path)
    raise InvalidInput(f"unsupported output format {fmt!r}")


class ParquetWriter:
    """One row group per batch; the first batch fixes the schema."""

    def __init__(self, path: str) -> None:
        self._sink = _Sink(path)
        self._writer: pq.ParquetWriter | None = None
        self._rows = 0

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(pa.PythonFile(self._sink.stream), table.schema)
        elif not table.schema.equals(self._writer.schema):
            table = _conform(table, self._writer.schema, self._rows)
        self._writer.write_table(table)
        self._rows += table.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._sink.commit()

    def abort(self) -> None:
        self._sink.abort()


def _conform(table: pa.Table, schema: pa.Schema, rows_before: int) -> pa.Table:
    """Cast a later batch to the schema of the first one, or say which column changed type."""
    if table.column_names != schema.names:
        raise InvalidInput(
            f"the columns changed after row {rows_before}: {schema.names} then "
            f"{table.column_names}; a Parquet file has one schema"
        )
    columns = []
    for field, column in zip(schema, table.columns, strict=True):
        if column.type == field.type:
            columns.append(column)
            continue
        try:
            columns.append(column.cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            raise InvalidInput(
                f"column '{field.name}' is {field.type} in the first rows and {column.type} "
                f"after row {rows_before}, which does not convert; write CSV or JSON Lines, "
                "or make the column's values one type"
            ) from None
    return pa.Table.from_arrays(columns, schema=schema)


class CsvWriter:
    """A header, then rows; tensors and nested values as JSON text in their cell."""

    def __init__(self, path: str) -> None:
        self._sink = _Sink(path)
        self._header = True

    def write(self, table: pa.Table) -> None:
        flat = pa.table(
            {
                f.name: _json_text(c) if _nested(f) else c
                for f, c in zip(table.schema, table.columns, strict=True)
            }
        )
        pacsv.write_csv(flat, self._sink.stream, pacsv.WriteOptions(include_header=self._header))
        self._header = False

    def close(self) -> None:
        self._sink.commit()

    def abort(self) -> None:
        self._sink.abort()


def _nested(field: pa.Field) -> bool:
    t = field.type
    return pa.types.is_nested(t) and not is_json_field(field)


def _json_text(column: pa.ChunkedArray) -> pa.Array:
    values = _values(column, pa.field("x", column.type))
    return pa.array([None if v is None else orjson.dumps(v, option=_DUMP).decode() for v in values])


def _values(column: pa.ChunkedArray, field: pa.Field) -> Any:
    """A column as something indexable per row that orjson writes fast and faithfully."""
    if is_json_field(field):
        return [None if v is None else orjson.Fragment(v) for v in column.to_pylist()]
    t = field.type
    if (pa.types.is_floating(t) or pa.types.is_integer(t)) and column.null_count == 0:
        return column.to_numpy()
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    dims = []
    while pa.types.is_fixed_size_list(array.type) and array.null_count == 0:
        dims.append(array.type.list_size)
        array = array.flatten()
    numeric = pa.types.is_floating(array.type) or pa.types.is_integer(array.type)
    if dims and numeric and array.null_count == 0:
        return array.to_numpy().reshape(len(column), *dims)
    return column.to_pylist()


class JsonLinesWriter:
    def __init__(self, path: str) -> None:
        self._sink = _Sink(path)

    def write(self, table: pa.Table) -> None:
        names = table.column_names
        columns = [_values(c, f) for c, f in zip(table.columns, table.schema, strict=True)]
        lines = [
            orjson.dumps(dict(zip(names, (c[i] for c in columns), strict=True)), option=_DUMP)
            for i in range(table.num_rows)
        ]
        if lines:
            self._sink.stream.write(b"\n".join(lines) + b"\n")

    def close(self) -> None:
        self._sink.commit()

    def abort(self) -> None:
        self._sink.abort()


class JsonWriter:
    """``{"predictions": [...]}`` as MLflow's server answers, written as it goes.

    A table of one column writes its values (``[[0.2, 0.8], ...]``, as ``/invocations``
    does); several columns (kept input columns, named outputs) write one object per row.
    """

    def __init__(self, path: str) -> None:
        self._sink = _Sink(path)
        self._first = True

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        columns = [_values(c, f) for c, f in zip(table.columns, table.schema, strict=True)]
        if len(columns) == 1:
            items = [orjson.dumps(columns[0][i], option=_DUMP) for i in range(table.num_rows)]
        else:
            names = table.column_names
            items = [
                orjson.dumps(dict(zip(names, (c[i] for c in columns), strict=True)), option=_DUMP)
                for i in range(table.num_rows)
            ]
        self._sink.stream.write((b'{"predictions": [' if self._first else b",") + b",".join(items))
        self._first = False

    def close(self) -> None:
        self._sink.stream.write(b'{"predictions": []}\n' if self._first else b"]}\n")
        self._sink.commit()

    def abort(self) -> None:
        self._sink.abort()


__all__ = ["Writer", "open_writer"]
