"""Registered models: the list (search by name and tag), a model's page, and its actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote

from flask import Response, request

from mlreg.errors import InvalidInput
from mlreg.registry.entities import ModelVersion, Stage, StageTransition, VersionStatus
from mlreg.server import permissions as perm
from mlreg.server.permissions import Level
from mlreg.server.routes.registry import registry
from mlreg.server.routes.tracking import tracking
from mlreg.server.ui import format as fmt
from mlreg.server.ui.experiments import runs_anywhere
from mlreg.server.ui.pages import (
    action,
    checkbox,
    done,
    field,
    link,
    page,
    render,
    return_to,
    start_param,
)
from mlreg.store.validation import validate_version
from mlreg.tracking.entities import Lifecycle, Run
from mlreg.tracking.service import USER_TAG

MODELS_PER_PAGE = 50
VERSIONS_PER_PAGE = 100
#: The newest transitions shown on a model's timeline.
TIMELINE = 200
SORTS = {
    "name": "name ASC",
    "updated": "updated DESC",
    "created": "created DESC",
}


def parse_tag_filters(raw: list[str]) -> dict[str, str]:
    """``key=value`` search terms; InvalidInput naming a term without ``=``."""
    tags = {}
    for term in raw:
        term = term.strip()
        if not term:
            continue
        key, sep, value = term.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"tag filter {term!r}: expected KEY=VALUE, e.g. team=vision")
        tags[key.strip()] = value.strip()
    return tags


@page(
    "/models",
    permission=perm.server(Level.READ),
    summary="Registered models with their latest, Production and Staging versions, aliases and "
    "tags; search by name and tag.",
)
def models() -> Response:
    query = (request.args.get("q") or "").strip()
    tag_terms = request.args.getlist("tag")
    sort = request.args.get("sort", "name")
    error = None
    items: list = []
    next_offset = None
    stages: dict[str, dict[Stage, list[int]]] = {}
    offset = 0
    try:
        if sort not in SORTS:
            raise InvalidInput(f"sort: expected one of {', '.join(SORTS)}, got {sort!r}")
        offset = start_param()
        service = registry()
        found = service.search_registered_models(
            name_like=f"%{query}%" if query else None,
            tags=parse_tag_filters(tag_terms),
            order_by=SORTS[sort],
            max_results=MODELS_PER_PAGE,
            offset=offset,
        )
        items, next_offset = found.items, found.next_offset
        for model in items:
            stages[model.name] = service.store.versions_by_stage(model.name)
    except InvalidInput as e:
        error = e.message
    return render(
        "models.html",
        400 if error else 200,
        section="models",
        models=items,
        stages=stages,
        query=query,
        tag_terms=[t for t in tag_terms if t.strip()],
        sort=sort,
        sorts=list(SORTS),
        error=error,
        start=offset,
        next_start=next_offset,
        prev_start=max(offset - MODELS_PER_PAGE, 0) if offset else None,
        Stage=Stage,
    )


@dataclass(frozen=True)
class Moment:
    """A time as a page shows it: ISO for ``<time>``, UTC to the second, and how long ago."""

    iso: str
    text: str
    ago: str


def moment(value: datetime | int | None, now: datetime) -> Moment:
    return Moment(fmt.iso(value), fmt.when(value), fmt.ago(value, now))


@dataclass(frozen=True)
class VersionRow:
    """A row of a model's versions table, formatted here once (per-row url_for and template
    macros were half of a 200-version page's time)."""

    number: int
    href: str
    stage: str
    aliases: list[str]
    status: str
    digest: str | None
    run_id: str | None
    run_href: str | None
    run_deleted: bool
    creator: str | None
    created: Moment


@dataclass(frozen=True)
class TransitionRow:
    user: str
    version: int
    href: str
    from_stage: str
    to_stage: str
    at: Moment


def path_prefix(handler: str, **values: object) -> str:
    """The URL of ``handler`` up to its last argument, which is given as ``_``: the rest of the
    page's links are this prefix and a quoted value, built without url_for for each."""
    url = link(handler, **values)
    assert url.endswith("/_"), url
    return url[:-1]


def version_rows(name: str, versions: list[ModelVersion], runs: dict[str, Run]) -> list[VersionRow]:
    now = datetime.now(timezone.utc)
    to_version = path_prefix("version", name=name, version="_")
    to_run = path_prefix("run", run_id="_")
    rows = []
    for v in versions:
        run = runs.get(v.run_id) if v.run_id else None
        rows.append(
            VersionRow(
                v.version,
                f"{to_version}{v.version}",
                v.stage.value,
                list(v.aliases),
                v.status.value,
                v.digest,
                v.run_id,
                f"{to_run}{quote(v.run_id, safe='')}" if v.run_id else None,
                run is not None and run.info.lifecycle_stage is Lifecycle.DELETED,
                run.data.tags.get(USER_TAG) if run is not None else None,
                moment(v.created_at, now),
            )
        )
    return rows


def transition_rows(name: str, transitions: list[StageTransition]) -> list[TransitionRow]:
    now = datetime.now(timezone.utc)
    to_version = path_prefix("version", name=name, version="_")
    return [
        TransitionRow(
            t.user,
            t.version,
            f"{to_version}{t.version}",
            t.from_stage.value,
            t.to_stage.value,
            moment(t.timestamp, now),
        )
        for t in transitions
    ]


def source_runs(versions: list[ModelVersion]) -> dict[str, Run]:
    """The runs the versions came from, by id (deleted ones too: lineage outlives them)."""
    return runs_anywhere(tracking(), {v.run_id for v in versions if v.run_id})


@page(
    "/models/<name>",
    permission=perm.model(Level.READ),
    summary="A model: versions, stage-transition timeline, aliases, tags and the actions the "
    "user may take.",
)
def model(name: str) -> Response:
    service = registry()
    registered = service.get_registered_model(name)
    offset = start_param()
    found = service.search_model_versions(
        name=name, order_by="version DESC", max_results=VERSIONS_PER_PAGE, offset=offset
    )
    history = service.get_stage_history(name)
    timeline = list(reversed(history[-TIMELINE:]))
    runs = source_runs(found.items)
    return render(
        "model.html",
        section="models",
        model=registered,
        versions=found.items,
        rows=version_rows(name, found.items, runs),
        start=offset,
        next_start=found.next_offset,
        prev_start=max(offset - VERSIONS_PER_PAGE, 0) if offset else None,
        timeline=transition_rows(name, timeline),
        older_transitions=max(len(history) - TIMELINE, 0),
        stages=[s.value for s in Stage],
        ready=[v.version for v in found.items if v.status is VersionStatus.READY],
        Stage=Stage,
        VersionStatus=VersionStatus,
    )


# --- actions ---------------------------------------------------------------------------------


@action(
    "/models/<name>/transition",
    permission=perm.model(Level.PROMOTE),
    summary="Move a version to a stage, optionally archiving the versions now in it.",
)
def transition(name: str) -> Response:
    version = validate_version(field("version"))
    stage = Stage.parse(field("stage"))
    archive = checkbox("archive_existing")
    moved = registry().transition_model_version_stage(name, version, stage, archive)
    extra = f", archiving the versions that were in {stage.value}" if archive else ""
    return done(
        f"Moved version {moved.version} of {name} to {moved.stage.value}{extra}.",
        return_to(link("model", name=name)),
    )


@action(
    "/models/<name>/aliases",
    permission=perm.model(Level.PROMOTE),
    summary="Point an alias at a version (models:/name@alias).",
)
def set_alias(name: str) -> Response:
    alias = field("alias")
    version = validate_version(field("version"))
    registry().set_alias(name, alias, version)
    return done(
        f"Alias @{alias} now points at version {version} (models:/{name}@{alias}).",
        return_to(link("model", name=name)),
    )


@action(
    "/models/<name>/aliases/<alias>/delete",
    permission=perm.model(Level.PROMOTE),
    summary="Remove an alias.",
)
def delete_alias(name: str, alias: str) -> Response:
    registry().delete_alias(name, alias)
    return done(f"Removed alias @{alias}.", return_to(link("model", name=name)))


@action(
    "/models/<name>/description",
    permission=perm.model(Level.EDIT),
    summary="Set a model's description.",
)
def describe_model(name: str) -> Response:
    text = field("description", required=False)
    registry().update_registered_model(name, text or None)
    return done("Saved the description.", return_to(link("model", name=name)))


@action("/models/<name>/tags", permission=perm.model(Level.EDIT), summary="Set a model's tag.")
def set_model_tag(name: str) -> Response:
    key = field("key")
    registry().set_registered_model_tag(name, key, field("value", required=False))
    return done(f"Set tag {key}.", return_to(link("model", name=name)))


@action(
    "/models/<name>/tags/delete",
    permission=perm.model(Level.EDIT),
    summary="Remove a model's tag.",
)
def delete_model_tag(name: str) -> Response:
    key = field("key")
    registry().delete_registered_model_tag(name, key)
    return done(f"Removed tag {key}.", return_to(link("model", name=name)))


@action(
    "/models/<name>/delete",
    permission=perm.model(Level.MANAGE),
    summary="Delete a model, its versions and their files (asks for the model's name).",
)
def delete_model(name: str) -> Response:
    confirm = field("confirm", required=False)
    if confirm != name:
        raise InvalidInput(
            f"to delete {name}, type its name in the confirmation field (got {confirm!r}); "
            "nothing was deleted"
        )
    registry().delete_registered_model(name)
    return done(f"Deleted model {name} with its versions and their files.", link("models"))
