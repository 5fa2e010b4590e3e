"""mlreg's entities in the JSON form of MLflow's protos (what MLflow's clients parse).

mlreg-only facts ride along as extra ``mlreg_*`` fields, which MLflow's clients ignore; tags
mlreg keeps for itself (``mlreg.*``) are shown as the fields they stand for instead.
"""

from __future__ import annotations

import math
from typing import Any

from mlreg.registry.entities import ModelVersion, RegisteredModel
from mlreg.server.mlflow import paths
from mlreg.tracking.entities import (
    DatasetInput,
    Experiment,
    LoggedModel,
    LoggedModelStatus,
    Metric,
    Run,
    RunInfo,
)
from mlreg.tracking.service import USER_TAG

RUN_NAME_TAG = "mlflow.runName"
PARENT_RUN_TAG = "mlflow.parentRunId"
#: mlreg's status of a logged model <-> MLflow's name for it.
LOGGED_MODEL_STATUS = {
    LoggedModelStatus.PENDING: "LOGGED_MODEL_PENDING",
    LoggedModelStatus.READY: "LOGGED_MODEL_READY",
    LoggedModelStatus.FAILED: "LOGGED_MODEL_UPLOAD_FAILED",
}
MLFLOW_LOGGED_MODEL_STATUS = {v: k for k, v in LOGGED_MODEL_STATUS.items()}


def key_values(mapping: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in mapping.items()]


def number(value: float) -> float | str:
    """A double as protobuf's JSON writes it (NaN and the infinities as strings)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def ms(value: Any) -> int:
    """A datetime as epoch milliseconds."""
    return int(value.timestamp() * 1000)


# --- tracking -------------------------------------------------------------------------------


def experiment(exp: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": exp.experiment_id,
        "name": exp.name,
        "artifact_location": paths.experiment_uri(exp.experiment_id),
        "lifecycle_stage": exp.lifecycle_stage.value,
        "last_update_time": exp.last_update_time,
        "creation_time": exp.creation_time,
        "tags": key_values(exp.tags),
    }


def run_info(info: RunInfo, tags: dict[str, str]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "run_id": info.run_id,
        "run_uuid": info.run_id,
        "run_name": info.run_name,
        "experiment_id": info.experiment_id,
        "user_id": tags.get(USER_TAG, ""),
        "status": info.status.value,
        "start_time": info.start_time,
        "artifact_uri": paths.run_uri(info.experiment_id, info.run_id),
        "lifecycle_stage": info.lifecycle_stage.value,
    }
    if info.end_time is not None:
        doc["end_time"] = info.end_time
    return doc


def visible_tags(run: Run) -> dict[str, str]:
    """The run's tags as MLflow shows them: its name and parent as MLflow's tags, mlreg's
    own bookkeeping (``mlreg.*``) left out."""
    tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlreg.")}
    tags[RUN_NAME_TAG] = run.info.run_name
    if run.info.parent_run_id and PARENT_RUN_TAG not in tags:
        tags[PARENT_RUN_TAG] = run.info.parent_run_id
    return tags


def metric(m: Metric) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "key": m.key,
        "value": number(m.value),
        "timestamp": m.timestamp,
        "step": m.step,
    }
    for name in ("dataset_name", "dataset_digest", "model_id", "run_id"):
        if getattr(m, name) is not None:
            doc[name] = getattr(m, name)
    return doc


def dataset_input(used: DatasetInput) -> dict[str, Any]:
    return {"tags": key_values(used.tags), "dataset": used.dataset.to_dict()}


def run(r: Run) -> dict[str, Any]:
    latest = [r.data.latest_metrics.get(k) or Metric(k, v, 0, 0) for k, v in r.data.metrics.items()]
    doc: dict[str, Any] = {
        "info": run_info(r.info, r.data.tags),
        "data": {
            "metrics": [metric(m) for m in latest],
            "params": key_values(r.data.params),
            "tags": key_values(visible_tags(r)),
        },
        "inputs": {
            "dataset_inputs": [dataset_input(d) for d in r.inputs.datasets],
            "model_inputs": [{"model_id": m} for m in r.inputs.models],
        },
        "outputs": {"model_outputs": [o.to_dict() for o in r.outputs]},
    }
    return doc


def logged_model(model: LoggedModel) -> dict[str, Any]:
    info: dict[str, Any] = {
        "model_id": model.model_id,
        "experiment_id": model.experiment_id,
        "name": model.name,
        "creation_timestamp_ms": model.creation_time,
        "last_updated_timestamp_ms": model.last_update_time,
        "artifact_uri": paths.logged_model_uri(model.experiment_id, model.model_id),
        "status": LOGGED_MODEL_STATUS[model.status],
        "tags": key_values(model.tags),
    }
    for name in ("model_type", "source_run_id", "status_message"):
        if getattr(model, name):
            info[name] = getattr(model, name)
    return {
        "info": info,
        "data": {
            "params": key_values(model.params),
            "metrics": [metric(m) for m in model.metrics],
        },
    }


# --- registry -------------------------------------------------------------------------------


def model_version(v: ModelVersion) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": v.name,
        "version": str(v.version),
        "creation_timestamp": ms(v.created_at),
        "last_updated_timestamp": ms(v.updated_at),
        "current_stage": v.stage.value,
        "source": v.source,
        "status": v.status.value,
        "tags": key_values(v.tags),
        "aliases": list(v.aliases),
        "description": v.description or "",
        # mlreg's own: the files' SHA-256 (checked on every load)
        "mlreg_digest": v.digest,
    }
    for name in ("run_id", "status_message", "model_id"):
        if getattr(v, name):
            doc[name] = getattr(v, name)
    return doc


def registered_model(m: RegisteredModel, latest: list[ModelVersion]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": m.name,
        "creation_timestamp": ms(m.created_at),
        "last_updated_timestamp": ms(m.updated_at),
        "latest_versions": [model_version(v) for v in latest],
        "tags": key_values(m.tags),
        "aliases": [{"alias": a, "version": str(n)} for a, n in m.aliases.items()],
    }
    if m.description:
        doc["description"] = m.description
    return doc
