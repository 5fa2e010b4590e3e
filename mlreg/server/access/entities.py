"""What the access API hands out: users, groups, tokens, grants, and the signed-in caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from mlreg.server.permissions import Level

EVERYONE = "everyone"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


@dataclass(frozen=True)
class Caller:
    """A signed-in user: their principal ids (their own, their groups', everyone's)."""

    id: int
    name: str
    is_admin: bool
    principals: tuple[int, ...]


@dataclass(frozen=True)
class User:
    name: str
    is_admin: bool
    has_password: bool
    groups: list[str] = field(default_factory=list)
    created_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "is_admin": self.is_admin,
            "has_password": self.has_password,
            "groups": self.groups,
            "created_at": _iso(self.created_at),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> User:
        return cls(
            doc["name"],
            doc["is_admin"],
            doc["has_password"],
            list(doc.get("groups") or []),
            _parse(doc.get("created_at")),
        )


@dataclass(frozen=True)
class Group:
    name: str
    members: list[str] = field(default_factory=list)
    created_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "members": self.members, "created_at": _iso(self.created_at)}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Group:
        return cls(doc["name"], list(doc.get("members") or []), _parse(doc.get("created_at")))


@dataclass(frozen=True)
class Token:
    id: int
    user: str
    name: str
    #: The first characters of the token (the rest is never shown again).
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= datetime.now(timezone.utc):
            return "expired"
        return "active"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "name": self.name,
            "prefix": self.prefix,
            "state": self.state,
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
            "revoked_at": _iso(self.revoked_at),
            "last_used_at": _iso(self.last_used_at),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Token:
        created = _parse(doc["created_at"])
        assert created is not None
        return cls(
            doc["id"],
            doc["user"],
            doc["name"],
            doc["prefix"],
            created,
            _parse(doc.get("expires_at")),
            _parse(doc.get("revoked_at")),
            _parse(doc.get("last_used_at")),
        )


@dataclass(frozen=True)
class Grant:
    """``principal`` (a user or a group) has ``level`` on a model or an experiment."""

    principal: str
    kind: str
    level: Level

    def to_dict(self) -> dict[str, Any]:
        return {"principal": self.principal, "kind": self.kind, "level": self.level.name}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Grant:
        return cls(doc["principal"], doc["kind"], Level[doc["level"]])
