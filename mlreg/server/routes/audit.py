"""``/api/v1/audit``: the audit trail (every write: who, when, from where, old and new value),
and a model's state at a moment (which version was in Production then)."""

from __future__ import annotations

from datetime import datetime

from flask import Response

from mlreg.errors import InvalidInput
from mlreg.server import permissions as perm
from mlreg.server.api import ok, query_int, query_str
from mlreg.server.audit import AuditQuery
from mlreg.server.permissions import Level
from mlreg.server.routes import api, caller, services
from mlreg.server.routes.registry import TEXT, _obj, _wrap, registry
from mlreg.store.pages import MAX_PAGE, offset_of, page_token
from mlreg.store.validation import parse_timestamp, validate_name

TAG = "audit"
FILTERS = {
    "user": {"type": "string", "description": "only this user's writes"},
    "action": {"type": "string", "description": "e.g. model_version.stage_changed, or model_*"},
    "since": {"type": "string", "format": "date-time"},
    "until": {"type": "string", "format": "date-time"},
    "max_results": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
    "page_token": {"type": "string"},
}
EVENTS = _obj(
    {
        "events": {"type": "array", "items": {"$ref": "#/components/schemas/AuditEvent"}},
        "next_page_token": TEXT,
    }
)


def _time(name: str) -> datetime | None:
    raw = query_str(name)
    return None if raw is None else parse_timestamp(raw, f"query parameter '{name}'")


def _search(model: str | None = None, experiment: str | None = None) -> Response:
    signed_in = caller()
    if model is not None and signed_in is not None and not signed_in.is_admin:
        # Its managers read a model's trail; a deleted model has none left but the admins.
        registry().get_registered_model(validate_name(model))
    query = AuditQuery(
        model=model,
        experiment=experiment,
        user=query_str("user"),
        action=query_str("action"),
        since=_time("since"),
        until=_time("until"),
    )
    page = services().audit.search(
        query, query_int("max_results", 100, 1, MAX_PAGE), offset_of(query_str("page_token"))
    )
    return ok(
        {
            "events": [e.to_dict() for e in page.items],
            "next_page_token": page_token(page.next_offset),
        }
    )


@api.route(
    "GET",
    "/audit",
    permission=perm.model(Level.MANAGE, ref=perm.query("model", admin_when_absent=True)),
    summary="The audit trail, newest first: a model's (model=, for its managers) or the "
    "whole trail (admins; experiment= narrows it to one experiment).",
    tag=TAG,
    query={
        "model": {"type": "string"},
        "experiment": {"type": "string", "description": "its name"},
        **FILTERS,
    },
    response=EVENTS,
)
def audit() -> Response:
    return _search(query_str("model"), query_str("experiment"))


@api.route(
    "GET",
    "/models/<name>/audit",
    permission=perm.model(Level.MANAGE),
    summary="A model's audit trail (followed through renames), newest first.",
    tag=TAG,
    query=FILTERS,
    response=EVENTS,
)
def model_audit(name: str) -> Response:
    # A deleted model's trail stays readable (by its last name), so the name is checked for
    # its form only: a malformed one is no model that ever was.
    return _search(model=validate_name(name))


@api.route(
    "GET",
    "/experiments/<experiment_id>/audit",
    permission=perm.experiment(Level.MANAGE),
    summary="An experiment's audit trail, newest first.",
    tag=TAG,
    query=FILTERS,
    response=EVENTS,
)
def experiment_audit(experiment_id: str) -> Response:
    name = services().tracking.get_experiment(experiment_id).name
    return _search(experiment=name)


@api.route(
    "GET",
    "/models/<name>/state",
    permission=perm.model(Level.READ),
    summary="The model at a moment (at=, ISO 8601, UTC unless an offset is given): its "
    "versions, the versions in each stage, its aliases.",
    tag=TAG,
    query={"at": {"type": "string", "format": "date-time"}},
    response=_wrap("state", {"$ref": "#/components/schemas/ModelState"}),
)
def model_state(name: str) -> Response:
    validate_name(name)  # the path first: a malformed name is the first thing wrong
    at = _time("at")
    if at is None:
        raise InvalidInput("query parameter 'at': expected an ISO 8601 time, got none")
    return ok({"state": registry().get_model_state(name, at).to_dict()})
