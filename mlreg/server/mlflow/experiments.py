"""MLflow's experiment endpoints (``/mlflow/experiments/…``) over the tracking service."""

from __future__ import annotations

from typing import Any

from flask import Response

from mlreg.errors import AlreadyExists, ExperimentNotFound, InvalidInput
from mlreg.server import permissions as perm
from mlreg.server.mlflow import convert
from mlreg.server.mlflow.table import (
    INT64,
    KEY_VALUE,
    STRING,
    as_int,
    enum,
    error_answer,
    message,
    mlflow_api,
    repeated,
    required,
)
from mlreg.server.permissions import Level
from mlreg.server.routes.tracking import tracking
from mlreg.store.pages import MAX_PAGE, offset_of, page_token
from mlreg.tracking.service import TrackingService
from mlreg.tracking.store import DEFAULT_EXPERIMENT, DEFAULT_EXPERIMENT_ID

#: Where MLflow's experiment requests name their experiment.
EXPERIMENT_REF = perm.message("experiment_id")

VIEW_TYPE = enum("ACTIVE_ONLY", "DELETED_ONLY", "ALL")
#: MLflow's order when none is asked for: newest first.
DEFAULT_ORDER = ["creation_time DESC", "experiment_id ASC"]


def with_default(service: TrackingService) -> TrackingService:
    """The service, once the default experiment exists (MLflow's server makes it at start-up,
    and its clients count on it)."""
    service.default_experiment_id()
    return service


def _experiment(experiment_id: str) -> dict[str, Any]:
    service = tracking()
    if experiment_id == DEFAULT_EXPERIMENT_ID:
        with_default(service)
    return convert.experiment(service.get_experiment(experiment_id))


@mlflow_api.route(
    "POST",
    "/mlflow/experiments/create",
    permission=perm.server(Level.EDIT),
    summary="Create an experiment (its artifacts go through the server: mlflow-artifacts:/<id>).",
    request_message=message(
        {"name": STRING, "artifact_location": STRING, "tags": repeated(KEY_VALUE)}, ["name"]
    ),
)
def create_experiment(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "name")
    if msg.get("artifact_location"):
        raise InvalidInput(
            "artifact_location: mlreg server keeps every experiment's artifacts itself (they "
            "are reached through mlflow-artifacts:/<experiment id>); leave it out"
        )
    tags = {t["key"]: t.get("value", "") for t in msg.get("tags") or []}
    return {"experiment_id": tracking().create_experiment(msg["name"], tags)}


@mlflow_api.route(
    "POST",
    "/mlflow/experiments/search",
    permission=perm.server(Level.READ),
    summary="Search experiments (filter on name, tags, creation_time, last_update_time).",
    request_message=message(
        {
            "max_results": INT64,
            "page_token": STRING,
            "filter": STRING,
            "order_by": repeated(STRING),
            "view_type": VIEW_TYPE,
        }
    ),
)
def search_experiments(msg: dict[str, Any]) -> dict[str, Any]:
    # MLflow takes up to 50000 a page; a page here is at most 1000 (the token says there is more).
    max_results = min(as_int(msg, "max_results", 1000, 1, 50_000), MAX_PAGE)
    page = with_default(tracking()).search_experiments(
        None,
        max_results,
        offset_of(msg.get("page_token")),
        filter_string=msg.get("filter"),
        order_by=msg.get("order_by") or DEFAULT_ORDER,
        view=msg.get("view_type"),
    )
    doc: dict[str, Any] = {"experiments": [convert.experiment(e) for e in page.items]}
    if page.next_offset is not None:
        doc["next_page_token"] = page_token(page.next_offset)
    return doc


mlflow_api.route(
    "GET",
    "/mlflow/experiments/search",
    permission=perm.server(Level.READ),
    summary="Search experiments (the same, with the fields in the query string).",
    request_message=message(
        {
            "max_results": INT64,
            "page_token": STRING,
            "filter": STRING,
            "order_by": repeated(STRING),
            "view_type": VIEW_TYPE,
        }
    ),
)(search_experiments)


@mlflow_api.route(
    "GET",
    "/mlflow/experiments/get",
    permission=perm.experiment(Level.READ, ref=EXPERIMENT_REF),
    summary="One experiment, deleted or not.",
    request_message=message({"experiment_id": STRING}, ["experiment_id"]),
)
def get_experiment(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "experiment_id")
    return {"experiment": _experiment(msg["experiment_id"])}


@mlflow_api.route(
    "GET",
    "/mlflow/experiments/get-by-name",
    permission=perm.experiment_named(Level.READ, perm.message("experiment_name")),
    summary="One experiment by its name, deleted or not.",
    request_message=message({"experiment_name": STRING}, ["experiment_name"]),
)
def get_experiment_by_name(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "experiment_name")
    name = msg["experiment_name"]
    service = tracking()
    if name == DEFAULT_EXPERIMENT:
        with_default(service)
    found = service.get_experiment_by_name(name)
    if found is None:
        raise ExperimentNotFound(f"experiment {name!r} does not exist")
    return {"experiment": convert.experiment(found)}


@mlflow_api.route(
    "POST",
    "/mlflow/experiments/delete",
    permission=perm.experiment(Level.MANAGE, ref=EXPERIMENT_REF),
    summary="Mark an experiment deleted (it and its runs stay, restorable).",
    request_message=message({"experiment_id": STRING}, ["experiment_id"]),
)
def delete_experiment(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "experiment_id")
    tracking().delete_experiment(msg["experiment_id"])
    return {}


@mlflow_api.route(
    "POST",
    "/mlflow/experiments/restore",
    permission=perm.experiment(Level.MANAGE, ref=EXPERIMENT_REF),
    summary="Restore a deleted experiment.",
    request_message=message({"experiment_id": STRING}, ["experiment_id"]),
)
def restore_experiment(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "experiment_id")
    tracking().restore_experiment(msg["experiment_id"])
    return {}


@mlflow_api.route(
    "POST",
    "/mlflow/experiments/update",
    permission=perm.experiment(Level.MANAGE, ref=EXPERIMENT_REF),
    summary="Rename an experiment.",
    request_message=message({"experiment_id": STRING, "new_name": STRING}, ["experiment_id"]),
)
def update_experiment(msg: dict[str, Any]) -> dict[str, Any] | Response:
    required(msg, "experiment_id", "new_name")
    try:
        tracking().rename_experiment(msg["experiment_id"], msg["new_name"])
    except AlreadyExists as e:  # MLflow's code for this one call (creating says ALREADY_EXISTS)
        return error_answer("BAD_REQUEST", 400, e.message)
    return {}


@mlflow_api.route(
    "POST",
    "/mlflow/experiments/set-experiment-tag",
    permission=perm.experiment(Level.EDIT, ref=EXPERIMENT_REF),
    summary="Set a tag of an experiment.",
    request_message=message(
        {"experiment_id": STRING, "key": STRING, "value": STRING}, ["experiment_id", "key"]
    ),
)
def set_experiment_tag(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "experiment_id", "key")
    tracking().set_experiment_tag(msg["experiment_id"], msg["key"], msg.get("value", ""))
    return {}


@mlflow_api.route(
    "POST",
    "/mlflow/experiments/delete-experiment-tag",
    permission=perm.experiment(Level.EDIT, ref=EXPERIMENT_REF),
    summary="Remove a tag of an experiment.",
    request_message=message({"experiment_id": STRING, "key": STRING}, ["experiment_id", "key"]),
)
def delete_experiment_tag(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "experiment_id", "key")
    tracking().delete_experiment_tag(msg["experiment_id"], msg["key"])
    return {}
