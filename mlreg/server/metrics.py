"""The registry server's metrics: HTTP traffic, the database connection pool, sign-ins and
webhook deliveries."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

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
        self.sign_ins = Counter(
            "mlreg_server_sign_ins",
            "Authentication attempts by method (password, token, session: the web UI's sign-in "
            "cookie) and outcome (ok, refused, rate_limited)",
            ["method", "outcome"],
            registry=self.registry,
        )
        self.webhook_attempts = Counter(
            "mlreg_server_webhook_attempts",
            "Webhook POSTs by outcome (delivered, retry, failed: given up, dropped: its "
            "webhook was deleted meanwhile)",
            ["outcome"],
            registry=self.registry,
        )
        self.webhook_errors = Counter(
            "mlreg_server_webhook_deliverer_errors",
            "Rounds of the webhook deliverer that failed (e.g. the database was unavailable)",
            registry=self.registry,
        )
