"""The SQL tracking store: experiments, runs, params, metric history, tags."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.orm import Session

from mlreg.errors import AlreadyExists, ExperimentNotFound, InvalidInput, RunNotFound
from mlreg.store.database import Database, applied_result, open_database, record_applied
from mlreg.store.pages import Page
from mlreg.store.tables import (
    ExperimentRow,
    ExperimentTagRow,
    LatestMetricRow,
    MetricRow,
    ParamRow,
    RunRow,
    RunTagRow,
)
from mlreg.tracking.entities import (
    Experiment,
    Lifecycle,
    Metric,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    ViewType,
)
from mlreg.tracking.search import Filter, OrderBy


class SqlTrackingStore:
    """Persistence for experiments, runs, params, metric history and tags."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.db: Database = open_database(uri)
        self._session = self.db.transaction

    def close(self) -> None:
        """Release the shared database (its connections close with the last user)."""
        self.db.close()

    # --- experiments ---------------------------------------------------------------------

    def _experiment(self, session: Session, row: ExperimentRow) -> Experiment:
        tags = session.execute(
            select(ExperimentTagRow.key, ExperimentTagRow.value).where(
                ExperimentTagRow.experiment_id == row.id
            )
        ).all()
        return Experiment(
            str(row.id), row.name, row.artifact_location, dict(tags), row.creation_time
        )

    def create_experiment(self, name: str, artifact_location: str, now: int) -> Experiment:
        try:
            with self._session() as session:
                row = ExperimentRow(
                    name=name, artifact_location=artifact_location, creation_time=now
                )
                session.add(row)
                session.flush()
                return self._experiment(session, row)
        except SqlIntegrityError:
            raise AlreadyExists(f"experiment {name!r} already exists") from None

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with self._session() as session:
            row = session.scalars(
                select(ExperimentRow).where(ExperimentRow.name == name)
            ).one_or_none()
            return self._experiment(session, row) if row else None

    def search_experiments(
        self, *, name_like: str | None = None, max_results: int = 100, offset: int = 0
    ) -> Page:
        with self._session() as session:
            query = select(ExperimentRow)
            if name_like:
                query = query.where(ExperimentRow.name.like(name_like))
            rows = session.scalars(
                query.order_by(ExperimentRow.id).offset(offset).limit(max_results + 1)
            ).all()
            items = [self._experiment(session, r) for r in rows[:max_results]]
            return Page(items, offset + max_results if len(rows) > max_results else None)

    def get_experiment(self, experiment_id: str) -> Experiment:
        with self._session() as session:
            row = session.get(ExperimentRow, _int_id(experiment_id))
            if row is None:
                raise ExperimentNotFound(f"experiment {experiment_id} does not exist")
            return self._experiment(session, row)

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        with self._session() as session:
            self.get_experiment(experiment_id)
            session.merge(
                ExperimentTagRow(experiment_id=_int_id(experiment_id), key=key, value=value)
            )

    # --- runs ----------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        run_name: str | None,
        start_time: int,
        tags: dict[str, str],
        parent_run_id: str | None,
        artifact_root: str,
    ) -> Run:
        run_id = uuid.uuid4().hex
        with self._session() as session:
            if session.get(ExperimentRow, _int_id(experiment_id)) is None:
                raise ExperimentNotFound(f"experiment {experiment_id} does not exist")
            row = RunRow(
                run_id=run_id,
                experiment_id=_int_id(experiment_id),
                run_name=run_name or f"run-{run_id[:8]}",
                status=RunStatus.RUNNING.value,
                start_time=start_time,
                parent_run_id=parent_run_id,
                artifact_uri=f"{artifact_root}/{run_id}/artifacts",
            )
            session.add(row)
            session.add_all(RunTagRow(run_id=run_id, key=k, value=v) for k, v in tags.items())
        return self.get_run(run_id)

    def _run_row(self, session: Session, run_id: str) -> RunRow:
        row = session.get(RunRow, run_id)
        if row is None:
            raise RunNotFound(f"run {run_id!r} does not exist")
        return row

    def get_run(self, run_id: str) -> Run:
        with self._session() as session:
            return self._runs(session, [self._run_row(session, run_id)])[0]

    def _runs(self, session: Session, rows: Sequence[RunRow]) -> list[Run]:
        ids = [r.run_id for r in rows]
        params: dict[str, dict[str, str]] = {i: {} for i in ids}
        metrics: dict[str, dict[str, float]] = {i: {} for i in ids}
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        if ids:
            for rid, k, v in session.execute(
                select(ParamRow.run_id, ParamRow.key, ParamRow.value).where(
                    ParamRow.run_id.in_(ids)
                )
            ):
                params[rid][k] = v
            for rid, k, v in session.execute(
                select(LatestMetricRow.run_id, LatestMetricRow.key, LatestMetricRow.value).where(
                    LatestMetricRow.run_id.in_(ids)
                )
            ):
                metrics[rid][k] = _loaded(v)
            for rid, k, v in session.execute(
                select(RunTagRow.run_id, RunTagRow.key, RunTagRow.value).where(
                    RunTagRow.run_id.in_(ids)
                )
            ):
                tags[rid][k] = v
        return [
            Run(
                RunInfo(
                    run_id=r.run_id,
                    experiment_id=str(r.experiment_id),
                    run_name=r.run_name,
                    status=RunStatus(r.status),
                    start_time=r.start_time,
                    end_time=r.end_time,
                    artifact_uri=r.artifact_uri,
                    parent_run_id=r.parent_run_id,
                    lifecycle_stage=Lifecycle(r.lifecycle_stage),
                ),
                RunData(params[r.run_id], metrics[r.run_id], tags[r.run_id]),
            )
            for r in rows
        ]

    def update_run(self, run_id: str, status: RunStatus, end_time: int | None) -> None:
        with self._session() as session:
            row = self._run_row(session, run_id)
            row.status = status.value
            row.end_time = end_time

    def update_run_info(
        self, run_id: str, *, run_name: str | None = None, lifecycle: Lifecycle | None = None
    ) -> None:
        with self._session() as session:
            row = self._run_row(session, run_id)
            if run_name is not None:
                row.run_name = run_name
            if lifecycle is not None:
                row.lifecycle_stage = lifecycle.value

    # --- logging -------------------------------------------------------------------------

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        *,
        request_id: str | None = None,
    ) -> None:
        """Write metrics, params and tags in one transaction (once per ``request_id``)."""
        params = params or {}
        tags = tags or {}
        try:
            with self._session() as session:
                if applied_result(session, request_id) is not None:
                    return  # a retry of a batch already written
                self._write_batch(session, run_id, metrics, params, tags)
                record_applied(session, request_id)
        except SqlIntegrityError:
            # A retry that raced its first attempt: the first one wrote the batch.
            with self._session() as session:
                if request_id is None or applied_result(session, request_id) is None:
                    raise

    def _write_batch(
        self,
        session: Session,
        run_id: str,
        metrics: Sequence[Metric],
        params: dict[str, str],
        tags: dict[str, str],
    ) -> None:
        row = self._run_row(session, run_id)
        if row.lifecycle_stage != Lifecycle.ACTIVE.value:
            raise InvalidInput(f"run {run_id} is deleted; restore it before logging to it")
        if row.status != RunStatus.RUNNING.value and (metrics or params):
            raise InvalidInput(f"run {run_id} is {row.status}; it no longer takes logs")
        if params:
            existing = dict(
                session.execute(
                    select(ParamRow.key, ParamRow.value).where(
                        ParamRow.run_id == run_id, ParamRow.key.in_(list(params))
                    )
                ).all()
            )
            for key, value in params.items():
                if key in existing and existing[key] != value:
                    raise InvalidInput(
                        f"param {key!r} was already logged as {existing[key]!r}; a param "
                        f"cannot change (got {value!r}). Log a new key or start a new run"
                    )
            session.add_all(
                ParamRow(run_id=run_id, key=k, value=v)
                for k, v in params.items()
                if k not in existing
            )
        if metrics:
            session.execute(
                MetricRow.__table__.insert(),
                [
                    {
                        "run_id": run_id,
                        "key": m.key,
                        "value": m.value,
                        "timestamp": m.timestamp,
                        "step": m.step,
                    }
                    for m in metrics
                ],
            )
            latest: dict[str, Metric] = {}
            for m in metrics:
                prev = latest.get(m.key)
                if prev is None or (m.step, m.timestamp) >= (prev.step, prev.timestamp):
                    latest[m.key] = m
            # One statement for every key (executemany): building a statement per key cost
            # more than the database's work (most of a 100-metric batch's time).
            stmt = self.db.insert()(LatestMetricRow.__table__)
            upsert = stmt.on_conflict_do_update(
                index_elements=["run_id", "key"],
                set_={
                    "value": stmt.excluded.value,
                    "timestamp": stmt.excluded.timestamp,
                    "step": stmt.excluded.step,
                },
                where=LatestMetricRow.__table__.c.step <= stmt.excluded.step,
            )
            session.execute(
                upsert,
                [
                    {
                        "run_id": run_id,
                        "key": m.key,
                        "value": _stored(m.value),
                        "timestamp": m.timestamp,
                        "step": m.step,
                    }
                    for m in latest.values()
                ],
            )
        for key, value in tags.items():
            session.merge(RunTagRow(run_id=run_id, key=key, value=value))

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        with self._session() as session:
            self._run_row(session, run_id)
            rows = session.execute(
                select(MetricRow.key, MetricRow.value, MetricRow.timestamp, MetricRow.step)
                .where(MetricRow.run_id == run_id, MetricRow.key == key)
                .order_by(MetricRow.step, MetricRow.timestamp, MetricRow.id)
            ).all()
            return [Metric(k, _loaded(v), ts, step) for k, v, ts, step in rows]

    # --- search --------------------------------------------------------------------------

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
        with self._session() as session:
            query = select(RunRow).where(
                RunRow.experiment_id.in_([_int_id(e) for e in experiment_ids]),
                RunRow.lifecycle_stage.in_([s.value for s in view.stages()]),
            )
            for f in filters:
                query = query.where(_filter_clause(f))
            for o in order_by:
                column = _order_column(o)
                query = query.order_by(
                    column.desc().nulls_last() if o.descending else column.asc().nulls_last()
                )
            query = query.order_by(RunRow.start_time.desc(), RunRow.run_id)
            rows = session.scalars(query.offset(offset).limit(max_results + 1)).all()
            runs = self._runs(session, rows[:max_results])
            return Page(runs, offset + max_results if len(rows) > max_results else None)


def _stored(value: float) -> float | None:
    return None if math.isnan(value) else value


def _loaded(value: float | None) -> float:
    return math.nan if value is None else value


#: Experiment ids are the database's 32-bit integer keys.
MAX_EXPERIMENT_ID = 2**31 - 1


def _int_id(experiment_id: str | int) -> int:
    try:
        number = int(experiment_id)
    except (TypeError, ValueError):
        number = -1
    if not 0 <= number <= MAX_EXPERIMENT_ID:
        raise InvalidInput(f"invalid experiment id {experiment_id!r}")
    return number


_OPS = {
    "=": lambda c, v: c == v,
    "!=": lambda c, v: c != v,
    "<": lambda c, v: c < v,
    "<=": lambda c, v: c <= v,
    ">": lambda c, v: c > v,
    ">=": lambda c, v: c >= v,
    "LIKE": lambda c, v: c.like(v),
}


def _filter_clause(f: Filter) -> Any:
    op = _OPS[f.op]
    if f.kind == "metrics":
        return RunRow.run_id.in_(
            select(LatestMetricRow.run_id).where(
                LatestMetricRow.key == f.key, op(LatestMetricRow.value, f.value)
            )
        )
    if f.kind == "params":
        return RunRow.run_id.in_(
            select(ParamRow.run_id).where(ParamRow.key == f.key, op(ParamRow.value, f.value))
        )
    if f.kind == "tags":
        return RunRow.run_id.in_(
            select(RunTagRow.run_id).where(RunTagRow.key == f.key, op(RunTagRow.value, f.value))
        )
    column = {
        "status": RunRow.status,
        "run_name": RunRow.run_name,
        "start_time": RunRow.start_time,
        "end_time": RunRow.end_time,
    }[f.key]
    return op(column, f.value)


def _order_column(o: OrderBy) -> Any:
    if o.kind == "metrics":
        return (
            select(LatestMetricRow.value)
            .where(LatestMetricRow.run_id == RunRow.run_id, LatestMetricRow.key == o.key)
            .scalar_subquery()
        )
    if o.kind == "params":
        return (
            select(ParamRow.value)
            .where(ParamRow.run_id == RunRow.run_id, ParamRow.key == o.key)
            .scalar_subquery()
        )
    if o.kind == "tags":
        return (
            select(RunTagRow.value)
            .where(RunTagRow.run_id == RunRow.run_id, RunTagRow.key == o.key)
            .scalar_subquery()
        )
    return {
        "start_time": RunRow.start_time,
        "end_time": RunRow.end_time,
        "run_name": RunRow.run_name,
        "status": RunRow.status,
    }[o.key]
