"""The server's routes: ``/api/v1`` (registry, tracking, artifacts) and the operational ones.

Each module declares its routes on :data:`api` with their permissions and schemas; the app
factory registers them and builds the OpenAPI document from the same table.
"""

from __future__ import annotations

from flask import current_app, g, request

from mlreg.server.api import Api
from mlreg.server.services import Services

API_PREFIX = "/api/v1"
#: Who the caller says they are when the server runs without authentication.
USER_HEADER = "X-Mlreg-User"
ANONYMOUS = "anonymous"

api = Api(API_PREFIX, lambda: current_app.config["MLREG_MAX_REQUEST_BYTES"])


def services() -> Services:
    return current_app.extensions["mlreg.server"]


def acting_user() -> str:
    """The user a request acts as (authentication sets ``g.user``; else the client's claim)."""
    user = g.get("user")
    if user is None:
        claimed = request.headers.get(USER_HEADER, "").strip()
        user = claimed[:256] if claimed and claimed.isprintable() else ANONYMOUS
        g.user = user
    return user


def request_id() -> str | None:
    """The client's idempotency key for a write it may retry (``Idempotency-Key``)."""
    key = request.headers.get("Idempotency-Key", "").strip()
    return key[:64] if key else None
