"""The SQL registry store on SQLAlchemy 2: SQLite (embedded default) and PostgreSQL.

Every method is one transaction. Version numbers come from a counter on the model
row, bumped by a single ``UPDATE ... RETURNING``: the row lock (PostgreSQL) or the
database write lock taken by ``BEGIN IMMEDIATE`` (SQLite) serialises concurrent
registrations, so numbers have no gaps, no duplicates and are never reused.

Every write records what it changed (old and new value) through :mod:`mlreg.store.journal`
in its own transaction, as the :class:`~mlreg.store.journal.Actor` the store is bound to;
searches show only the models that actor may read (when it is limited).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.orm import Session

from mlreg.errors import AlreadyExists, InvalidInput, ModelNotFound
from mlreg.registry.entities import (
    ModelState,
    ModelVersion,
    RegisteredModel,
    Stage,
    StageTransition,
    VersionStatus,
)
from mlreg.store.database import Database, applied_result, open_database, record_applied
from mlreg.store.journal import Actor, Change, record
from mlreg.store.pages import Page
from mlreg.store.search import Filter
from mlreg.store.sql_search import compare
from mlreg.store.tables import (
    AliasRow,
    AuditRow,
    ModelGrantRow,
    ModelVersionRow,
    ModelVersionTagRow,
    RegisteredModelRow,
    RegisteredModelTagRow,
    StageTransitionRow,
)


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything we store is UTC.
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class SqlRegistryStore:
    """Persistence for registered models, versions, aliases and stage history."""

    def __init__(self, uri: str, actor: Actor | None = None) -> None:
        self.uri = uri
        self.db: Database = open_database(uri)
        self._session = self.db.transaction
        self.actor = actor or Actor("unknown")

    def close(self) -> None:
        """Release the shared database (its connections close with the last user)."""
        self.db.close()

    def acting(self, actor: Actor) -> SqlRegistryStore:
        """This store (sharing its database) recording writes as ``actor`` and showing what it
        may read; the view is never closed, the store it came from is."""
        view = copy.copy(self)
        view.actor = actor
        return view

    # --- the audit trail and visibility ------------------------------------------------

    def _record(self, session: Session, change: Change) -> None:
        record(session, self.actor, change)

    def _model_change(self, action: str, row: RegisteredModelRow, **values: Any) -> Change:
        return Change(action, "model", row.id, row.name, **values)

    def _created(self, session: Session, model_id: int, name: str, **new: Any) -> None:
        """Record a new model and give its creator's grants."""
        self._record(session, Change("registered_model.created", "model", model_id, name, new=new))
        for principal_id, level in self.actor.creator_grants:
            session.add(ModelGrantRow(model_id=model_id, principal_id=principal_id, level=level))

    def _visible(self, query: Any) -> Any:
        """``query`` (over RegisteredModelRow) limited to the models the actor may read."""
        readers = self.actor.readers
        if readers is None:
            return query
        granted = exists().where(
            ModelGrantRow.model_id == RegisteredModelRow.id,
            ModelGrantRow.principal_id.in_(readers),
            ModelGrantRow.level >= 1,
        )
        if not self.actor.ungranted_visible:
            return query.where(granted)
        ungranted = ~exists().where(ModelGrantRow.model_id == RegisteredModelRow.id)
        return query.where(or_(granted, ungranted))

    # --- conversions -------------------------------------------------------------------

    def _model(self, row: RegisteredModelRow, latest: int | None = None) -> RegisteredModel:
        return RegisteredModel(
            name=row.name,
            description=row.description,
            tags={t.key: t.value for t in row.tags},
            aliases={a.alias: a.version for a in sorted(row.aliases, key=lambda a: a.alias)},
            created_at=_utc(row.created_at),
            updated_at=_utc(row.updated_at),
            latest_version=latest,
        )

    def _version(self, row: ModelVersionRow) -> ModelVersion:
        return ModelVersion(
            name=row.model.name,
            version=row.version,
            stage=Stage(row.stage),
            status=VersionStatus(row.status),
            source=row.source,
            run_id=row.run_id,
            description=row.description,
            tags={t.key: t.value for t in row.tags},
            aliases=sorted(a.alias for a in row.model.aliases if a.version == row.version),
            signature=json.loads(row.signature) if row.signature else None,
            digest=row.digest,
            storage_location=row.storage_location,
            status_message=row.status_message,
            created_at=_utc(row.created_at),
            updated_at=_utc(row.updated_at),
            model_id=row.logged_model_id,
        )

    # --- registered models -------------------------------------------------------------

    def _model_row(self, session: Session, name: str, *, lock: bool = False) -> RegisteredModelRow:
        query = select(RegisteredModelRow).where(RegisteredModelRow.name == name)
        if lock:
            query = query.with_for_update()
        row = session.scalars(query).one_or_none()
        if row is None:
            names = session.scalars(
                self._visible(select(RegisteredModelRow.name))
                .order_by(RegisteredModelRow.name)
                .limit(10)
            ).all()
            known = ", ".join(names) if names else "none yet"
            raise ModelNotFound(
                f"registered model {name!r} does not exist; registered models: {known}"
            )
        return row

    def create_registered_model(
        self, name: str, description: str | None, tags: dict[str, str]
    ) -> RegisteredModel:
        try:
            with self._session() as session:
                row = RegisteredModelRow(name=name, description=description, last_version=0)
                row.tags = [RegisteredModelTagRow(key=k, value=v) for k, v in tags.items()]
                session.add(row)
                session.flush()
                self._created(session, row.id, name, description=description, tags=tags)
                return self._model(row)
        except SqlIntegrityError:
            raise AlreadyExists(f"registered model {name!r} already exists") from None

    def get_registered_model(self, name: str) -> RegisteredModel:
        with self._session() as session:
            row = self._model_row(session, name)
            return self._model(row, self._latest(session, row.id))

    def _latest(self, session: Session, model_id: int) -> int | None:
        return session.scalar(
            select(func.max(ModelVersionRow.version)).where(ModelVersionRow.model_id == model_id)
        )

    def search_registered_models(
        self,
        *,
        name_like: str | None = None,
        tags: dict[str, str] | None = None,
        order_by: str = "name ASC",
        max_results: int = 100,
        offset: int = 0,
        filters: Sequence[Filter] = (),
    ) -> Page:
        with self._session() as session:
            query = self._visible(select(RegisteredModelRow))
            if name_like:
                query = query.where(RegisteredModelRow.name.like(name_like))
            for key, value in (tags or {}).items():
                query = query.where(
                    RegisteredModelRow.tags.any(
                        (RegisteredModelTagRow.key == key) & (RegisteredModelTagRow.value == value)
                    )
                )
            for f in filters:
                query = query.where(_model_filter(f))
            columns = _order(
                order_by,
                {
                    "name": RegisteredModelRow.name,
                    "created": RegisteredModelRow.created_at,
                    "updated": RegisteredModelRow.updated_at,
                },
            )
            query = query.order_by(*columns, RegisteredModelRow.id)
            rows = session.scalars(query.offset(offset).limit(max_results + 1)).all()
            items = [self._model(r, self._latest(session, r.id)) for r in rows[:max_results]]
            return Page(items, offset + max_results if len(rows) > max_results else None)

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        with self._session() as session:
            row = self._model_row(session, name)
            self._record(
                session,
                self._model_change(
                    "registered_model.updated",
                    row,
                    old={"description": row.description},
                    new={"description": description},
                ),
            )
            row.description = description
            row.updated_at = _now()
            return self._model(row)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        try:
            with self._session() as session:
                row = self._model_row(session, name)
                self._record(
                    session,
                    Change(
                        "registered_model.renamed",
                        "model",
                        row.id,
                        new_name,
                        old={"name": name},
                        new={"name": new_name},
                    ),
                )
                row.name = new_name
                row.updated_at = _now()
                session.flush()
                return self._model(row)
        except SqlIntegrityError:
            raise AlreadyExists(f"registered model {new_name!r} already exists") from None

    def delete_registered_model(self, name: str) -> list[str]:
        """Delete the model and its versions; return the storage locations to remove."""
        with self._session() as session:
            row = self._model_row(session, name)
            versions = session.execute(
                select(ModelVersionRow.version, ModelVersionRow.storage_location)
                .where(ModelVersionRow.model_id == row.id)
                .order_by(ModelVersionRow.version)
            ).all()
            self._record(
                session,
                self._model_change(
                    "registered_model.deleted",
                    row,
                    old={
                        "versions": [number for number, _ in versions],
                        "aliases": {a.alias: a.version for a in row.aliases},
                    },
                ),
            )
            session.delete(row)
            return [loc for _, loc in versions if loc]

    def set_registered_model_tag(self, name: str, key: str, value: str | None) -> None:
        with self._session() as session:
            row = self._model_row(session, name)
            old = next((t.value for t in row.tags if t.key == key), None)
            self._record(
                session,
                self._model_change(
                    "registered_model.tag_set"
                    if value is not None
                    else "registered_model.tag_deleted",
                    row,
                    old={key: old},
                    new={key: value},
                ),
            )
            row.tags = [t for t in row.tags if t.key != key]
            if value is not None:
                row.tags.append(RegisteredModelTagRow(key=key, value=value))
            row.updated_at = _now()

    # --- versions ----------------------------------------------------------------------

    def _next_number(self, session: Session, name: str) -> tuple[int, int]:
        """Bump the model's version counter (creating the model if new): (model id, number)."""
        bump = (
            update(RegisteredModelRow)
            .where(RegisteredModelRow.name == name)
            .values(last_version=RegisteredModelRow.last_version + 1, updated_at=_now())
            .returning(RegisteredModelRow.id, RegisteredModelRow.last_version)
        )
        row = session.execute(bump).one_or_none()
        if row is None:
            now = _now()
            # RETURNING, not rowcount: an ORM-enabled INSERT's rowcount is -1 whether or not
            # ON CONFLICT skipped it, and every racing creator would record and grant.
            inserted = session.execute(
                self.db.insert()(RegisteredModelRow)
                .values(name=name, last_version=0, created_at=now, updated_at=now)
                .on_conflict_do_nothing(index_elements=["name"])
                .returning(RegisteredModelRow.id)
            ).scalar_one_or_none()
            row = session.execute(bump).one()
            if inserted is not None:
                self._created(session, row[0], name)
        return row[0], row[1]

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None,
        description: str | None,
        tags: dict[str, str],
        signature: dict[str, Any] | None,
        *,
        request_id: str | None = None,
        model_id: str | None = None,
    ) -> ModelVersion:
        """Allocate the next number and insert a PENDING_REGISTRATION version.

        A ``request_id`` seen before returns the version that request made (a retry).
        """
        try:
            with self._session() as session:
                earlier = applied_result(session, request_id)
                if earlier is not None:
                    return self._version(self._version_row(session, name, int(earlier)))
                row = self._insert_version(
                    session, name, source, run_id, description, tags, signature, model_id
                )
                record_applied(session, request_id, str(row.version))
                session.flush()
                return self._version(row)
        except SqlIntegrityError:
            if request_id is None:
                raise
            # The same request committed concurrently (a retry racing its first attempt).
            with self._session() as session:
                earlier = applied_result(session, request_id)
                if earlier is None:
                    raise
                return self._version(self._version_row(session, name, int(earlier)))

    def _insert_version(
        self,
        session: Session,
        name: str,
        source: str,
        run_id: str | None,
        description: str | None,
        tags: dict[str, str],
        signature: dict[str, Any] | None,
        logged_model_id: str | None,
    ) -> ModelVersionRow:
        now = _now()
        model_id, number = self._next_number(session, name)
        row = ModelVersionRow(
            model_id=model_id,
            version=number,
            stage=Stage.NONE.value,
            status=VersionStatus.PENDING_REGISTRATION.value,
            source=source,
            run_id=run_id,
            description=description,
            signature=json.dumps(signature) if signature else None,
            created_at=now,
            updated_at=now,
            logged_model_id=logged_model_id,
        )
        row.tags = [ModelVersionTagRow(key=k, value=v) for k, v in tags.items()]
        session.add(row)
        self._record(
            session,
            Change(
                "model_version.created",
                "model",
                model_id,
                name,
                number,
                new={"source": source, "run_id": run_id, "status": row.status},
            ),
        )
        return row

    def _version_row(self, session: Session, name: str, version: int) -> ModelVersionRow:
        model = self._model_row(session, name)
        row = session.scalars(
            select(ModelVersionRow).where(
                ModelVersionRow.model_id == model.id, ModelVersionRow.version == version
            )
        ).one_or_none()
        if row is None:
            numbers = session.scalars(
                select(ModelVersionRow.version)
                .where(ModelVersionRow.model_id == model.id)
                .order_by(ModelVersionRow.version)
            ).all()
            known = ", ".join(map(str, numbers)) if numbers else "none"
            raise ModelNotFound(f"version {version} of {name!r} does not exist; versions: {known}")
        return row

    def finish_model_version(
        self,
        name: str,
        version: int,
        status: VersionStatus,
        digest: str | None = None,
        storage_location: str | None = None,
        message: str | None = None,
    ) -> None:
        with self._session() as session:
            row = self._version_row(session, name, version)
            action = (
                "model_version.ready"
                if status is VersionStatus.READY
                else "model_version.failed"
                if status is VersionStatus.FAILED_REGISTRATION
                else "model_version.updated"
            )
            new = {"status": status.value, "digest": digest}
            if message is not None:
                new["message"] = message
            self._record(
                session,
                Change(
                    action,
                    "model",
                    row.model_id,
                    name,
                    version,
                    old={"status": row.status},
                    new=new,
                ),
            )
            row.status = status.value
            row.digest = digest
            row.storage_location = storage_location
            row.status_message = message
            row.updated_at = _now()

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        with self._session() as session:
            return self._version(self._version_row(session, name, version))

    def search_model_versions(
        self,
        *,
        name: str | None = None,
        stage: Stage | None = None,
        alias: str | None = None,
        tags: dict[str, str] | None = None,
        status: VersionStatus | None = None,
        order_by: str = "version DESC",
        max_results: int = 100,
        offset: int = 0,
        run_id: str | None = None,
        filters: Sequence[Filter] = (),
    ) -> Page:
        with self._session() as session:
            query = self._visible(select(ModelVersionRow).join(ModelVersionRow.model))
            if name is not None:
                query = query.where(RegisteredModelRow.name == name)
            if run_id is not None:
                query = query.where(ModelVersionRow.run_id == run_id)
            if stage is not None:
                query = query.where(ModelVersionRow.stage == stage.value)
            if status is not None:
                query = query.where(ModelVersionRow.status == status.value)
            if alias is not None:
                query = query.join(
                    AliasRow,
                    (AliasRow.model_id == ModelVersionRow.model_id)
                    & (AliasRow.version == ModelVersionRow.version),
                ).where(AliasRow.alias == alias)
            for key, value in (tags or {}).items():
                query = query.where(
                    ModelVersionRow.tags.any(
                        (ModelVersionTagRow.key == key) & (ModelVersionTagRow.value == value)
                    )
                )
            for f in filters:
                query = query.where(_version_filter(f))
            columns = _order(
                order_by,
                {
                    "version": ModelVersionRow.version,
                    "created": ModelVersionRow.created_at,
                    "updated": ModelVersionRow.updated_at,
                    "name": RegisteredModelRow.name,
                },
            )
            query = query.order_by(
                *columns, RegisteredModelRow.name, ModelVersionRow.version.desc()
            )
            rows = session.scalars(query.offset(offset).limit(max_results + 1)).unique().all()
            items = [self._version(r) for r in rows[:max_results]]
            return Page(items, offset + max_results if len(rows) > max_results else None)

    def versions_by_stage(self, name: str) -> dict[Stage, list[int]]:
        """READY version numbers of ``name`` grouped by stage (for not-found messages)."""
        with self._session() as session:
            model = self._model_row(session, name)
            rows = session.execute(
                select(ModelVersionRow.stage, ModelVersionRow.version)
                .where(
                    ModelVersionRow.model_id == model.id,
                    ModelVersionRow.status == VersionStatus.READY.value,
                )
                .order_by(ModelVersionRow.version)
            ).all()
        grouped: dict[Stage, list[int]] = {}
        for stage, version in rows:
            grouped.setdefault(Stage(stage), []).append(version)
        return grouped

    def update_model_version(
        self, name: str, version: int, description: str | None
    ) -> ModelVersion:
        with self._session() as session:
            row = self._version_row(session, name, version)
            self._record(
                session,
                Change(
                    "model_version.updated",
                    "model",
                    row.model_id,
                    name,
                    version,
                    old={"description": row.description},
                    new={"description": description},
                ),
            )
            row.description = description
            row.updated_at = _now()
            return self._version(row)

    def set_model_version_tag(self, name: str, version: int, key: str, value: str | None) -> None:
        with self._session() as session:
            row = self._version_row(session, name, version)
            old = next((t.value for t in row.tags if t.key == key), None)
            self._record(
                session,
                Change(
                    "model_version.tag_set" if value is not None else "model_version.tag_deleted",
                    "model",
                    row.model_id,
                    name,
                    version,
                    old={key: old},
                    new={key: value},
                ),
            )
            row.tags = [t for t in row.tags if t.key != key]
            if value is not None:
                row.tags.append(ModelVersionTagRow(key=key, value=value))
            row.updated_at = _now()

    def delete_model_version(self, name: str, version: int) -> str | None:
        """Delete one version (its number stays taken); return its storage location."""
        with self._session() as session:
            row = self._version_row(session, name, version)
            location = row.storage_location
            self._record(
                session,
                Change(
                    "model_version.deleted",
                    "model",
                    row.model_id,
                    name,
                    version,
                    old={
                        "stage": row.stage,
                        "status": row.status,
                        "digest": row.digest,
                        "aliases": sorted(
                            a.alias for a in row.model.aliases if a.version == version
                        ),
                    },
                ),
            )
            session.execute(
                delete(AliasRow).where(
                    AliasRow.model_id == row.model_id, AliasRow.version == version
                )
            )
            session.delete(row)
            return location

    # --- stages and aliases ------------------------------------------------------------

    def transition_stage(
        self, name: str, version: int, stage: Stage, archive_existing: bool, user: str
    ) -> ModelVersion:
        with self._session() as session:
            model = self._model_row(session, name, lock=True)
            row = self._version_row(session, name, version)
            now = _now()
            moves = [(row, stage)]
            if archive_existing and stage in (Stage.STAGING, Stage.PRODUCTION):
                others = session.scalars(
                    select(ModelVersionRow).where(
                        ModelVersionRow.model_id == model.id,
                        ModelVersionRow.stage == stage.value,
                        ModelVersionRow.version != version,
                    )
                ).all()
                moves += [(other, Stage.ARCHIVED) for other in others]
            for target, to_stage in moves:
                if target.stage == to_stage.value:
                    continue
                self._record(
                    session,
                    Change(
                        "model_version.stage_changed",
                        "model",
                        model.id,
                        model.name,
                        target.version,
                        old={"stage": target.stage},
                        new={"stage": to_stage.value},
                    ),
                )
                session.add(
                    StageTransitionRow(
                        model_id=model.id,
                        version=target.version,
                        from_stage=target.stage,
                        to_stage=to_stage.value,
                        user=user,
                        timestamp=now,
                    )
                )
                target.stage = to_stage.value
                target.updated_at = now
            model.updated_at = now
            session.flush()
            return self._version(row)

    def stage_history(self, name: str, version: int | None) -> list[StageTransition]:
        with self._session() as session:
            model = self._model_row(session, name)
            query = select(StageTransitionRow).where(StageTransitionRow.model_id == model.id)
            if version is not None:
                query = query.where(StageTransitionRow.version == version)
            rows = session.scalars(query.order_by(StageTransitionRow.id)).all()
            return [
                StageTransition(
                    name=model.name,
                    version=r.version,
                    from_stage=Stage(r.from_stage),
                    to_stage=Stage(r.to_stage),
                    user=r.user,
                    timestamp=_utc(r.timestamp),
                )
                for r in rows
            ]

    def model_state_at(self, name: str, at: datetime) -> ModelState:
        """Stages from the stage history (kept since the first release); versions and aliases
        from the rows and the audit trail (kept since schema 0007)."""
        at = at.astimezone(timezone.utc)
        with self._session() as session:
            model = self._model_row(session, name)
            created = {
                number: _utc(when)
                for number, when in session.execute(
                    select(ModelVersionRow.version, ModelVersionRow.created_at).where(
                        ModelVersionRow.model_id == model.id
                    )
                )
            }
            trail = session.scalars(
                select(AuditRow)
                .where(
                    AuditRow.resource_type == "model",
                    AuditRow.resource_id == str(model.id),
                    AuditRow.timestamp <= at,
                    AuditRow.action.in_(
                        [
                            "model_version.created",
                            "model_version.deleted",
                            "model_alias.set",
                            "model_alias.deleted",
                        ]
                    ),
                )
                .order_by(AuditRow.id)
            ).all()
            moves = session.execute(
                select(StageTransitionRow.version, StageTransitionRow.to_stage)
                .where(StageTransitionRow.model_id == model.id, StageTransitionRow.timestamp <= at)
                .order_by(StageTransitionRow.id)
            ).all()
        existed = {number for number, when in created.items() if when <= at}
        aliases: dict[str, int] = {}
        for row in trail:
            if row.action == "model_version.created" and row.version is not None:
                existed.add(row.version)
            elif row.action == "model_version.deleted":
                existed.discard(row.version)  # type: ignore[arg-type]
                aliases = {a: v for a, v in aliases.items() if v != row.version}
            elif row.action == "model_alias.set":
                aliases[json.loads(row.new_value or "{}")["alias"]] = row.version  # type: ignore[assignment]
            else:
                aliases.pop(json.loads(row.old_value or "{}").get("alias"), None)
        stage_of = {version: to_stage for version, to_stage in moves}
        stages: dict[str, list[int]] = {}
        for version in sorted(existed):
            stage = stage_of.get(version, Stage.NONE.value)
            if stage != Stage.NONE.value:
                stages.setdefault(stage, []).append(version)
        return ModelState(model.name, at, sorted(existed), stages, dict(sorted(aliases.items())))

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """One upsert: concurrent calls for the same alias end with one of them winning, and a
        version deleted meanwhile is refused by the foreign key (no alias to nothing). The
        audit row (old -> new) is written in the same transaction."""
        try:
            with self._session() as session:
                row = self._version_row(session, name, version)
                before = next((a.version for a in row.model.aliases if a.alias == alias), None)
                self._record(
                    session,
                    Change(
                        "model_alias.set",
                        "model",
                        row.model_id,
                        name,
                        version,
                        old={"alias": alias, "version": before},
                        new={"alias": alias, "version": version},
                    ),
                )
                insert = self.db.insert()(AliasRow).values(
                    model_id=row.model_id, alias=alias, version=version
                )
                session.execute(
                    insert.on_conflict_do_update(
                        index_elements=["model_id", "alias"], set_={"version": version}
                    )
                )
        except SqlIntegrityError:
            # The version was deleted between the check and the write.
            raise ModelNotFound(f"version {version} of {name!r} does not exist") from None

    def delete_alias(self, name: str, alias: str) -> None:
        with self._session() as session:
            model = self._model_row(session, name)
            before = next((a.version for a in model.aliases if a.alias == alias), None)
            if before is None:
                raise ModelNotFound(self._alias_missing(model, alias))
            self._record(
                session,
                Change(
                    "model_alias.deleted",
                    "model",
                    model.id,
                    name,
                    before,
                    old={"alias": alias, "version": before},
                ),
            )
            session.execute(
                delete(AliasRow).where(AliasRow.model_id == model.id, AliasRow.alias == alias)
            )

    def version_for_alias(self, name: str, alias: str) -> int:
        with self._session() as session:
            model = self._model_row(session, name)
            for a in model.aliases:
                if a.alias == alias:
                    return a.version
            raise ModelNotFound(self._alias_missing(model, alias))

    @staticmethod
    def _alias_missing(model: RegisteredModelRow, alias: str) -> str:
        known = ", ".join(f"{a.alias} -> {a.version}" for a in model.aliases) or "none"
        return f"alias {alias!r} of {model.name!r} does not exist; aliases: {known}"


def _order(order_by: str, columns: dict[str, Any]) -> list[Any]:
    """Parse ``"version DESC"`` (or several, comma-separated) into ORDER BY columns."""
    out = []
    for clause in order_by.split(","):
        parts = clause.split()
        key = parts[0].lower() if parts else ""
        direction = parts[1].upper() if len(parts) > 1 else "ASC"
        if key not in columns or direction not in ("ASC", "DESC") or len(parts) > 2:
            raise InvalidInput(
                f"invalid order_by {order_by!r}; expected one of {', '.join(columns)} "
                "optionally followed by ASC or DESC"
            )
        out.append(columns[key].desc() if direction == "DESC" else columns[key].asc())
    return out


def _model_filter(f: Filter) -> Any:
    if f.kind == "tags":
        return RegisteredModelRow.id.in_(
            select(RegisteredModelTagRow.model_id).where(
                RegisteredModelTagRow.key == f.key,
                compare(RegisteredModelTagRow.value, f.op, f.value),
            )
        )
    if f.key != "name":
        raise InvalidInput(f"registered models cannot be searched by {f.key!r}")
    return compare(RegisteredModelRow.name, f.op, f.value)


_VERSION_COLUMNS = {
    "name": RegisteredModelRow.name,
    "run_id": ModelVersionRow.run_id,
    "source": ModelVersionRow.source,
    "version": ModelVersionRow.version,
}


def _version_filter(f: Filter) -> Any:
    if f.kind == "tags":
        return ModelVersionRow.id.in_(
            select(ModelVersionTagRow.version_id).where(
                ModelVersionTagRow.key == f.key,
                compare(ModelVersionTagRow.value, f.op, f.value),
            )
        )
    column = _VERSION_COLUMNS.get(f.key)
    if column is None:
        raise InvalidInput(f"model versions cannot be searched by {f.key!r}")
    return compare(column, f.op, f.value)
