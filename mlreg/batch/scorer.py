"""Score a file batch by batch: read, gather the inputs, enforce the signature, predict, write.

Only one batch is in memory at a time (plus the reader's and writer's buffers). When a batch
fails the signature, the rows at fault are found by bisection (a handful of checks, not one
per row), so the error names the row; with ``on_error="skip"`` those rows go to the errors
output with the reason and the rest of the batch is scored. Output rows keep input order.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from mlreg.batch.features import Feeder, output_columns
from mlreg.batch.formats import FORMATS, STDIO, format_of, is_json_field, json_field
from mlreg.batch.progress import Progress, Summary
from mlreg.batch.readers import BadRow, Chunk, Reader, infer_types, open_reader
from mlreg.batch.writers import Writer, open_writer
from mlreg.errors import InvalidInput, ModelExecutionError, SchemaError
from mlreg.models.enforce import enforce_params
from mlreg.pyfunc import PyFuncModel

ON_ERROR = ("fail", "skip")
DEFAULT_BATCH_SIZE = 4096
ALL_COLUMNS = "*"
ERROR_FIELDS = ("_row", "_error", "_input")
T = TypeVar("T")


@dataclass(frozen=True)
class PredictOptions:
    """One ``mlreg predict`` run; see the command's help for each field."""

    input: str
    output: str
    input_format: str | None = None
    output_format: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    columns: tuple[str, ...] | None = None
    keep_columns: tuple[str, ...] = ()
    output_column: str = "prediction"
    params: dict[str, Any] | None = None
    on_error: str = "fail"
    errors_output: str | None = None
    errors_format: str | None = None
    progress: bool = True

    def check(self) -> None:
        if self.batch_size < 1:
            raise InvalidInput(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.on_error not in ON_ERROR:
            raise InvalidInput(f"--on-error must be one of {', '.join(ON_ERROR)}")
        if self.errors_output and self.on_error != "skip":
            raise InvalidInput("--errors-output needs --on-error skip (with fail, none are kept)")
        for fmt in (self.input_format, self.output_format, self.errors_format):
            if fmt is not None and fmt not in FORMATS:
                raise InvalidInput(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        files = [p for p in (self.input, self.output, self.errors_output) if p and p != STDIO]
        if len(set(files)) != len(files):
            raise InvalidInput("input, output and errors output must be different files")
        if not self.output_column:
            raise InvalidInput("--output-column must not be empty")


def predict_file(model: PyFuncModel, options: PredictOptions) -> Summary:
    """Score ``options.input`` with ``model`` into ``options.output``; return what happened."""
    options.check()
    in_fmt = format_of(options.input, options.input_format, "input")
    out_fmt = _output_format(options.output, options.output_format, in_fmt)
    signature = model.signature
    params = dict(options.params or {})
    reader = open_reader(
        options.input, in_fmt, options.batch_size, signature.inputs if signature else None
    )
    try:
        params = {**(reader.params or {}), **params}
        # Params are the same for every batch: a wrong one is the run's mistake, not a row's.
        if signature is not None:
            params = enforce_params(params, signature.params)
        elif params:
            model.enforce(None, params)
        errors = (
            open_writer(
                options.errors_output,
                _output_format(options.errors_output, options.errors_format, "jsonl"),
            )
            if options.errors_output
            else None
        )
        try:
            writer = open_writer(options.output, out_fmt)
        except BaseException:
            if errors is not None:
                errors.abort()
            raise
        run = _Run(model, options, params or None, writer, errors)
        try:
            summary = run.score(reader)
        except BaseException:
            writer.abort()
            if errors is not None:
                errors.abort()
            raise
        if summary.errors and not summary.written:
            writer.abort()
            if errors is not None:
                errors.close()
            raise SchemaError(
                f"no row could be scored ({summary.errors} errors); first: {summary.first_error}"
            )
        writer.close()
        if errors is not None:
            errors.close()
        return summary
    finally:
        reader.close()


def _output_format(path: str, given: str | None, default: str) -> str:
    if given:
        return given
    try:
        return format_of(path, None, "output")
    except InvalidInput:
        return default


@dataclass
class _Run:
    model: PyFuncModel
    options: PredictOptions
    params: dict[str, Any] | None
    writer: Writer
    errors: Writer | None
    summary: Summary = field(default_factory=Summary)
    feeder: Feeder | None = None
    keep: list[str] = field(default_factory=list)

    def score(self, reader: Reader) -> Summary:
        progress = Progress(self.options.progress, reader.total_rows)
        start = time.perf_counter()
        try:
            for chunk in prefetch(reader):
                self._chunk(chunk)
                progress.update(len(chunk.rows) + len(chunk.bad), reader.fraction_read())
        finally:
            progress.close()
        self.summary.seconds = time.perf_counter() - start
        self.summary.output = self.options.output
        if self.summary.rows == 0:
            raise InvalidInput(f"no rows to score in {_where(self.options.input)}")
        return self.summary

    def _chunk(self, chunk: Chunk) -> None:
        self.summary.rows += len(chunk.rows) + len(chunk.bad)
        bad = list(chunk.bad)
        table, rows = chunk.table, chunk.rows
        typed = (lambda t: t) if chunk.typed else infer_types
        if table.num_rows:
            if self.feeder is None:
                self._start(table)
            assert self.feeder is not None
            data, good, failed = self._enforce(table, typed)
            bad += [_bad(rows, table, i, msg, SchemaError, typed) for i, msg in failed]
            self._fail_on(bad)  # the first unreadable or unfit row, in input order
            if good is not None:
                table, rows = table.take(good), rows[good]
            if table.num_rows:
                result, good, failed = self._predict(data, table.num_rows)
                bad += [_bad(rows, table, i, msg, ModelExecutionError, typed) for i, msg in failed]
                self._fail_on(bad)
                if good is not None:
                    table, rows = table.take(good), rows[good]
                self._write(typed(table), result)
        self._fail_on(bad)
        if bad:
            bad.sort(key=lambda b: b.row)
            self.summary.errors += len(bad)
            if self.summary.first_error is None:
                self.summary.first_error = f"row {bad[0].row}: {bad[0].error}"
            if self.errors is not None:
                self.errors.write(_errors_table(bad))

    def _fail_on(self, bad: list[BadRow]) -> None:
        if bad and self.options.on_error == "fail":
            first = min(bad, key=lambda b: b.row)
            raise first.kind(f"row {first.row}: {first.error}")

    def _start(self, table: pa.Table) -> None:
        names = table.column_names
        chosen = list(self.options.columns) if self.options.columns else None
        self.feeder = Feeder(self.model.signature, table.schema, chosen)
        keep = list(self.options.keep_columns)
        if ALL_COLUMNS in keep:
            keep = names
        missing = [c for c in keep if c not in names]
        if missing:
            raise InvalidInput(
                f"--keep-columns names {', '.join(map(repr, missing))}, which the input does not "
                f"have; its columns: {', '.join(map(repr, names))}"
            )
        self.keep = keep

    # --- the signature, row by row only when a batch fails ------------------------------------

    def _enforce(
        self, table: pa.Table, typed: Callable[[pa.Table], pa.Table]
    ) -> tuple[Any, np.ndarray | None, list[tuple[int, str]]]:
        assert self.feeder is not None
        feeder = self.feeder

        def check(rows: pa.Table) -> Any:
            return self.model.enforce(feeder.feed(typed(rows)), self.params)[0]

        try:
            return check(table), None, []
        except SchemaError as batch_error:
            failed = _bisect(lambda lo, hi: _message(check, table.slice(lo, hi - lo)), table)
            if not failed:
                raise batch_error  # a problem of the batch as a whole, not of any one row
            good = np.setdiff1d(np.arange(table.num_rows), [i for i, _ in failed])
            data = check(table.take(good)) if len(good) else None
            return data, good, failed

    def _predict(self, data: Any, rows: int) -> tuple[Any, np.ndarray | None, list]:
        def run(part: Any) -> Any:
            result = self.model.predict_unchecked(part, self.params)
            got = _length(result)
            if got is not None and got != _length(part):
                raise ModelExecutionError(
                    f"the model returned {got} rows for a batch of {_length(part)}"
                )
            return result

        try:
            return run(data), None, []
        except ModelExecutionError as batch_error:
            failed = _bisect(
                lambda lo, hi: _message(run, _take(data, np.arange(lo, hi)), ModelExecutionError),
                rows,
            )
            if not failed:
                raise ModelExecutionError(" ".join(batch_error.message.split())) from batch_error
            good = np.setdiff1d(np.arange(rows), [i for i, _ in failed])
            return (run(_take(data, good)) if len(good) else None), good, failed

    def _write(self, table: pa.Table, result: Any) -> None:
        if not table.num_rows:
            return
        outputs = output_columns(result, self.options.output_column)
        clash = [n for n in outputs if n in self.keep]
        if clash:
            raise InvalidInput(
                f"output column {', '.join(map(repr, clash))} is also a kept input column; "
                "pass --output-column NAME"
            )
        fields = [table.field(n) for n in self.keep]
        arrays = [table.column(n) for n in self.keep]
        for name, array in outputs.items():
            fields.append(pa.field(name, array.type))
            arrays.append(array)
        self.writer.write(pa.Table.from_arrays(arrays, schema=pa.schema(fields)))
        self.summary.written += table.num_rows


def prefetch(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """Produce ``items`` in a thread, ``depth`` ahead: the next batch is read and decoded
    while the model computes this one (both release the GIL). Order is kept, memory stays
    bounded, and an error in the thread is raised here, where the item would have come."""
    slots: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                slots.put((True, item))
            slots.put((False, None))
        except BaseException as e:  # handed over to the consumer
            slots.put((False, e))

    thread = threading.Thread(target=produce, name="mlreg-batch-reader", daemon=True)
    thread.start()
    try:
        while True:
            more, value = slots.get()
            if not more:
                if value is not None:
                    raise value
                return
            yield value
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting for room, then let it end
            with contextlib.suppress(queue.Empty):
                slots.get(timeout=0.05)


def _where(path: str) -> str:
    return "standard input" if path == STDIO else path


def _bisect(check: Callable[[int, int], str | None], rows: pa.Table | int) -> list[tuple[int, str]]:
    """The rows that fail ``check`` on their own, found in O(bad · log n) checks."""
    n = rows if isinstance(rows, int) else rows.num_rows

    def walk(lo: int, hi: int) -> Iterator[tuple[int, str]]:
        message = check(lo, hi)
        if message is None:
            return
        if hi - lo == 1:
            yield lo, message
            return
        mid = (lo + hi) // 2
        yield from walk(lo, mid)
        yield from walk(mid, hi)

    return list(walk(0, n))


def _message(
    fn: Callable[[Any], Any], part: Any, error: type[Exception] = SchemaError
) -> str | None:
    try:
        fn(part)
    except error as e:
        return e.message  # type: ignore[attr-defined]
    return None


def _length(data: Any) -> int | None:
    if isinstance(data, dict):
        data = next(iter(data.values()), None)
    return len(data) if isinstance(data, np.ndarray | pd.DataFrame | pd.Series) else None


def _take(data: Any, index: np.ndarray) -> Any:
    if isinstance(data, dict):
        return {k: _take(v, index) for k, v in data.items()}
    if isinstance(data, pd.DataFrame | pd.Series):
        return data.iloc[index]
    return data[index]


def _bad(
    rows: np.ndarray,
    table: pa.Table,
    i: int,
    message: str,
    kind: type,
    typed: Callable[[pa.Table], pa.Table],
) -> BadRow:
    # One line, whatever the model's own error looked like (TensorFlow's span several).
    return BadRow(
        int(rows[i]), " ".join(message.split()), _row_values(typed(table.slice(i, 1))), kind
    )


def _row_values(row: pa.Table) -> dict[str, Any]:
    out = {}
    for f, column in zip(row.schema, row.columns, strict=True):
        value = column[0].as_py()
        out[f.name] = orjson.Fragment(value) if is_json_field(f) and value is not None else value
    return out


def _errors_table(bad: list[BadRow]) -> pa.Table:
    return pa.Table.from_arrays(
        [
            pa.array([b.row for b in bad], pa.int64()),
            pa.array([b.error for b in bad], pa.string()),
            pa.array([_json(b.values) for b in bad], pa.string()),
        ],
        schema=pa.schema(
            [pa.field("_row", pa.int64()), pa.field("_error", pa.string()), json_field("_input")]
        ),
    )


def _json(values: Any) -> str:
    return orjson.dumps(values, default=str, option=orjson.OPT_SERIALIZE_NUMPY).decode()


__all__ = ["DEFAULT_BATCH_SIZE", "ON_ERROR", "PredictOptions", "predict_file"]
