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

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> RegisteredModel:
        return cls(
            name=doc["name"],
            description=doc.get("description"),
            tags=dict(doc.get("tags") or {}),
            aliases={k: int(v) for k, v in (doc.get("aliases") or {}).items()},
            created_at=datetime.fromisoformat(doc["created_at"]),
            updated_at=datetime.fromisoformat(doc["updated_at"]),
            latest_version=doc.get("latest_version"),
        )


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
    #: The logged model (MLflow 3) the version was made from, if any.
    model_id: str | None = None

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
            "model_id": self.model_id,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ModelVersion:
        """A version as a registry server describes it (where it keeps the files is its own
        business: ``storage_location`` stays None)."""
        return cls(
            name=doc["name"],
            version=int(doc["version"]),
            stage=Stage(doc["stage"]),
            status=VersionStatus(doc["status"]),
            source=doc.get("source") or "",
            run_id=doc.get("run_id"),
            description=doc.get("description"),
            tags=dict(doc.get("tags") or {}),
            aliases=list(doc.get("aliases") or []),
            signature=doc.get("signature"),
            digest=doc.get("digest"),
            storage_location=None,
            status_message=doc.get("status_message"),
            created_at=datetime.fromisoformat(doc["created_at"]),
            updated_at=datetime.fromisoformat(doc["updated_at"]),
            model_id=doc.get("model_id"),
        )


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

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> StageTransition:
        return cls(
            name=doc["name"],
            version=int(doc["version"]),
            from_stage=Stage(doc["from_stage"]),
            to_stage=Stage(doc["to_stage"]),
            user=doc["user"],
            timestamp=datetime.fromisoformat(doc["timestamp"]),
        )


@dataclass(frozen=True)
class ModelState:
    """What a registered model looked like at a moment: the versions that existed, the READY
    ones in each stage, and where its aliases pointed."""

    name: str
    at: datetime
    versions: list[int]
    stages: dict[str, list[int]]
    aliases: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "at": self.at.isoformat(),
            "versions": self.versions,
            "stages": self.stages,
            "aliases": self.aliases,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ModelState:
        return cls(
            name=doc["name"],
            at=datetime.fromisoformat(doc["at"]),
            versions=[int(v) for v in doc["versions"]],
            stages={k: [int(v) for v in vs] for k, vs in doc["stages"].items()},
            aliases={k: int(v) for k, v in doc["aliases"].items()},
        )
