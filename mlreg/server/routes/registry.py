"""``/api/v1/models`` and ``/api/v1/versions``: registered models, versions, stages, aliases,
the files of a version (uploaded as one tar stream, downloaded file by file with ranges)."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request

from mlreg.errors import InvalidInput, VersionConflict
from mlreg.registry.artifacts import files_digest
from mlreg.registry.entities import ModelVersion, VersionStatus
from mlreg.registry.service import MODELS_SCHEME, RegistryService
from mlreg.server import permissions as perm
from mlreg.server.api import (
    ok,
    query_int,
    query_str,
    query_tags,
    require_media_type,
)
from mlreg.server.permissions import Level
from mlreg.server.routes import acting_as, acting_user, api, request_id, services
from mlreg.server.streams import send_stream
from mlreg.store.pages import MAX_PAGE, offset_of, page_token
from mlreg.store.tarstream import MEDIA_TYPE, extract_tar
from mlreg.store.validation import validate_version

TAG = "registry"
DIGEST_HEADER = "X-Mlreg-Digest"

TAGS = {"type": "object", "additionalProperties": {"type": "string"}}
TEXT = {"type": ["string", "null"]}
PAGING = {
    "max_results": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
    "page_token": {"type": "string"},
}
MODEL = {"$ref": "#/components/schemas/RegisteredModel"}
VERSION = {"$ref": "#/components/schemas/ModelVersion"}


def _obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required or [],
        "additionalProperties": False,
    }


def _wrap(key: str, schema: dict[str, Any]) -> dict[str, Any]:
    return _obj({key: schema}, [key])


def registry() -> RegistryService:
    """The registry service, acting as the caller."""
    return services().registry_as(acting_user())


def _version(name: str, version: str) -> ModelVersion:
    return registry().get_model_version(name, validate_version(version))


# --- registered models ----------------------------------------------------------------------


@api.route(
    "POST",
    "/models",
    permission=perm.server(Level.EDIT),
    summary="Create a registered model (with no versions yet).",
    tag=TAG,
    body=_obj({"name": {"type": "string"}, "description": TEXT, "tags": TAGS}, ["name"]),
    response=_wrap("registered_model", MODEL),
    status=201,
)
def create_model(body: dict[str, Any]) -> Response:
    model = registry().create_registered_model(
        body["name"], body.get("description"), body.get("tags")
    )
    return ok({"registered_model": model.to_dict()}, 201)


@api.route(
    "GET",
    "/models",
    permission=perm.server(Level.READ),
    summary="Search registered models by name pattern (SQL LIKE) and tags, a page at a time.",
    tag=TAG,
    query={
        "name_like": {"type": "string"},
        "tag": {"type": "string", "description": "KEY=VALUE, repeatable"},
        "order_by": {"type": "string", "description": "name|created|updated [ASC|DESC]"},
        **PAGING,
    },
    response=_obj(
        {
            "registered_models": {"type": "array", "items": MODEL},
            "next_page_token": TEXT,
        }
    ),
)
def search_models() -> Response:
    page = registry().search_registered_models(
        name_like=query_str("name_like"),
        tags=query_tags(),
        order_by=query_str("order_by", "name ASC") or "name ASC",
        max_results=query_int("max_results", 100, 1, MAX_PAGE),
        offset=offset_of(query_str("page_token")),
    )
    return ok(
        {
            "registered_models": [m.to_dict() for m in page.items],
            "next_page_token": page_token(page.next_offset),
        }
    )


@api.route(
    "GET",
    "/models/<name>",
    permission=perm.model(Level.READ),
    summary="One registered model: tags, aliases, latest version.",
    tag=TAG,
    response=_wrap("registered_model", MODEL),
)
def get_model(name: str) -> Response:
    return ok({"registered_model": registry().get_registered_model(name).to_dict()})


@api.route(
    "PATCH",
    "/models/<name>",
    permission=perm.model(Level.EDIT),
    summary="Set a registered model's description.",
    tag=TAG,
    body=_obj({"description": TEXT}, ["description"]),
    response=_wrap("registered_model", MODEL),
)
def update_model(name: str, body: dict[str, Any]) -> Response:
    model = registry().update_registered_model(name, body["description"])
    return ok({"registered_model": model.to_dict()})


@api.route(
    "POST",
    "/models/<name>/rename",
    permission=perm.model(Level.MANAGE),
    summary="Rename a registered model (versions, aliases and history stay).",
    tag=TAG,
    body=_obj({"new_name": {"type": "string"}}, ["new_name"]),
    response=_wrap("registered_model", MODEL),
)
def rename_model(name: str, body: dict[str, Any]) -> Response:
    model = registry().rename_registered_model(name, body["new_name"])
    return ok({"registered_model": model.to_dict()})


@api.route(
    "DELETE",
    "/models/<name>",
    permission=perm.model(Level.MANAGE),
    summary="Delete a registered model, its versions and their files.",
    tag=TAG,
    response=_obj({}),
)
def delete_model(name: str) -> Response:
    registry().delete_registered_model(name)
    return ok({})


@api.route(
    "PUT",
    "/models/<name>/tags/<path:key>",
    permission=perm.model(Level.EDIT),
    summary="Set a tag of a registered model.",
    tag=TAG,
    body=_obj({"value": {"type": "string"}}, ["value"]),
    response=_obj({}),
)
def set_model_tag(name: str, key: str, body: dict[str, Any]) -> Response:
    registry().set_registered_model_tag(name, key, body["value"])
    return ok({})


@api.route(
    "DELETE",
    "/models/<name>/tags/<path:key>",
    permission=perm.model(Level.EDIT),
    summary="Remove a tag of a registered model.",
    tag=TAG,
    response=_obj({}),
)
def delete_model_tag(name: str, key: str) -> Response:
    registry().delete_registered_model_tag(name, key)
    return ok({})


@api.route(
    "GET",
    "/models/<name>/stages",
    permission=perm.model(Level.READ),
    summary="The READY versions of a model in each stage.",
    tag=TAG,
    response=_obj(
        {"stages": {"type": "object", "additionalProperties": {"type": "array"}}}, ["stages"]
    ),
)
def versions_by_stage(name: str) -> Response:
    grouped = registry().store.versions_by_stage(name)
    return ok({"stages": {stage.value: numbers for stage, numbers in grouped.items()}})


@api.route(
    "GET",
    "/models/<name>/history",
    permission=perm.model(Level.READ),
    summary="Every stage transition of a model (or of one version): from, to, who, when.",
    tag=TAG,
    query={"version": {"type": "integer", "minimum": 1}},
    response=_obj(
        {"transitions": {"type": "array", "items": {"$ref": "#/components/schemas/Transition"}}}
    ),
)
def stage_history(name: str) -> Response:
    version = query_str("version")
    items = registry().get_stage_history(name, version)
    return ok({"transitions": [t.to_dict() for t in items]})


# --- aliases ------------------------------------------------------------------------------


@api.route(
    "PUT",
    "/models/<name>/aliases/<alias>",
    permission=perm.model(Level.PROMOTE),
    summary="Point an alias at a version (models:/name@alias).",
    tag=TAG,
    body=_obj({"version": {"type": ["integer", "string"]}}, ["version"]),
    response=_obj({}),
)
def set_alias(name: str, alias: str, body: dict[str, Any]) -> Response:
    registry().set_alias(name, alias, body["version"])
    return ok({})


@api.route(
    "GET",
    "/models/<name>/aliases/<alias>",
    permission=perm.model(Level.READ),
    summary="The version an alias points at.",
    tag=TAG,
    response=_wrap("model_version", VERSION),
)
def get_alias(name: str, alias: str) -> Response:
    return ok({"model_version": registry().get_version_by_alias(name, alias).to_dict()})


@api.route(
    "DELETE",
    "/models/<name>/aliases/<alias>",
    permission=perm.model(Level.PROMOTE),
    summary="Remove an alias.",
    tag=TAG,
    response=_obj({}),
)
def delete_alias(name: str, alias: str) -> Response:
    registry().delete_alias(name, alias)
    return ok({})


# --- versions -----------------------------------------------------------------------------


@api.route(
    "POST",
    "/models/<name>/versions",
    permission=perm.model(Level.EDIT),
    summary="Start a new version (PENDING_REGISTRATION until its files are uploaded). Send an "
    "Idempotency-Key header: a retry with the same key returns the same version.",
    tag=TAG,
    body=_obj(
        {
            "source": {"type": "string", "maxLength": 4096},
            "run_id": TEXT,
            "description": TEXT,
            "tags": TAGS,
            "signature": {"type": ["object", "null"]},
        },
        ["source"],
    ),
    response=_wrap("model_version", VERSION),
    status=201,
)
def create_version(name: str, body: dict[str, Any]) -> Response:
    version = registry().begin_version(
        name,
        body["source"],
        body.get("run_id"),
        body.get("description"),
        body.get("tags"),
        body.get("signature"),
        request_id=request_id(),
    )
    return ok({"model_version": version.to_dict()}, 201)


@api.route(
    "PUT",
    "/models/<name>/versions/<version>/content",
    permission=perm.model(Level.EDIT),
    summary="Upload the files of a PENDING version as one tar stream; the X-Mlreg-Digest "
    "header carries the sender's digest, which must match what arrived. The version is READY "
    "when this answers.",
    tag=TAG,
    raw_body=MEDIA_TYPE,
    response=_wrap("model_version", VERSION),
)
def upload_version(name: str, version: str) -> Response:
    require_media_type(MEDIA_TYPE)
    expected = request.headers.get(DIGEST_HEADER, "").strip().lower()
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise InvalidInput(f"header {DIGEST_HEADER}: expected the files' sha256 (64 hex digits)")
    service = registry()
    current = _version(name, version)
    if current.status is not VersionStatus.PENDING_REGISTRATION:
        raise VersionConflict(
            f"version {current.version} of {name!r} is {current.status.value}; files are "
            "uploaded once, to a PENDING_REGISTRATION version"
        )
    limit = current_app.config["MLREG_MAX_UPLOAD_BYTES"]
    with services().scratch() as scratch:
        hashes = extract_tar(request.stream, scratch / "files", limit, "MLREG_MAX_UPLOAD_BYTES")
        received = files_digest({path: bytes.fromhex(sha) for path, sha in hashes.items()})
        if received != expected:
            # Refused before anything is stored: the version stays PENDING for a resend.
            raise InvalidInput(
                f"header {DIGEST_HEADER}: the files arrived with sha256 {received}, not the "
                f"{expected} it names; nothing was stored (send them again)"
            )
        ready = service.store_files(current, scratch / "files", expected_digest=expected)
    return ok({"model_version": ready.to_dict()})


@api.route(
    "POST",
    "/models/<name>/versions/<version>/finish",
    permission=perm.model(Level.EDIT),
    summary="Record how a registration ended: FAILED_REGISTRATION with a message, or confirm "
    "READY with the digest the uploader computed.",
    tag=TAG,
    body=_obj(
        {
            "status": {"enum": ["READY", "FAILED_REGISTRATION"]},
            "digest": TEXT,
            "message": TEXT,
        },
        ["status"],
    ),
    response=_wrap("model_version", VERSION),
)
def finish_version(name: str, version: str, body: dict[str, Any]) -> Response:
    service = registry()
    current = _version(name, version)
    if body["status"] == VersionStatus.FAILED_REGISTRATION.value:
        if current.status is VersionStatus.READY:
            raise VersionConflict(f"version {current.version} of {name!r} is already READY")
        service.store.finish_model_version(
            name,
            current.version,
            VersionStatus.FAILED_REGISTRATION,
            message=(body.get("message") or "the client gave up")[:2000],
        )
        return ok({"model_version": service.get_model_version(name, current.version).to_dict()})
    if current.status is not VersionStatus.READY or current.digest != body.get("digest"):
        raise VersionConflict(
            f"version {current.version} of {name!r} is {current.status.value}; upload its "
            "files (PUT .../content) before confirming it READY with their digest"
        )
    return ok({"model_version": current.to_dict()})  # confirmed as it is: nothing to re-read


@api.route(
    "GET",
    "/models/<name>/versions/<version>",
    permission=perm.model(Level.READ),
    summary="One version: stage, status, digest, signature, tags, aliases.",
    tag=TAG,
    response=_wrap("model_version", VERSION),
)
def get_version(name: str, version: str) -> Response:
    return ok({"model_version": _version(name, version).to_dict()})


@api.route(
    "PATCH",
    "/models/<name>/versions/<version>",
    permission=perm.model(Level.EDIT),
    summary="Set a version's description.",
    tag=TAG,
    body=_obj({"description": TEXT}, ["description"]),
    response=_wrap("model_version", VERSION),
)
def update_version(name: str, version: str, body: dict[str, Any]) -> Response:
    updated = registry().update_model_version(name, version, body["description"])
    return ok({"model_version": updated.to_dict()})


@api.route(
    "DELETE",
    "/models/<name>/versions/<version>",
    permission=perm.model(Level.MANAGE),
    summary="Delete a version and its files (its number is never reused).",
    tag=TAG,
    response=_obj({}),
)
def delete_version(name: str, version: str) -> Response:
    registry().delete_model_version(name, version)
    return ok({})


@api.route(
    "PUT",
    "/models/<name>/versions/<version>/tags/<path:key>",
    permission=perm.model(Level.EDIT),
    summary="Set a tag of a version.",
    tag=TAG,
    body=_obj({"value": {"type": "string"}}, ["value"]),
    response=_obj({}),
)
def set_version_tag(name: str, version: str, key: str, body: dict[str, Any]) -> Response:
    registry().set_model_version_tag(name, version, key, body["value"])
    return ok({})


@api.route(
    "DELETE",
    "/models/<name>/versions/<version>/tags/<path:key>",
    permission=perm.model(Level.EDIT),
    summary="Remove a tag of a version.",
    tag=TAG,
    response=_obj({}),
)
def delete_version_tag(name: str, version: str, key: str) -> Response:
    registry().delete_model_version_tag(name, version, key)
    return ok({})


@api.route(
    "POST",
    "/models/<name>/versions/<version>/stage",
    permission=perm.model(Level.PROMOTE),
    summary="Move a version to a stage (None, Staging, Production, Archived), optionally "
    "archiving the versions now in it.",
    tag=TAG,
    body=_obj(
        {
            "stage": {"type": "string"},
            "archive_existing": {"type": "boolean"},
            "user": {
                "type": ["string", "null"],
                "description": "who to record as moving it (ignored when the server "
                "authenticates callers)",
            },
        },
        ["stage"],
    ),
    response=_wrap("model_version", VERSION),
)
def transition(name: str, version: str, body: dict[str, Any]) -> Response:
    moved = registry().transition_model_version_stage(
        name,
        version,
        body["stage"],
        bool(body.get("archive_existing", False)),
        user=acting_as(body.get("user")),
    )
    return ok({"model_version": moved.to_dict()})


@api.route(
    "GET",
    "/models/<name>/versions/<version>/files",
    permission=perm.model(Level.READ),
    summary="The files of a READY version, with sizes.",
    tag=TAG,
    response=_obj({"files": {"type": "array", "items": {"$ref": "#/components/schemas/File"}}}),
)
def list_version_files(name: str, version: str) -> Response:
    files = registry().artifacts.list_files(_ready(name, version))
    return ok({"files": [{"path": f.path, "size": f.size} for f in files]})


@api.route(
    "GET",
    "/models/<name>/versions/<version>/files/<path:path>",
    permission=perm.model(Level.READ),
    summary="Download one file of a READY version (HTTP Range requests supported).",
    tag=TAG,
    raw_response=True,
)
def download_version_file(name: str, version: str, path: str) -> Response:
    ready = _ready(name, version)
    return send_stream(
        lambda start, end: registry().artifacts.open_file(ready, path, start, end),
        path,
        etag=ready.digest,
    )


def _ready(name: str, version: str) -> ModelVersion:
    found = _version(name, version)
    if found.status is not VersionStatus.READY:
        raise VersionConflict(
            f"version {found.version} of {name!r} is {found.status.value}; only READY versions "
            "have files to hand out"
        )
    return found


# --- search and resolution ----------------------------------------------------------------


@api.route(
    "GET",
    "/versions",
    permission=perm.server(Level.READ),
    summary="Search versions by model, stage, alias, tags and status, a page at a time.",
    tag=TAG,
    query={
        "name": {"type": "string"},
        "stage": {"type": "string"},
        "alias": {"type": "string"},
        "status": {"enum": [s.value for s in VersionStatus]},
        "tag": {"type": "string", "description": "KEY=VALUE, repeatable"},
        "order_by": {"type": "string", "description": "version|created|updated|name [ASC|DESC]"},
        **PAGING,
    },
    response=_obj({"model_versions": {"type": "array", "items": VERSION}, "next_page_token": TEXT}),
)
def search_versions() -> Response:
    status = query_str("status")
    if status is not None and status not in {s.value for s in VersionStatus}:
        choices = ", ".join(s.value for s in VersionStatus)
        raise InvalidInput(f"query parameter 'status': expected one of {choices}, got {status!r}")
    page = registry().search_model_versions(
        name=query_str("name"),
        stage=query_str("stage"),
        alias=query_str("alias"),
        tags=query_tags(),
        status=VersionStatus(status) if status else None,
        order_by=query_str("order_by", "version DESC") or "version DESC",
        max_results=query_int("max_results", 100, 1, MAX_PAGE),
        offset=offset_of(query_str("page_token")),
    )
    return ok(
        {
            "model_versions": [v.to_dict() for v in page.items],
            "next_page_token": page_token(page.next_offset),
        }
    )


@api.route(
    "GET",
    "/resolve",
    permission=perm.server(Level.READ),
    summary="The READY version a models:/ URI names (models:/name/3, /Production, /latest, "
    "@alias).",
    tag=TAG,
    query={"uri": {"type": "string"}},
    response=_wrap("model_version", VERSION),
)
def resolve() -> Response:
    uri = query_str("uri")
    if not uri or not uri.startswith(MODELS_SCHEME):
        raise InvalidInput(f"query parameter 'uri': expected a models:/ URI, got {uri!r}")
    return ok({"model_version": registry().get_version_for_uri(uri).to_dict()})


# --- garbage ------------------------------------------------------------------------------


@api.route(
    "GET",
    "/leftovers",
    permission=perm.ADMIN,
    summary="Copies of version files that no READY version needs (with the version each was "
    "made for, if any) and uploads interrupted in the staging area: what `mlreg gc` weighs.",
    tag=TAG,
    response=_obj(
        {
            "leftovers": {
                "type": "array",
                "items": _obj(
                    {
                        "location": {"type": "string"},
                        "modified": {"type": "string"},
                        "name": TEXT,
                        "version": {"type": ["integer", "null"]},
                    }
                ),
            }
        }
    ),
)
def leftovers() -> Response:
    return ok(
        {
            "leftovers": [
                {
                    "location": item.location,
                    "modified": item.modified.isoformat(),
                    "name": item.name,
                    "version": item.version,
                }
                for item in services().leftovers()
            ]
        }
    )


@api.route(
    "POST",
    "/leftovers/discard",
    permission=perm.ADMIN,
    summary="Remove one leftover temporary copy (only a location GET /leftovers lists).",
    tag=TAG,
    body=_obj({"location": {"type": "string"}}, ["location"]),
    response=_obj({}),
)
def discard_leftover(body: dict[str, Any]) -> Response:
    services().discard(body["location"])
    return ok({})
