"""Prometheus metrics for one server process, in a registry of its own (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

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

    def __init__(self) -> None:
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
        self.in_flight = Gauge("mlreg_requests_in_flight", "Requests being answered", registry=r)
        self.batch_size = Histogram(
            "mlreg_batch_size", "Requests in one model call", buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_rows = Histogram(
            "mlreg_batch_rows", "Rows in one model call", buckets=BATCH_BUCKETS, registry=r
        )
        self.model_load = Gauge(
            "mlreg_model_load_seconds", "Time to load and warm up the model", registry=r
        )
        self.model_ready = Gauge("mlreg_model_ready", "1 once the model is ready", registry=r)
        self.timeouts = Counter(
            "mlreg_prediction_timeouts", "Predictions that ran past the timeout", registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


__all__ = ["Metrics"]
