"""The fluent API: ``mlreg.start_run()``, ``mlreg.log_metric()``, ... on an active-run stack."""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from collections.abc import Mapping
from typing import Any

from mlreg.errors import ExperimentNotFound, InvalidInput
from mlreg.store import settings
from mlreg.store.settings import tracking_uri_generation
from mlreg.tracking.client import TrackingClient
from mlreg.tracking.entities import Experiment, Run, RunStatus, ViewType
from mlreg.tracking.experiment_search import experiment_matches, sort_experiments
from mlreg.tracking.frames import runs_frame
from mlreg.uris import ResolvedModel

_lock = threading.RLock()
_client: TrackingClient | None = None
_client_generation = -1
_active: list[ActiveRun] = []
_experiment_id: str | None = None
#: The run most recently started (or resumed) in this process, for last_active_run().
_last_run_id: str | None = None
logger = logging.getLogger(__name__)


def client() -> TrackingClient:
    """The process-wide tracking client (MLREG_* settings, read on first use; built again
    after :func:`set_tracking_uri`)."""
    global _client, _client_generation
    with _lock:
        if _client is not None and _client_generation != tracking_uri_generation():
            _client.close()
            _client = None
        if _client is None:
            _client = TrackingClient()
            _client_generation = tracking_uri_generation()
        return _client


def set_tracking_uri(uri: str | os.PathLike[str] | None) -> None:
    """Point this process's tracking and registry at another store (MLflow's call): a
    database URI, an ``http(s)://`` mlreg server, or a directory (path or ``file://``) that
    holds ``registry.db`` and ``artifacts/``; None goes back to ``MLREG_TRACKING_URI``.
    The current experiment is forgotten (it belongs to the old store)."""
    global _experiment_id
    settings.set_tracking_uri(uri)
    with _lock:
        _experiment_id = None


def get_tracking_uri() -> str:
    """The URI of the store this process logs to (a directory reads as its SQLite URI)."""
    return settings.get_tracking_uri()


def resolve_run_uri(uri: str) -> ResolvedModel:
    """Resolve ``runs:/...`` with the process-wide client (the entry in mlreg.uris.SCHEMES)."""
    return client().resolve(uri)


def reset() -> None:
    """Forget the client, the active runs and the current experiment (tests, new settings)."""
    global _client, _experiment_id, _last_run_id
    with _lock:
        _active.clear()
        _experiment_id = None
        _last_run_id = None
        if _client is not None:
            _client.close()
        _client = None


# --- runs still active when the process exits ------------------------------------------------

#: The process that installed the exit hook (a forked child must not end its parent's runs).
_hook_pid: int | None = None
#: The type of the exception that is ending the process, if one is.
_uncaught: type[BaseException] | None = None


def _install_exit_hook() -> None:
    """Once per process: remember an uncaught exception, and end active runs at exit."""
    global _hook_pid
    if _hook_pid == os.getpid():
        return
    _hook_pid = os.getpid()
    previous = sys.excepthook

    def excepthook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        global _uncaught
        _uncaught = exc_type
        previous(exc_type, exc, tb)

    sys.excepthook = excepthook
    atexit.register(_end_runs_at_exit)


def _exit_status() -> RunStatus:
    if _uncaught is None:
        return RunStatus.FINISHED
    return RunStatus.KILLED if issubclass(_uncaught, KeyboardInterrupt) else RunStatus.FAILED


def _end_runs_at_exit() -> None:
    """End the runs a script left active (no ``with`` block, or the process is dying):
    FINISHED on a normal exit, FAILED after an uncaught exception, KILLED after Ctrl-C, so
    no run stays RUNNING after its process is gone."""
    if _hook_pid != os.getpid():
        return
    status = _exit_status()
    while _active:
        try:
            end_run(status)
        except Exception as e:  # the store may be gone too; exit anyway
            logger.warning("mlreg: could not end a run at exit: %s: %s", type(e).__name__, e)


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
    global _last_run_id
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
        _last_run_id = run.info.run_id
        _install_exit_hook()
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


#: MLflow's default for search_runs (SEARCH_MAX_RESULTS_PANDAS).
SEARCH_MAX_RESULTS = 100_000
_PAGE = 1000


def search_runs(
    experiment_ids: list[str] | None = None,
    filter_string: str | None = "",
    run_view_type: ViewType | str | int | None = ViewType.ACTIVE_ONLY,
    max_results: int = SEARCH_MAX_RESULTS,
    order_by: list[str] | str | None = None,
    output_format: str = "pandas",
    search_all_experiments: bool = False,
    experiment_names: list[str] | None = None,
) -> Any:
    """Runs matching a filter, as MLflow's ``search_runs``: a pandas DataFrame by default
    (``run_id, experiment_id, status, artifact_uri, start_time, end_time``, then
    ``metrics.*``, ``params.*``, ``tags.*``), or a list of Run with ``output_format="list"``.

    Experiments by id or by name (not both); none given: the current experiment, or every
    experiment with ``search_all_experiments=True``.
    """
    if output_format not in ("pandas", "list"):
        raise InvalidInput(
            f"unsupported output_format {output_format!r}; expected 'pandas' or 'list'"
        )
    if experiment_ids and experiment_names:
        raise InvalidInput("pass experiment_ids or experiment_names, not both")
    if not 1 <= max_results <= SEARCH_MAX_RESULTS:
        raise InvalidInput(
            f"max_results must be between 1 and {SEARCH_MAX_RESULTS}, got {max_results}"
        )
    c = client()
    view = ViewType.parse(run_view_type)
    if experiment_names:
        found = [c.get_experiment_by_name(n) for n in experiment_names]
        missing = [n for n, e in zip(experiment_names, found, strict=True) if e is None]
        if missing:
            raise ExperimentNotFound(
                f"no experiment named {', '.join(map(repr, missing))}; experiments: "
                f"{', '.join(e.name for e in _all_experiments()) or 'none yet'}"
            )
        ids = [e.experiment_id for e in found if e is not None]
    elif experiment_ids:
        ids = [str(i) for i in experiment_ids]
    elif search_all_experiments:
        ids = [e.experiment_id for e in _all_experiments()]
    else:
        ids = [_experiment_id or c.default_experiment_id()]
    runs: list[Run] = []
    offset: int | None = 0
    while ids and offset is not None and len(runs) < max_results:
        page = c.search_runs_page(
            ids, filter_string, order_by, min(_PAGE, max_results - len(runs)), offset, view
        )
        runs += page.items
        offset = page.next_offset
    if output_format == "list":
        return runs
    return runs_frame(runs)


def _all_experiments() -> list[Experiment]:
    found: list[Experiment] = []
    offset: int | None = 0
    while offset is not None:
        page = client().search_experiments(max_results=_PAGE, offset=offset)
        found += page.items
        offset = page.next_offset
    return found


def search_experiments(
    view_type: ViewType | str | int | None = ViewType.ACTIVE_ONLY,
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: list[str] | str | None = None,
) -> list[Experiment]:
    """Experiments, as MLflow's ``search_experiments``: ``filter_string`` compares ``name``
    or ``tags.<key>`` (``=``, ``!=``, ``LIKE``, ``ILIKE``; clauses joined by AND), ``order_by``
    is ``name``, ``experiment_id`` or ``creation_time`` with ASC or DESC (default: oldest
    first). Experiments cannot be deleted yet, so DELETED_ONLY finds none."""
    view = ViewType.parse(view_type)
    if view is ViewType.DELETED_ONLY:
        return []
    found = [e for e in _all_experiments() if experiment_matches(e, filter_string)]
    found = sort_experiments(found, order_by)
    return found[:max_results] if max_results is not None else found


def last_active_run() -> Run | None:
    """The active run, else the run this process started or resumed last (ended or not)."""
    run = active_run()
    run_id = run.info.run_id if run is not None else _last_run_id
    return client().get_run(run_id) if run_id is not None else None


def delete_run(run_id: str) -> None:
    """Mark a run deleted: searches leave it out; ``restore_run`` brings it back."""
    client().delete_run(run_id)


def restore_run(run_id: str) -> None:
    client().restore_run(run_id)


def get_run(run_id: str) -> Run:
    return client().get_run(run_id)
