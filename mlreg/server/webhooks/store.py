"""Webhooks and their outbox in the database.

The registry's stores write the outbox rows (:mod:`mlreg.store.journal`) in the transactions
of the changes; this module registers webhooks, lists what was delivered, and hands due
deliveries to the deliverers: claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (the
workers of every replica share the outbox, each row goes to one of them) and under the
database write lock on SQLite (``BEGIN IMMEDIATE``). A delivery is due when the one before it
(same webhook, same model) is delivered or given up, so a receiver sees each model's events in
order; a claim is a lease, so a deliverer that died mid-delivery leaves it to another.
"""

from __future__ import annotations

import json
import random
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import aliased

from mlreg.errors import InvalidInput, ModelNotFound, WebhookNotFound
from mlreg.store.database import Database
from mlreg.store.journal import EVENTS, MANAGE, Actor, Change, mark_outbox, record
from mlreg.store.tables import (
    DeliveryAttemptRow,
    DeliveryRow,
    ModelGrantRow,
    RegisteredModelRow,
    WebhookRow,
)

PING = "ping"
#: Longest wait between two attempts of a delivery.
MAX_BACKOFF = timedelta(hours=1)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Webhook:
    id: int
    url: str
    events: list[str]
    #: The model whose events it gets (None: every model's).
    model: str | None
    description: str | None
    created_by: str
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "events": self.events,
            "model": self.model,
            "description": self.description,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Webhook:
        return cls(
            doc["id"],
            doc["url"],
            list(doc["events"]),
            doc.get("model"),
            doc.get("description"),
            doc["created_by"],
            datetime.fromisoformat(doc["created_at"]),
        )


@dataclass(frozen=True)
class Attempt:
    attempted_at: datetime
    status: int | None
    error: str | None
    duration_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "attempted_at": self.attempted_at.isoformat(),
            "status": self.status,
            "error": self.error,
            "duration_ms": round(self.duration_ms, 1),
        }


@dataclass(frozen=True)
class Delivery:
    id: int
    webhook_id: int
    event_id: str
    event: str
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None
    history: list[Attempt] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "webhook_id": self.webhook_id,
            "event_id": self.event_id,
            "event": self.event,
            "state": self.state,
            "attempts": self.attempts,
            "created_at": self.created_at.isoformat(),
            "next_attempt_at": _iso(self.next_attempt_at),
            "delivered_at": _iso(self.delivered_at),
            "last_status": self.last_status,
            "last_error": self.last_error,
            "history": [a.to_dict() for a in self.history],
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Delivery:
        def when(key: str) -> datetime | None:
            return None if doc.get(key) is None else datetime.fromisoformat(doc[key])

        created = when("created_at")
        assert created is not None
        return cls(
            doc["id"],
            doc["webhook_id"],
            doc["event_id"],
            doc["event"],
            doc["state"],
            doc["attempts"],
            created,
            when("next_attempt_at"),
            when("delivered_at"),
            doc.get("last_status"),
            doc.get("last_error"),
            [
                Attempt(
                    datetime.fromisoformat(a["attempted_at"]),
                    a.get("status"),
                    a.get("error"),
                    a["duration_ms"],
                )
                for a in doc.get("history") or []
            ],
        )


@dataclass(frozen=True)
class Claim:
    """A delivery a deliverer holds until ``claimed_until``: what to POST where."""

    id: int
    webhook_id: int
    url: str
    secret: str
    event: str
    event_id: str
    payload: str
    attempts: int


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"url: expected an http:// or https:// URL, got {url!r}")
    if len(url) > 2048:
        raise InvalidInput("url: expected at most 2048 characters")
    return url


def check_events(events: list[str] | None) -> list[str]:
    """The events to subscribe to (None or ``*``: all of them)."""
    if not events or events == ["*"]:
        return list(EVENTS)
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise InvalidInput(
            f"events: unknown {', '.join(map(repr, unknown))}; expected any of {', '.join(EVENTS)}"
        )
    return list(dict.fromkeys(events))


class WebhookStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._session = db.transaction

    # --- webhooks ------------------------------------------------------------------------

    def create(
        self,
        actor: Actor,
        url: str,
        events: list[str] | None = None,
        model: str | None = None,
        description: str | None = None,
        secret: str | None = None,
    ) -> tuple[Webhook, str]:
        """A new webhook and its signing secret (given, or made here; shown once)."""
        check_url(url)
        chosen = check_events(events)
        if secret is not None and not 16 <= len(secret) <= 128:
            raise InvalidInput("secret: expected 16-128 characters")
        secret = secret or secrets.token_urlsafe(32)
        with self._session() as session:
            model_id = None
            if model is not None:
                model_id = session.scalar(
                    select(RegisteredModelRow.id).where(RegisteredModelRow.name == model)
                )
                if model_id is None:
                    raise ModelNotFound(f"registered model {model!r} does not exist")
            row = WebhookRow(
                url=url,
                secret=secret,
                events=",".join(chosen),
                model_id=model_id,
                description=description,
                created_by=actor.user,
                created_at=_now(),
            )
            session.add(row)
            session.flush()
            record(
                session,
                actor,
                Change(
                    "webhook.created",
                    "webhook",
                    row.id,
                    url,
                    new={"url": url, "events": chosen, "model": model},
                ),
            )
            return self._webhook(row, model), secret

    @staticmethod
    def _webhook(row: WebhookRow, model: str | None) -> Webhook:
        created = _utc(row.created_at)
        assert created is not None
        return Webhook(
            row.id,
            row.url,
            row.events.split(","),
            model,
            row.description,
            row.created_by,
            created,
        )

    def _query(self) -> Any:
        return select(WebhookRow, RegisteredModelRow.name).outerjoin(
            RegisteredModelRow, RegisteredModelRow.id == WebhookRow.model_id
        )

    def get(self, webhook_id: int) -> Webhook:
        with self._session() as session:
            found = session.execute(self._query().where(WebhookRow.id == webhook_id)).first()
            if found is None:
                raise WebhookNotFound(f"webhook {webhook_id} does not exist")
            return self._webhook(found[0], _model_name(found))

    def list_webhooks(self, managers: tuple[int, ...] | None = None) -> list[Webhook]:
        """Every webhook, or (``managers``: principal ids) those of the models they MANAGE."""
        with self._session() as session:
            query = self._query()
            if managers is not None:
                query = query.where(
                    exists().where(
                        ModelGrantRow.model_id == WebhookRow.model_id,
                        ModelGrantRow.principal_id.in_(managers),
                        ModelGrantRow.level >= MANAGE,
                    )
                )
            rows = session.execute(query.order_by(WebhookRow.id)).all()
            return [self._webhook(r[0], _model_name(r)) for r in rows]

    def delete(self, actor: Actor, webhook_id: int) -> None:
        with self._session() as session:
            row = session.get(WebhookRow, webhook_id)
            if row is None:
                raise WebhookNotFound(f"webhook {webhook_id} does not exist")
            record(
                session,
                actor,
                Change("webhook.deleted", "webhook", row.id, row.url, old={"url": row.url}),
            )
            session.delete(row)

    def ping(self, actor: Actor, webhook_id: int) -> Delivery:
        """Queue a ``ping`` event to the webhook (delivered like any other)."""
        with self._session() as session:
            row = session.get(WebhookRow, webhook_id)
            if row is None:
                raise WebhookNotFound(f"webhook {webhook_id} does not exist")
            now = _now()
            event_id = uuid.uuid4().hex
            payload = json.dumps(
                {
                    "id": event_id,
                    "event": PING,
                    "timestamp": now.isoformat().replace("+00:00", "Z"),
                    "actor": actor.user,
                    "webhook": row.id,
                }
            )
            delivery = DeliveryRow(
                webhook_id=row.id,
                event_id=event_id,
                event=PING,
                ordering_key=PING,
                payload=payload,
                state="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            session.add(delivery)
            session.flush()
            mark_outbox(session)
            return _delivery(delivery, [])

    def deliveries(self, webhook_id: int, max_results: int = 50) -> list[Delivery]:
        """The webhook's latest deliveries, newest first, each with its attempts."""
        with self._session() as session:
            if session.get(WebhookRow, webhook_id) is None:
                raise WebhookNotFound(f"webhook {webhook_id} does not exist")
            rows = session.scalars(
                select(DeliveryRow)
                .where(DeliveryRow.webhook_id == webhook_id)
                .order_by(DeliveryRow.id.desc())
                .limit(max_results)
            ).all()
            attempts: dict[int, list[Attempt]] = {r.id: [] for r in rows}
            if rows:
                for a in session.scalars(
                    select(DeliveryAttemptRow)
                    .where(DeliveryAttemptRow.delivery_id.in_(list(attempts)))
                    .order_by(DeliveryAttemptRow.id)
                ):
                    when = _utc(a.attempted_at)
                    assert when is not None
                    attempts[a.delivery_id].append(Attempt(when, a.status, a.error, a.duration_ms))
            return [_delivery(r, attempts[r.id]) for r in rows]

    # --- the deliverers' side ------------------------------------------------------------

    def claim(self, limit: int, lease: timedelta) -> list[Claim]:
        """Up to ``limit`` due deliveries, each the oldest open one of its webhook and model,
        leased to the caller until now + ``lease``."""
        now = _now()
        earlier = aliased(DeliveryRow)
        due = or_(
            and_(DeliveryRow.state == "pending", DeliveryRow.next_attempt_at <= now),
            and_(DeliveryRow.state == "sending", DeliveryRow.claimed_until < now),
        )
        blocked = exists().where(
            earlier.webhook_id == DeliveryRow.webhook_id,
            earlier.ordering_key == DeliveryRow.ordering_key,
            earlier.id < DeliveryRow.id,
            earlier.state.in_(["pending", "sending"]),
        )
        with self._session() as session:
            rows = session.execute(
                select(DeliveryRow, WebhookRow.url, WebhookRow.secret)
                .join(WebhookRow, WebhookRow.id == DeliveryRow.webhook_id)
                .where(due, ~blocked)
                .order_by(DeliveryRow.id)
                .limit(limit)
                .with_for_update(skip_locked=True, of=DeliveryRow)
            ).all()
            claims = []
            for delivery, url, secret in rows:
                delivery.state = "sending"
                delivery.claimed_until = now + lease
                claims.append(
                    Claim(
                        delivery.id,
                        delivery.webhook_id,
                        url,
                        secret,
                        delivery.event,
                        delivery.event_id,
                        delivery.payload,
                        delivery.attempts,
                    )
                )
            return claims

    def finish(
        self,
        claim: Claim,
        status: int | None,
        error: str | None,
        duration_ms: float,
        max_attempts: int,
        backoff: float,
    ) -> str:
        """Record one attempt; the delivery is delivered (2xx), due again after an exponential
        backoff, or failed after ``max_attempts``. Returns its new state."""
        now = _now()
        attempts = claim.attempts + 1
        ok = status is not None and 200 <= status < 300
        if ok:
            values: dict[str, Any] = {"state": "delivered", "delivered_at": now}
        elif attempts >= max_attempts:
            values = {"state": "failed"}
        else:
            delay = min(MAX_BACKOFF.total_seconds(), backoff * 2 ** (attempts - 1))
            delay *= 0.8 + 0.4 * random.random()  # noqa: S311  (jitter, not a secret)
            values = {"state": "pending", "next_attempt_at": now + timedelta(seconds=delay)}
        with self._session() as session:
            updated = session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == claim.id)
                .values(
                    attempts=attempts,
                    claimed_until=None,
                    last_status=status,
                    last_error=error,
                    **values,
                )
            ).rowcount
            if not updated:
                return "dropped"  # its webhook was deleted while it was in flight
            session.add(
                DeliveryAttemptRow(
                    delivery_id=claim.id,
                    attempted_at=now,
                    status=status,
                    error=error,
                    duration_ms=duration_ms,
                )
            )
        return values["state"]


def _model_name(found: Any) -> str | None:
    row, name = found[0], found[1]
    if row.model_id is None:
        return None
    return name if name is not None else f"(deleted model #{row.model_id})"


def _delivery(row: DeliveryRow, history: list[Attempt]) -> Delivery:
    created = _utc(row.created_at)
    assert created is not None
    return Delivery(
        row.id,
        row.webhook_id,
        row.event_id,
        row.event,
        row.state,
        row.attempts,
        created,
        _utc(row.next_attempt_at) if row.state == "pending" else None,
        _utc(row.delivered_at),
        row.last_status,
        row.last_error,
        history,
    )
