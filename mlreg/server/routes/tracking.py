"""``/api/v1/experiments`` and ``/api/v1/runs``: experiments, runs, what runs log, artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Response, current_app, request

from mlreg.errors import PayloadTooLarge
from mlreg.server import permissions as perm
from mlreg.server.api import ok, query_int, query_str, require_media_type
from mlreg.server.permissions import Level, Resource
from mlreg.server.routes import acting, api, request_id, services
from mlreg.server.routes.registry import TAGS, TEXT, _obj, _wrap
from mlreg.server.streams import send_stream
from mlreg.store.files import CHUNK
from mlreg.store.pages import MAX_PAGE, offset_of, page_token
from mlreg.store.validation import safe_relpath
from mlreg.tracking.artifacts import ArtifactOwner
from mlreg.tracking.entities import (
    DatasetInput,
    Metric,
    ModelOutput,
    RunStatus,
    ViewType,
    number_from_json,
)
from mlreg.tracking.service import MAX_SEARCH, TrackingService
from mlreg.tracking.store import DEFAULT_EXPERIMENT

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
        "model_id": TEXT,
        "dataset_name": TEXT,
        "dataset_digest": TEXT,
    },
    ["key", "value"],
)
VIEW = {"enum": [v.value for v in ViewType]}
DATASET_INPUT = _obj(
    {
        "dataset": _obj(
            {
                "name": {"type": "string"},
                "digest": {"type": "string"},
                "source_type": {"type": "string"},
                "source": {"type": "string"},
                "schema": TEXT,
                "profile": TEXT,
            },
            ["name", "digest", "source_type", "source"],
        ),
        "tags": TAGS,
    },
    ["dataset"],
)
MODEL_OUTPUT = _obj({"model_id": {"type": "string"}, "step": {"type": "integer"}}, ["model_id"])


def tracking() -> TrackingService:
    """The tracking service, acting as the caller."""
    return services().tracking_as(acting())


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
    summary="List experiments (name: exact; name_like: SQL LIKE pattern; filter: MLflow's "
    "syntax on name, tags, creation_time, last_update_time), a page at a time.",
    tag=TAG,
    query={
        "name": {"type": "string"},
        "name_like": {"type": "string"},
        "filter": {"type": "string"},
        "order_by": {"type": "string", "description": "e.g. 'creation_time DESC', repeatable"},
        "view": VIEW,
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
        filter_string=query_str("filter"),
        order_by=request.args.getlist("order_by"),
        view=query_str("view"),
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
    "PATCH",
    "/experiments/<experiment_id>",
    permission=perm.experiment(Level.MANAGE),
    summary="Rename an experiment.",
    tag=TAG,
    body=_obj({"name": {"type": "string"}}, ["name"]),
    response=_wrap("experiment", EXPERIMENT),
)
def rename_experiment(experiment_id: str, body: dict[str, Any]) -> Response:
    return ok({"experiment": tracking().rename_experiment(experiment_id, body["name"]).to_dict()})


@api.route(
    "DELETE",
    "/experiments/<experiment_id>",
    permission=perm.experiment(Level.MANAGE),
    summary="Mark an experiment deleted (it and its runs stay, restorable; searches leave them "
    "out unless asked).",
    tag=TAG,
    response=_wrap("experiment", EXPERIMENT),
)
def delete_experiment(experiment_id: str) -> Response:
    return ok({"experiment": tracking().delete_experiment(experiment_id).to_dict()})


@api.route(
    "POST",
    "/experiments/<experiment_id>/restore",
    permission=perm.experiment(Level.MANAGE),
    summary="Restore a deleted experiment.",
    tag=TAG,
    response=_wrap("experiment", EXPERIMENT),
)
def restore_experiment(experiment_id: str) -> Response:
    return ok({"experiment": tracking().restore_experiment(experiment_id).to_dict()})


@api.route(
    "DELETE",
    "/experiments/<experiment_id>/tags/<path:key>",
    permission=perm.experiment(Level.EDIT),
    summary="Remove a tag of an experiment.",
    tag=TAG,
    response=_obj({}),
)
def delete_experiment_tag(experiment_id: str, key: str) -> Response:
    tracking().delete_experiment_tag(experiment_id, key)
    return ok({})


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
    permission=perm.experiment(
        Level.EDIT,
        ref=perm.body(
            "experiment_id",
            absent=DEFAULT_EXPERIMENT,
            absent_resource=Resource.EXPERIMENT_NAME,
        ),
    ),
    summary="Start a run in an experiment (the Default one if none is given).",
    tag=TAG,
    body=_obj(
        {
            "experiment_id": TEXT,
            "run_name": TEXT,
            "tags": TAGS,
            "parent_run_id": TEXT,
            "start_time": {"type": ["integer", "null"], "minimum": 0},
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
        experiment_id,
        body.get("run_name"),
        body.get("tags"),
        body.get("parent_run_id"),
        start_time=body.get("start_time"),
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
    summary="End a run (FINISHED, FAILED, KILLED; at end_time, now by default), take it up "
    "again (RUNNING), or rename it.",
    tag=TAG,
    body=_obj(
        {
            "status": {"enum": [s.value for s in RunStatus]},
            "end_time": {"type": ["integer", "null"], "minimum": 0},
            "run_name": TEXT,
        }
    ),
    response=_wrap("run", RUN),
)
def update_run(run_id: str, body: dict[str, Any]) -> Response:
    run = tracking().update_run(
        run_id,
        status=body.get("status"),
        end_time=body.get("end_time"),
        run_name=body.get("run_name"),
    )
    return ok({"run": run.to_dict()})


@api.route(
    "DELETE",
    "/runs/<run_id>",
    permission=perm.run(Level.MANAGE),
    summary="Mark a run deleted (kept and restorable; searches leave it out unless asked).",
    tag=TAG,
    response=_obj({}),
)
def delete_run(run_id: str) -> Response:
    tracking().delete_run(run_id)
    return ok({})


@api.route(
    "POST",
    "/runs/<run_id>/restore",
    permission=perm.run(Level.MANAGE),
    summary="Restore a deleted run.",
    tag=TAG,
    response=_obj({}),
)
def restore_run(run_id: str) -> Response:
    tracking().restore_run(run_id)
    return ok({})


@api.route(
    "DELETE",
    "/runs/<run_id>/tags/<path:key>",
    permission=perm.run(Level.EDIT),
    summary="Remove a tag of a run.",
    tag=TAG,
    response=_obj({}),
)
def delete_run_tag(run_id: str, key: str) -> Response:
    tracking().delete_tag(run_id, key)
    return ok({})


@api.route(
    "POST",
    "/runs/<run_id>/inputs",
    permission=perm.run(Level.EDIT),
    summary="Record the datasets (name, digest, source; with tags such as the context) and "
    "the logged models a run used.",
    tag=TAG,
    body=_obj(
        {
            "datasets": {"type": "array", "items": DATASET_INPUT, "maxItems": 1000},
            "models": {"type": "array", "items": {"type": "string"}, "maxItems": 1000},
        }
    ),
    response=_obj({}),
)
def log_inputs(run_id: str, body: dict[str, Any]) -> Response:
    tracking().log_inputs(
        run_id,
        [DatasetInput.from_dict(d) for d in body.get("datasets") or []],
        list(body.get("models") or []),
    )
    return ok({})


@api.route(
    "POST",
    "/runs/<run_id>/outputs",
    permission=perm.run(Level.EDIT),
    summary="Record the logged models a run produced (and at which step).",
    tag=TAG,
    body=_obj({"models": {"type": "array", "items": MODEL_OUTPUT, "maxItems": 1000}}, ["models"]),
    response=_obj({}),
)
def log_outputs(run_id: str, body: dict[str, Any]) -> Response:
    outputs = [ModelOutput(m["model_id"], m.get("step") or 0) for m in body["models"]]
    tracking().log_outputs(run_id, outputs)
    return ok({})


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
            "allow_ended": {
                "type": "boolean",
                "description": "write to a run that ended too (as MLflow allows)",
            },
        }
    ),
    response=_obj({}),
)
def log_batch(run_id: str, body: dict[str, Any]) -> Response:
    metrics = [
        Metric(
            m["key"],
            number_from_json(m["value"]),
            m.get("timestamp") or 0,
            m.get("step") or 0,
            m.get("model_id"),
            m.get("dataset_name"),
            m.get("dataset_digest"),
        )
        for m in body.get("metrics") or []
    ]
    tracking().log_batch(
        run_id,
        metrics,
        body.get("params"),
        body.get("tags"),
        request_id=request_id(),
        allow_ended=bool(body.get("allow_ended", False)),
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
    permission=perm.experiment(Level.READ, ref=perm.body("experiment_ids")),
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
            "view": VIEW,
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
        body.get("view"),
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
    service = tracking()
    return list_owner_artifacts(service, service.get_run(run_id).info)


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
    return send_owner_artifact(service, service.get_run(run_id).info, path)


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
    owner = service.get_run(run_id).info  # RunNotFound before reading the body
    size = receive_owner_artifact(service, owner, path)
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
    tracking().delete_artifact(run_id, path)
    return ok({})


# --- what run and logged-model artifacts share ------------------------------------------------


def list_owner_artifacts(service: TrackingService, owner: ArtifactOwner) -> Response:
    files = service.list_owner_artifacts(owner, query_str("path"))
    return ok({"files": [{"path": f.path, "is_dir": f.is_dir, "size": f.size} for f in files]})


def send_owner_artifact(service: TrackingService, owner: ArtifactOwner, path: str) -> Response:
    safe_relpath(path)
    return send_stream(lambda start, end: service.artifacts.open(owner, path, start, end), path)


def receive_owner_artifact(service: TrackingService, owner: ArtifactOwner, path: str) -> int:
    """Stream the request body into the owner's artifact ``path``; its size."""
    parent, _, name = safe_relpath(path).rpartition("/")
    limit = current_app.config["MLREG_MAX_UPLOAD_BYTES"]
    with services().scratch() as scratch:
        target = scratch / name
        size = receive(target, limit)
        service.log_owner_file(owner, target, parent or None)
    return size


def receive(target: Path, limit: int) -> int:
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
