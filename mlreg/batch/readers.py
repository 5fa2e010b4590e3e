"""Readers: a file (or standard input) as a stream of Arrow tables of at most ``batch_size`` rows.

Every row carries its 1-based row number in the input (data rows, not counting a CSV header),
so errors name it and skipped rows leave no doubt about which ones are missing. A row a
reader cannot make sense of (a CSV line with the wrong number of fields, a JSON Lines line
that is not an object) comes out as a :class:`BadRow` instead of stopping the run; the scorer
decides whether that fails it.

Parquet and CSV are read by pyarrow's streaming readers and JSON Lines line by line, so
memory is bounded by the batch size. An MLflow JSON payload is one document and is parsed
whole. Parquet needs random access, so Parquet on standard input is first spooled to a
temporary file.
"""

from __future__ import annotations

import csv
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mlreg.batch.formats import STDIO, json_field
from mlreg.errors import ArtifactNotFound, InvalidInput, MlregError, SchemaError
from mlreg.models.signature import Schema
from mlreg.serving.codecs import decode_invocations, decode_json

ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError)
_CSV_BLOCK = 4 << 20


@dataclass(frozen=True)
class BadRow:
    """A row that is skipped or fails the run: its number, why, and what it held."""

    row: int
    error: str
    values: Any
    #: The error class the run fails with for this row when bad rows are not skipped.
    kind: type[MlregError] = InvalidInput


@dataclass
class Chunk:
    """Consecutive input rows: the readable ones as a table, the unreadable ones aside."""

    rows: np.ndarray  # int64 row numbers of ``table``'s rows, ascending
    table: pa.Table
    bad: list[BadRow] = field(default_factory=list)
    #: False when the columns are still text to be typed (CSV): typing a batch and typing
    #: one of its rows can differ, and a row's error must be about that row's values.
    typed: bool = True


class Reader(Protocol):
    #: Rows in the input when known up front (Parquet), for the progress bar.
    total_rows: int | None
    #: Params that came with the data (an MLflow JSON payload's ``params``).
    params: dict[str, Any] | None

    def __iter__(self) -> Iterator[Chunk]: ...

    def fraction_read(self) -> float | None:
        """How much of the input is consumed, 0..1, when it can be told (for the ETA)."""

    def close(self) -> None: ...


def open_reader(path: str, fmt: str, batch_size: int, schema: Schema | None) -> Reader:
    """Open ``path`` (``-``: standard input) as a reader of ``fmt``."""
    if path != STDIO and not Path(path).is_file():
        what = "is a directory" if Path(path).is_dir() else "does not exist"
        raise ArtifactNotFound(f"input {path} {what}")
    if fmt == "parquet":
        return ParquetReader(path, batch_size)
    if fmt == "csv":
        return CsvReader(path, batch_size)
    if fmt == "jsonl":
        return JsonLinesReader(path, batch_size)
    if fmt == "json":
        return JsonPayloadReader(path, batch_size, schema)
    raise InvalidInput(f"unsupported input format {fmt!r}")


def _name(path: str) -> str:
    return "standard input" if path == STDIO else path


# --- Parquet ---------------------------------------------------------------------------------


class ParquetReader:
    params = None

    def __init__(self, path: str, batch_size: int) -> None:
        self._name = _name(path)
        self._spool: IO[bytes] | None = None
        source: Any = path
        if path == STDIO:
            self._spool = tempfile.TemporaryFile(prefix="mlreg-stdin-")  # noqa: SIM115
            shutil.copyfileobj(sys.stdin.buffer, self._spool, 1 << 20)
            self._spool.seek(0)
            source = self._spool
        try:
            # pre_buffer would keep every column chunk read so far for the file's lifetime:
            # memory would grow with the file, not the batch.
            self._file = pq.ParquetFile(source, pre_buffer=False)
        except (*ARROW_ERRORS, OSError) as e:
            self.close()
            raise InvalidInput(f"{self._name} is not a readable Parquet file: {e}") from None
        self._batch_size = batch_size
        self.total_rows = self._file.metadata.num_rows
        self._done = 0

    def __iter__(self) -> Iterator[Chunk]:
        batches = self._file.iter_batches(batch_size=self._batch_size)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except (*ARROW_ERRORS, OSError) as e:
                raise InvalidInput(
                    f"{self._name}: cannot read the Parquet data after row {self._done}: {e}"
                ) from None
            start = self._done + 1
            self._done += batch.num_rows
            yield Chunk(np.arange(start, self._done + 1), pa.Table.from_batches([batch]))

    def fraction_read(self) -> float | None:
        return self._done / self.total_rows if self.total_rows else None

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()


# --- CSV -------------------------------------------------------------------------------------


class CsvReader:
    """CSV read as text by pyarrow, then typed batch by batch as pandas would type it.

    Typing each batch on its own (rather than fixing types from the first block, as
    pyarrow does) means a ``1.5`` in row 900,000 of an integer column reaches signature
    enforcement and is reported as that row's mistake, instead of ending the read.
    """

    total_rows = None
    params = None

    def __init__(self, path: str, batch_size: int) -> None:
        self._name = _name(path)
        self._batch_size = batch_size
        self._size: int | None = None
        if path == STDIO:
            stream = sys.stdin.buffer
            header = stream.readline()
            self._source: Any = pa.PythonFile(stream, mode="r")
            skip, self._line_offset = 0, 1
        else:
            with open(path, "rb") as f:
                header = f.readline()
            self._source = pa.input_stream(path, compression="detect")
            if not path.endswith((".gz", ".bz2", ".zst", ".lz4")):
                self._size = Path(path).stat().st_size
            skip, self._line_offset = 1, 0
        names = _csv_header(header, self._name)
        self._bad: list[BadRow] = []
        try:
            self._reader = pacsv.open_csv(
                self._source,
                read_options=pacsv.ReadOptions(
                    column_names=names, skip_rows=skip, use_threads=False, block_size=_CSV_BLOCK
                ),
                parse_options=pacsv.ParseOptions(invalid_row_handler=self._invalid_row),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names},
                    strings_can_be_null=True,
                ),
            )
        except (*ARROW_ERRORS, OSError) as e:
            raise InvalidInput(f"{self._name}: malformed CSV: {e}") from None

    def _invalid_row(self, row: Any) -> str:
        # pyarrow counts file lines from 1 with the header; we count data rows.
        number = (row.number or 0) + self._line_offset - 1
        self._bad.append(
            BadRow(
                number,
                f"expected {row.expected_columns} fields (one per column), got "
                f"{row.actual_columns}",
                {"line": row.text},
            )
        )
        return "skip"

    def __iter__(self) -> Iterator[Chunk]:
        next_row = 1

        def pieces() -> Iterator[Chunk]:
            nonlocal next_row
            while True:
                try:
                    batch = self._reader.read_next_batch()
                except StopIteration:
                    break
                except (*ARROW_ERRORS, OSError) as e:
                    raise InvalidInput(
                        f"{self._name}: malformed CSV after row {next_row - 1}: {e}"
                    ) from None
                # The handler ran while this batch was parsed: its bad lines are among or
                # right after the batch's rows.
                bad, self._bad[:] = list(self._bad), []
                rows, next_row = _number_rows(next_row, batch.num_rows, bad)
                yield Chunk(rows, pa.Table.from_batches([batch]), bad)

        for chunk in rebatch(pieces(), self._batch_size):
            chunk.typed = False
            yield chunk

    def fraction_read(self) -> float | None:
        if not self._size:
            return None
        try:
            return min(1.0, self._source.tell() / self._size)
        except (OSError, AttributeError):
            return None

    def close(self) -> None:
        self._source.close()


def _csv_header(line: bytes, name: str) -> list[str]:
    if not line.strip():
        raise InvalidInput(f"{name}: empty CSV; expected a header row and rows")
    try:
        names = next(csv.reader([line.decode("utf-8-sig").rstrip("\r\n")]))
    except (UnicodeDecodeError, csv.Error, StopIteration) as e:
        raise InvalidInput(f"{name}: malformed CSV header: {e}") from None
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInput(f"{name}: duplicate column {', '.join(map(repr, dupes))} in the header")
    return names


def rebatch(pieces: Iterator[Chunk], size: int) -> Iterator[Chunk]:
    """Regroup chunks of any length into chunks of ``size`` rows (the last may be shorter)."""
    tables: list[pa.Table] = []
    rows: list[np.ndarray] = []
    bad: list[BadRow] = []
    count = 0
    for piece in pieces:
        tables.append(piece.table)
        rows.append(piece.rows)
        bad += piece.bad
        count += piece.table.num_rows
        while count >= size:
            table = pa.concat_tables(tables)
            numbers = np.concatenate(rows)
            yield Chunk(numbers[:size], table.slice(0, size), bad)
            tables, rows, bad = [table.slice(size)], [numbers[size:]], []
            count -= size
    if count or bad:
        table = pa.concat_tables(tables) if tables else pa.table({})
        yield Chunk(np.concatenate(rows) if rows else np.empty(0, np.int64), table, bad)


def _number_rows(start: int, count: int, bad: list[BadRow]) -> tuple[np.ndarray, int]:
    """Row numbers of ``count`` good rows from ``start``, stepping over the ``bad`` ones."""
    skip = {b.row for b in bad}
    rows = np.empty(count, np.int64)
    n = start
    for i in range(count):
        while n in skip:
            n += 1
        rows[i] = n
        n += 1
    while n in skip:
        n += 1
    return rows, n


def infer_types(table: pa.Table) -> pa.Table:
    """Give each text column the narrowest type every value parses as: int, float, bool, text."""
    columns = []
    for column in table.columns:
        columns.append(_infer(column) if pa.types.is_string(column.type) else column)
    return pa.table(columns, names=table.column_names)


def _infer(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if column.null_count == len(column):
        return column
    for target in (pa.int64(), pa.float64()):
        try:
            return column.cast(target)
        except ARROW_ERRORS:
            pass
    lowered = column.combine_chunks().drop_null()
    if pa.compute.all(pa.compute.is_in(pa.compute.utf8_lower(lowered), pa.array(BOOLS))).as_py():
        return column.cast(pa.bool_())
    return column


BOOLS = ["true", "false"]


# --- JSON Lines ------------------------------------------------------------------------------


class JsonLinesReader:
    total_rows = None
    params = None

    def __init__(self, path: str, batch_size: int) -> None:
        self._name = _name(path)
        self._batch_size = batch_size
        if path == STDIO:
            self._stream: IO[bytes] = sys.stdin.buffer
            self._size: int | None = None
        else:
            self._stream = open(path, "rb")  # noqa: SIM115
            self._size = Path(path).stat().st_size

    def __iter__(self) -> Iterator[Chunk]:
        rows: list[dict[str, Any]] = []
        numbers: list[int] = []
        bad: list[BadRow] = []
        number = 0
        for line in self._stream:
            if not line.strip():
                continue
            number += 1
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                bad.append(BadRow(number, f"malformed JSON: {e}", {"line": _text(line)}))
                continue
            if not isinstance(value, dict):
                bad.append(
                    BadRow(
                        number,
                        "expected a JSON object (one row of named fields), got a JSON "
                        f"{type(value).__name__}",
                        {"line": _text(line)},
                    )
                )
                continue
            rows.append(value)
            numbers.append(number)
            if len(rows) >= self._batch_size:
                yield Chunk(np.asarray(numbers, np.int64), table_from_records(rows), bad)
                rows, numbers, bad = [], [], []
        if rows or bad:
            yield Chunk(np.asarray(numbers, np.int64), table_from_records(rows), bad)

    def fraction_read(self) -> float | None:
        if not self._size:
            return None
        return min(1.0, self._stream.tell() / self._size)

    def close(self) -> None:
        if self._stream is not sys.stdin.buffer:
            self._stream.close()


def _text(line: bytes) -> str:
    return line.decode("utf-8", errors="replace").rstrip("\r\n")


def table_from_records(records: list[dict[str, Any]]) -> pa.Table:
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    return table_from_columns({n: [r.get(n) for r in records] for n in names})


def table_from_columns(columns: dict[str, Any]) -> pa.Table:
    """A table from Python columns; a column Arrow cannot type becomes JSON text."""
    fields, arrays = [], []
    for name, values in columns.items():
        try:
            array = pa.array(values)
            fields.append(pa.field(str(name), array.type))
        except ARROW_ERRORS:
            items = values.tolist() if isinstance(values, np.ndarray) else list(values)
            array = pa.array([None if v is None else _dumps(v) for v in items], pa.string())
            fields.append(json_field(str(name)))
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


# --- an MLflow JSON payload ------------------------------------------------------------------


class JsonPayloadReader:
    """One ``/invocations`` document, decoded as the server decodes it, then cut into batches."""

    def __init__(self, path: str, batch_size: int, schema: Schema | None) -> None:
        name = _name(path)
        body = sys.stdin.buffer.read() if path == STDIO else Path(path).read_bytes()
        try:
            payload = decode_invocations(decode_json(body), schema)
        except InvalidInput as e:
            raise type(e)(f"{name}: {e.message}") from None
        self.params = payload.params
        self._table = _payload_table(payload.data, payload.form, name)
        self.total_rows = self._table.num_rows
        self._batch_size = batch_size
        self._done = 0

    def __iter__(self) -> Iterator[Chunk]:
        for start in range(0, self._table.num_rows, self._batch_size):
            table = self._table.slice(start, self._batch_size)
            self._done = start + table.num_rows
            yield Chunk(np.arange(start + 1, self._done + 1), table)

    def fraction_read(self) -> float | None:
        return self._done / self.total_rows if self.total_rows else None

    def close(self) -> None:
        pass


def _payload_table(data: Any, form: str, name: str) -> pa.Table:
    if isinstance(data, pd.DataFrame):
        return table_from_columns(
            {
                str(c): data[c].to_numpy() if data[c].dtype.kind in "biuf" else data[c].tolist()
                for c in data.columns
            }
        )
    if isinstance(data, dict):
        lengths = {k: len(v) if isinstance(v, list) else None for k, v in data.items()}
        if None in lengths.values() or len(set(lengths.values())) != 1:
            raise SchemaError(
                f"{name}: '{form}': every named input needs one value per row; got lengths "
                + ", ".join(f"{k}: {'not a list' if n is None else n}" for k, n in lengths.items())
            )
        return table_from_columns(data)
    return table_from_columns({form: data})


__all__ = [
    "BadRow",
    "Chunk",
    "Reader",
    "infer_types",
    "open_reader",
    "rebatch",
    "table_from_columns",
    "table_from_records",
]
