"""Registry commands: register, models, versions, transition, alias, history, download, db, gc,
info.

Commands that only read (listings, show, history, download) never create a registry: where
none exists yet they say so, naming where they looked.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from importlib import metadata
from pathlib import Path

import click
from sqlalchemy.exc import SQLAlchemyError

from mlreg.cli.options import emit, json_option, key_values, paging
from mlreg.cli.output import listing, table, when
from mlreg.cli.stores import Opened, open_store
from mlreg.errors import InvalidInput, ModelNotFound, RunNotFound, StoreError
from mlreg.registry import MlregClient
from mlreg.registry.entities import ModelVersion, RegisteredModel, Stage, StageTransition
from mlreg.registry.service import copy_model
from mlreg.store import StoreSettings, migrate
from mlreg.store.database import database_exists, make_engine
from mlreg.store.pages import offset_of
from mlreg.store.pages import page_token as token_for
from mlreg.store.validation import validate_name
from mlreg.uris import resolve_model_uri, scheme_of
from mlreg.version import __version__


@contextmanager
def _client() -> Iterator[MlregClient]:
    with open_store(MlregClient, read_only=False) as opened:
        assert opened.client is not None
        yield opened.client


def _reader() -> AbstractContextManager[Opened[MlregClient]]:
    """The registry for a command that only reads: no client where none exists yet."""
    return open_store(MlregClient, read_only=True)


def _no_registry(opened: Opened, name: str) -> ModelNotFound:
    return ModelNotFound(
        f"registered model {name!r} does not exist; there is no registry at {opened.where}"
    )


def registered_name_hint(uri: str) -> str | None:
    """``models:/NAME/latest`` when ``uri`` is no path but the name of a registered model."""
    if scheme_of(uri) or Path(uri).exists():
        return None
    try:
        validate_name(uri)
    except InvalidInput:
        return None
    with _reader() as opened:
        if opened.client is None:
            return None
        try:
            opened.client.get_registered_model(uri)
        except ModelNotFound:
            return None
    return f"models:/{uri}/latest"


def with_name_hint(error: ModelNotFound, uri: str) -> ModelNotFound:
    """``error``, saying which models:/ URI was meant when ``uri`` is a registered name."""
    hint = registered_name_hint(uri)
    if hint is None:
        return error
    return ModelNotFound(f"{error.message}; {uri!r} is a registered model: did you mean {hint}?")


def _version_rows(versions: list[ModelVersion]) -> str:
    return table(
        ["NAME", "VERSION", "STAGE", "STATUS", "ALIASES", "CREATED (UTC)", "DIGEST"],
        [
            [
                v.name,
                v.version,
                v.stage.value,
                v.status.value,
                ",".join(v.aliases),
                when(v.created_at),
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
        f"  created:     {when(v.created_at)} UTC",
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
            f"  created:        {when(m.created_at)} UTC",
            f"  updated:        {when(m.updated_at)} UTC",
        ]
    )


def _history_rows(history: list[StageTransition]) -> str:
    return table(
        ["WHEN (UTC)", "VERSION", "FROM", "TO", "WHO"],
        [
            [when(h.timestamp), h.version, h.from_stage.value, h.to_stage.value, h.user]
            for h in history
        ],
    )


# --- commands ------------------------------------------------------------------------------


@click.command()
@click.argument("source")
@click.option("--name", "-n", required=True, help="Registered model name (created if new).")
@click.option("--description", "-d", default=None, help="The version's description.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Version tag (repeatable).")
@click.option(
    "--run-id", default=None, help="The tracked run that produced the model (must exist)."
)
@click.option(
    "--skip-if-unchanged",
    is_flag=True,
    help="Register nothing when a version of NAME has exactly these files (same sha256).",
)
@json_option
def register(
    source: str,
    name: str,
    description: str | None,
    tags: tuple[str, ...],
    run_id: str | None,
    skip_if_unchanged: bool,
    as_json: bool,
) -> None:
    """Register the model at SOURCE as a new version of NAME.

    SOURCE is a model directory (recorded as its absolute path), a runs:/ or a models:/ URI;
    it becomes the next version of --name (the registered model is created if new). A
    version whose files are identical to an earlier one's is registered all the same, and
    said so; --skip-if-unchanged registers nothing then.

    \b
    Examples:
      mlreg register ./mnist-cnn --name mnist --tag data=v2
      mlreg register runs:/4f1c…/model -n mnist --run-id 4f1c…
      mlreg register ./mnist-cnn -n mnist --skip-if-unchanged --json
    """
    parsed_tags = key_values(tags)
    if run_id is not None:
        _check_run(run_id)
    with _client() as client:
        if skip_if_unchanged:
            existing = client.unchanged_version(source, name)
            if existing is not None:
                emit(
                    as_json,
                    {**existing.to_dict(), "registered": False},
                    lambda: (
                        f"Unchanged: {existing.uri} has exactly these files "
                        f"(sha256:{existing.digest[:12]}); nothing registered"
                    ),
                )
                return
        v = client.register_model(
            source, name, tags=parsed_tags, description=description, run_id=run_id
        )
        same = [
            s.version for s in client.identical_versions(name, v.digest) if s.version != v.version
        ]
    if as_json:
        emit(True, {**v.to_dict(), "registered": True, "identical_to": same}, str)
        return
    click.echo(f"Registered {v.uri} (sha256:{v.digest[:12]})")
    if same:
        listed = ", ".join(map(str, same))
        click.echo(
            f"Note: its files are identical to version {listed} of {name!r} "
            "(--skip-if-unchanged registers nothing then)"
        )


def _check_run(run_id: str) -> None:
    """A run id given on the command line names a run of this tracking store."""
    from mlreg.tracking import TrackingClient  # tracking's imports, only when a run is named

    with open_store(TrackingClient, read_only=True) as opened:
        if opened.client is None:
            raise RunNotFound(f"run {run_id!r} does not exist; there are no runs at {opened.where}")
        opened.client.get_run(run_id)


@click.group()
def models() -> None:
    """Registered models: list, show, rename, update, delete.

    \b
    Examples:
      mlreg models list
      mlreg models show mnist
      mlreg models rename mnist digits
    """


@models.command("list")
@click.option("--filter", "name_like", default=None, help="SQL LIKE pattern, e.g. 'mnist%'.")
@click.option(
    "--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Only models with this tag."
)
@click.option("--order-by", default="name ASC", show_default=True, help="name, created or updated.")
@paging()
@json_option
def models_list(
    name_like: str | None,
    tags: tuple[str, ...],
    order_by: str,
    max_results: int,
    page_token: str | None,
    as_json: bool,
) -> None:
    """List registered models.

    \b
    Examples:
      mlreg models list
      mlreg models list --filter 'mnist%' --tag team=cv --json
    """
    with _reader() as opened:
        items: list[RegisteredModel] = []
        next_offset = None
        if opened.client is not None:
            page = opened.client.search_registered_models(
                name_like=name_like,
                tags=key_values(tags),
                order_by=order_by,
                max_results=max_results,
                offset=offset_of(page_token),
            )
            items, next_offset = page.items, page.next_offset
    listing(
        as_json,
        [m.to_dict() for m in items],
        token_for(next_offset),
        lambda: table(
            ["NAME", "LATEST", "ALIASES", "UPDATED (UTC)"],
            [[m.name, m.latest_version, ",".join(m.aliases), when(m.updated_at)] for m in items],
        ),
        f"No registered models in {opened.where}",
    )


@models.command("show")
@click.argument("name")
@json_option
def models_show(name: str, as_json: bool) -> None:
    """Show one registered model.

    \b
    Examples:
      mlreg models show mnist
      mlreg models show mnist --json
    """
    with _reader() as opened:
        if opened.client is None:
            raise _no_registry(opened, name)
        m = opened.client.get_registered_model(name)
    emit(as_json, m.to_dict(), lambda: _model_detail(m))


@models.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def models_delete(name: str, yes: bool) -> None:
    """Delete a registered model with all its versions.

    Their files go too.

    \b
    Examples:
      mlreg models delete mnist
      mlreg models delete mnist --yes
    """
    with _client() as client:
        model = client.get_registered_model(name)
        if not yes:
            extra = (
                " Aliases: " + ", ".join(f"@{a} -> {v}" for a, v in model.aliases.items()) + "."
                if model.aliases
                else ""
            )
            click.confirm(f"Delete {name!r} and all its versions?{extra}", abort=True)
        client.delete_registered_model(name)
    click.echo(f"Deleted {name}")


@models.command("rename")
@click.argument("name")
@click.argument("new_name")
def models_rename(name: str, new_name: str) -> None:
    """Rename a registered model; its versions follow.

    Its versions, aliases and stage history keep their numbers under the new name.

    \b
    Examples:
      mlreg models rename mnist digits
    """
    with _client() as client:
        client.rename_registered_model(name, new_name)
    click.echo(f"Renamed {name} to {new_name}")


@models.command("update")
@click.argument("name")
@click.option("--description", "-d", required=True, help="The new description.")
def models_update(name: str, description: str) -> None:
    """Set a registered model's description.

    \b
    Examples:
      mlreg models update mnist -d "28x28 digits, two classes"
    """
    with _client() as client:
        client.update_registered_model(name, description)
    click.echo(f"Updated {name}")


@click.group()
def versions() -> None:
    """Model versions: list, show, delete.

    \b
    Examples:
      mlreg versions list mnist
      mlreg versions show mnist 3
      mlreg versions delete mnist 1
    """


@versions.command("list")
@click.argument("name", required=False)
@click.option("--stage", default=None, help="Only versions in this stage (e.g. Production).")
@click.option("--alias", default=None, help="Only the version behind this alias.")
@click.option(
    "--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Only versions with this tag."
)
@click.option(
    "--order-by",
    default=None,
    help="version, created, updated or name, then ASC or DESC (default: newest version "
    "first; without NAME, grouped by model).",
)
@paging()
@json_option
def versions_list(
    name: str | None,
    stage: str | None,
    alias: str | None,
    tags: tuple[str, ...],
    order_by: str | None,
    max_results: int,
    page_token: str | None,
    as_json: bool,
) -> None:
    """List the versions of NAME (or of every model, by model).

    \b
    Examples:
      mlreg versions list mnist
      mlreg versions list --stage Production        # every model's
      mlreg versions list mnist --alias champion --json
    """
    with _reader() as opened:
        items: list[ModelVersion] = []
        next_offset = None
        if opened.client is None and name is not None:
            raise _no_registry(opened, name)
        if opened.client is not None:
            if name is not None:
                opened.client.get_registered_model(name)
            page = opened.client.search_model_versions(
                name=name,
                stage=stage,
                alias=alias,
                tags=key_values(tags),
                order_by=order_by or ("version DESC" if name else "name ASC"),
                max_results=max_results,
                offset=offset_of(page_token),
            )
            items, next_offset = page.items, page.next_offset
    of = f"of {name!r} " if name else ""
    listing(
        as_json,
        [v.to_dict() for v in items],
        token_for(next_offset),
        lambda: _version_rows(items),
        f"No versions {of}in {opened.where}",
    )


@versions.command("show")
@click.argument("name")
@click.argument("version")
@json_option
def versions_show(name: str, version: str, as_json: bool) -> None:
    """Show one model version.

    \b
    Examples:
      mlreg versions show mnist 3
      mlreg versions show mnist 3 --json
    """
    with _reader() as opened:
        if opened.client is None:
            raise _no_registry(opened, name)
        v = opened.client.get_model_version(name, version)
    emit(as_json, v.to_dict(), lambda: _version_detail(v))


@versions.command("delete")
@click.argument("name")
@click.argument("version")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def versions_delete(name: str, version: str, yes: bool) -> None:
    """Delete one version and its files.

    Its number is never reused.

    The prompt names the version's stage and aliases when it is in use.

    \b
    Examples:
      mlreg versions delete mnist 1
      mlreg versions delete mnist 1 --yes
    """
    with _client() as client:
        v = client.get_model_version(name, version)
        if not yes:
            click.confirm(f"Delete {v.uri}?{_in_use(v)}", abort=True)
        client.delete_model_version(name, version)
    click.echo(f"Deleted {v.uri}")


def _in_use(v: ModelVersion) -> str:
    """What serving a version may hang on: its stage (Staging, Production) and its aliases."""
    uses = []
    if v.stage in (Stage.STAGING, Stage.PRODUCTION):
        uses.append(f"in {v.stage.value} (models:/{v.name}/{v.stage.value})")
    if v.aliases:
        aliases = ", ".join(f"models:/{v.name}@{a}" for a in v.aliases)
        uses.append(f"behind alias{'es' if len(v.aliases) > 1 else ''} {aliases}")
    return f" It is {' and '.join(uses)}." if uses else ""


@click.command()
@click.argument("name")
@click.argument("version")
@click.argument("stage")
@click.option(
    "--archive-existing", is_flag=True, help="Archive the versions now in STAGE, in the same step."
)
@json_option
def transition(name: str, version: str, stage: str, archive_existing: bool, as_json: bool) -> None:
    """Move VERSION of NAME into STAGE, like Production.

    STAGE is None, Staging, Production or Archived (any capitalisation).

    \b
    Examples:
      mlreg transition mnist 3 Production --archive-existing
      mlreg transition mnist 2 archived
    """
    with _client() as client:
        v = client.transition_model_version_stage(name, version, stage, archive_existing)
    emit(as_json, v.to_dict(), lambda: f"{v.uri} is now in {v.stage.value}")


@click.group()
def alias() -> None:
    """Aliases (models:/name@alias): set, delete.

    \b
    Examples:
      mlreg alias set mnist champion 3
      mlreg alias delete mnist champion
    """


@alias.command("set")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.argument("version")
def alias_set(name: str, alias_name: str, version: str) -> None:
    """Point ALIAS of NAME at VERSION.

    \b
    Examples:
      mlreg alias set mnist champion 3
    """
    with _client() as client:
        client.set_alias(name, alias_name, version)
    click.echo(f"models:/{name}@{alias_name} -> version {version}")


@alias.command("delete")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
def alias_delete(name: str, alias_name: str) -> None:
    """Remove ALIAS from NAME.

    \b
    Examples:
      mlreg alias delete mnist champion
    """
    with _client() as client:
        client.delete_alias(name, alias_name)
    click.echo(f"Deleted alias {alias_name} of {name}")


@click.command()
@click.argument("name")
@click.option("--version", default=None, help="Only this version's transitions.")
@json_option
def history(name: str, version: str | None, as_json: bool) -> None:
    """Show NAME's stage transitions: from, to, when, who.

    \b
    Examples:
      mlreg history mnist
      mlreg history mnist --version 3 --json
    """
    with _reader() as opened:
        if opened.client is None:
            raise _no_registry(opened, name)
        items = opened.client.get_stage_history(name, version)
    listing(
        as_json,
        [h.to_dict() for h in items],
        None,
        lambda: _history_rows(items),
        f"No stage transitions of {name!r}" + (f" version {version}" if version else "") + " yet",
    )


@click.command()
@click.argument("uri")
@click.option(
    "--dst",
    "-d",
    "dest",
    required=True,
    type=click.Path(path_type=Path),
    help="Directory to copy the model into (new or empty).",
)
@json_option
def download(uri: str, dest: Path, as_json: bool) -> None:
    """Copy the model at URI into DST, digest checked.

    URI is a models:/ URI (a version, a stage, latest or an alias; the line printed says
    which version it was), a runs:/ URI or a path.

    \b
    Examples:
      mlreg download models:/mnist@champion -d ./out
      mlreg download models:/mnist/Production -d ./out --json
    """
    with _reader() as opened:
        try:
            if opened.client is not None:
                resolved = opened.client.download(uri, dest)
            elif scheme_of(uri) in ("", "file"):  # a directory: no store is needed to copy it
                resolved = copy_model(resolve_model_uri(uri), dest)
            else:
                raise ModelNotFound(f"cannot resolve {uri}: nothing is stored at {opened.where}")
        except ModelNotFound as e:
            raise with_name_hint(e, uri) from None
    what = (
        f"version {resolved.version} of {resolved.name!r}, sha256:{(resolved.digest or '')[:12]}"
        if resolved.version is not None
        else str(resolved.path)
    )
    emit(
        as_json,
        {
            "uri": uri,
            "name": resolved.name,
            "version": resolved.version,
            "stage": resolved.stage,
            "digest": resolved.digest,
            "path": str(dest.absolute()),
        },
        lambda: f"Downloaded {uri} ({what}) to {dest}",
    )


@click.group()
def db() -> None:
    """The registry database: upgrade its schema.

    \b
    Examples:
      mlreg db upgrade
      MLREG_TRACKING_URI=postgresql+psycopg://mlreg:pw@db/mlreg mlreg db upgrade
    """


@db.command("upgrade")
def db_upgrade() -> None:
    """Upgrade the database schema to this mlreg's version.

    Every row is kept. A new database is created at the current schema.

    \b
    Examples:
      mlreg db upgrade
    """
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
    """Remove failed versions and leftover copies.

    FAILED versions, PENDING ones older than --older-than, and temporary copies no version
    needs.

    \b
    Examples:
      mlreg gc --dry-run
      mlreg gc --older-than 600
    """
    with open_store(MlregClient, read_only=dry_run) as opened:
        if opened.client is None:
            click.echo(f"Nothing to remove: nothing is stored at {opened.where}")
            return
        report = opened.client.gc(timedelta(seconds=older_than), dry_run=dry_run)
    verb = "Would remove" if dry_run else "Removed"
    for item in report.versions:
        click.echo(f"{verb} version {item}")
    for item in report.temp_dirs:
        click.echo(f"{verb} temporary copy {item}")
    click.echo(
        f"{verb} {len(report.versions)} versions and {len(report.temp_dirs)} temporary copies"
    )


#: Distributions whose versions ``mlreg info`` reports (the first installed of each group).
_PACKAGES = {
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-gpu"),
    "keras": ("keras",),
    "mlflow": ("mlflow", "mlflow-skinny"),
}


def _installed(names: tuple[str, ...]) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _schema(settings: StoreSettings) -> tuple[str | None, str]:
    """The database's schema revision and what it means (info reports, never raises)."""
    try:
        if not database_exists(settings.uri):
            return None, "not created yet"
        engine = make_engine(settings.uri)
        try:
            schema = migrate.current_revision(engine)
        finally:
            engine.dispose()
    except (StoreError, SQLAlchemyError) as e:
        return None, f"unreachable: {getattr(e, 'message', None) or type(e).__name__}"
    return schema, "current" if schema == migrate.head_revision() else "run `mlreg db upgrade`"


@click.command()
@json_option
def info(as_json: bool) -> None:
    """Show which registry and artifact store mlreg uses.

    The store's URI (password masked), the artifact root, the user, MLREG_HOME, the versions
    of mlreg, Python, TensorFlow and MLflow (read without importing them) and the schema
    revision. Nothing is created.

    \b
    Examples:
      mlreg info
      MLREG_HOME=/data/mlreg mlreg info --json
    """
    settings = StoreSettings.from_env()
    schema: str | None
    if settings.remote:
        schema, state = None, "an mlreg server"
    else:
        schema, state = _schema(settings)
    doc = {
        "registry_uri": settings.described,
        "artifact_root": settings.artifact_root,
        "user": settings.user,
        "home": str(settings.home),
        "schema_revision": schema,
        "schema_head": migrate.head_revision(),
        "versions": {
            "mlreg": __version__,
            "python": ".".join(map(str, sys.version_info[:3])),
            **{key: _installed(names) for key, names in _PACKAGES.items()},
        },
    }

    def human() -> str:
        versions = ", ".join(f"{k} {v or '-'}" for k, v in doc["versions"].items())
        return "\n".join(
            [
                f"registry:      {doc['registry_uri']}",
                f"artifact root: {doc['artifact_root']}",
                f"user:          {doc['user']}",
                f"home:          {doc['home']}",
                f"schema:        {schema or '-'} ({state})",
                f"versions:      {versions}",
            ]
        )

    emit(as_json, doc, human)
