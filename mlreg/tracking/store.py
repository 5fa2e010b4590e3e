"""The one interface between tracking's rules and its persistence.

:class:`~mlreg.tracking.sql_store.SqlTrackingStore` implements it on SQLite and PostgreSQL;
a REST client for a tracking server implements exactly these calls. Inputs arrive
validated by the service. A missing experiment raises ExperimentNotFound, a missing run
RunNotFound, a taken name AlreadyExists, a database that fails underneath StoreError.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from mlreg.store.pages import Page
from mlreg.tracking.entities import Experiment, Lifecycle, Metric, Run, RunStatus, ViewType
from mlreg.tracking.search import Filter, OrderBy

DEFAULT_EXPERIMENT = "Default"


class TrackingStore(Protocol):
    def create_experiment(self, name: str, artifact_location: str, now: int) -> Experiment:
        """Create an experiment; AlreadyExists if the name is taken."""

    def get_experiment(self, experiment_id: str) -> Experiment:
        """One experiment with its tags; ExperimentNotFound."""

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """The experiment called ``name``, or None."""

    def search_experiments(
        self, *, name_like: str | None = None, max_results: int = 100, offset: int = 0
    ) -> Page:
        """A page of experiments (name matching a SQL LIKE pattern), oldest first."""

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        """Set one experiment tag; ExperimentNotFound."""

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
        """A run (deleted or not) with its params, latest metrics and tags; RunNotFound."""

    def update_run(self, run_id: str, status: RunStatus, end_time: int | None) -> None:
        """Set a run's status and end time; RunNotFound."""

    def update_run_info(
        self, run_id: str, *, run_name: str | None = None, lifecycle: Lifecycle | None = None
    ) -> None:
        """Rename a run or move it to a lifecycle stage; RunNotFound."""

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        *,
        request_id: str | None = None,
    ) -> None:
        """Write metrics, params and tags in one transaction, once per ``request_id`` (a
        retry is a no-op); InvalidInput if the run ended or a param would change; RunNotFound."""

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every value logged for ``key``, by step then time; RunNotFound."""

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

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""
