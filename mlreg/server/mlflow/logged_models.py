"""MLflow 3's logged-model endpoints (``/mlflow/logged-models…``) over the tracking service.

MLflow 3's ``log_model`` creates a logged model, uploads its files through the artifact proxy
to ``mlflow-artifacts:/<experiment>/models/<model id>/artifacts``, links it to the run as an
output and finalizes it; ``register_model("runs:/…/model")`` finds it by the run and name.
"""

from __future__ import annotations

from typing import Any

from mlreg.errors import InvalidInput
from mlreg.server import permissions as perm
from mlreg.server.mlflow import convert, paths
from mlreg.server.mlflow.convert import MLFLOW_LOGGED_MODEL_STATUS
from mlreg.server.mlflow.runs import listing
from mlreg.server.mlflow.table import (
    BOOL,
    INT32,
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
from mlreg.server.routes.tracking import tracking
from mlreg.store.pages import MAX_PAGE, offset_of, page_token
from mlreg.tracking.search import logged_model_order

STATUS = enum(*MLFLOW_LOGGED_MODEL_STATUS)


def _kv(items: list[dict[str, Any]] | None) -> dict[str, str]:
    return {t["key"]: t.get("value", "") for t in items or []}


def _model(model_id: str) -> dict[str, Any]:
    return {"model": convert.logged_model(tracking().get_logged_model(model_id))}


@mlflow_api.route(
    "POST",
    "/mlflow/logged-models",
    permission=perm.experiment(Level.EDIT, ref=perm.message("experiment_id")),
    summary="Create a logged model (PENDING until finalized); its files go to "
    "mlflow-artifacts:/<experiment>/models/<model id>/artifacts.",
    request_message=message(
        {
            "experiment_id": STRING,
            "name": STRING,
            "model_type": STRING,
            "source_run_id": STRING,
            "params": repeated(KEY_VALUE),
            "tags": repeated(KEY_VALUE),
        },
        ["experiment_id"],
    ),
)
def create_logged_model(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "experiment_id")
    model = tracking().create_logged_model(
        msg["experiment_id"],
        msg.get("name") or None,
        source_run_id=msg.get("source_run_id") or None,
        model_type=msg.get("model_type") or None,
        params=_kv(msg.get("params")),
        tags=_kv(msg.get("tags")),
    )
    return {"model": convert.logged_model(model)}


@mlflow_api.route(
    "GET",
    "/mlflow/logged-models/<model_id>",
    permission=perm.logged_model(Level.READ),
    summary="One logged model (a deleted one with allow_deleted=true).",
    request_message=message({"allow_deleted": BOOL}),
)
def get_logged_model(model_id: str, msg: dict[str, Any]) -> dict[str, Any]:
    model = tracking().get_logged_model(model_id, allow_deleted=bool(msg.get("allow_deleted")))
    return {"model": convert.logged_model(model)}


@mlflow_api.route(
    "PATCH",
    "/mlflow/logged-models/<model_id>",
    permission=perm.logged_model(Level.EDIT),
    summary="Finalize a logged model: LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED.",
    request_message=message({"model_id": STRING, "status": STATUS}, ["status"]),
)
def finalize_logged_model(model_id: str, msg: dict[str, Any]) -> dict[str, Any]:
    status = MLFLOW_LOGGED_MODEL_STATUS[msg["status"]]
    return {"model": convert.logged_model(tracking().finalize_logged_model(model_id, status))}


@mlflow_api.route(
    "DELETE",
    "/mlflow/logged-models/<model_id>",
    permission=perm.logged_model(Level.MANAGE),
    summary="Mark a logged model deleted.",
    request_message=message({"model_id": STRING}),
)
def delete_logged_model(model_id: str, msg: dict[str, Any]) -> dict[str, Any]:
    tracking().delete_logged_model(model_id)
    return {}


@mlflow_api.route(
    "PATCH",
    "/mlflow/logged-models/<model_id>/tags",
    permission=perm.logged_model(Level.EDIT),
    summary="Set tags of a logged model.",
    request_message=message({"model_id": STRING, "tags": repeated(KEY_VALUE)}),
)
def set_logged_model_tags(model_id: str, msg: dict[str, Any]) -> dict[str, Any]:
    model = tracking().set_logged_model_tags(model_id, _kv(msg.get("tags")))
    return {"model": convert.logged_model(model)}


@mlflow_api.route(
    "DELETE",
    "/mlflow/logged-models/<model_id>/tags/<path:tag_key>",
    permission=perm.logged_model(Level.EDIT),
    summary="Remove a tag of a logged model.",
)
def delete_logged_model_tag(model_id: str, tag_key: str) -> dict[str, Any]:
    tracking().delete_logged_model_tag(model_id, tag_key)
    return {}


@mlflow_api.route(
    "POST",
    "/mlflow/logged-models/<model_id>/params",
    permission=perm.logged_model(Level.EDIT),
    summary="Add params to a logged model.",
    request_message=message({"model_id": STRING, "params": repeated(KEY_VALUE)}),
)
def log_logged_model_params(model_id: str, msg: dict[str, Any]) -> dict[str, Any]:
    tracking().log_logged_model_params(model_id, _kv(msg.get("params")))
    return {}


ORDER = message(
    {"field_name": STRING, "ascending": BOOL, "dataset_name": STRING, "dataset_digest": STRING},
    ["field_name"],
)


@mlflow_api.route(
    "POST",
    "/mlflow/logged-models/search",
    permission=perm.experiment(Level.READ, ref=perm.message("experiment_ids")),
    summary="Search logged models of experiments (filter on name, status, source_run_id, "
    "params., tags., metrics.), newest first unless ordered.",
    request_message=message(
        {
            "experiment_ids": repeated(STRING),
            "filter": STRING,
            "datasets": repeated(message({"dataset_name": STRING, "dataset_digest": STRING})),
            "max_results": INT32,
            "order_by": repeated(ORDER),
            "page_token": STRING,
        }
    ),
)
def search_logged_models(msg: dict[str, Any]) -> dict[str, Any]:
    if msg.get("datasets"):
        raise InvalidInput(
            "datasets: mlreg filters a logged model's metrics whatever dataset they were "
            "computed on; leave datasets out"
        )
    order = []
    for o in msg.get("order_by") or []:
        if o.get("dataset_name") or o.get("dataset_digest"):
            raise InvalidInput("order_by: ordering by a dataset's metrics is not supported")
        order.append(logged_model_order(o["field_name"], o.get("ascending", True)))
    experiment_ids = [str(e) for e in msg.get("experiment_ids") or []]
    if not experiment_ids:
        raise InvalidInput("missing value for required field 'experiment_ids'")
    page = tracking().search_logged_models(
        experiment_ids,
        msg.get("filter") or None,
        order,
        min(as_int(msg, "max_results", 100, 1, 50_000), MAX_PAGE),
        offset_of(msg.get("page_token")),
    )
    doc: dict[str, Any] = {"models": [convert.logged_model(m) for m in page.items]}
    if page.next_offset is not None:
        doc["next_page_token"] = page_token(page.next_offset)
    return doc


@mlflow_api.route(
    "GET",
    "/mlflow/logged-models/<model_id>/artifacts/directories",
    permission=perm.logged_model(Level.READ),
    summary="The files directly under a directory of a logged model.",
    request_message=message({"artifact_directory_path": STRING, "page_token": STRING}),
)
def list_logged_model_artifacts(model_id: str, msg: dict[str, Any]) -> dict[str, Any]:
    service = tracking()
    model = service.get_logged_model(model_id)
    files = listing(service, model, msg.get("artifact_directory_path") or None, True)
    return {"root_uri": paths.logged_model_uri(model.experiment_id, model.model_id), "files": files}
