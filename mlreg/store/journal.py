"""What every write leaves behind, in the write's own transaction: an audit row and, for the
registry's events, one outbox row per webhook that wants it.

The SQL stores call :func:`record` inside the transaction of the change, so the trail and the
outbox can never disagree with the data: a rolled-back change leaves neither, a committed one
always both. Who acted comes from the :class:`Actor` the store was bound to (the server binds
one per request; a script on the database directly is its ``MLREG_USER``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import event, or_, select
from sqlalchemy.orm import Session

from mlreg.store.tables import AuditRow, DeliveryRow, WebhookRow

#: The registry events webhooks can subscribe to (each is also the audit action).
EVENTS = (
    "model_version.created",
    "model_version.ready",
    "model_version.stage_changed",
    "model_alias.set",
    "model_alias.deleted",
    "registered_model.deleted",
)
#: Levels of the grants a store gives on what it creates (mlreg.server.permissions.Level).
MANAGE = 4


@dataclass(frozen=True)
class Actor:
    """Who a store's writes are recorded as, and what its searches may show.

    ``readers`` are the principal ids (the user, their groups, everyone) whose grants make a
    model or experiment visible; None shows everything (no authentication, or an admin).
    ``creator_grants`` are given on each model or experiment the actor creates:
    (principal id, level) pairs, e.g. the creator's MANAGE and everyone's default.
    ``ungranted_visible``: a resource without any grant (made before grants existed) is
    visible too (the server's default permission is READ or more).
    """

    user: str
    address: str | None = None
    readers: tuple[int, ...] | None = None
    creator_grants: tuple[tuple[int, int], ...] = ()
    ungranted_visible: bool = False


@dataclass(frozen=True)
class Change:
    """One write: ``action`` (e.g. ``model_version.stage_changed``) on a resource."""

    action: str
    resource_type: str
    resource_id: int | str | None
    name: str
    version: int | None = None
    old: Any = None
    new: Any = None


def now() -> datetime:
    return datetime.now(timezone.utc)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def record(session: Session, actor: Actor, change: Change) -> None:
    """Add the audit row of ``change`` (and its webhook deliveries) to the session's
    transaction."""
    when = now()
    session.add(
        AuditRow(
            timestamp=when,
            user=actor.user,
            address=actor.address,
            action=change.action,
            resource_type=change.resource_type,
            resource_id=None if change.resource_id is None else str(change.resource_id),
            resource_name=change.name,
            version=change.version,
            old_value=_json(change.old),
            new_value=_json(change.new),
        )
    )
    if change.action in EVENTS and change.resource_id is not None:
        _enqueue(session, actor, change, when)


def _enqueue(session: Session, actor: Actor, change: Change, when: datetime) -> None:
    model_id = int(change.resource_id)  # type: ignore[arg-type]
    hooks = session.execute(
        select(WebhookRow.id, WebhookRow.events).where(
            or_(WebhookRow.model_id.is_(None), WebhookRow.model_id == model_id)
        )
    ).all()
    targets = [hook_id for hook_id, events in hooks if change.action in events.split(",")]
    if not targets:
        return
    event_id = uuid.uuid4().hex
    payload = event_payload(event_id, actor.user, change, when)
    for hook_id in targets:
        session.add(
            DeliveryRow(
                webhook_id=hook_id,
                event_id=event_id,
                event=change.action,
                ordering_key=str(model_id),
                payload=payload,
                state="pending",
                attempts=0,
                next_attempt_at=when,
                created_at=when,
            )
        )
    mark_outbox(session)


def event_payload(event_id: str, user: str, change: Change, when: datetime) -> str:
    """The JSON body a webhook receives (documented in the README)."""
    return json.dumps(
        {
            "id": event_id,
            "event": change.action,
            "timestamp": when.isoformat().replace("+00:00", "Z"),
            "actor": user,
            "model": change.name,
            "version": change.version,
            "old": change.old,
            "new": change.new,
        },
        default=str,
    )


# --- waking this process's deliverer when an outbox row commits ----------------------------

_OUTBOX_WRITTEN = "mlreg.outbox_written"
#: Called after a transaction that wrote outbox rows commits: this process's deliverers wake
#: at once (those of other processes find the rows when they next look).
outbox_listeners: set[Callable[[], None]] = set()


def mark_outbox(session: Session) -> None:
    """Note that ``session``'s transaction wrote outbox rows (this process's deliverer wakes
    when it commits)."""
    session.info[_OUTBOX_WRITTEN] = True


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_OUTBOX_WRITTEN, False):
        for listener in list(outbox_listeners):
            listener()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_OUTBOX_WRITTEN, None)
