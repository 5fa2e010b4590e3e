"""MLflow's model registry endpoints (``/mlflow/registered-models/…``,
``/mlflow/model-versions/…``) over the registry service.

Stages (None, Staging, Production, Archived) and aliases work as in MLflow 2.9+; a version's
files are copied into the registry when it is created (:mod:`~mlreg.server.mlflow.sources`),
so it is READY with its digest (shown as ``mlreg_digest``) when the call answers.
MLflow's prompt registry (registered models tagged ``mlflow.prompt.is_prompt``) is not
supported.
"""

from __future__ import annotations

from typing import Any

from flask import Response

from mlreg.errors import ModelNotFound, NotSupported
from mlreg.registry.entities import ModelVersion, RegisteredModel, Stage
from mlreg.registry.search import parse_model_order_by, parse_version_order_by
from mlreg.registry.service import RegistryService
from mlreg.server import permissions as perm
from mlreg.server.mlflow import convert, paths, sources
from mlreg.server.mlflow.table import (
    BOOL,
    INT64,
    KEY_VALUE,
    STRING,
    as_int,
    error_answer,
    message,
    mlflow_api,
    repeated,
    required,
)
from mlreg.server.permissions import Level
from mlreg.server.routes.registry import registry
from mlreg.server.routes.tracking import tracking
from mlreg.store.pages import MAX_PAGE, offset_of, page_token
from mlreg.store.search import OrderBy, parse_clauses
from mlreg.store.validation import validate_version

#: Where MLflow's registry requests name their registered model.
NAME_REF = perm.message("name")

PROMPT_TAG = "mlflow.prompt.is_prompt"
#: What MLflow's 3.x clients add to every search to leave prompts out (there are none here).
_NOT_PROMPTS = ("!=", "true")
NAME = message({"name": STRING}, ["name"])
NAME_VERSION = message({"name": STRING, "version": STRING}, ["name", "version"])


def _order_text(order: list[OrderBy], default: str) -> str:
    """MLflow's order-by clauses as the registry store's (``name ASC, updated DESC``)."""
    clauses = [f"{o.key} {'DESC' if o.descending else 'ASC'}" for o in order]
    return ", ".join(clauses) if clauses else default


def _without_prompt_filter(text: str | None, what: str) -> str | None:
    """The filter without the clause that leaves prompts out; NotSupported for a search of
    prompts (MLflow's prompt registry)."""
    clauses = parse_clauses(text)
    kept = []
    for clause in clauses:
        if clause.key == PROMPT_TAG and clause.kind in ("tags", "tag"):
            if (clause.op, str(clause.value).lower()) == _NOT_PROMPTS:
                continue
            raise NotSupported(
                f"MLflow's prompt registry is not supported by mlreg server ({what} with "
                f"{clause.text})"
            )
        kept.append(clause.text)
    return " AND ".join(kept) or None


def _latest(
    service: RegistryService, name: str, stages: list[str] | None, by_stage_name: bool = False
) -> list[ModelVersion]:
    """The newest READY version in each stage asked for (every stage when none is), in
    version order, or by stage name (as MLflow lists them in searches)."""
    wanted = [Stage.parse(s) for s in stages] if stages else list(Stage)
    by_stage = service.store.versions_by_stage(name)
    newest = {stage: by_stage[stage][-1] for stage in wanted if by_stage.get(stage)}
    order = (
        sorted(newest, key=lambda s: s.value)
        if by_stage_name
        else sorted(newest, key=newest.__getitem__)
    )
    return [service.get_model_version(name, newest[stage]) for stage in order]


def _registered(
    service: RegistryService, model: RegisteredModel, in_search: bool = False
) -> dict[str, Any]:
    return convert.registered_model(model, _latest(service, model.name, None, in_search))


def _kv(items: list[dict[str, Any]] | None) -> dict[str, str]:
    return {t["key"]: t.get("value", "") for t in items or []}


# --- registered models ----------------------------------------------------------------------


@mlflow_api.route(
    "POST",
    "/mlflow/registered-models/create",
    permission=perm.server(Level.EDIT),
    summary="Create a registered model (with no versions yet).",
    request_message=message(
        {"name": STRING, "tags": repeated(KEY_VALUE), "description": STRING}, ["name"]
    ),
)
def create_registered_model(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "name")
    tags = _kv(msg.get("tags"))
    if tags.get(PROMPT_TAG, "").lower() == "true":
        raise NotSupported(
            "MLflow's prompt registry is not supported by mlreg server (POST "
            f"/api/2.0/mlflow/registered-models/create with the tag {PROMPT_TAG})"
        )
    service = registry()
    model = service.create_registered_model(msg["name"], msg.get("description") or None, tags)
    return {"registered_model": _registered(service, model)}


@mlflow_api.route(
    "POST",
    "/mlflow/registered-models/rename",
    permission=perm.model(Level.MANAGE, ref=NAME_REF),
    summary="Rename a registered model (versions, aliases and history stay).",
    request_message=message({"name": STRING, "new_name": STRING}, ["name"]),
)
def rename_registered_model(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "name", "new_name")
    service = registry()
    model = service.rename_registered_model(msg["name"], msg["new_name"])
    return {"registered_model": _registered(service, service.get_registered_model(model.name))}


@mlflow_api.route(
    "PATCH",
    "/mlflow/registered-models/update",
    permission=perm.model(Level.EDIT, ref=NAME_REF),
    summary="Set a registered model's description.",
    request_message=message({"name": STRING, "description": STRING}, ["name"]),
)
def update_registered_model(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "name")
    service = registry()
    service.update_registered_model(msg["name"], msg.get("description") or None)
    return {"registered_model": _registered(service, service.get_registered_model(msg["name"]))}


@mlflow_api.route(
    "DELETE",
    "/mlflow/registered-models/delete",
    permission=perm.model(Level.MANAGE, ref=NAME_REF),
    summary="Delete a registered model, its versions and their files.",
    request_message=NAME,
)
def delete_registered_model(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "name")
    registry().delete_registered_model(msg["name"])
    return {}


@mlflow_api.route(
    "GET",
    "/mlflow/registered-models/get",
    permission=perm.model(Level.READ, ref=NAME_REF),
    summary="One registered model: tags, aliases, the latest version in each stage.",
    request_message=NAME,
)
def get_registered_model(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "name")
    service = registry()
    return {"registered_model": _registered(service, service.get_registered_model(msg["name"]))}


@mlflow_api.route(
    "GET",
    "/mlflow/registered-models/search",
    permission=perm.server(Level.READ),
    summary="Search registered models (filter on name and tags; order by name, "
    "creation_timestamp, last_updated_timestamp).",
    request_message=message(
        {
            "filter": STRING,
            "max_results": INT64,
            "order_by": repeated(STRING),
            "page_token": STRING,
        }
    ),
)
def search_registered_models(msg: dict[str, Any]) -> dict[str, Any]:
    service = registry()
    page = service.search_registered_models(
        filter_string=_without_prompt_filter(msg.get("filter"), "a search of registered models"),
        order_by=_order_text(parse_model_order_by(msg.get("order_by")), "name ASC"),
        max_results=as_int(msg, "max_results", 100, 1, MAX_PAGE),
        offset=offset_of(msg.get("page_token")),
    )
    doc: dict[str, Any] = {"registered_models": [_registered(service, m) for m in page.items]}
    if page.next_offset is not None:
        doc["next_page_token"] = page_token(page.next_offset)
    return doc


def get_latest_versions(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "name")
    versions = _latest(registry(), msg["name"], msg.get("stages") or None)
    return {"model_versions": [convert.model_version(v) for v in versions]}


for _method in ("POST", "GET"):
    mlflow_api.route(
        _method,
        "/mlflow/registered-models/get-latest-versions",
        permission=perm.model(Level.READ, ref=NAME_REF),
        summary="The newest READY version in each stage asked for (every stage if none is).",
        request_message=message({"name": STRING, "stages": repeated(STRING)}, ["name"]),
    )(get_latest_versions)


@mlflow_api.route(
    "POST",
    "/mlflow/registered-models/set-tag",
    permission=perm.model(Level.EDIT, ref=NAME_REF),
    summary="Set a tag of a registered model.",
    request_message=message({"name": STRING, "key": STRING, "value": STRING}, ["name", "key"]),
)
def set_registered_model_tag(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "name", "key")
    registry().set_registered_model_tag(msg["name"], msg["key"], msg.get("value", ""))
    return {}


@mlflow_api.route(
    "DELETE",
    "/mlflow/registered-models/delete-tag",
    permission=perm.model(Level.EDIT, ref=NAME_REF),
    summary="Remove a tag of a registered model.",
    request_message=message({"name": STRING, "key": STRING}, ["name", "key"]),
)
def delete_registered_model_tag(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "name", "key")
    registry().delete_registered_model_tag(msg["name"], msg["key"])
    return {}


# --- aliases -------------------------------------------------------------------------------


@mlflow_api.route(
    "POST",
    "/mlflow/registered-models/alias",
    permission=perm.model(Level.PROMOTE, ref=NAME_REF),
    summary="Point an alias at a version (models:/name@alias).",
    request_message=message(
        {"name": STRING, "alias": STRING, "version": STRING}, ["name", "alias", "version"]
    ),
)
def set_alias(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "name", "alias", "version")
    registry().set_alias(msg["name"], msg["alias"], msg["version"])
    return {}


@mlflow_api.route(
    "DELETE",
    "/mlflow/registered-models/alias",
    permission=perm.model(Level.PROMOTE, ref=NAME_REF),
    summary="Remove an alias.",
    request_message=message({"name": STRING, "alias": STRING}, ["name", "alias"]),
)
def delete_alias(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "name", "alias")
    registry().delete_alias(msg["name"], msg["alias"])
    return {}


@mlflow_api.route(
    "GET",
    "/mlflow/registered-models/alias",
    permission=perm.model(Level.READ, ref=NAME_REF),
    summary="The version an alias points at.",
    request_message=message({"name": STRING, "alias": STRING}, ["name", "alias"]),
)
def get_version_by_alias(msg: dict[str, Any]) -> dict[str, Any] | Response:
    required(msg, "name", "alias")
    try:
        version = registry().get_version_by_alias(msg["name"], msg["alias"])
    except ModelNotFound as e:  # MLflow: an alias it cannot find is a bad parameter
        return error_answer("INVALID_PARAMETER_VALUE", 400, e.message)
    return {"model_version": convert.model_version(version)}


# --- versions -------------------------------------------------------------------------------


@mlflow_api.route(
    "POST",
    "/mlflow/model-versions/create",
    permission=perm.model(Level.EDIT, ref=NAME_REF),
    summary="Register the model at source as the next version: its files are copied into the "
    "registry and digested, so it answers READY.",
    request_message=message(
        {
            "name": STRING,
            "source": STRING,
            "run_id": STRING,
            "tags": repeated(KEY_VALUE),
            "run_link": STRING,
            "description": STRING,
            "model_id": STRING,
        },
        ["name", "source"],
    ),
)
def create_model_version(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "name", "source")
    service = registry()
    source = msg["source"]
    directory = sources.source_directory(source, tracking(), service)
    mlmodel = sources.check_model(directory, source)
    signature = mlmodel.signature.to_json_dict() if mlmodel.signature else None
    pending = service.begin_version(
        msg["name"],
        source,
        msg.get("run_id") or mlmodel.run_id or None,
        msg.get("description") or None,
        _kv(msg.get("tags")),
        signature,
        model_id=msg.get("model_id") or None,
    )
    return {"model_version": convert.model_version(service.store_files(pending, directory))}


@mlflow_api.route(
    "PATCH",
    "/mlflow/model-versions/update",
    permission=perm.model(Level.EDIT, ref=NAME_REF),
    summary="Set a version's description.",
    request_message=message(
        {"name": STRING, "version": STRING, "description": STRING}, ["name", "version"]
    ),
)
def update_model_version(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "name", "version")
    version = registry().update_model_version(
        msg["name"], msg["version"], msg.get("description") or None
    )
    return {"model_version": convert.model_version(version)}


@mlflow_api.route(
    "POST",
    "/mlflow/model-versions/transition-stage",
    permission=perm.model(Level.PROMOTE, ref=NAME_REF),
    summary="Move a version to a stage (None, Staging, Production, Archived), optionally "
    "archiving the versions now in it.",
    request_message=message(
        {
            "name": STRING,
            "version": STRING,
            "stage": STRING,
            "archive_existing_versions": BOOL,
        },
        ["name", "version", "stage"],
    ),
)
def transition_model_version_stage(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "name", "version", "stage")
    version = registry().transition_model_version_stage(
        msg["name"],
        msg["version"],
        msg["stage"],
        bool(msg.get("archive_existing_versions", False)),
    )
    return {"model_version": convert.model_version(version)}


@mlflow_api.route(
    "DELETE",
    "/mlflow/model-versions/delete",
    permission=perm.model(Level.MANAGE, ref=NAME_REF),
    summary="Delete a version and its files (its number is never reused).",
    request_message=NAME_VERSION,
)
def delete_model_version(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "name", "version")
    registry().delete_model_version(msg["name"], msg["version"])
    return {}


@mlflow_api.route(
    "GET",
    "/mlflow/model-versions/get",
    permission=perm.model(Level.READ, ref=NAME_REF),
    summary="One version: stage, status, source, tags, aliases (and mlreg_digest).",
    request_message=NAME_VERSION,
)
def get_model_version(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "name", "version")
    version = registry().get_model_version(msg["name"], validate_version(msg["version"]))
    return {"model_version": convert.model_version(version)}


@mlflow_api.route(
    "GET",
    "/mlflow/model-versions/search",
    permission=perm.server(Level.READ),
    summary="Search versions (filter on name, run_id, source_path, version_number, tags).",
    request_message=message(
        {
            "filter": STRING,
            "max_results": INT64,
            "order_by": repeated(STRING),
            "page_token": STRING,
        }
    ),
)
def search_model_versions(msg: dict[str, Any]) -> dict[str, Any]:
    page = registry().search_model_versions(
        filter_string=_without_prompt_filter(msg.get("filter"), "a search of model versions"),
        order_by=_order_text(
            parse_version_order_by(msg.get("order_by")), "updated DESC, name ASC, version DESC"
        ),
        # MLflow takes up to 200000 a page; a page here is at most 1000 (a token says more).
        max_results=min(as_int(msg, "max_results", 10_000, 1, 200_000), MAX_PAGE),
        offset=offset_of(msg.get("page_token")),
    )
    doc: dict[str, Any] = {"model_versions": [convert.model_version(v) for v in page.items]}
    if page.next_offset is not None:
        doc["next_page_token"] = page_token(page.next_offset)
    return doc


@mlflow_api.route(
    "GET",
    "/mlflow/model-versions/get-download-uri",
    permission=perm.model(Level.READ, ref=NAME_REF),
    summary="Where a version's files are downloaded from: the registry's copy, through the "
    "artifact proxy (mlflow-artifacts:/registry/<name>/<version>).",
    request_message=NAME_VERSION,
)
def get_model_version_download_uri(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "name", "version")
    version = registry().get_model_version(msg["name"], validate_version(msg["version"]))
    return {"artifact_uri": paths.version_uri(version.name, version.version)}


@mlflow_api.route(
    "POST",
    "/mlflow/model-versions/set-tag",
    permission=perm.model(Level.EDIT, ref=NAME_REF),
    summary="Set a tag of a version.",
    request_message=message(
        {"name": STRING, "version": STRING, "key": STRING, "value": STRING},
        ["name", "version", "key"],
    ),
)
def set_model_version_tag(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "name", "version", "key")
    registry().set_model_version_tag(msg["name"], msg["version"], msg["key"], msg.get("value", ""))
    return {}


@mlflow_api.route(
    "DELETE",
    "/mlflow/model-versions/delete-tag",
    permission=perm.model(Level.EDIT, ref=NAME_REF),
    summary="Remove a tag of a version.",
    request_message=message(
        {"name": STRING, "version": STRING, "key": STRING}, ["name", "version", "key"]
    ),
)
def delete_model_version_tag(msg: dict[str, Any]) -> dict[str, Any]:
    required(msg, "name", "version", "key")
    registry().delete_model_version_tag(msg["name"], msg["version"], msg["key"])
    return {}
