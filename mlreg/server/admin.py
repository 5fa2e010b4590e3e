"""What ``mlreg server users|tokens|groups|grant|revoke``, ``mlreg audit`` and ``mlreg webhooks``
call: one Protocol, on the database directly or on a server's REST API.

``MLREG_TRACKING_URI`` picks, as for every other command: a database URI works on the database
(whoever can open it is in charge: that is how the first admin is made, and the writes are
recorded as ``MLREG_USER`` from ``local``); an ``http(s)://`` URI goes through the server, as the
signed-in user (``MLREG_TRACKING_TOKEN`` or ``_USERNAME``/``_PASSWORD``), whose permissions
apply.
"""

from __future__ import annotations

from typing import Any, Protocol

from mlreg.errors import ExperimentNotFound, InvalidInput
from mlreg.server.access.entities import Grant, Group, Token, User
from mlreg.server.access.service import AccessService
from mlreg.server.access.store import AccessStore
from mlreg.server.audit import AuditEvent, AuditLog, AuditQuery
from mlreg.server.permissions import Level, Resource
from mlreg.server.webhooks.store import Delivery, Webhook, WebhookStore
from mlreg.store.database import Database, open_database
from mlreg.store.http import Http, open_http, release
from mlreg.store.journal import Actor
from mlreg.store.pages import Page, offset_of, page_token
from mlreg.store.settings import StoreSettings
from mlreg.tracking.sql_store import SqlTrackingStore


class TeamAdmin(Protocol):
    def whoami(self) -> User:
        """The signed-in user; InvalidInput on the database (there is none)."""

    def list_users(self) -> list[User]: ...
    def create_user(self, name: str, password: str | None, admin: bool) -> User: ...
    def delete_user(self, name: str) -> None: ...
    def set_password(self, name: str, password: str) -> None: ...
    def list_tokens(self, user: str) -> list[Token]: ...
    def create_token(
        self, user: str, name: str, days: float | None, never_expires: bool
    ) -> tuple[Token, str]:
        """The token and its secret (shown once)."""

    def revoke_token(self, user: str, token_id: int) -> Token: ...
    def list_groups(self) -> list[Group]: ...
    def create_group(self, name: str) -> Group: ...
    def delete_group(self, name: str) -> None: ...
    def set_member(self, group: str, user: str, member: bool) -> Group: ...
    def grants(self, model: str | None, experiment: str | None) -> list[Grant]: ...
    def grant(
        self, principal: str, level: Level | None, model: str | None, experiment: str | None
    ) -> list[Grant]:
        """Give ``level`` (None: take the grant away) on the model or experiment (by name)."""

    def audit(self, query: AuditQuery, max_results: int, offset: int) -> Page: ...
    def list_webhooks(self) -> list[Webhook]: ...
    def create_webhook(
        self,
        url: str,
        events: list[str] | None,
        model: str | None,
        description: str | None,
        secret: str | None,
    ) -> tuple[Webhook, str]: ...
    def delete_webhook(self, webhook_id: int) -> None: ...
    def test_webhook(self, webhook_id: int) -> Delivery: ...
    def deliveries(self, webhook_id: int, max_results: int) -> list[Delivery]: ...
    def close(self) -> None: ...


def _target(model: str | None, experiment: str | None) -> None:
    if (model is None) == (experiment is None):
        raise InvalidInput("name exactly one of --model NAME and --experiment NAME")


class LocalAdmin:
    """On the database: every operation is allowed, recorded as the local user."""

    def __init__(self, settings: StoreSettings) -> None:
        self.db: Database = open_database(settings.uri)
        self.actor = Actor(settings.user)  # no address: like every direct database write
        self.access = AccessService(AccessStore(self.db))
        self.audit_log = AuditLog(self.db)
        self.webhooks = WebhookStore(self.db)
        self.tracking = SqlTrackingStore(settings.uri)

    def close(self) -> None:
        self.tracking.close()
        self.db.close()

    def whoami(self) -> User:
        raise InvalidInput(
            "on the database nobody is signed in; name the user (--user NAME), or point "
            "MLREG_TRACKING_URI at the server"
        )

    def list_users(self) -> list[User]:
        return self.access.list_users()

    def create_user(self, name: str, password: str | None, admin: bool) -> User:
        return self.access.create_user(self.actor, name, password, admin)

    def delete_user(self, name: str) -> None:
        self.access.delete_user(self.actor, name)

    def set_password(self, name: str, password: str) -> None:
        self.access.set_password(self.actor, name, password)

    def list_tokens(self, user: str) -> list[Token]:
        return self.access.list_tokens(user)

    def create_token(
        self, user: str, name: str, days: float | None, never_expires: bool
    ) -> tuple[Token, str]:
        return self.access.create_token(self.actor, user, name, days, never_expires=never_expires)

    def revoke_token(self, user: str, token_id: int) -> Token:
        return self.access.revoke_token(self.actor, user, token_id)

    def list_groups(self) -> list[Group]:
        return self.access.list_groups()

    def create_group(self, name: str) -> Group:
        return self.access.create_group(self.actor, name)

    def delete_group(self, name: str) -> None:
        self.access.delete_group(self.actor, name)

    def set_member(self, group: str, user: str, member: bool) -> Group:
        return self.access.set_member(self.actor, group, user, member)

    def _resource(self, model: str | None, experiment: str | None) -> tuple[Resource, str]:
        _target(model, experiment)
        if model is not None:
            return Resource.MODEL, model
        assert experiment is not None
        found = self.tracking.get_experiment_by_name(experiment)
        if found is None:
            raise ExperimentNotFound(f"experiment {experiment!r} does not exist")
        return Resource.EXPERIMENT, found.experiment_id

    def grants(self, model: str | None, experiment: str | None) -> list[Grant]:
        return self.access.grants(*self._resource(model, experiment))

    def grant(
        self, principal: str, level: Level | None, model: str | None, experiment: str | None
    ) -> list[Grant]:
        resource, key = self._resource(model, experiment)
        if level is None:
            return self.access.revoke(self.actor, resource, key, principal)
        return self.access.grant(self.actor, resource, key, principal, level)

    def audit(self, query: AuditQuery, max_results: int, offset: int) -> Page:
        return self.audit_log.search(query, max_results, offset)

    def list_webhooks(self) -> list[Webhook]:
        return self.webhooks.list_webhooks()

    def create_webhook(
        self,
        url: str,
        events: list[str] | None,
        model: str | None,
        description: str | None,
        secret: str | None,
    ) -> tuple[Webhook, str]:
        return self.webhooks.create(self.actor, url, events, model, description, secret)

    def delete_webhook(self, webhook_id: int) -> None:
        self.webhooks.delete(self.actor, webhook_id)

    def test_webhook(self, webhook_id: int) -> Delivery:
        return self.webhooks.ping(self.actor, webhook_id)

    def deliveries(self, webhook_id: int, max_results: int) -> list[Delivery]:
        return self.webhooks.deliveries(webhook_id, max_results)


class RemoteAdmin:
    """Through a server's REST API, as the signed-in user."""

    def __init__(self, settings: StoreSettings) -> None:
        self.http: Http = open_http(settings.uri, settings.user)

    def close(self) -> None:
        release(self.http)

    def _call(self, method: str, *parts: str, **kwargs: Any) -> Any:
        return self.http.json(method, self.http.url(*parts), **kwargs)

    def whoami(self) -> User:
        return User.from_dict(self._call("GET", "whoami")["user"])

    def list_users(self) -> list[User]:
        return [User.from_dict(u) for u in self._call("GET", "users")["users"]]

    def create_user(self, name: str, password: str | None, admin: bool) -> User:
        body = {"name": name, "password": password, "admin": admin}
        return User.from_dict(self._call("POST", "users", json=body)["user"])

    def delete_user(self, name: str) -> None:
        self._call("DELETE", "users", name)

    def set_password(self, name: str, password: str) -> None:
        self._call("PUT", "users", name, "password", json={"password": password})

    def list_tokens(self, user: str) -> list[Token]:
        return [Token.from_dict(t) for t in self._call("GET", "users", user, "tokens")["tokens"]]

    def create_token(
        self, user: str, name: str, days: float | None, never_expires: bool
    ) -> tuple[Token, str]:
        body = {"name": name, "days": days, "never_expires": never_expires}
        doc = self._call("POST", "users", user, "tokens", json=body)
        return Token.from_dict(doc["token"]), doc["secret"]

    def revoke_token(self, user: str, token_id: int) -> Token:
        return Token.from_dict(
            self._call("DELETE", "users", user, "tokens", str(token_id))["token"]
        )

    def list_groups(self) -> list[Group]:
        return [Group.from_dict(g) for g in self._call("GET", "groups")["groups"]]

    def create_group(self, name: str) -> Group:
        return Group.from_dict(self._call("POST", "groups", json={"name": name})["group"])

    def delete_group(self, name: str) -> None:
        self._call("DELETE", "groups", name)

    def set_member(self, group: str, user: str, member: bool) -> Group:
        doc = self._call("PUT" if member else "DELETE", "groups", group, "members", user)
        return Group.from_dict(doc["group"])

    def _resource(self, model: str | None, experiment: str | None) -> tuple[str, ...]:
        _target(model, experiment)
        if model is not None:
            return ("models", model)
        found = self._call("GET", "experiments", params={"name": experiment})["experiments"]
        if not found:
            raise ExperimentNotFound(f"experiment {experiment!r} does not exist")
        return ("experiments", found[0]["experiment_id"])

    def grants(self, model: str | None, experiment: str | None) -> list[Grant]:
        doc = self._call("GET", *self._resource(model, experiment), "grants")
        return [Grant.from_dict(g) for g in doc["grants"]]

    def grant(
        self, principal: str, level: Level | None, model: str | None, experiment: str | None
    ) -> list[Grant]:
        where = (*self._resource(model, experiment), "grants", principal)
        if level is None:
            doc = self._call("DELETE", *where)
        else:
            doc = self._call("PUT", *where, json={"permission": level.name})
        return [Grant.from_dict(g) for g in doc["grants"]]

    def audit(self, query: AuditQuery, max_results: int, offset: int) -> Page:
        params: dict[str, Any] = {"max_results": max_results}
        token = page_token(offset) if offset else None
        if token:
            params["page_token"] = token
        for key in ("user", "action"):
            if getattr(query, key) is not None:
                params[key] = getattr(query, key)
        for key in ("since", "until"):
            if getattr(query, key) is not None:
                params[key] = getattr(query, key).isoformat()
        if query.model is not None:
            doc = self._call("GET", "models", query.model, "audit", params=params)
        elif query.experiment is not None:
            experiment = self._resource(None, query.experiment)
            doc = self._call("GET", *experiment, "audit", params=params)
        else:
            doc = self._call("GET", "audit", params=params)
        nxt = doc.get("next_page_token")
        return Page(
            [AuditEvent.from_dict(e) for e in doc["events"]], offset_of(nxt) if nxt else None
        )

    def list_webhooks(self) -> list[Webhook]:
        return [Webhook.from_dict(h) for h in self._call("GET", "webhooks")["webhooks"]]

    def create_webhook(
        self,
        url: str,
        events: list[str] | None,
        model: str | None,
        description: str | None,
        secret: str | None,
    ) -> tuple[Webhook, str]:
        body: dict[str, Any] = {"url": url, "description": description, "secret": secret}
        if events:
            body["events"] = events
        where = ("models", model, "webhooks") if model is not None else ("webhooks",)
        doc = self._call("POST", *where, json=body)
        return Webhook.from_dict(doc["webhook"]), doc["secret"]

    def delete_webhook(self, webhook_id: int) -> None:
        self._call("DELETE", "webhooks", str(webhook_id))

    def test_webhook(self, webhook_id: int) -> Delivery:
        return Delivery.from_dict(
            self._call("POST", "webhooks", str(webhook_id), "test")["delivery"]
        )

    def deliveries(self, webhook_id: int, max_results: int) -> list[Delivery]:
        doc = self._call(
            "GET", "webhooks", str(webhook_id), "deliveries", params={"max_results": max_results}
        )
        return [Delivery.from_dict(d) for d in doc["deliveries"]]


def open_admin(settings: StoreSettings | None = None) -> TeamAdmin:
    settings = settings or StoreSettings.from_env()
    return RemoteAdmin(settings) if settings.remote else LocalAdmin(settings)
