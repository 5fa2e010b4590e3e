"""Operational routes: liveness, readiness, metrics, and the API's own description."""

from __future__ import annotations

import os

from flask import Response, current_app
from sqlalchemy.pool import QueuePool

from mlreg.errors import StoreError
from mlreg.server import permissions as perm
from mlreg.server.api import Api, ok
from mlreg.server.openapi import document
from mlreg.server.routes import api, services
from mlreg.store import migrate
from mlreg.version import __version__

#: Operational routes outside /api/v1 (open: probes and scrapes carry no registry data).
ops = Api("", lambda: 0)


@ops.route("GET", "/health", permission=perm.PUBLIC, summary="Alive.", tag="ops")
def health() -> Response:
    """Alive: the process answers (nothing else is checked)."""
    return ok({"status": "alive", "pid": os.getpid(), "version": __version__})


@ops.route(
    "GET",
    "/ready",
    permission=perm.PUBLIC,
    summary="Database reachable, schema current.",
    tag="ops",
)
def ready() -> Response:
    """Ready: the database answers and its schema is the one this mlreg needs."""
    db = services().registry.store.db
    try:
        current = migrate.current_revision(db.engine)
    except Exception as e:  # any driver error means "not ready", said in one line
        raise StoreError(f"the database does not answer: {type(e).__name__}") from None
    head = migrate.head_revision()
    if current != head:
        raise StoreError(
            f"the database is at schema revision {current}, this server needs {head}; "
            "run `mlreg db upgrade`"
        )
    return ok({"status": "ready", "schema": current})


@ops.route("GET", "/metrics", permission=perm.PUBLIC, summary="Prometheus metrics.", tag="ops")
def metrics() -> Response:
    m = current_app.extensions["mlreg.server.metrics"]
    pool = services().registry.store.db.engine.pool
    if isinstance(pool, QueuePool):  # the pool of file databases and servers
        m.pool_in_use.set(pool.checkedout())
        m.pool_size.set(pool.size())
    return Response(m.render(), content_type=m.content_type)


@api.route(
    "GET",
    "/openapi.json",
    permission=perm.PUBLIC,
    summary="This document: every route of /api/v1, its parameters, bodies and permissions.",
    tag="meta",
    response={"type": "object"},
)
def openapi() -> Response:
    return ok(document(api))
