"""The registry and tracking server's Flask app factory."""

from __future__ import annotations

from flask import Flask

from mlreg.server.metrics import ServerMetrics
from mlreg.server.routes import api, meta, registry, tracking  # noqa: F401  (declare routes)
from mlreg.server.services import Services
from mlreg.server.settings import ServerSettings
from mlreg.web.http import HttpConfig, install

ACCESS_LOGGER = "mlreg.server.access"


def create_app(
    settings: ServerSettings,
    services: Services | None = None,
    metrics: ServerMetrics | None = None,
) -> Flask:
    """Build the server; without ``services`` it opens the store its settings name.

    Raises StoreError when the database cannot be used (unreachable, or an old schema: the
    server never upgrades it by itself; ``mlreg db upgrade`` does).
    """
    app = Flask("mlreg.server")
    # "a//b" must reach the routes as it is (and be refused there), not be answered with a
    # redirect to "a/b" that a client may follow with its upload.
    app.url_map.merge_slashes = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config["MLREG_MAX_REQUEST_BYTES"] = settings.max_request_bytes
    app.config["MLREG_MAX_UPLOAD_BYTES"] = settings.max_upload_bytes
    metrics = metrics or ServerMetrics()
    app.extensions["mlreg.server"] = services or Services.open(settings.store)
    app.extensions["mlreg.server.metrics"] = metrics
    app.extensions["mlreg.server.settings"] = settings
    api.mount(app, "api_v1")
    meta.ops.mount(app, "ops")
    install(
        app,
        HttpConfig(
            access_logger=ACCESS_LOGGER,
            max_request_bytes=settings.max_request_bytes,
            max_request_setting="MLREG_MAX_REQUEST_BYTES",
            quiet_paths=frozenset(["/health", "/ready", "/metrics"]),
            metrics=metrics,
        ),
    )
    return app
