"""The server's routes: ``/api/v1`` (registry, tracking, artifacts) and the operational ones.

Each module declares its routes on :data:`api` with their permissions and schemas; the app
factory registers them and builds the OpenAPI document from the same table.
"""

from __future__ import annotations

import re

from flask import current_app, g, request

from mlreg.errors import InvalidInput
from mlreg.server.access.entities import Caller
from mlreg.server.api import Api
from mlreg.server.permissions import Level, Resource
from mlreg.server.services import Services
from mlreg.store.journal import Actor

API_PREFIX = "/api/v1"
#: Who the caller says they are when the server runs without authentication.
USER_HEADER = "X-Mlreg-User"
ANONYMOUS = "anonymous"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_KEY = re.compile(r"[A-Za-z0-9._-]{1,48}")

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


def caller() -> Caller | None:
    """The signed-in caller (None when the server runs without authentication)."""
    return g.get("caller")


def can(level: Level, resource: Resource = Resource.SERVER, key: str | None = None) -> bool:
    """Whether the request's caller holds ``level`` on a resource (``key``: a model's name, an
    experiment's id), by the rule the guard enforces before every route
    (:meth:`mlreg.server.access.service.AccessService.can`); True on a server without --auth.
    For pages that show only what their user may do (a promote button, a grant form)."""
    return services().access.can(caller(), level, resource, key)


def acting() -> Actor:
    """What the request's writes are recorded as and its searches may show: the signed-in
    caller (or, without authentication, the user the client names), from its address."""
    actor = g.get("actor")
    if actor is None:
        actor = g.actor = services().access.actor_for(caller(), acting_user(), request.remote_addr)
    return actor


def acting_as(claimed: str | None) -> str:
    """Who an action is recorded as: the user a body names (a script acting for someone),
    unless the server authenticated the caller, whose name then always wins."""
    if claimed and not g.get("authenticated", False):
        return claimed[:256]
    return acting_user()


def request_id() -> str | None:
    """The client's key for a write it may retry (``Idempotency-Key``): 1-48 of
    ``A-Za-z0-9._-``, e.g. a UUID; InvalidInput for anything else."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not _KEY.fullmatch(key):
        raise InvalidInput(
            f"header {IDEMPOTENCY_HEADER}: expected 1-48 letters, digits, '.', '_' or '-' "
            "(a UUID will do)"
        )
    return key
