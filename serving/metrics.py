"""The scoring server's metrics: HTTP traffic (mlreg.web.metrics), batches, the model, swaps.

Every metric carries ``model_version``: the registry version that answered (empty for a model
served from a directory). In follow mode the labels of a retired version stay, so a
dashboard shows each version's traffic, errors and latency side by side.

With several gunicorn workers the values are summed over every worker (see
mlreg.web.metrics), whichever worker serves the scrape.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

from mlreg.web.metrics import HttpMetrics

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
VERSION = "model_version"


class Metrics(HttpMetrics):
    """The scoring server's counters, gauges and histograms."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        super().__init__("mlreg", multiprocess_dir, labels=(VERSION,))
        r = self.registry
        self.batch_size = Histogram(
            "mlreg_batch_size",
            "Requests in one model call",
            [VERSION],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.batch_rows = Histogram(
            "mlreg_batch_rows",
            "Rows in one model call",
            [VERSION],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.model_load = Gauge(
            "mlreg_model_load_seconds",
            "Time to load and warm up the model",
            [VERSION],
            registry=r,
            multiprocess_mode="max",
        )
        self.model_ready = Gauge(
            "mlreg_model_ready",
            "1 while this version is the one served (in every live worker)",
            [VERSION],
            registry=r,
            multiprocess_mode="livemin",
        )
        self.timeouts = Counter(
            "mlreg_prediction_timeouts",
            "Predictions that ran past the timeout",
            [VERSION],
            registry=r,
        )
        self.backend_calls = Counter(
            "mlreg_tfserving_calls",
            "gRPC calls to TensorFlow Serving, by method and status code",
            ["method", "code", VERSION],
            registry=r,
        )
        self.swaps = Counter(
            "mlreg_model_swaps",
            "Follow mode: versions the followed URI moved to, by outcome (swapped, failed, "
            "refused: incompatible signature)",
            ["result", VERSION],
            registry=r,
        )
        self.predictions_logged = Counter(
            "mlreg_predictions_logged",
            "Sampled requests written to the prediction log",
            [VERSION],
            registry=r,
        )
        self.predictions_dropped = Counter(
            "mlreg_prediction_log_dropped",
            "Sampled requests dropped by the prediction log (queue full or the sink failing)",
            ["reason", VERSION],
            registry=r,
        )

    def of(self, version: str) -> VersionMetrics:
        """The metrics one served version writes to."""
        return VersionMetrics(
            version=version,
            batch_size=self.batch_size.labels(version),
            batch_rows=self.batch_rows.labels(version),
            timeouts=self.timeouts.labels(version),
            metrics=self,
        )


@dataclass(frozen=True)
class VersionMetrics:
    """The children of the per-version metrics, bound once per loaded version."""

    version: str
    batch_size: Histogram
    batch_rows: Histogram
    timeouts: Counter
    metrics: Metrics

    def backend_call(self, method: str, code: str) -> None:
        self.metrics.backend_calls.labels(method, code, self.version).inc()


__all__ = ["VERSION", "Metrics", "VersionMetrics"]
