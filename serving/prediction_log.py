"""Prediction logging: a sample of requests and their answers, written off the request path.

``--log-predictions DIR`` writes one JSON line per sampled request to ``DIR/predictions-<pid>
.jsonl`` (one file per worker, rotated by size); ``--log-predictions http(s)://...`` POSTs them
in batches as CloudEvents (``application/cloudevents-batch+json``) to a collector. Each record:
time, request id, model name and version, protocol, status, latency, inputs, outputs (or the
error). A tensor larger than ``MLREG_LOG_MAX_TENSOR_BYTES`` is summarised (shape, dtype).

Requests only put a reference on a bounded queue; a writer thread serialises and writes.
When the queue is full or the sink fails, records are dropped and counted
(``mlreg_prediction_log_dropped_total{reason}``), never waited for.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import logging.handlers
import os
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson
import pandas as pd
import requests

from mlreg.serving.metrics import Metrics
from mlreg.serving.settings import ServingSettings

logger = logging.getLogger(__name__)

CLOUDEVENTS_BATCH = "application/cloudevents-batch+json"
EVENT_TYPE = "io.mlreg.prediction"
#: Records a writer takes per write (and per POST), and how long it waits to fill a batch.
BATCH_SIZE = 100
BATCH_SECONDS = 1.0
POST_TIMEOUT = 5.0


@dataclass
class Record:
    """One sampled request, as the routes saw it (serialised later, by the writer)."""

    request_id: str
    model_name: str | None
    model_version: str
    protocol: str
    status: int
    seconds: float
    inputs: Any = None
    outputs: Any = None
    error: tuple[str, str] | None = None
    time: float = 0.0


class Sink(Protocol):
    """Where serialised records go; ``write`` raises OSError or RequestException on failure."""

    def write(self, records: list[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...


class FileSink:
    """JSON lines in ``DIR/predictions-<pid>.jsonl``, rotated by size (stdlib's rotation)."""

    def __init__(self, directory: Path, max_bytes: int, backups: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"predictions-{os.getpid()}.jsonl"
        self._handler = logging.handlers.RotatingFileHandler(
            self.path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        self._handler.setFormatter(logging.Formatter("%(message)s"))

    def write(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            line = orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY).decode()
            self._handler.emit(logging.makeLogRecord({"msg": line, "levelno": logging.INFO}))

    def close(self) -> None:
        self._handler.close()


class CloudEventsSink:
    """Batches POSTed to a collector as CloudEvents (structured, batch mode)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.source = f"mlreg-serve/{os.uname().nodename}/{os.getpid()}"
        self._session = requests.Session()

    def write(self, records: list[dict[str, Any]]) -> None:
        events = [
            {
                "specversion": "1.0",
                "id": uuid.uuid4().hex,
                "source": self.source,
                "type": EVENT_TYPE,
                "time": record["time"],
                "subject": f"{record['model_name']}/{record['model_version']}",
                "datacontenttype": "application/json",
                "data": record,
            }
            for record in records
        ]
        response = self._session.post(
            self.url,
            data=orjson.dumps(events, option=orjson.OPT_SERIALIZE_NUMPY),
            headers={"Content-Type": CLOUDEVENTS_BATCH},
            timeout=POST_TIMEOUT,
        )
        if response.status_code >= 300:
            raise requests.HTTPError(f"the collector answered {response.status_code}")

    def close(self) -> None:
        self._session.close()


def open_sink(settings: ServingSettings) -> Sink:
    target = str(settings.log_predictions)
    if target.startswith(("http://", "https://")):
        return CloudEventsSink(target)
    return FileSink(Path(target), settings.log_file_bytes, settings.log_file_backups)


class PredictionLog:
    """Samples requests and hands them to a writer thread through a bounded queue."""

    def __init__(
        self,
        sink: Sink,
        metrics: Metrics,
        sample_rate: float,
        max_tensor_bytes: int,
        queue_size: int,
        sample: Callable[[], float] = random.random,
    ) -> None:
        self._sink = sink
        self._metrics = metrics
        self._rate = sample_rate
        self._max_tensor_bytes = max_tensor_bytes
        self._sample = sample
        self._queue: queue.Queue[Record | None] = queue.Queue(maxsize=queue_size)
        self._failing: str | None = None
        self._thread = threading.Thread(target=self._run, name="mlreg-prediction-log", daemon=True)
        self._thread.start()

    def sampled(self) -> bool:
        """Whether to keep the request now starting (decided before it is decoded)."""
        return self._rate >= 1.0 or (self._rate > 0.0 and self._sample() < self._rate)

    def submit(self, record: Record) -> None:
        """Queue a sampled request; drop it (counted) if the writer is behind."""
        record.time = time.time()
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._metrics.predictions_dropped.labels("queue_full", record.model_version).inc()

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (for up to ``timeout``), then stop."""
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)
        self._sink.close()

    # --- the writer thread ---------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._batch()
            if batch is None:
                return
            if batch:
                self._write(batch)

    def _batch(self) -> list[Record] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        deadline = time.monotonic() + BATCH_SECONDS
        while len(batch) < BATCH_SIZE:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=max(remaining, 0)) if remaining > 0 else None
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # stop after this batch
                break
            batch.append(item)
        return batch

    def _write(self, batch: list[Record]) -> None:
        docs = [self._document(r) for r in batch]
        try:
            self._sink.write(docs)
        except (OSError, requests.RequestException) as e:
            for record in batch:
                self._metrics.predictions_dropped.labels("sink_error", record.model_version).inc()
            message = f"{type(e).__name__}: {e}"
            if message != self._failing:  # once per new trouble, not per batch
                logger.warning("prediction log: dropped %d records: %s", len(batch), message)
            self._failing = message
            return
        if self._failing is not None:
            logger.info("prediction log: writing again")
        self._failing = None
        for record in batch:
            self._metrics.predictions_logged.labels(record.model_version).inc()

    def _document(self, record: Record) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.time, dt.timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "request_id": record.request_id,
            "model_name": record.model_name,
            "model_version": record.model_version,
            "protocol": record.protocol,
            "status": record.status,
            "latency_ms": round(record.seconds * 1000, 3),
            "inputs": self._value(record.inputs),
            "outputs": self._value(record.outputs),
        }
        if record.error is not None:
            doc["error"] = {"error_code": record.error[0], "message": record.error[1]}
        return doc

    def _value(self, value: Any) -> Any:
        """A tensor, a dict of them or a table as JSON; a big one summarised."""
        if value is None:
            return None
        if isinstance(value, Mapping):
            return {str(k): self._value(v) for k, v in value.items()}
        if isinstance(value, pd.DataFrame):
            if int(value.memory_usage(deep=False).sum()) > self._max_tensor_bytes:
                columns = [str(c) for c in value.columns]
                return {"summary": True, "shape": list(value.shape), "columns": columns}
            return orjson.loads(value.to_json(orient="split", index=False))
        if isinstance(value, pd.Series):
            value = value.to_numpy()
        array = value if isinstance(value, np.ndarray) else np.asarray(value, dtype=object)
        if array.nbytes > self._max_tensor_bytes:
            return {"summary": True, "shape": list(array.shape), "dtype": str(array.dtype)}
        if array.dtype.kind in "OUSMm":
            return orjson.loads(orjson.dumps(array.tolist(), default=str))
        if array.dtype == np.float16:
            array = array.astype(np.float32)
        return np.ascontiguousarray(array)  # written by orjson, no Python object per number


__all__ = ["CloudEventsSink", "FileSink", "PredictionLog", "Record", "open_sink"]
