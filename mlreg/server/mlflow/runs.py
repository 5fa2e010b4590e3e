"""MLflow's run endpoints (``/mlflow/runs/…``, ``/mlflow/metrics/get-history``,
``/mlflow/artifacts/list``) over the tracking service.

As in MLflow, a run takes metrics and params after it ended (mlreg's own API refuses them).

MLflow keeps a run's name in the tag ``mlflow.runName`` too: setting that tag renames the run
here, and the tag is shown from the name. ``mlflow.parentRunId`` makes the run a nested one.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from mlreg.errors import ArtifactNotFound, InvalidInput
from mlreg.server import permissions as perm
from mlreg.server.mlflow import convert, paths
from mlreg.server.mlflow.convert import PARENT_RUN_TAG, RUN_NAME_TAG
from mlreg.server.mlflow.experiments import VIEW_TYPE
from mlreg.server.mlflow.table import (
    DOUBLE,
    INT32,
    INT64,
    KEY_VALUE,
    STRING,
    as_int,
    enum,
    message,
    mlflow_api,
    repeated,
    required,
)
from mlreg.server.permissions import Level
from mlreg.server.routes import acting, acting_as, services
from mlreg.server.routes.tracking import tracking
from mlreg.store.pages import offset_of, page_token
from mlreg.tracking.artifacts import ArtifactOwner
from mlreg.tracking.entities import (
    Dataset,
    DatasetInput,
    Metric,
    ModelOutput,
    RunStatus,
    number_from_json,
)
from mlreg.tracking.service import MAX_SEARCH, TrackingService

#: Where MLflow's run requests name their run (``run_uuid``: older clients).
RUN_REF = perm.message("run_id", alias="run_uuid")

RUN_STATUS = enum("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
LOGGED_MODELS_TAG = "mlflow.log-model.history"
#: MLflow's limits on one log-batch request.
MAX_BATCH_METRICS, MAX_BATCH_PARAMS, MAX_BATCH_TAGS, MAX_BATCH_TOTAL = 1000, 100, 100, 1000
METRIC = message(
    {
        "key": STRING,
        "value": DOUBLE,
        "timestamp": INT64,
        "step": INT64,
        "model_id": STRING,
        "dataset_name": STRING,
        "dataset_digest": STRING,
    },
    ["key", "value"],
)
RUN_ID = {"run_id": STRING, "run_uuid": STRING}


def run_id_of(msg: dict[str, Any]) -> str:
    """``run_id`` (or the older ``run_uuid``) of a request."""
    run_id = msg.get("run_id") or msg.get("run_uuid")
    if not run_id:
        raise InvalidInput("missing value for required field 'run_id'")
    return str(run_id)


def _tags(items: list[dict[str, Any]] | None) -> dict[str, str]:
    return {t["key"]: t.get("value", "") for t in items or []}


def _metric(doc: dict[str, Any]) -> Metric:
    value = doc["value"]
    return Metric(
        doc["key"],
        number_from_json({"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}.get(value, value))
        if isinstance(value, str)
        else value,
        int(doc.get("timestamp") or 0),
        int(doc.get("step") or 0),
        doc.get("model_id") or None,
        doc.get("dataset_name") or None,
        doc.get("dataset_digest") or None,
    )


def _rename_by_tag(service: TrackingService, run_id: str, tags: dict[str, str]) -> dict[str, str]:
    """Apply ``mlflow.runName`` as the run's name; the other tags to set."""
    name = tags.pop(RUN_NAME_TAG, None)
    if name:
        service.update_run(run_id, run_name=name)
    return tags


@mlflow_api.route(
    "POST",
    "/mlflow/runs/create",
    permission=perm.experiment(Level.EDIT, ref=perm.message("experiment_id", absent="0")),
    summary="Start a run (in the default experiment, id 0, unless one is named).",
    request_message=message(
        {
            "experiment_id": STRING,
            "user_id": STRING,
            "run_name": STRING,
            "start_time": INT64,
            "tags": repeated(KEY_VALUE),
        }
    ),
)
def create_run(msg: dict[str, Any]) -> dict[str, Any]:
    tags = _tags(msg.get("tags"))
    name = msg.get("run_name") or tags.get(RUN_NAME_TAG) or None
    tags.pop(RUN_NAME_TAG, None)
    # The user MLflow's client names (its OS user), unless the server signed the caller in.
    actor = dataclasses.replace(acting(), user=acting_as(msg.get("user_id")))
    service = services().tracking_as(actor)
    start = msg.get("start_time")
    run = service.create_run(
        msg.get("experiment_id") or None,
        name,
        tags,
        tags.get(PARENT_RUN_TAG) or None,
        start_time=int(start) if start not in (None, "", 0, "0") else None,
    )
    return {"run": convert.run(run)}


@mlflow_api.route(
    "POST",
    "/mlflow/runs/update",
    permission=perm.run(Level.EDIT, ref=RUN_REF),
    summary="End a run (FINISHED, FAILED, KILLED at end_time), take it up again, rename it.",
    request_message=message(
        {**RUN_ID, "status": RUN_STATUS, "end_time": INT64, "run_name": STRING}
    ),
)
def update_run(msg: dict[str, Any]) -> dict[str, Any]:
    status = msg.get("status")
    if status == "SCHEDULED":
        raise InvalidInput("status SCHEDULED: mlreg runs are RUNNING, FINISHED, FAILED or KILLED")
    end = msg.get("end_time")
    run = tracking().update_run(
        run_id_of(msg),
        status=RunStatus(status) if status else None,
        end_time=int(end) if end not in (None, "") else None,
        run_name=msg.get("run_name") or None,
    )
    return {"run_info": convert.run_info(run.info, run.data.tags)}


@mlflow_api.route(
    "POST",
    "/mlflow/runs/delete",
    permission=perm.run(Level.MANAGE, ref=RUN_REF),
    summary="Mark a run deleted (kept, restorable; searches leave it out).",
    request_message=message({"run_id": STRING}, ["run_id"]),
)
def delete_run(msg: dict[str, Any]) -> dict[str, Any]:
    tracking().delete_run(run_id_of(msg))
    return {}


@mlflow_api.route(
    "POST",
    "/mlflow/runs/restore",
    permission=perm.run(Level.MANAGE, ref=RUN_REF),
    summary="Restore a deleted run.",
    request_message=message({"run_id": STRING}, ["run_id"]),
)
def restore_run(msg: dict[str, Any]) -> dict[str, Any]:
    tracking().restore_run(run_id_of(msg))
    return {}


@mlflow_api.route(
    "POST",
    "/mlflow/runs/log-metric",
    permission=perm.run(Level.EDIT, ref=RUN_REF),
    summary="Log one metric value (optionally against a logged model and a dataset).",
    request_message=message(
        {**RUN_ID, **METRIC["properties"]},
        ["key", "value"],
    ),
)
def log_metric(msg: dict[str, Any]) -> dict[str, Any]:
    tracking().log_batch(run_id_of(msg), [_metric(msg)], allow_ended=True)
    return {}


@mlflow_api.route(
    "POST",
    "/mlflow/runs/log-parameter",
    permission=perm.run(Level.EDIT, ref=RUN_REF),
    summary="Log one param (a param cannot change once set).",
    request_message=message({**RUN_ID, "key": STRING, "value": STRING}, ["key"]),
)
def log_param(msg: dict[str, Any]) -> dict[str, Any]:
    tracking().log_batch(
        run_id_of(msg), params={msg["key"]: msg.get("value", "")}, allow_ended=True
    )
    return {}


@mlflow_api.route(
    "POST",
    "/mlflow/runs/set-tag",
    permission=perm.run(Level.EDIT, ref=RUN_REF),
    summary="Set a tag of a run (mlflow.runName renames it).",
    request_message=message({**RUN_ID, "key": STRING, "value": STRING}, ["key"]),
)
def set_tag(msg: dict[str, Any]) -> dict[str, Any]:
    service = tracking()
    run_id = run_id_of(msg)
    tags = _rename_by_tag(service, run_id, {msg["key"]: msg.get("value", "")})
    if tags:
        service.log_batch(run_id, tags=tags)
    return {}


@mlflow_api.route(
    "POST",
    "/mlflow/runs/delete-tag",
    permission=perm.run(Level.EDIT, ref=RUN_REF),
    summary="Remove a tag of a run.",
    request_message=message({"run_id": STRING, "key": STRING}, ["run_id", "key"]),
)
def delete_tag(msg: dict[str, Any]) -> dict[str, Any]:
    tracking().delete_tag(run_id_of(msg), msg["key"])
    return {}


@mlflow_api.route(
    "GET",
    "/mlflow/runs/get",
    permission=perm.run(Level.READ, ref=RUN_REF),
    summary="One run: info, params, latest metrics, tags, inputs, outputs.",
    request_message=message(RUN_ID),
)
def get_run(msg: dict[str, Any]) -> dict[str, Any]:
    return {"run": convert.run(tracking().get_run(run_id_of(msg)))}


@mlflow_api.route(
    "POST",
    "/mlflow/runs/search",
    permission=perm.experiment(Level.READ, ref=perm.message("experiment_ids")),
    summary="Search runs of experiments with MLflow's filter and order_by syntax.",
    request_message=message(
        {
            "experiment_ids": repeated(STRING),
            "filter": STRING,
            "run_view_type": VIEW_TYPE,
            "max_results": INT32,
            "order_by": repeated(STRING),
            "page_token": STRING,
        }
    ),
)
def search_runs(msg: dict[str, Any]) -> dict[str, Any]:
    service = tracking()
    experiment_ids = [str(e) for e in msg.get("experiment_ids") or []]
    if not experiment_ids:
        return {"runs": []}  # MLflow's answer to a search of no experiment
    page = service.search_runs_page(
        experiment_ids,
        msg.get("filter") or None,
        msg.get("order_by") or None,
        as_int(msg, "max_results", 1000, 1, MAX_SEARCH),
        offset_of(msg.get("page_token")),
        msg.get("run_view_type"),
    )
    doc: dict[str, Any] = {"runs": [convert.run(r) for r in page.items]}
    if page.next_offset is not None:
        doc["next_page_token"] = page_token(page.next_offset)
    return doc


@mlflow_api.route(
    "GET",
    "/mlflow/metrics/get-history",
    permission=perm.run(Level.READ, ref=RUN_REF),
    summary="Every value logged for one metric of a run, by step then time.",
    request_message=message(
        {**RUN_ID, "metric_key": STRING, "page_token": STRING, "max_results": INT32},
        ["metric_key"],
    ),
)
def get_metric_history(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "metric_key")
    history = tracking().get_metric_history(run_id_of(msg), msg["metric_key"])
    start = offset_of(msg.get("page_token"))
    size = as_int(msg, "max_results", len(history) or 1, 1, 1_000_000_000)
    page = history[start : start + size]
    doc: dict[str, Any] = {"metrics": [convert.metric(m) for m in page]}
    if start + size < len(history):
        doc["next_page_token"] = page_token(start + size)
    return doc


@mlflow_api.route(
    "POST",
    "/mlflow/runs/log-batch",
    permission=perm.run(Level.EDIT, ref=RUN_REF),
    summary="Log metrics, params and tags in one transaction (MLflow's limits: 1000 metrics, "
    "100 params, 100 tags, 1000 in all).",
    request_message=message(
        {
            "run_id": STRING,
            "metrics": repeated(METRIC),
            "params": repeated(KEY_VALUE),
            "tags": repeated(KEY_VALUE),
        }
    ),
)
def log_batch(msg: dict[str, Any]) -> dict[str, Any]:
    metrics = msg.get("metrics") or []
    params = msg.get("params") or []
    tags = msg.get("tags") or []
    for name, items, limit in [
        ("metrics", metrics, MAX_BATCH_METRICS),
        ("params", params, MAX_BATCH_PARAMS),
        ("tags", tags, MAX_BATCH_TAGS),
    ]:
        if len(items) > limit:
            raise InvalidInput(f"a batch takes at most {limit} {name}, got {len(items)}")
    if len(metrics) + len(params) + len(tags) > MAX_BATCH_TOTAL:
        raise InvalidInput(f"a batch takes at most {MAX_BATCH_TOTAL} metrics, params and tags")
    service = tracking()
    run_id = run_id_of(msg)
    service.log_batch(
        run_id,
        [_metric(m) for m in metrics],
        _tags(params),
        _rename_by_tag(service, run_id, _tags(tags)),
        allow_ended=True,
    )
    return {}


@mlflow_api.route(
    "POST",
    "/mlflow/runs/log-model",
    permission=perm.run(Level.EDIT, ref=RUN_REF),
    summary="Record a model logged in a run (MLflow 2): appended to the run's tag "
    "mlflow.log-model.history.",
    request_message=message({"run_id": STRING, "model_json": STRING}, ["run_id", "model_json"]),
)
def log_model(msg: dict[str, Any]) -> dict[str, Any]:
    service = tracking()
    run_id = run_id_of(msg)
    try:
        model = json.loads(msg["model_json"])
    except ValueError:
        raise InvalidInput("model_json: expected a JSON object (the MLmodel's fields)") from None
    if not isinstance(model, dict):
        raise InvalidInput("model_json: expected a JSON object (the MLmodel's fields)")
    history = json.loads(service.get_run(run_id).data.tags.get(LOGGED_MODELS_TAG) or "[]")
    service.log_batch(run_id, tags={LOGGED_MODELS_TAG: json.dumps([*history, model])})
    return {}


DATASET = message(
    {
        "name": STRING,
        "digest": STRING,
        "source_type": STRING,
        "source": STRING,
        "schema": STRING,
        "profile": STRING,
    },
    ["name", "digest", "source_type", "source"],
)


@mlflow_api.route(
    "POST",
    "/mlflow/runs/log-inputs",
    permission=perm.run(Level.EDIT, ref=RUN_REF),
    summary="Record the datasets (with their context tags) and logged models a run used.",
    request_message=message(
        {
            "run_id": STRING,
            "datasets": repeated(message({"tags": repeated(KEY_VALUE), "dataset": DATASET})),
            "models": repeated(message({"model_id": STRING}, ["model_id"])),
        },
        ["run_id"],
    ),
)
def log_inputs(msg: dict[str, Any]) -> dict[str, Any]:
    datasets = [
        DatasetInput(Dataset.from_dict(d["dataset"]), _tags(d.get("tags")))
        for d in msg.get("datasets") or []
        if "dataset" in d
    ]
    models = [m["model_id"] for m in msg.get("models") or []]
    tracking().log_inputs(run_id_of(msg), datasets, models)
    return {}


@mlflow_api.route(
    "POST",
    "/mlflow/runs/outputs",
    permission=perm.run(Level.EDIT, ref=RUN_REF),
    summary="Record the logged models a run produced, and at which step.",
    request_message=message(
        {
            "run_id": STRING,
            "models": repeated(message({"model_id": STRING, "step": INT64}, ["model_id"])),
        },
        ["run_id"],
    ),
)
def log_outputs(msg: dict[str, Any]) -> dict[str, Any]:
    outputs = [ModelOutput(m["model_id"], int(m.get("step") or 0)) for m in msg.get("models") or []]
    tracking().log_outputs(run_id_of(msg), outputs)
    return {}


@mlflow_api.route(
    "GET",
    "/mlflow/artifacts/list",
    permission=perm.run(Level.READ, ref=RUN_REF),
    summary="The artifacts directly under a path of a run (paths relative to its root).",
    request_message=message({**RUN_ID, "path": STRING, "page_token": STRING}),
)
def list_artifacts(msg: dict[str, Any]) -> dict[str, Any]:
    service = tracking()
    info = service.get_run(run_id_of(msg)).info
    files = listing(service, info, msg.get("path") or None, relative_to_root=True)
    return {"root_uri": paths.run_uri(info.experiment_id, info.run_id), "files": files}


def listing(
    service: TrackingService, owner: ArtifactOwner, path: str | None, relative_to_root: bool
) -> list[dict[str, Any]]:
    """A directory of a run's or logged model's files in MLflow's form: a missing path or a
    file lists as nothing; paths relative to the root or to the listed directory."""
    try:
        entries = service.list_owner_artifacts(owner, path)
    except ArtifactNotFound:
        return []
    if len(entries) == 1 and not entries[0].is_dir and entries[0].path == path:
        return []  # a file, not a directory
    out = []
    for entry in entries:
        shown = entry.path if relative_to_root else entry.path.rsplit("/", 1)[-1]
        item: dict[str, Any] = {"path": shown, "is_dir": entry.is_dir}
        if not entry.is_dir and entry.size is not None:
            item["file_size"] = entry.size
        out.append(item)
    return out
