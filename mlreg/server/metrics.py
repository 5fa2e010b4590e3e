"""The registry server's metrics: HTTP traffic and the database connection pool."""

from __future__ import annotations

from prometheus_client import Gauge

from mlreg.web.metrics import HttpMetrics


class ServerMetrics(HttpMetrics):
    def __init__(self, multiprocess_dir: str | None = None) -> None:
        super().__init__("mlreg_server", multiprocess_dir)
        self.pool_in_use = Gauge(
            "mlreg_server_db_connections_in_use",
            "Database connections checked out of the pool",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.pool_size = Gauge(
            "mlreg_server_db_pool_size",
            "Database connections the pool keeps open",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
