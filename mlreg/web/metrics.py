"""Prometheus metrics for an mlreg server, in a registry of their own (no global state).

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


class HttpMetrics:
    """Requests by endpoint, method and status; latency; requests in flight.

    ``labels`` name more labels every one of these carries (the scoring server's
    ``model_version``); their values are passed to :meth:`observe` and ``in_flight``.
    """

    content_type = CONTENT_TYPE_LATEST

    def __init__(
        self, prefix: str, multiprocess_dir: str | None = None, labels: tuple[str, ...] = ()
    ) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.labels = labels
        if multiprocess_dir is not None:
            # prometheus_client picks its value class when first imported, which in a
            # gunicorn worker was before the fork; choose the file-backed one now.
            os.environ[MULTIPROC_ENV] = multiprocess_dir
            values.ValueClass = values.MultiProcessValue()
        self.registry = r = CollectorRegistry()
        self.requests = Counter(
            f"{prefix}_requests",
            "HTTP requests answered",
            ["endpoint", "method", "status", *labels],
            registry=r,
        )
        self.latency = Histogram(
            f"{prefix}_request_duration_seconds",
            "Time to answer a request",
            ["endpoint", *labels],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            f"{prefix}_requests_in_flight",
            "Requests being answered",
            list(labels),
            registry=r,
            multiprocess_mode="livesum",
        )

    def observe(
        self, endpoint: str, method: str, status: int, seconds: float, *values: str
    ) -> None:
        """Count one answered request; ``values`` are those of the extra ``labels``."""
        self.requests.labels(endpoint, method, str(status), *values).inc()
        self.latency.labels(endpoint, *values).observe(seconds)

    def in_flight_of(self, *values: str) -> Gauge:
        """The in-flight gauge for the extra labels' ``values``."""
        return self.in_flight.labels(*values) if self.labels else self.in_flight

    def render(self) -> bytes:
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
        return generate_latest(registry)
