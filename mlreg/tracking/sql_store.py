"""The SQL tracking store: experiments, runs, params, metric history, tags, inputs, outputs.

Logged models live in :mod:`mlreg.tracking.sql_logged_models` (a part of the same store).
Every write records what it changed through :mod:`mlreg.store.journal` in its own
transaction, as the :class:`~mlreg.store.journal.Actor` the store is bound to; experiment
searches show only what that actor may read (when it is limited).
"""

from __future__ import annotations

import copy
import json
import math
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, delete, exists, func, literal_column, or_, select
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.orm import Session

from mlreg.errors import (
    AlreadyExists,
    ExperimentNotFound,
    InvalidInput,
    ModelNotFound,
    RunNotFound,
    TagNotFound,
)
from mlreg.store.database import Database, applied_result, open_database, record_applied
from mlreg.store.journal import Actor, Change, record
from mlreg.store.pages import Page
from mlreg.store.tables import (
    DatasetRow,
    ExperimentGrantRow,
    ExperimentRow,
    ExperimentTagRow,
    LatestMetricRow,
    LoggedModelRow,
    MetricRow,
    ParamRow,
    RunDatasetRow,
    RunModelRow,
    RunRow,
    RunTagRow,
)
from mlreg.tracking.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    Lifecycle,
    Metric,
    MetricSummary,
    ModelOutput,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunStatus,
    ViewType,
)
from mlreg.tracking.search import Filter, OrderBy
from mlreg.tracking.sql_logged_models import SqlLoggedModels, metric_of
from mlreg.tracking.sql_logged_models import loaded as _loaded
from mlreg.tracking.sql_search import experiment_filter, experiment_order, run_filter, run_order

INPUT, OUTPUT = "input", "output"


class SqlTrackingStore(SqlLoggedModels):
    """Persistence for experiments, runs, params, metric history, tags and logged models."""

    def __init__(self, uri: str, actor: Actor | None = None) -> None:
        self.uri = uri
        self.db: Database = open_database(uri)
        self._session = self.db.transaction
        self.actor = actor or Actor("unknown")

    def close(self) -> None:
        """Release the shared database (its connections close with the last user)."""
        self.db.close()

    def acting(self, actor: Actor) -> SqlTrackingStore:
        """This store (sharing its database) recording writes as ``actor`` and showing what it
        may read; the view is never closed, the store it came from is."""
        view = copy.copy(self)
        view.actor = actor
        return view

    def _record(self, session: Session, change: Change) -> None:
        record(session, self.actor, change)

    def _run_change(self, action: str, row: RunRow, **values: Any) -> Change:
        return Change(action, "run", row.run_id, row.run_name, **values)

    def _visible(self, query: Any) -> Any:
        """``query`` (over ExperimentRow) limited to the experiments the actor may read."""
        readers = self.actor.readers
        if readers is None:
            return query
        granted = exists().where(
            ExperimentGrantRow.experiment_id == ExperimentRow.id,
            ExperimentGrantRow.principal_id.in_(readers),
            ExperimentGrantRow.level >= 1,
        )
        if not self.actor.ungranted_visible:
            return query.where(granted)
        ungranted = ~exists().where(ExperimentGrantRow.experiment_id == ExperimentRow.id)
        return query.where(or_(granted, ungranted))

    # --- experiments ---------------------------------------------------------------------

    def _experiment(self, session: Session, row: ExperimentRow) -> Experiment:
        tags = session.execute(
            select(ExperimentTagRow.key, ExperimentTagRow.value).where(
                ExperimentTagRow.experiment_id == row.id
            )
        ).all()
        return Experiment(
            str(row.id),
            row.name,
            row.artifact_location,
            dict(tags),
            row.creation_time,
            Lifecycle(row.lifecycle_stage),
            row.last_update_time or row.creation_time,
        )

    def create_experiment(
        self, name: str, artifact_location: str, now: int, experiment_id: int | None = None
    ) -> Experiment:
        try:
            with self._session() as session:
                if experiment_id is not None and session.get(ExperimentRow, experiment_id):
                    experiment_id = None  # taken (by a renamed default): number it as usual
                row = ExperimentRow(
                    id=experiment_id,
                    name=name,
                    artifact_location=artifact_location,
                    creation_time=now,
                    last_update_time=now,
                )
                session.add(row)
                session.flush()
                self._record(
                    session,
                    Change(
                        "experiment.created",
                        "experiment",
                        row.id,
                        name,
                        new={"artifact_location": artifact_location},
                    ),
                )
                for principal_id, level in self.actor.creator_grants:
                    session.add(
                        ExperimentGrantRow(
                            experiment_id=row.id, principal_id=principal_id, level=level
                        )
                    )
                return self._experiment(session, row)
        except SqlIntegrityError:
            raise AlreadyExists(f"experiment {name!r} already exists") from None

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with self._session() as session:
            row = session.scalars(
                self._visible(select(ExperimentRow)).where(ExperimentRow.name == name)
            ).one_or_none()
            return self._experiment(session, row) if row else None

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
        with self._session() as session:
            query = self._visible(select(ExperimentRow)).where(
                ExperimentRow.lifecycle_stage.in_([s.value for s in view.stages()])
            )
            if name_like:
                query = query.where(ExperimentRow.name.like(name_like))
            for f in filters:
                query = query.where(experiment_filter(f))
            for o in order_by:
                column = experiment_order(o)
                query = query.order_by(column.desc() if o.descending else column.asc())
            rows = session.scalars(
                query.order_by(ExperimentRow.id).offset(offset).limit(max_results + 1)
            ).all()
            items = [self._experiment(session, r) for r in rows[:max_results]]
            return Page(items, offset + max_results if len(rows) > max_results else None)

    def _experiment_row(self, session: Session, experiment_id: str) -> ExperimentRow:
        row = session.get(ExperimentRow, _int_id(experiment_id))
        if row is None:
            raise ExperimentNotFound(f"experiment {experiment_id} does not exist")
        return row

    def get_experiment(self, experiment_id: str) -> Experiment:
        with self._session() as session:
            return self._experiment(session, self._experiment_row(session, experiment_id))

    def update_experiment(
        self,
        experiment_id: str,
        now: int,
        *,
        name: str | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> Experiment:
        try:
            with self._session() as session:
                row = self._experiment_row(session, experiment_id)
                if name is not None:
                    row.name = name
                if lifecycle is not None:
                    row.lifecycle_stage = lifecycle.value
                row.last_update_time = now
                session.flush()
                return self._experiment(session, row)
        except SqlIntegrityError:
            raise AlreadyExists(f"experiment {name!r} already exists") from None

    def set_experiment_tag(self, experiment_id: str, key: str, value: str | None) -> None:
        with self._session() as session:
            row = self._experiment_row(session, experiment_id)
            old = session.get(ExperimentTagRow, (row.id, key))
            if value is None and old is None:
                raise TagNotFound(f"experiment {experiment_id} has no tag {key!r}")
            self._record(
                session,
                Change(
                    "experiment.tag_set",
                    "experiment",
                    row.id,
                    row.name,
                    old={key: old.value if old else None},
                    new={key: value},
                ),
            )
            if value is None:
                session.delete(old)
            else:
                session.merge(ExperimentTagRow(experiment_id=row.id, key=key, value=value))

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
            self._record(
                session,
                self._run_change(
                    "run.created",
                    row,
                    new={"experiment_id": experiment_id, "tags": tags, "status": row.status},
                ),
            )
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
        latest: dict[str, dict[str, Metric]] = {i: {} for i in ids}
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        datasets: dict[str, list[DatasetInput]] = {i: [] for i in ids}
        models: dict[str, list[str]] = {i: [] for i in ids}
        outputs: dict[str, list[ModelOutput]] = {i: [] for i in ids}
        if ids:
            for rid, k, v in session.execute(
                select(ParamRow.run_id, ParamRow.key, ParamRow.value).where(
                    ParamRow.run_id.in_(ids)
                )
            ):
                params[rid][k] = v
            for row in session.scalars(
                select(LatestMetricRow).where(LatestMetricRow.run_id.in_(ids))
            ):
                value = _loaded(row.value)
                metrics[row.run_id][row.key] = value
                latest[row.run_id][row.key] = Metric(row.key, value, row.timestamp, row.step)
            for rid, k, v in session.execute(
                select(RunTagRow.run_id, RunTagRow.key, RunTagRow.value).where(
                    RunTagRow.run_id.in_(ids)
                )
            ):
                tags[rid][k] = v
            for used, dataset in session.execute(
                select(RunDatasetRow, DatasetRow)
                .join(DatasetRow, DatasetRow.id == RunDatasetRow.dataset_id)
                .where(RunDatasetRow.run_id.in_(ids))
                .order_by(RunDatasetRow.position, DatasetRow.id)
            ):
                datasets[used.run_id].append(
                    DatasetInput(_dataset(dataset), json.loads(used.tags or "{}"))
                )
            for link in session.scalars(
                select(RunModelRow)
                .where(RunModelRow.run_id.in_(ids))
                .order_by(RunModelRow.position, RunModelRow.model_id)
            ):
                if link.direction == INPUT:
                    models[link.run_id].append(link.model_id)
                else:
                    outputs[link.run_id].append(ModelOutput(link.model_id, link.step))
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
                RunData(params[r.run_id], metrics[r.run_id], tags[r.run_id], latest[r.run_id]),
                RunInputs(datasets[r.run_id], models[r.run_id]),
                outputs[r.run_id],
            )
            for r in rows
        ]

    def update_run(self, run_id: str, status: RunStatus, end_time: int | None) -> None:
        with self._session() as session:
            row = self._run_row(session, run_id)
            self._record(
                session,
                self._run_change(
                    "run.updated",
                    row,
                    old={"status": row.status, "end_time": row.end_time},
                    new={"status": status.value, "end_time": end_time},
                ),
            )
            row.status = status.value
            row.end_time = end_time

    def update_run_info(
        self, run_id: str, *, run_name: str | None = None, lifecycle: Lifecycle | None = None
    ) -> None:
        with self._session() as session:
            row = self._run_row(session, run_id)
            old: dict[str, str] = {}
            new: dict[str, str] = {}
            if run_name is not None and run_name != row.run_name:
                old["run_name"], new["run_name"] = row.run_name, run_name
            if lifecycle is not None and lifecycle.value != row.lifecycle_stage:
                old["lifecycle_stage"], new["lifecycle_stage"] = (
                    row.lifecycle_stage,
                    lifecycle.value,
                )
            if new:
                action = "run.renamed"
                if "lifecycle_stage" in new:
                    deleted = lifecycle is Lifecycle.DELETED
                    action = "run.deleted" if deleted else "run.restored"
                self._record(session, self._run_change(action, row, old=old, new=new))
            if run_name is not None:
                row.run_name = run_name
            if lifecycle is not None:
                row.lifecycle_stage = lifecycle.value

    def delete_run_tag(self, run_id: str, key: str) -> None:
        with self._session() as session:
            self._run_row(session, run_id)
            gone = session.execute(
                delete(RunTagRow).where(RunTagRow.run_id == run_id, RunTagRow.key == key)
            )
            if not gone.rowcount:
                raise TagNotFound(f"run {run_id} has no tag {key!r}")

    # --- inputs and outputs --------------------------------------------------------------

    def log_inputs(
        self, run_id: str, datasets: Sequence[DatasetInput], model_ids: Sequence[str]
    ) -> None:
        with self._session() as session:
            run = self._run_row(session, run_id)
            position = len(
                session.scalars(
                    select(RunDatasetRow.dataset_id).where(RunDatasetRow.run_id == run_id)
                ).all()
            )
            for used in datasets:
                dataset_id = self._dataset_id(session, run.experiment_id, used.dataset)
                link = session.get(RunDatasetRow, (run_id, dataset_id))
                if link is None:
                    session.add(
                        RunDatasetRow(
                            run_id=run_id,
                            dataset_id=dataset_id,
                            tags=json.dumps(used.tags),
                            position=position,
                        )
                    )
                    position += 1
                else:  # the same dataset again: its tags are merged, as MLflow does
                    link.tags = json.dumps({**json.loads(link.tags or "{}"), **used.tags})
                session.flush()
            self._link_models(session, run_id, [ModelOutput(m) for m in model_ids], INPUT)

    def log_outputs(self, run_id: str, outputs: Sequence[ModelOutput]) -> None:
        with self._session() as session:
            self._run_row(session, run_id)
            self._link_models(session, run_id, outputs, OUTPUT)

    def _link_models(
        self, session: Session, run_id: str, links: Sequence[ModelOutput], direction: str
    ) -> None:
        position = session.scalar(
            select(func.count()).select_from(RunModelRow).where(RunModelRow.run_id == run_id)
        )
        for link in links:
            if session.get(LoggedModelRow, link.model_id) is None:
                raise ModelNotFound(f"logged model {link.model_id!r} does not exist")
            known = session.get(RunModelRow, (run_id, link.model_id, direction))
            if known is not None:
                known.step = link.step
                continue
            session.add(
                RunModelRow(
                    run_id=run_id,
                    model_id=link.model_id,
                    direction=direction,
                    step=link.step,
                    position=position,
                )
            )
            position += 1
            session.flush()

    def _dataset_id(self, session: Session, experiment_id: int, dataset: Dataset) -> int:
        """The id of the experiment's dataset with that name and digest (made if new)."""
        query = select(DatasetRow.id).where(
            DatasetRow.experiment_id == experiment_id,
            DatasetRow.name == dataset.name,
            DatasetRow.digest == dataset.digest,
        )
        found = session.scalar(query)
        if found is not None:
            return found
        session.execute(
            self.db.insert()(DatasetRow)
            .values(
                experiment_id=experiment_id,
                name=dataset.name,
                digest=dataset.digest,
                source_type=dataset.source_type,
                source=dataset.source,
                schema=dataset.schema,
                profile=dataset.profile,
            )
            .on_conflict_do_nothing(index_elements=["experiment_id", "name", "digest"])
        )
        return session.scalars(query).one()

    def record_artifact(self, run_id: str, action: str, path: str, detail: dict[str, Any]) -> None:
        """Audit an artifact write. Files are not rows: the record follows the write (a write
        that failed is not recorded; a crash between the two loses the record, not the file)."""
        with self._session() as session:
            row = self._run_row(session, run_id)
            entry = {"path": path, **detail}
            values = {"old": entry} if action == "artifact.deleted" else {"new": entry}
            self._record(session, self._run_change(action, row, **values))

    # --- logging -------------------------------------------------------------------------

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
        """Write metrics, params and tags in one transaction (once per ``request_id``)."""
        params = params or {}
        tags = tags or {}
        try:
            with self._session() as session:
                if applied_result(session, request_id) is not None:
                    return  # a retry of a batch already written
                self._write_batch(session, run_id, metrics, params, tags, allow_ended)
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
        allow_ended: bool,
    ) -> None:
        row = self._run_row(session, run_id)
        if row.lifecycle_stage != Lifecycle.ACTIVE.value:
            raise InvalidInput(f"run {run_id} is deleted; restore it before logging to it")
        if row.status != RunStatus.RUNNING.value and (metrics or params) and not allow_ended:
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
                        "model_id": m.model_id,
                        "dataset_name": m.dataset_name,
                        "dataset_digest": m.dataset_digest,
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
        # Params and tags in full; metrics by key and count (their history is the record).
        new: dict[str, Any] = {}
        if params:
            new["params"] = params
        if tags:
            new["tags"] = tags
        if metrics:
            keys = sorted({m.key for m in metrics})
            new["metrics"] = {"count": len(metrics), "keys": keys[:100]}
        self._record(session, self._run_change("run.logged", row, new=new))

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        with self._session() as session:
            self._run_row(session, run_id)
            rows = session.scalars(
                select(MetricRow)
                .where(MetricRow.run_id == run_id, MetricRow.key == key)
                .order_by(MetricRow.step, MetricRow.timestamp, MetricRow.id)
            ).all()
            return [metric_of(r) for r in rows]

    def get_metric_histories(
        self, run_ids: Sequence[str], key: str, max_points: int | None = None
    ) -> dict[str, list[Metric]]:
        # The table's columns, not the mapped class: no ORM row processing for thousands of
        # rows. The order is the index's (run, key, step, then insertion); a stable sort then
        # puts a step's values in time order, as get_metric_history does.
        t = MetricRow.__table__.c
        query = (
            select(t.run_id, t.value, t.timestamp, t.step)
            .where(t.run_id.in_(list(run_ids)), t.key == key)
            .order_by(t.run_id, t.step, t.id)
        )
        with self._session() as session:
            if max_points is not None:
                counts: dict[str, int] = dict(
                    session.execute(  # type: ignore[arg-type]
                        select(t.run_id, func.count())
                        .where(t.run_id.in_(list(run_ids)), t.key == key)
                        .group_by(t.run_id)
                    ).all()
                )
                if any(n > max_points for n in counts.values()):
                    query = _thinned(t, counts, key, max_points)
            rows = session.execute(query).all()
        found: dict[str, list[Metric]] = {}
        for run_id, v, ts, step in rows:
            found.setdefault(run_id, []).append(Metric(key, _loaded(v), ts, step))
        for history in found.values():
            history.sort(key=lambda m: (m.step, m.timestamp))
        return found

    def get_metric_summaries(self, run_id: str) -> list[MetricSummary]:
        t = MetricRow.__table__.c
        with self._session() as session:
            self._run_row(session, run_id)
            # SQLite keeps NaN as NULL, which min and max leave out; PostgreSQL keeps NaN,
            # which it sorts above every number, so there it is filtered out.
            value = t.value
            if session.get_bind().dialect.name == "postgresql":
                value = case((t.value == literal_column("'NaN'::float8"), None), else_=t.value)
            rows = session.execute(
                select(t.key, func.count(), func.min(value), func.max(value), func.max(t.step))
                .where(t.run_id == run_id)
                .group_by(t.key)
                .order_by(t.key)
            ).all()
        return [MetricSummary(k, n, low, high, last) for k, n, low, high, last in rows]

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
                query = query.where(run_filter(f))
            for o in order_by:
                column = run_order(o)
                query = query.order_by(
                    column.desc().nulls_last() if o.descending else column.asc().nulls_last()
                )
            query = query.order_by(RunRow.start_time.desc(), RunRow.run_id)
            rows = session.scalars(query.offset(offset).limit(max_results + 1)).all()
            runs = self._runs(session, rows[:max_results])
            return Page(runs, offset + max_results if len(rows) > max_results else None)


def _thinned(t: Any, counts: dict[str, int], key: str, max_points: int) -> Any:
    """The histories' rows, every ``ceil(n / max_points)``-th of each run's and its last, chosen
    by the database (a window function: SQLite 3.25+, PostgreSQL) so a run of a million steps
    sends a chart's worth of rows, not a million. ``counts``: each run's number of rows (known
    up front, the window needs no second pass to count them)."""
    numbered = (
        select(
            t.run_id,
            t.value,
            t.timestamp,
            t.step,
            (func.row_number().over(partition_by=t.run_id, order_by=(t.step, t.id)) - 1).label("n"),
        )
        .where(t.run_id.in_(list(counts)), t.key == key)
        .subquery()
    )
    c = numbered.c
    stride = case({r: -(-n // max_points) for r, n in counts.items()}, value=c.run_id, else_=1)
    last = case({r: n - 1 for r, n in counts.items()}, value=c.run_id, else_=-1)
    return (
        select(c.run_id, c.value, c.timestamp, c.step)
        .where(or_(c.n % stride == 0, c.n == last))
        .order_by(c.run_id, c.n)
    )


def _dataset(row: DatasetRow) -> Dataset:
    return Dataset(row.name, row.digest, row.source_type, row.source, row.schema, row.profile)


def _stored(value: float) -> float | None:
    return None if math.isnan(value) else value


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
