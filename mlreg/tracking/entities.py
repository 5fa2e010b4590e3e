"""Tracking entities: experiments, runs, and what a run logs."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

from mlreg.errors import InvalidInput


class RunStatus(str, enum.Enum):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


class Lifecycle(str, enum.Enum):
    """Whether a run is in use or deleted (and restorable)."""

    ACTIVE = "active"
    DELETED = "deleted"


class ViewType(str, enum.Enum):
    """Which lifecycle stages a search returns (MLflow's names; MLflow's numbers 1-3 too)."""

    ACTIVE_ONLY = "ACTIVE_ONLY"
    DELETED_ONLY = "DELETED_ONLY"
    ALL = "ALL"

    @classmethod
    def parse(cls, value: str | int | ViewType | None) -> ViewType:
        if value is None or value == "":
            return cls.ACTIVE_ONLY
        if isinstance(value, ViewType):
            return value
        numbers = {1: cls.ACTIVE_ONLY, 2: cls.DELETED_ONLY, 3: cls.ALL}
        if isinstance(value, int) and not isinstance(value, bool) and value in numbers:
            return numbers[value]
        try:
            return cls(str(value).upper())
        except ValueError:
            choices = ", ".join(v.value for v in cls)
            raise InvalidInput(f"invalid view type {value!r}; expected one of {choices}") from None

    def stages(self) -> tuple[Lifecycle, ...]:
        """The lifecycle stages this view shows."""
        if self is ViewType.ACTIVE_ONLY:
            return (Lifecycle.ACTIVE,)
        if self is ViewType.DELETED_ONLY:
            return (Lifecycle.DELETED,)
        return (Lifecycle.ACTIVE, Lifecycle.DELETED)


def number_to_json(value: float) -> float | str:
    """A metric value for JSON: NaN and infinities as the strings protobuf's JSON uses."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def number_from_json(value: float | int | str) -> float:
    return float(value)  # float() reads "NaN", "Infinity" and "-Infinity" too


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    tags: dict[str, str] = field(default_factory=dict)
    creation_time: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id,
            "name": self.name,
            "artifact_location": self.artifact_location,
            "tags": self.tags,
            "creation_time": self.creation_time,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Experiment:
        return cls(
            str(doc["experiment_id"]),
            doc["name"],
            doc.get("artifact_location") or "",
            dict(doc.get("tags") or {}),
            int(doc.get("creation_time") or 0),
        )


@dataclass(frozen=True)
class Metric:
    key: str
    value: float
    timestamp: int
    step: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "value": number_to_json(self.value),
            "timestamp": self.timestamp,
            "step": self.step,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Metric:
        return cls(
            doc["key"], number_from_json(doc["value"]), int(doc["timestamp"]), int(doc["step"])
        )


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    artifact_uri: str
    parent_run_id: str | None = None
    lifecycle_stage: Lifecycle = Lifecycle.ACTIVE


@dataclass(frozen=True)
class RunData:
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # latest value per key
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Run:
    info: RunInfo
    data: RunData

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.info.run_id,
            "experiment_id": self.info.experiment_id,
            "run_name": self.info.run_name,
            "status": self.info.status.value,
            "start_time": self.info.start_time,
            "end_time": self.info.end_time,
            "parent_run_id": self.info.parent_run_id,
            "artifact_uri": self.info.artifact_uri,
            "lifecycle_stage": self.info.lifecycle_stage.value,
            "params": self.data.params,
            "metrics": {k: number_to_json(v) for k, v in self.data.metrics.items()},
            "tags": self.data.tags,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Run:
        info = RunInfo(
            run_id=doc["run_id"],
            experiment_id=str(doc["experiment_id"]),
            run_name=doc["run_name"],
            status=RunStatus(doc["status"]),
            start_time=int(doc["start_time"]),
            end_time=doc.get("end_time"),
            artifact_uri=doc.get("artifact_uri") or "",
            parent_run_id=doc.get("parent_run_id"),
            lifecycle_stage=Lifecycle(doc.get("lifecycle_stage") or Lifecycle.ACTIVE),
        )
        data = RunData(
            dict(doc.get("params") or {}),
            {k: number_from_json(v) for k, v in (doc.get("metrics") or {}).items()},
            dict(doc.get("tags") or {}),
        )
        return cls(info, data)
