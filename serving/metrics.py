"""The scoring server's metrics: HTTP traffic (mlreg.web.metrics), batches, the model.

With several gunicorn workers the values are summed over every worker (see
mlreg.web.metrics), whichever worker serves the scrape.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from mlreg.web.metrics import HttpMetrics

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics(HttpMetrics):
    """The scoring server's counters, gauges and histograms."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        super().__init__("mlreg", multiprocess_dir)
        r = self.registry
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


__all__ = ["Metrics"]
