"""Registry entities: plain frozen dataclasses that cross the service boundary."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlreg.errors import InvalidInput


class Stage(str, enum.Enum):
    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"

    @classmethod
    def parse(cls, value: str | Stage) -> Stage:
        """Accept any capitalisation: ``production`` is ``Production``."""
        if isinstance(value, Stage):
            return value
        for stage in cls:
            if stage.value.lower() == str(value).strip().lower():
                return stage
        raise InvalidInput(
            f"unknown stage {value!r}; expected one of: {', '.join(s.value for s in cls)}"
        )


class VersionStatus(str, enum.Enum):
    PENDING_REGISTRATION = "PENDING_REGISTRATION"
    READY = "READY"
    FAILED_REGISTRATION = "FAILED_REGISTRATION"


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    description: str | None
    tags: dict[str, str]
    aliases: dict[str, int]
    created_at: datetime
    updated_at: datetime
    latest_version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "tags": self.tags,
            "aliases": self.aliases,
            "latest_version": self.latest_version,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    stage: Stage
    status: VersionStatus
    source: str
    run_id: str | None
    description: str | None
    tags: dict[str, str]
    aliases: list[str]
    signature: dict[str, Any] | None
    digest: str | None
    storage_location: str | None
    status_message: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "stage": self.stage.value,
            "status": self.status.value,
            "status_message": self.status_message,
            "source": self.source,
            "run_id": self.run_id,
            "description": self.description,
            "tags": self.tags,
            "aliases": self.aliases,
            "signature": self.signature,
            "digest": self.digest,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class StageTransition:
    name: str
    version: int
    from_stage: Stage
    to_stage: Stage
    user: str
    timestamp: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "from_stage": self.from_stage.value,
            "to_stage": self.to_stage.value,
            "user": self.user,
            "timestamp": self.timestamp.isoformat(),
        }
