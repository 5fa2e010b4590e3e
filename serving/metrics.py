"""Prometheus metrics, in a registry of their own (no global state).

With several gunicorn workers, each worker writes its values to files in a directory the
master creates (prometheus_client's multiprocess mode), and ``/metrics`` answers the sum
over all workers, whichever worker serves the scrape.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    """The server's counters, gauges and histograms."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        if multiprocess_dir is not None:
            # prometheus_client picks its value class when first imported, which in a
            # gunicorn worker was before the fork; choose the file-backed one now.
            os.environ[MULTIPROC_ENV] = multiprocess_dir
            values.ValueClass = values.MultiProcessValue()
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "mlreg_requests", "HTTP requests answered", ["endpoint", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "mlreg_request_duration_seconds",
            "Time to answer a request",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "mlreg_requests_in_flight",
            "Requests being answered",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.batch_size = Histogram(
            "mlreg_batch_size", "Requests in one model call", buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_rows = Histogram(
            "mlreg_batch_rows", "Rows in one model call", buckets=BATCH_BUCKETS, registry=r
        )
        self.model_load = Gauge(
            "mlreg_model_load_seconds",
            "Time to load and warm up the model",
            registry=r,
            multiprocess_mode="max",
        )
        self.model_ready = Gauge(
            "mlreg_model_ready",
            "1 once the model is ready (in every live worker)",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.timeouts = Counter(
            "mlreg_prediction_timeouts", "Predictions that ran past the timeout", registry=r
        )
        self.backend_calls = Counter(
            "mlreg_tfserving_calls",
            "gRPC calls to TensorFlow Serving, by method and status code",
            ["method", "code"],
            registry=r,
        )

    def render(self) -> bytes:
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
        return generate_latest(registry)


__all__ = ["Metrics"]
