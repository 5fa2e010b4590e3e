"""Registry commands: register, models, versions, transition, alias, history, download, db, gc."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import click

from mlreg.cli.options import emit, json_option, key_values
from mlreg.cli.output import table
from mlreg.registry import MlregClient
from mlreg.registry.entities import ModelState, ModelVersion, RegisteredModel, StageTransition
from mlreg.store import StoreSettings, migrate
from mlreg.store.database import make_engine
from mlreg.store.validation import parse_timestamp


@contextmanager
def _client() -> Iterator[MlregClient]:
    with MlregClient() as client:
        yield client


def _version_rows(versions: list[ModelVersion]) -> str:
    return table(
        ["NAME", "VERSION", "STAGE", "STATUS", "ALIASES", "CREATED", "DIGEST"],
        [
            [
                v.name,
                v.version,
                v.stage.value,
                v.status.value,
                ",".join(v.aliases),
                v.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                (v.digest or "")[:12],
            ]
            for v in versions
        ],
    )


def _version_detail(v: ModelVersion) -> str:
    lines = [
        f"{v.name} version {v.version}  ({v.uri})",
        f"  stage:       {v.stage.value}",
        f"  status:      {v.status.value}" + (f" ({v.status_message})" if v.status_message else ""),
        f"  source:      {v.source}",
        f"  run id:      {v.run_id or '-'}",
        f"  digest:      sha256:{v.digest}" if v.digest else "  digest:      -",
        f"  aliases:     {', '.join(v.aliases) or '-'}",
        f"  tags:        {', '.join(f'{k}={val}' for k, val in v.tags.items()) or '-'}",
        f"  description: {v.description or '-'}",
        f"  created:     {v.created_at.isoformat()}",
    ]
    if v.signature:
        lines.append(f"  signature:   inputs {json.dumps(v.signature['inputs'])}")
    return "\n".join(lines)


def _model_detail(m: RegisteredModel) -> str:
    return "\n".join(
        [
            m.name,
            f"  latest version: {m.latest_version or '-'}",
            f"  aliases:        {', '.join(f'{a} -> {v}' for a, v in m.aliases.items()) or '-'}",
            f"  tags:           {', '.join(f'{k}={v}' for k, v in m.tags.items()) or '-'}",
            f"  description:    {m.description or '-'}",
            f"  created:        {m.created_at.isoformat()}",
            f"  updated:        {m.updated_at.isoformat()}",
        ]
    )


def _history_rows(history: list[StageTransition]) -> str:
    return table(
        ["WHEN", "VERSION", "FROM", "TO", "WHO"],
        [
            [
                h.timestamp.strftime("%Y-%m-%d %H:%M:%S"),
                h.version,
                h.from_stage.value,
                h.to_stage.value,
                h.user,
            ]
            for h in history
        ],
    )


# --- commands ------------------------------------------------------------------------------


@click.command()
@click.argument("source")
@click.option("--name", "-n", required=True, help="Registered model name (created if new).")
@click.option("--description", "-d", default=None)
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Version tag (repeatable).")
@click.option("--run-id", default=None, help="The run that produced the model.")
@json_option
def register(
    source: str,
    name: str,
    description: str | None,
    tags: tuple[str, ...],
    run_id: str | None,
    as_json: bool,
) -> None:
    """Register the model at SOURCE as a new version.

    SOURCE is a model directory, a runs:/ or a models:/ URI; it becomes the next version
    of --name (the registered model is created if new).
    """
    with _client() as client:
        v = client.register_model(
            source, name, tags=key_values(tags), description=description, run_id=run_id
        )
    emit(as_json, v.to_dict(), lambda: f"Registered {v.uri} (sha256:{v.digest[:12]})")


@click.group()
def models() -> None:
    """Registered models."""


@models.command("list")
@click.option("--filter", "name_like", default=None, help="SQL LIKE pattern, e.g. 'mnist%'.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE")
@click.option("--order-by", default="name ASC", show_default=True)
@click.option("--max-results", default=100, show_default=True)
@click.option("--offset", default=0, show_default=True)
@json_option
def models_list(
    name_like: str | None,
    tags: tuple[str, ...],
    order_by: str,
    max_results: int,
    offset: int,
    as_json: bool,
) -> None:
    """List registered models."""
    with _client() as client:
        page = client.search_registered_models(
            name_like=name_like,
            tags=key_values(tags),
            order_by=order_by,
            max_results=max_results,
            offset=offset,
        )
    emit(
        as_json,
        {"models": [m.to_dict() for m in page.items], "next_offset": page.next_offset},
        lambda: table(
            ["NAME", "LATEST", "ALIASES", "UPDATED"],
            [
                [
                    m.name,
                    m.latest_version,
                    ",".join(m.aliases),
                    m.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
                ]
                for m in page.items
            ],
        ),
    )


@models.command("show")
@click.argument("name")
@json_option
def models_show(name: str, as_json: bool) -> None:
    """Show one registered model."""
    with _client() as client:
        m = client.get_registered_model(name)
    emit(as_json, m.to_dict(), lambda: _model_detail(m))


@models.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def models_delete(name: str, yes: bool) -> None:
    """Delete a registered model, all its versions and their artifacts."""
    with _client() as client:
        client.get_registered_model(name)
        if not yes:
            click.confirm(f"Delete {name!r} and all its versions?", abort=True)
        client.delete_registered_model(name)
    click.echo(f"Deleted {name}")


@models.command("rename")
@click.argument("name")
@click.argument("new_name")
def models_rename(name: str, new_name: str) -> None:
    """Rename a registered model."""
    with _client() as client:
        client.rename_registered_model(name, new_name)
    click.echo(f"Renamed {name} to {new_name}")


@models.command("update")
@click.argument("name")
@click.option("--description", "-d", required=True)
def models_update(name: str, description: str) -> None:
    """Set a registered model's description."""
    with _client() as client:
        client.update_registered_model(name, description)
    click.echo(f"Updated {name}")


@click.group()
def versions() -> None:
    """Model versions."""


@versions.command("list")
@click.argument("name", required=False)
@click.option("--stage", default=None)
@click.option("--alias", default=None)
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE")
@click.option("--order-by", default="version DESC", show_default=True)
@click.option("--max-results", default=100, show_default=True)
@click.option("--offset", default=0, show_default=True)
@json_option
def versions_list(
    name: str | None,
    stage: str | None,
    alias: str | None,
    tags: tuple[str, ...],
    order_by: str,
    max_results: int,
    offset: int,
    as_json: bool,
) -> None:
    """List versions (of NAME, or of every model)."""
    with _client() as client:
        if name is not None:
            client.get_registered_model(name)
        page = client.search_model_versions(
            name=name,
            stage=stage,
            alias=alias,
            tags=key_values(tags),
            order_by=order_by,
            max_results=max_results,
            offset=offset,
        )
    emit(
        as_json,
        {"versions": [v.to_dict() for v in page.items], "next_offset": page.next_offset},
        lambda: _version_rows(page.items),
    )


@versions.command("show")
@click.argument("name")
@click.argument("version")
@json_option
def versions_show(name: str, version: str, as_json: bool) -> None:
    """Show one model version."""
    with _client() as client:
        v = client.get_model_version(name, version)
    emit(as_json, v.to_dict(), lambda: _version_detail(v))


@versions.command("delete")
@click.argument("name")
@click.argument("version")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def versions_delete(name: str, version: str, yes: bool) -> None:
    """Delete one version and its artifacts (its number is never reused)."""
    with _client() as client:
        v = client.get_model_version(name, version)
        if not yes:
            click.confirm(f"Delete {v.uri}?", abort=True)
        client.delete_model_version(name, version)
    click.echo(f"Deleted {v.uri}")


@click.command()
@click.argument("name")
@click.argument("version")
@click.argument("stage")
@click.option(
    "--archive-existing", is_flag=True, help="Archive the versions now in STAGE, in the same step."
)
@json_option
def transition(name: str, version: str, stage: str, archive_existing: bool, as_json: bool) -> None:
    """Move VERSION of NAME to STAGE (None, Staging, Production, Archived)."""
    with _client() as client:
        v = client.transition_model_version_stage(name, version, stage, archive_existing)
    emit(as_json, v.to_dict(), lambda: f"{v.uri} is now in {v.stage.value}")


@click.group()
def alias() -> None:
    """Aliases (models:/name@alias)."""


@alias.command("set")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.argument("version")
def alias_set(name: str, alias_name: str, version: str) -> None:
    """Point ALIAS of NAME at VERSION."""
    with _client() as client:
        client.set_alias(name, alias_name, version)
    click.echo(f"models:/{name}@{alias_name} -> version {version}")


@alias.command("delete")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
def alias_delete(name: str, alias_name: str) -> None:
    """Remove ALIAS from NAME."""
    with _client() as client:
        client.delete_alias(name, alias_name)
    click.echo(f"Deleted alias {alias_name} of {name}")


@click.command()
@click.argument("name")
@click.option("--version", default=None, help="Only this version.")
@click.option(
    "--at",
    default=None,
    help="Instead: NAME as it was at this ISO 8601 time (UTC unless an offset is given): "
    "which version was in each stage, where the aliases pointed.",
)
@json_option
def history(name: str, version: str | None, at: str | None, as_json: bool) -> None:
    """Show every stage transition of NAME: from, to, when and who.

    With --at TIMESTAMP: which version was in Production (and each stage) then.
    """
    if at is not None:
        when = parse_timestamp(at, "--at")
        with _client() as client:
            state = client.get_model_state(name, when)
        emit(as_json, state.to_dict(), lambda: _state_text(state))
        return
    with _client() as client:
        items = client.get_stage_history(name, version)
    emit(as_json, [h.to_dict() for h in items], lambda: _history_rows(items))


def _state_text(state: ModelState) -> str:
    lines = [f"{state.name} at {state.at.isoformat()}"]
    for stage in ("Production", "Staging", "Archived"):
        numbers = state.stages.get(stage, [])
        lines.append(f"  {stage + ':':<12}{', '.join(map(str, numbers)) or '-'}")
    aliases = ", ".join(f"{a} -> {v}" for a, v in state.aliases.items())
    lines.append(f"  {'aliases:':<12}{aliases or '-'}")
    lines.append(f"  {'versions:':<12}{', '.join(map(str, state.versions)) or '-'}")
    return "\n".join(lines)


@click.command()
@click.argument("uri")
@click.option("--dst", "-d", "dest", required=True, type=click.Path(path_type=Path))
def download(uri: str, dest: Path) -> None:
    """Copy the model URI names (checked against its digest) into DST."""
    with _client() as client:
        client.download(uri, dest)
    click.echo(f"Downloaded {uri} to {dest}")


@click.group()
def db() -> None:
    """The registry database."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Upgrade the registry database schema to this mlreg's version."""
    settings = StoreSettings.from_env()
    engine = make_engine(settings.uri)
    try:
        before = migrate.current_revision(engine)
        migrate.upgrade(engine)
        after = migrate.current_revision(engine)
    finally:
        engine.dispose()
    click.echo(f"Schema at {after}" + (f" (was {before})" if before != after else " (up to date)"))


@click.command()
@click.option(
    "--older-than", default=3600, show_default=True, help="Grace period for PENDING, in seconds."
)
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
def gc(older_than: int, dry_run: bool) -> None:
    """Remove FAILED versions, stale PENDING ones and leftover temporary copies."""
    with _client() as client:
        report = client.gc(timedelta(seconds=older_than), dry_run=dry_run)
    verb = "Would remove" if dry_run else "Removed"
    for item in report.versions:
        click.echo(f"{verb} version {item}")
    for item in report.temp_dirs:
        click.echo(f"{verb} temporary copy {item}")
    click.echo(
        f"{verb} {len(report.versions)} versions and {len(report.temp_dirs)} temporary copies"
    )
