"""The one interface between tracking's rules and its persistence.

:class:`~mlreg.tracking.sql_store.SqlTrackingStore` implements it on SQLite and PostgreSQL;
a REST client for a tracking server implements exactly these calls. Inputs arrive
validated by the service. A missing experiment raises ExperimentNotFound, a missing run
RunNotFound, a missing logged model ModelNotFound, a missing tag TagNotFound, a taken name
AlreadyExists, a database that fails underneath StoreError.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from mlreg.store.pages import Page
from mlreg.tracking.entities import (
    DatasetInput,
    Experiment,
    Lifecycle,
    LoggedModel,
    LoggedModelStatus,
    Metric,
    MetricSummary,
    ModelOutput,
    Run,
    RunStatus,
    ViewType,
)
from mlreg.tracking.search import Filter, OrderBy

DEFAULT_EXPERIMENT = "Default"
#: The id of the default experiment (MLflow's clients use it when none is set).
DEFAULT_EXPERIMENT_ID = "0"


class TrackingStore(Protocol):
    # --- experiments -------------------------------------------------------------------

    def create_experiment(
        self, name: str, artifact_location: str, now: int, experiment_id: int | None = None
    ) -> Experiment:
        """Create an experiment (with ``experiment_id`` if given and free); AlreadyExists if
        the name is taken."""

    def get_experiment(self, experiment_id: str) -> Experiment:
        """One experiment with its tags, deleted or not; ExperimentNotFound."""

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """The experiment called ``name`` (deleted or not), or None."""

    def search_experiments(
        self,
        *,
        name_like: str | None = None,
        max_results: int = 100,
        offset: int = 0,
        filters: Sequence[Filter] = (),
        order_by: Sequence[OrderBy] = (),
        view: ViewType = ViewType.ACTIVE_ONLY,
    ) -> Page:
        """A page of experiments matching a SQL LIKE pattern and every filter, in the order
        given (oldest first when none is)."""

    def update_experiment(
        self,
        experiment_id: str,
        now: int,
        *,
        name: str | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> Experiment:
        """Rename an experiment or move it to a lifecycle stage; ExperimentNotFound, or
        AlreadyExists for a taken name."""

    def set_experiment_tag(self, experiment_id: str, key: str, value: str | None) -> None:
        """Set one experiment tag (value None: remove it; TagNotFound if it is not set);
        ExperimentNotFound."""

    # --- runs --------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        run_name: str | None,
        start_time: int,
        tags: dict[str, str],
        parent_run_id: str | None,
        artifact_root: str,
    ) -> Run:
        """Start a RUNNING run with a new id (artifacts under ``artifact_root``)."""

    def get_run(self, run_id: str) -> Run:
        """A run (deleted or not) with its params, latest metrics, tags, inputs and outputs;
        RunNotFound."""

    def update_run(self, run_id: str, status: RunStatus, end_time: int | None) -> None:
        """Set a run's status and end time; RunNotFound."""

    def update_run_info(
        self, run_id: str, *, run_name: str | None = None, lifecycle: Lifecycle | None = None
    ) -> None:
        """Rename a run or move it to a lifecycle stage; RunNotFound."""

    def record_artifact(self, run_id: str, action: str, path: str, detail: dict[str, Any]) -> None:
        """Put an artifact write on the audit trail (``artifact.logged``, with ``detail``
        such as the size; ``artifact.deleted``); a store behind a server leaves it to the
        server, which records what it receives."""

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        *,
        request_id: str | None = None,
        allow_ended: bool = False,
    ) -> None:
        """Write metrics, params and tags in one transaction, once per ``request_id`` (a
        retry is a no-op); InvalidInput if a param would change, if the run is deleted, or
        (unless ``allow_ended``) if it ended; RunNotFound."""

    def delete_run_tag(self, run_id: str, key: str) -> None:
        """Remove one tag of a run; RunNotFound, TagNotFound."""

    def log_inputs(
        self, run_id: str, datasets: Sequence[DatasetInput], model_ids: Sequence[str]
    ) -> None:
        """Record datasets (kept once per experiment by name and digest) and logged models a
        run used; RunNotFound, ModelNotFound for an unknown model."""

    def log_outputs(self, run_id: str, outputs: Sequence[ModelOutput]) -> None:
        """Record logged models a run produced; RunNotFound, ModelNotFound."""

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every value logged for ``key``, by step then time; RunNotFound."""

    def get_metric_histories(
        self, run_ids: Sequence[str], key: str, max_points: int | None = None
    ) -> dict[str, list[Metric]]:
        """Every value each run logged for ``key``, by step then time (at most ``max_points``
        a run, thinned as :func:`mlreg.tracking.entities.thinned` does); a run that logged none
        (or does not exist) is absent from the answer."""

    def get_metric_summaries(self, run_id: str) -> list[MetricSummary]:
        """Per metric key the run logged (by key): how many values, min and max (NaN left
        out), the last step; RunNotFound."""

    def search_runs(
        self,
        *,
        experiment_ids: list[str],
        filters: Sequence[Filter] = (),
        order_by: Sequence[OrderBy] = (),
        max_results: int = 1000,
        offset: int = 0,
        view: ViewType = ViewType.ACTIVE_ONLY,
    ) -> Page:
        """A page of runs of those experiments in the lifecycle stages ``view`` shows,
        matching every filter, in that order."""

    # --- logged models -----------------------------------------------------------------

    def create_logged_model(
        self,
        experiment_id: str,
        name: str,
        artifact_root: str,
        now: int,
        *,
        source_run_id: str | None = None,
        model_type: str | None = None,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> LoggedModel:
        """A new PENDING logged model with an id ``m-<hex>`` and its files under
        ``artifact_root``; ExperimentNotFound."""

    def get_logged_model(self, model_id: str) -> LoggedModel:
        """One logged model with its tags, params and metrics; ModelNotFound."""

    def update_logged_model(
        self,
        model_id: str,
        now: int,
        *,
        status: LoggedModelStatus | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> LoggedModel:
        """Finish a logged model (READY or FAILED) or move it to a lifecycle stage."""

    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, str | None]) -> None:
        """Set tags (a None value removes that tag; TagNotFound if it is not set)."""

    def log_logged_model_params(self, model_id: str, params: Mapping[str, str]) -> None:
        """Add params; InvalidInput if one would change."""

    def search_logged_models(
        self,
        *,
        experiment_ids: list[str],
        filters: Sequence[Filter] = (),
        order_by: Sequence[OrderBy] = (),
        max_results: int = 100,
        offset: int = 0,
    ) -> Page:
        """A page of the active logged models of those experiments matching every filter
        (newest first unless ordered otherwise)."""

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""
