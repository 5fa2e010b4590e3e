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
    """Whether an experiment, run or logged model is in use or deleted (and restorable)."""

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


class LoggedModelStatus(str, enum.Enum):
    PENDING = "PENDING"
    READY = "READY"
    FAILED = "FAILED"


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
    lifecycle_stage: Lifecycle = Lifecycle.ACTIVE
    #: When its name, tags or lifecycle stage last changed (epoch milliseconds).
    last_update_time: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id,
            "name": self.name,
            "artifact_location": self.artifact_location,
            "tags": self.tags,
            "creation_time": self.creation_time,
            "last_update_time": self.last_update_time,
            "lifecycle_stage": self.lifecycle_stage.value,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Experiment:
        return cls(
            str(doc["experiment_id"]),
            doc["name"],
            doc.get("artifact_location") or "",
            dict(doc.get("tags") or {}),
            int(doc.get("creation_time") or 0),
            Lifecycle(doc.get("lifecycle_stage") or Lifecycle.ACTIVE.value),
            int(doc.get("last_update_time") or doc.get("creation_time") or 0),
        )


@dataclass(frozen=True)
class Metric:
    key: str
    value: float
    timestamp: int
    step: int
    #: The logged model the value measures and the dataset it was computed on, if any.
    model_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None
    #: The run that logged it (set where metrics of several runs are listed together).
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "key": self.key,
            "value": number_to_json(self.value),
            "timestamp": self.timestamp,
            "step": self.step,
        }
        for name in ("model_id", "dataset_name", "dataset_digest", "run_id"):
            if getattr(self, name) is not None:
                doc[name] = getattr(self, name)
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Metric:
        return cls(
            doc["key"],
            number_from_json(doc["value"]),
            int(doc["timestamp"]),
            int(doc.get("step") or 0),
            doc.get("model_id") or None,
            doc.get("dataset_name") or None,
            doc.get("dataset_digest") or None,
            doc.get("run_id") or None,
        )


def thinned(history: list[Metric], limit: int | None) -> list[Metric]:
    """At most ``limit`` points of a history, evenly spaced, always keeping the last (every
    ``ceil(n / limit)``-th point: what a chart of ``limit`` points can show)."""
    if limit is None or len(history) <= limit:
        return history
    stride = -(-len(history) // limit)
    kept = history[::stride]
    return kept if kept[-1] is history[-1] else [*kept, history[-1]]


@dataclass(frozen=True)
class MetricSummary:
    """What a run logged for one metric key, without its history."""

    key: str
    count: int
    #: None when every value is NaN.
    minimum: float | None
    maximum: float | None
    last_step: int


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

    @property
    def owner_id(self) -> str:
        """The id its artifacts are kept and cached under (see ArtifactOwner)."""
        return self.run_id


@dataclass(frozen=True)
class RunData:
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # latest value per key
    tags: dict[str, str] = field(default_factory=dict)
    #: The latest value per key with its step and time (what ``metrics`` holds the value of).
    latest_metrics: dict[str, Metric] = field(default_factory=dict)


@dataclass(frozen=True)
class Dataset:
    """A dataset as MLflow describes it: name and digest identify it within an experiment."""

    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None = None
    profile: str | None = None

    def to_dict(self) -> dict[str, Any]:
        doc = {
            "name": self.name,
            "digest": self.digest,
            "source_type": self.source_type,
            "source": self.source,
        }
        if self.schema is not None:
            doc["schema"] = self.schema
        if self.profile is not None:
            doc["profile"] = self.profile
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Dataset:
        return cls(
            doc["name"],
            doc["digest"],
            doc["source_type"],
            doc["source"],
            doc.get("schema"),
            doc.get("profile"),
        )


@dataclass(frozen=True)
class DatasetInput:
    """A dataset a run used, with the tags of that use (``mlflow.data.context``: train...)."""

    dataset: Dataset
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset.to_dict(), "tags": self.tags}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> DatasetInput:
        return cls(Dataset.from_dict(doc["dataset"]), dict(doc.get("tags") or {}))


@dataclass(frozen=True)
class ModelOutput:
    """A logged model a run produced, at a step of its training."""

    model_id: str
    step: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "step": self.step}


@dataclass(frozen=True)
class RunInputs:
    datasets: list[DatasetInput] = field(default_factory=list)
    #: Ids of logged models the run used as input.
    models: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Run:
    info: RunInfo
    data: RunData
    inputs: RunInputs = field(default_factory=RunInputs)
    outputs: list[ModelOutput] = field(default_factory=list)

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
            "latest_metrics": [m.to_dict() for m in self.data.latest_metrics.values()],
            "tags": self.data.tags,
            "inputs": {
                "datasets": [d.to_dict() for d in self.inputs.datasets],
                "models": self.inputs.models,
            },
            "outputs": [o.to_dict() for o in self.outputs],
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
        latest = [Metric.from_dict(m) for m in doc.get("latest_metrics") or []]
        data = RunData(
            dict(doc.get("params") or {}),
            {k: number_from_json(v) for k, v in (doc.get("metrics") or {}).items()},
            dict(doc.get("tags") or {}),
            {m.key: m for m in latest},
        )
        inputs = doc.get("inputs") or {}
        return cls(
            info,
            data,
            RunInputs(
                [DatasetInput.from_dict(d) for d in inputs.get("datasets") or []],
                list(inputs.get("models") or []),
            ),
            [ModelOutput(o["model_id"], int(o.get("step") or 0)) for o in doc.get("outputs") or []],
        )


@dataclass(frozen=True)
class LoggedModel:
    """A model logged on its own (MLflow 3): files under ``artifact_uri``, params, tags, and
    the metrics logged against it; ``source_run_id`` is the run that logged it, if any."""

    model_id: str
    experiment_id: str
    name: str
    artifact_uri: str
    status: LoggedModelStatus
    creation_time: int
    last_update_time: int
    source_run_id: str | None = None
    model_type: str | None = None
    status_message: str | None = None
    lifecycle_stage: Lifecycle = Lifecycle.ACTIVE
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)

    @property
    def owner_id(self) -> str:
        """The id its artifacts are kept and cached under (see ArtifactOwner)."""
        return self.model_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "experiment_id": self.experiment_id,
            "name": self.name,
            "artifact_uri": self.artifact_uri,
            "status": self.status.value,
            "status_message": self.status_message,
            "creation_time": self.creation_time,
            "last_update_time": self.last_update_time,
            "source_run_id": self.source_run_id,
            "model_type": self.model_type,
            "lifecycle_stage": self.lifecycle_stage.value,
            "tags": self.tags,
            "params": self.params,
            "metrics": [m.to_dict() for m in self.metrics],
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> LoggedModel:
        return cls(
            model_id=doc["model_id"],
            experiment_id=str(doc["experiment_id"]),
            name=doc["name"],
            artifact_uri=doc.get("artifact_uri") or "",
            status=LoggedModelStatus(doc["status"]),
            creation_time=int(doc["creation_time"]),
            last_update_time=int(doc["last_update_time"]),
            source_run_id=doc.get("source_run_id"),
            model_type=doc.get("model_type"),
            status_message=doc.get("status_message"),
            lifecycle_stage=Lifecycle(doc.get("lifecycle_stage") or Lifecycle.ACTIVE.value),
            tags=dict(doc.get("tags") or {}),
            params=dict(doc.get("params") or {}),
            metrics=[Metric.from_dict(m) for m in doc.get("metrics") or []],
        )
