"""Reading the audit trail: every write (who, when, from where, old and new value), newest
first, by resource, user, action and time.

The rows are written by the stores in the transactions of the writes themselves
(:mod:`mlreg.store.journal`); this module only reads them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import or_, select

from mlreg.store.database import Database
from mlreg.store.pages import Page, check_paging
from mlreg.store.tables import AuditRow, ExperimentRow, RegisteredModelRow


@dataclass(frozen=True)
class AuditEvent:
    id: int
    timestamp: datetime
    user: str
    address: str | None
    action: str
    resource_type: str
    resource_id: str | None
    resource: str
    version: int | None
    old: Any
    new: Any

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "timestamp": self.timestamp.isoformat(),
            "user": self.user,
            "address": self.address,
            "action": self.action,
            "resource_type": self.resource_type,
            "resource_id": self.resource_id,
            "resource": self.resource,
            "version": self.version,
            "old": self.old,
            "new": self.new,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> AuditEvent:
        return cls(
            doc["id"],
            datetime.fromisoformat(doc["timestamp"]),
            doc["user"],
            doc.get("address"),
            doc["action"],
            doc["resource_type"],
            doc.get("resource_id"),
            doc["resource"],
            doc.get("version"),
            doc.get("old"),
            doc.get("new"),
        )


@dataclass(frozen=True)
class AuditQuery:
    """Which events: all of them, or those of one model / experiment, one user, one action,
    since / until a time."""

    model: str | None = None
    experiment: str | None = None
    user: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def search(self, query: AuditQuery, max_results: int = 100, offset: int = 0) -> Page:
        """A page of events, newest first. A model is followed by id through renames; a model
        since deleted is found by the name it had."""
        check_paging(max_results, offset)
        with self.db.transaction() as session:
            stmt = select(AuditRow)
            if query.model is not None:
                model_id = session.scalar(
                    select(RegisteredModelRow.id).where(RegisteredModelRow.name == query.model)
                )
                stmt = stmt.where(AuditRow.resource_type == "model")
                stmt = stmt.where(
                    AuditRow.resource_name == query.model
                    if model_id is None
                    else or_(
                        AuditRow.resource_id == str(model_id),
                        # grants name the model by id too; and a model once deleted then
                        # registered again under the same name keeps both trails together
                        AuditRow.resource_name == query.model,
                    )
                )
            if query.experiment is not None:
                experiment_id = session.scalar(
                    select(ExperimentRow.id).where(ExperimentRow.name == query.experiment)
                )
                stmt = stmt.where(
                    AuditRow.resource_type == "experiment",
                    AuditRow.resource_id == str(experiment_id)
                    if experiment_id is not None
                    else AuditRow.resource_name == query.experiment,
                )
            if query.user is not None:
                stmt = stmt.where(AuditRow.user == query.user)
            if query.action is not None:
                stmt = stmt.where(AuditRow.action.like(query.action.replace("*", "%")))
            if query.since is not None:
                stmt = stmt.where(AuditRow.timestamp >= query.since.astimezone(timezone.utc))
            if query.until is not None:
                stmt = stmt.where(AuditRow.timestamp <= query.until.astimezone(timezone.utc))
            rows = session.scalars(
                stmt.order_by(AuditRow.id.desc()).offset(offset).limit(max_results + 1)
            ).all()
            items = [_event(r) for r in rows[:max_results]]
        return Page(items, offset + max_results if len(rows) > max_results else None)


def _event(row: AuditRow) -> AuditEvent:
    return AuditEvent(
        row.id,
        _utc(row.timestamp),
        row.user,
        row.address,
        row.action,
        row.resource_type,
        row.resource_id,
        row.resource_name,
        row.version,
        json.loads(row.old_value) if row.old_value else None,
        json.loads(row.new_value) if row.new_value else None,
    )
