"""The fluent API: ``mlreg.start_run()``, ``mlreg.log_metric()``, ... on an active-run stack."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from mlreg.errors import InvalidInput
from mlreg.tracking.client import TrackingClient
from mlreg.tracking.entities import Experiment, Run, RunStatus
from mlreg.uris import ResolvedModel

_lock = threading.RLock()
_client: TrackingClient | None = None
_active: list[ActiveRun] = []
_experiment_id: str | None = None


def client() -> TrackingClient:
    """The process-wide tracking client (MLREG_* settings, read on first use)."""
    global _client
    with _lock:
        if _client is None:
            _client = TrackingClient()
        return _client


def resolve_run_uri(uri: str) -> ResolvedModel:
    """Resolve ``runs:/...`` with the process-wide client (the entry in mlreg.uris.SCHEMES)."""
    return client().resolve(uri)


def reset() -> None:
    """Forget the client, the active runs and the current experiment (tests, new settings)."""
    global _client, _experiment_id
    with _lock:
        _active.clear()
        _experiment_id = None
        if _client is not None:
            _client.close()
        _client = None


class ActiveRun:
    """The run ``start_run`` returned; ending the ``with`` block ends the run."""

    def __init__(self, run: Run) -> None:
        self._run = run

    @property
    def info(self) -> Any:
        return self._run.info

    @property
    def data(self) -> Any:
        return client().get_run(self._run.info.run_id).data

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        end_run(status)


def set_experiment(name: str) -> Experiment:
    """Make ``name`` the current experiment, creating it if it does not exist."""
    global _experiment_id
    c = client()
    experiment_id = c.get_or_create_experiment(name)
    _experiment_id = experiment_id
    return c.get_experiment(experiment_id)


def create_experiment(name: str, tags: Mapping[str, Any] | None = None) -> str:
    return client().create_experiment(name, tags)


def get_experiment_by_name(name: str) -> Experiment | None:
    return client().get_experiment_by_name(name)


def set_experiment_tag(key: str, value: Any) -> None:
    client().set_experiment_tag(_experiment_id or client().default_experiment_id(), key, value)


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    tags: Mapping[str, Any] | None = None,
) -> ActiveRun:
    """Start a run (or resume ``run_id``) and make it the active one."""
    c = client()
    with _lock:
        if _active and not nested:
            raise InvalidInput(
                f"run {_active[-1].info.run_id} is already active; end it with mlreg.end_run() "
                "or start this one with nested=True"
            )
        if run_id is not None:
            run = c.reopen(run_id)
            if tags:
                c.log_batch(run_id, tags=tags)
        else:
            parent = _active[-1].info.run_id if _active else None
            run = c.create_run(experiment_id or _experiment_id, run_name, tags, parent)
        active = ActiveRun(run)
        _active.append(active)
        return active


def active_run() -> ActiveRun | None:
    return _active[-1] if _active else None


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End the active run (the innermost one, for nested runs)."""
    with _lock:
        if not _active:
            return
        run = _active.pop()
    client().set_terminated(run.info.run_id, status)


def active_run_id() -> str:
    """The active run's id, starting a run if there is none (as MLflow does)."""
    run = active_run()
    return (run or start_run()).info.run_id


def log_param(key: str, value: Any) -> Any:
    client().log_param(active_run_id(), key, value)
    return value


def log_params(params: Mapping[str, Any]) -> None:
    client().log_batch(active_run_id(), params=params)


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: int | None = None
) -> None:
    client().log_metric(active_run_id(), key, value, step, timestamp)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    client().log_batch(active_run_id(), metrics=[(k, v, step, None) for k, v in metrics.items()])


def set_tag(key: str, value: Any) -> None:
    client().set_tag(active_run_id(), key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    client().log_batch(active_run_id(), tags=tags)


def log_artifact(local_path: str, artifact_path: str | None = None) -> None:
    client().log_artifact(active_run_id(), local_path, artifact_path)


def log_artifacts(local_dir: str, artifact_path: str | None = None) -> None:
    client().log_artifacts(active_run_id(), local_dir, artifact_path)


def log_text(text: str, artifact_file: str) -> None:
    client().log_text(active_run_id(), text, artifact_file)


def log_dict(dictionary: Mapping[str, Any], artifact_file: str) -> None:
    client().log_dict(active_run_id(), dictionary, artifact_file)


def log_image(image: Any, artifact_file: str) -> None:
    client().log_image(active_run_id(), image, artifact_file)


def log_figure(figure: Any, artifact_file: str) -> None:
    client().log_figure(active_run_id(), figure, artifact_file)


def search_runs(
    experiment_ids: list[str] | None = None,
    filter_string: str | None = None,
    order_by: list[str] | str | None = None,
    max_results: int = 1000,
) -> list[Run]:
    ids = experiment_ids or [_experiment_id or client().default_experiment_id()]
    return client().search_runs(ids, filter_string, order_by, max_results)


def get_run(run_id: str) -> Run:
    return client().get_run(run_id)
