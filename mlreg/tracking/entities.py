"""Tracking entities: experiments, runs, and what a run logs."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class RunStatus(str, enum.Enum):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    tags: dict[str, str] = field(default_factory=dict)
    creation_time: int = 0


@dataclass(frozen=True)
class Metric:
    key: str
    value: float
    timestamp: int
    step: int


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
            "params": self.data.params,
            "metrics": self.data.metrics,
            "tags": self.data.tags,
        }
