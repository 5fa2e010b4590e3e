"""``/api/v1/experiments`` and ``/api/v1/runs``: experiments, runs, what runs log, artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Response, current_app, request

from mlreg.errors import PayloadTooLarge
from mlreg.server import permissions as perm
from mlreg.server.api import ok, query_int, query_str, require_media_type
from mlreg.server.permissions import Level
from mlreg.server.routes import acting_user, api, request_id, services
from mlreg.server.routes.registry import TAGS, TEXT, _obj, _wrap
from mlreg.server.streams import send_stream
from mlreg.store.files import CHUNK
from mlreg.store.pages import MAX_PAGE, offset_of, page_token
from mlreg.store.validation import safe_relpath
from mlreg.tracking.entities import Metric, RunStatus, number_from_json
from mlreg.tracking.service import MAX_SEARCH, TrackingService

TAG = "tracking"
EXPERIMENT = {"$ref": "#/components/schemas/Experiment"}
RUN = {"$ref": "#/components/schemas/Run"}
#: The range of the database's 64-bit integer columns (steps, timestamps).
INT64 = {"minimum": -(2**63), "maximum": 2**63 - 1}
NUMBER = {"oneOf": [{"type": "number"}, {"enum": ["NaN", "Infinity", "-Infinity"]}]}
METRIC = _obj(
    {
        "key": {"type": "string"},
        "value": NUMBER,
        "step": {"type": ["integer", "null"], **INT64},
        "timestamp": {"type": ["integer", "null"], **INT64},
    },
    ["key", "value"],
)


def tracking() -> TrackingService:
    """The tracking service, acting as the caller."""
    return services().tracking_as(acting_user())


# --- experiments ----------------------------------------------------------------------------


@api.route(
    "POST",
    "/experiments",
    permission=perm.server(Level.EDIT),
    summary="Create an experiment.",
    tag=TAG,
    body=_obj({"name": {"type": "string"}, "tags": TAGS}, ["name"]),
    response=_wrap("experiment", EXPERIMENT),
    status=201,
)
def create_experiment(body: dict[str, Any]) -> Response:
    service = tracking()
    experiment_id = service.create_experiment(body["name"], body.get("tags"))
    return ok({"experiment": service.get_experiment(experiment_id).to_dict()}, 201)


@api.route(
    "GET",
    "/experiments",
    permission=perm.server(Level.READ),
    summary="List experiments (name: exact; name_like: SQL LIKE pattern), a page at a time.",
    tag=TAG,
    query={
        "name": {"type": "string"},
        "name_like": {"type": "string"},
        "max_results": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
        "page_token": {"type": "string"},
    },
    response=_obj({"experiments": {"type": "array", "items": EXPERIMENT}, "next_page_token": TEXT}),
)
def search_experiments() -> Response:
    service = tracking()
    name = query_str("name")
    if name is not None:
        found = service.get_experiment_by_name(name)
        return ok({"experiments": [found.to_dict()] if found else [], "next_page_token": None})
    page = service.search_experiments(
        query_str("name_like"),
        query_int("max_results", 100, 1, MAX_PAGE),
        offset_of(query_str("page_token")),
    )
    return ok(
        {
            "experiments": [e.to_dict() for e in page.items],
            "next_page_token": page_token(page.next_offset),
        }
    )


@api.route(
    "GET",
    "/experiments/<experiment_id>",
    permission=perm.experiment(Level.READ),
    summary="One experiment with its tags.",
    tag=TAG,
    response=_wrap("experiment", EXPERIMENT),
)
def get_experiment(experiment_id: str) -> Response:
    return ok({"experiment": tracking().get_experiment(experiment_id).to_dict()})


@api.route(
    "PUT",
    "/experiments/<experiment_id>/tags/<path:key>",
    permission=perm.experiment(Level.EDIT),
    summary="Set a tag of an experiment.",
    tag=TAG,
    body=_obj({"value": {"type": "string"}}, ["value"]),
    response=_obj({}),
)
def set_experiment_tag(experiment_id: str, key: str, body: dict[str, Any]) -> Response:
    tracking().set_experiment_tag(experiment_id, key, body["value"])
    return ok({})


# --- runs -------------------------------------------------------------------------------------


@api.route(
    "POST",
    "/runs",
    permission=perm.experiment(Level.EDIT, arg="experiment_id"),
    summary="Start a run in an experiment (the Default one if none is given).",
    tag=TAG,
    body=_obj(
        {
            "experiment_id": TEXT,
            "run_name": TEXT,
            "tags": TAGS,
            "parent_run_id": TEXT,
        }
    ),
    response=_wrap("run", RUN),
    status=201,
)
def create_run(body: dict[str, Any]) -> Response:
    experiment_id = body.get("experiment_id")
    service = tracking()
    if experiment_id is not None:
        service.get_experiment(experiment_id)  # ExperimentNotFound before anything is made
    run = service.create_run(
        experiment_id, body.get("run_name"), body.get("tags"), body.get("parent_run_id")
    )
    return ok({"run": run.to_dict()}, 201)


@api.route(
    "GET",
    "/runs/<run_id>",
    permission=perm.run(Level.READ),
    summary="One run: params, latest metrics, tags, status.",
    tag=TAG,
    response=_wrap("run", RUN),
)
def get_run(run_id: str) -> Response:
    return ok({"run": tracking().get_run(run_id).to_dict()})


@api.route(
    "PATCH",
    "/runs/<run_id>",
    permission=perm.run(Level.EDIT),
    summary="End a run (FINISHED, FAILED, KILLED) or take it up again (RUNNING).",
    tag=TAG,
    body=_obj({"status": {"enum": [s.value for s in RunStatus]}}, ["status"]),
    response=_wrap("run", RUN),
)
def update_run(run_id: str, body: dict[str, Any]) -> Response:
    service = tracking()
    if body["status"] == RunStatus.RUNNING.value:
        run = service.reopen(run_id)
    else:
        service.set_terminated(run_id, body["status"])
        run = service.get_run(run_id)
    return ok({"run": run.to_dict()})


@api.route(
    "POST",
    "/runs/<run_id>/batch",
    permission=perm.run(Level.EDIT),
    summary="Log metrics, params and tags in one transaction. Send an Idempotency-Key header: "
    "a retry with the same key writes nothing twice.",
    tag=TAG,
    body=_obj(
        {
            "metrics": {"type": "array", "items": METRIC, "maxItems": 10_000},
            "params": TAGS,
            "tags": TAGS,
        }
    ),
    response=_obj({}),
)
def log_batch(run_id: str, body: dict[str, Any]) -> Response:
    metrics = [
        (m["key"], number_from_json(m["value"]), m.get("step"), m.get("timestamp"))
        for m in body.get("metrics") or []
    ]
    tracking().log_batch(
        run_id, metrics, body.get("params"), body.get("tags"), request_id=request_id()
    )
    return ok({})


@api.route(
    "GET",
    "/runs/<run_id>/metrics/<path:key>",
    permission=perm.run(Level.READ),
    summary="Every value logged for one metric key, by step then time.",
    tag=TAG,
    response=_obj({"metrics": {"type": "array", "items": {"$ref": "#/components/schemas/Metric"}}}),
)
def metric_history(run_id: str, key: str) -> Response:
    history: list[Metric] = tracking().get_metric_history(run_id, key)
    return ok({"metrics": [m.to_dict() for m in history]})


@api.route(
    "POST",
    "/runs/search",
    permission=perm.server(Level.READ),
    summary="Search runs of experiments with MLflow's filter syntax "
    "(metrics.val_loss < 0.5 and params.opt = 'adam') and order_by clauses.",
    tag=TAG,
    body=_obj(
        {
            "experiment_ids": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "filter": TEXT,
            "order_by": {"type": "array", "items": {"type": "string"}},
            "max_results": {"type": "integer", "minimum": 1, "maximum": MAX_SEARCH},
            "page_token": TEXT,
        },
        ["experiment_ids"],
    ),
    response=_obj({"runs": {"type": "array", "items": RUN}, "next_page_token": TEXT}),
)
def search_runs(body: dict[str, Any]) -> Response:
    service = tracking()
    for experiment_id in body["experiment_ids"]:
        service.get_experiment(experiment_id)  # a typo is a 404, not an empty page
    page = service.search_runs_page(
        body["experiment_ids"],
        body.get("filter"),
        body.get("order_by"),
        body.get("max_results") or 1000,
        offset_of(body.get("page_token")),
    )
    return ok(
        {"runs": [r.to_dict() for r in page.items], "next_page_token": page_token(page.next_offset)}
    )


# --- run artifacts ----------------------------------------------------------------------------


@api.route(
    "GET",
    "/runs/<run_id>/artifacts",
    permission=perm.run(Level.READ),
    summary="The artifacts directly under a path of a run (path: a directory; none: the root).",
    tag=TAG,
    query={"path": {"type": "string"}},
    response=_obj({"files": {"type": "array", "items": {"$ref": "#/components/schemas/File"}}}),
)
def list_artifacts(run_id: str) -> Response:
    files = tracking().list_artifacts(run_id, query_str("path"))
    return ok({"files": [{"path": f.path, "is_dir": f.is_dir, "size": f.size} for f in files]})


@api.route(
    "GET",
    "/runs/<run_id>/artifacts/<path:path>",
    permission=perm.run(Level.READ),
    summary="Download one artifact file (HTTP Range requests supported).",
    tag=TAG,
    raw_response=True,
)
def download_artifact(run_id: str, path: str) -> Response:
    service = tracking()
    run = service.get_run(run_id).info
    safe_relpath(path)
    return send_stream(lambda start, end: service.artifacts.open(run, path, start, end), path)


@api.route(
    "PUT",
    "/runs/<run_id>/artifacts/<path:path>",
    permission=perm.run(Level.EDIT),
    summary="Upload one artifact file (the body is its bytes, streamed).",
    tag=TAG,
    raw_body="application/octet-stream",
    response=_obj({"path": {"type": "string"}, "size": {"type": "integer"}}),
)
def upload_artifact(run_id: str, path: str) -> Response:
    require_media_type("application/octet-stream")
    service = tracking()
    service.get_run(run_id)  # RunNotFound before reading the body
    parent, _, name = safe_relpath(path).rpartition("/")
    limit = current_app.config["MLREG_MAX_UPLOAD_BYTES"]
    with services().scratch() as scratch:
        target = scratch / name
        size = _receive(target, limit)
        service.log_artifact(run_id, target, parent or None)
    return ok({"path": path, "size": size})


@api.route(
    "DELETE",
    "/runs/<run_id>/artifacts/<path:path>",
    permission=perm.run(Level.EDIT),
    summary="Remove an artifact file or directory of a run.",
    tag=TAG,
    response=_obj({}),
)
def delete_artifact(run_id: str, path: str) -> Response:
    service = tracking()
    service.artifacts.delete(service.get_run(run_id).info, safe_relpath(path))
    return ok({})


def _receive(target: Path, limit: int) -> int:
    """Stream the request body into ``target``; PayloadTooLarge past ``limit`` bytes."""
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge.body(length, limit, "MLREG_MAX_UPLOAD_BYTES")
    size = 0
    with target.open("wb") as out:
        while chunk := request.stream.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge.body(None, limit, "MLREG_MAX_UPLOAD_BYTES")
            out.write(chunk)
    return size
