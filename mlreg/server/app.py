"""The registry and tracking server's Flask app factory."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from mlreg.server import mlflow
from mlreg.server.access.guard import install_guard
from mlreg.server.access.service import LoginPolicy
from mlreg.server.metrics import ServerMetrics
from mlreg.server.permissions import Level, Permission
from mlreg.server.routes import (  # noqa: F401  (declare routes)
    access,
    api,
    audit,
    can,
    logged_models,
    meta,
    registry,
    tracking,
    webhooks,
)
from mlreg.server.services import Services
from mlreg.server.settings import ServerSettings
from mlreg.server.ui import site
from mlreg.server.ui.access import set_policy
from mlreg.server.webhooks.deliverer import Deliverer, DeliveryPolicy
from mlreg.web.http import HttpConfig, install
from mlreg.web.routing import App

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
    app = App("mlreg.server", static_folder=None)  # the UI declares its static route
    # "a//b" must reach the routes as it is (and be refused there), not be answered with a
    # redirect to "a/b" that a client may follow with its upload.
    app.url_map.merge_slashes = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config["MLREG_MAX_REQUEST_BYTES"] = settings.max_request_bytes
    app.config["MLREG_MAX_UPLOAD_BYTES"] = settings.max_upload_bytes
    metrics = metrics or ServerMetrics()
    services = services or Services.open(
        settings.store, login_policy(settings), Level[settings.default_permission]
    )
    services.access.metrics = metrics
    app.extensions["mlreg.server"] = services
    app.extensions["mlreg.server.metrics"] = metrics
    app.extensions["mlreg.server.settings"] = settings
    api.mount(app, "api_v1")
    meta.ops.mount(app, "ops")
    site.install(app, settings)
    mlflow.register(app)
    install(
        app,
        HttpConfig(
            access_logger=ACCESS_LOGGER,
            max_request_bytes=settings.max_request_bytes,
            max_request_setting="MLREG_MAX_REQUEST_BYTES",
            quiet_paths=frozenset(["/health", "/ready", "/metrics"]),
            metrics=metrics,
            error_page=site.error_page,
        ),
    )
    # After install(): a refused request still gets its request id and its access-log line.
    install_guard(app, settings, services.access)
    if settings.auth:
        # The pages show what the signed-in caller may do, by the rule the guard enforces.
        set_policy(app, _caller_may)
    if settings.proxy_hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops
        )
    if settings.deliver_webhooks and services.deliverer is None:
        services.deliverer = Deliverer(
            services.webhooks,
            DeliveryPolicy(
                poll_seconds=settings.webhook_poll_seconds,
                timeout=settings.webhook_timeout,
                max_attempts=settings.webhook_max_attempts,
                backoff_seconds=settings.webhook_backoff_seconds,
            ),
            metrics,
        ).start()
    return app


def _caller_may(user: str, permission: Permission, resource: str | None) -> bool:
    """The web UI's question, answered for the request's signed-in caller (``user``)."""
    return can(permission.level, permission.resource, resource)


def login_policy(settings: ServerSettings) -> LoginPolicy:
    return LoginPolicy(
        max_failures_per_user=settings.login_max_failures,
        max_failures_per_address=settings.login_max_failures_per_address,
        window_seconds=settings.login_window_seconds,
        token_days=settings.token_days,
    )
