"""``/api/v1/logged-models``: models logged on their own (MLflow 3's logged models), their
params, tags, metrics and files."""

from __future__ import annotations

from typing import Any

from flask import Response

from mlreg.server import permissions as perm
from mlreg.server.api import ok, query_bool
from mlreg.server.permissions import Level
from mlreg.server.routes import api
from mlreg.server.routes.registry import TAGS, TEXT, _obj, _wrap
from mlreg.server.routes.tracking import (
    list_owner_artifacts,
    receive_owner_artifact,
    send_owner_artifact,
    tracking,
)
from mlreg.store.pages import MAX_PAGE, offset_of, page_token
from mlreg.store.validation import safe_relpath
from mlreg.tracking.search import logged_model_order

TAG = "logged models"
LOGGED_MODEL = {"$ref": "#/components/schemas/LoggedModel"}


@api.route(
    "POST",
    "/logged-models",
    permission=perm.experiment(Level.EDIT, ref=perm.body("experiment_id")),
    summary="Create a logged model (PENDING until finished) in an experiment.",
    tag=TAG,
    body=_obj(
        {
            "experiment_id": {"type": "string"},
            "name": TEXT,
            "source_run_id": TEXT,
            "model_type": TEXT,
            "params": TAGS,
            "tags": TAGS,
        },
        ["experiment_id"],
    ),
    response=_wrap("logged_model", LOGGED_MODEL),
    status=201,
)
def create_logged_model(body: dict[str, Any]) -> Response:
    model = tracking().create_logged_model(
        body["experiment_id"],
        body.get("name"),
        source_run_id=body.get("source_run_id"),
        model_type=body.get("model_type"),
        params=body.get("params"),
        tags=body.get("tags"),
    )
    return ok({"logged_model": model.to_dict()}, 201)


@api.route(
    "GET",
    "/logged-models/<model_id>",
    permission=perm.logged_model(Level.READ),
    summary="One logged model: status, params, tags, metrics (deleted ones: allow_deleted).",
    tag=TAG,
    query={"allow_deleted": {"type": "boolean"}},
    response=_wrap("logged_model", LOGGED_MODEL),
)
def get_logged_model(model_id: str) -> Response:
    model = tracking().get_logged_model(model_id, allow_deleted=query_bool("allow_deleted"))
    return ok({"logged_model": model.to_dict()})


@api.route(
    "PATCH",
    "/logged-models/<model_id>",
    permission=perm.logged_model(Level.EDIT),
    summary="Finish a logged model: READY once its files are whole, or FAILED.",
    tag=TAG,
    body=_obj({"status": {"enum": ["READY", "FAILED"]}}, ["status"]),
    response=_wrap("logged_model", LOGGED_MODEL),
)
def finalize_logged_model(model_id: str, body: dict[str, Any]) -> Response:
    model = tracking().finalize_logged_model(model_id, body["status"])
    return ok({"logged_model": model.to_dict()})


@api.route(
    "DELETE",
    "/logged-models/<model_id>",
    permission=perm.logged_model(Level.MANAGE),
    summary="Mark a logged model deleted (registered versions made from it stay).",
    tag=TAG,
    response=_obj({}),
)
def delete_logged_model(model_id: str) -> Response:
    tracking().delete_logged_model(model_id)
    return ok({})


@api.route(
    "PUT",
    "/logged-models/<model_id>/tags/<path:key>",
    permission=perm.logged_model(Level.EDIT),
    summary="Set a tag of a logged model.",
    tag=TAG,
    body=_obj({"value": {"type": "string"}}, ["value"]),
    response=_obj({}),
)
def set_logged_model_tag(model_id: str, key: str, body: dict[str, Any]) -> Response:
    tracking().set_logged_model_tags(model_id, {key: body["value"]})
    return ok({})


@api.route(
    "DELETE",
    "/logged-models/<model_id>/tags/<path:key>",
    permission=perm.logged_model(Level.EDIT),
    summary="Remove a tag of a logged model.",
    tag=TAG,
    response=_obj({}),
)
def delete_logged_model_tag(model_id: str, key: str) -> Response:
    tracking().delete_logged_model_tag(model_id, key)
    return ok({})


@api.route(
    "POST",
    "/logged-models/<model_id>/params",
    permission=perm.logged_model(Level.EDIT),
    summary="Add params to a logged model (a param cannot change once set).",
    tag=TAG,
    body=_obj({"params": TAGS}, ["params"]),
    response=_obj({}),
)
def log_logged_model_params(model_id: str, body: dict[str, Any]) -> Response:
    tracking().log_logged_model_params(model_id, body["params"])
    return ok({})


@api.route(
    "POST",
    "/logged-models/search",
    permission=perm.experiment(Level.READ, ref=perm.body("experiment_ids")),
    summary="Search the logged models of experiments with MLflow's filter syntax (name, "
    "status, source_run_id, params., tags., metrics.), newest first unless ordered.",
    tag=TAG,
    body=_obj(
        {
            "experiment_ids": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "filter": TEXT,
            "order_by": {
                "type": "array",
                "items": _obj(
                    {"field_name": {"type": "string"}, "ascending": {"type": "boolean"}},
                    ["field_name"],
                ),
            },
            "max_results": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
            "page_token": TEXT,
        },
        ["experiment_ids"],
    ),
    response=_obj(
        {"logged_models": {"type": "array", "items": LOGGED_MODEL}, "next_page_token": TEXT}
    ),
)
def search_logged_models(body: dict[str, Any]) -> Response:
    service = tracking()
    for experiment_id in body["experiment_ids"]:
        service.get_experiment(experiment_id)  # a typo is a 404, not an empty page
    page = service.search_logged_models(
        body["experiment_ids"],
        body.get("filter"),
        [
            logged_model_order(o["field_name"], o.get("ascending", True))
            for o in body.get("order_by") or []
        ],
        body.get("max_results") or 100,
        offset_of(body.get("page_token")),
    )
    return ok(
        {
            "logged_models": [m.to_dict() for m in page.items],
            "next_page_token": page_token(page.next_offset),
        }
    )


@api.route(
    "GET",
    "/logged-models/<model_id>/artifacts",
    permission=perm.logged_model(Level.READ),
    summary="The files directly under a path of a logged model (none: the root).",
    tag=TAG,
    query={"path": {"type": "string"}},
    response=_obj({"files": {"type": "array", "items": {"$ref": "#/components/schemas/File"}}}),
)
def list_logged_model_artifacts(model_id: str) -> Response:
    service = tracking()
    return list_owner_artifacts(service, service.get_logged_model(model_id))


@api.route(
    "GET",
    "/logged-models/<model_id>/artifacts/<path:path>",
    permission=perm.logged_model(Level.READ),
    summary="Download one file of a logged model (HTTP Range requests supported).",
    tag=TAG,
    raw_response=True,
)
def download_logged_model_artifact(model_id: str, path: str) -> Response:
    service = tracking()
    return send_owner_artifact(service, service.get_logged_model(model_id), path)


@api.route(
    "PUT",
    "/logged-models/<model_id>/artifacts/<path:path>",
    permission=perm.logged_model(Level.EDIT),
    summary="Upload one file of a logged model (the body is its bytes, streamed).",
    tag=TAG,
    raw_body="application/octet-stream",
    response=_obj({"path": {"type": "string"}, "size": {"type": "integer"}}),
)
def upload_logged_model_artifact(model_id: str, path: str) -> Response:
    service = tracking()
    size = receive_owner_artifact(service, service.get_logged_model(model_id), path)
    return ok({"path": path, "size": size})


@api.route(
    "DELETE",
    "/logged-models/<model_id>/artifacts/<path:path>",
    permission=perm.logged_model(Level.EDIT),
    summary="Remove a file or directory of a logged model.",
    tag=TAG,
    response=_obj({}),
)
def delete_logged_model_artifact(model_id: str, path: str) -> Response:
    service = tracking()
    service.artifacts.delete(service.get_logged_model(model_id), safe_relpath(path))
    return ok({})
