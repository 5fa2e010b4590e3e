"""Logged models in SQL (a part of :class:`~mlreg.tracking.sql_store.SqlTrackingStore`).

A logged model (MLflow 3) is a model logged on its own rather than as files of a run: it has
an id ``m-<hex>``, its files under its own artifact location, params, tags, and the metrics
logged against it (metric rows that carry its id).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mlreg.errors import ExperimentNotFound, InvalidInput, ModelNotFound, TagNotFound
from mlreg.store.database import Database
from mlreg.store.pages import Page
from mlreg.store.tables import (
    ExperimentRow,
    LoggedModelParamRow,
    LoggedModelRow,
    LoggedModelTagRow,
    MetricRow,
)
from mlreg.tracking.entities import Lifecycle, LoggedModel, LoggedModelStatus, Metric
from mlreg.tracking.search import Filter, OrderBy
from mlreg.tracking.sql_search import logged_model_filter, logged_model_order

MODEL_ID_PREFIX = "m-"


def loaded(value: float | None) -> float:
    """A stored metric value (NULL holds NaN: SQLite has no NaN)."""
    return math.nan if value is None else value


def metric_of(row: MetricRow, with_run: bool = False) -> Metric:
    return Metric(
        row.key,
        loaded(row.value),
        row.timestamp,
        row.step,
        row.model_id,
        row.dataset_name,
        row.dataset_digest,
        row.run_id if with_run else None,
    )


class SqlLoggedModels:
    """The logged-model calls of the SQL tracking store."""

    db: Database
    _session: Callable[[], AbstractContextManager[Session]]

    def _logged_model_row(self, session: Session, model_id: str) -> LoggedModelRow:
        row = session.get(LoggedModelRow, model_id)
        if row is None:
            raise ModelNotFound(f"logged model {model_id!r} does not exist")
        return row

    def _logged_models(self, session: Session, rows: Sequence[LoggedModelRow]) -> list[Any]:
        ids = [r.model_id for r in rows]
        tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        params: dict[str, dict[str, str]] = {i: {} for i in ids}
        metrics: dict[str, list[Metric]] = {i: [] for i in ids}
        if ids:
            for mid, k, v in session.execute(
                select(LoggedModelTagRow.model_id, LoggedModelTagRow.key, LoggedModelTagRow.value)
                .where(LoggedModelTagRow.model_id.in_(ids))
                .order_by(LoggedModelTagRow.key)
            ):
                tags[mid][k] = v
            for mid, k, v in session.execute(
                select(
                    LoggedModelParamRow.model_id, LoggedModelParamRow.key, LoggedModelParamRow.value
                )
                .where(LoggedModelParamRow.model_id.in_(ids))
                .order_by(LoggedModelParamRow.key)
            ):
                params[mid][k] = v
            for row in session.scalars(
                select(MetricRow)
                .where(MetricRow.model_id.in_(ids))
                .order_by(MetricRow.key, MetricRow.step, MetricRow.timestamp, MetricRow.id)
            ):
                metrics[row.model_id].append(metric_of(row, with_run=True))
        return [
            LoggedModel(
                model_id=r.model_id,
                experiment_id=str(r.experiment_id),
                name=r.name,
                artifact_uri=r.artifact_location,
                status=LoggedModelStatus(r.status),
                creation_time=r.creation_time,
                last_update_time=r.last_update_time,
                source_run_id=r.source_run_id,
                model_type=r.model_type,
                status_message=r.status_message,
                lifecycle_stage=Lifecycle(r.lifecycle_stage),
                tags=tags[r.model_id],
                params=params[r.model_id],
                metrics=metrics[r.model_id],
            )
            for r in rows
        ]

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
        model_id = f"{MODEL_ID_PREFIX}{uuid.uuid4().hex}"
        with self._session() as session:
            experiment = session.get(ExperimentRow, _int(experiment_id))
            if experiment is None:
                raise ExperimentNotFound(f"experiment {experiment_id} does not exist")
            row = LoggedModelRow(
                model_id=model_id,
                experiment_id=experiment.id,
                name=name,
                source_run_id=source_run_id,
                model_type=model_type,
                status=LoggedModelStatus.PENDING.value,
                artifact_location=f"{artifact_root.rstrip('/')}/{model_id}/artifacts",
                creation_time=now,
                last_update_time=now,
            )
            session.add(row)
            session.flush()  # the row before the rows that point at it
            session.add_all(
                LoggedModelParamRow(model_id=model_id, key=k, value=v)
                for k, v in (params or {}).items()
            )
            session.add_all(
                LoggedModelTagRow(model_id=model_id, key=k, value=v)
                for k, v in (tags or {}).items()
            )
            session.flush()
            return self._logged_models(session, [row])[0]

    def get_logged_model(self, model_id: str) -> LoggedModel:
        with self._session() as session:
            return self._logged_models(session, [self._logged_model_row(session, model_id)])[0]

    def update_logged_model(
        self,
        model_id: str,
        now: int,
        *,
        status: LoggedModelStatus | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> LoggedModel:
        with self._session() as session:
            row = self._logged_model_row(session, model_id)
            if status is not None:
                row.status = status.value
            if lifecycle is not None:
                row.lifecycle_stage = lifecycle.value
            row.last_update_time = now
            session.flush()
            return self._logged_models(session, [row])[0]

    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, str | None]) -> None:
        with self._session() as session:
            self._logged_model_row(session, model_id)
            for key, value in tags.items():
                if value is not None:
                    session.merge(LoggedModelTagRow(model_id=model_id, key=key, value=value))
                    continue
                gone = session.execute(
                    delete(LoggedModelTagRow).where(
                        LoggedModelTagRow.model_id == model_id, LoggedModelTagRow.key == key
                    )
                )
                if not gone.rowcount:
                    raise TagNotFound(f"logged model {model_id!r} has no tag {key!r}")

    def log_logged_model_params(self, model_id: str, params: Mapping[str, str]) -> None:
        with self._session() as session:
            self._logged_model_row(session, model_id)
            existing = dict(
                session.execute(
                    select(LoggedModelParamRow.key, LoggedModelParamRow.value).where(
                        LoggedModelParamRow.model_id == model_id,
                        LoggedModelParamRow.key.in_(list(params)),
                    )
                ).all()
            )
            for key, value in params.items():
                if key in existing and existing[key] != value:
                    raise InvalidInput(
                        f"param {key!r} of logged model {model_id!r} was already logged as "
                        f"{existing[key]!r}; a param cannot change (got {value!r})"
                    )
            session.add_all(
                LoggedModelParamRow(model_id=model_id, key=k, value=v)
                for k, v in params.items()
                if k not in existing
            )

    def search_logged_models(
        self,
        *,
        experiment_ids: list[str],
        filters: Sequence[Filter] = (),
        order_by: Sequence[OrderBy] = (),
        max_results: int = 100,
        offset: int = 0,
    ) -> Page:
        with self._session() as session:
            query = select(LoggedModelRow).where(
                LoggedModelRow.experiment_id.in_([_int(e) for e in experiment_ids]),
                LoggedModelRow.lifecycle_stage == Lifecycle.ACTIVE.value,
            )
            for f in filters:
                query = query.where(logged_model_filter(f))
            for o in order_by:
                column = logged_model_order(o)
                query = query.order_by(column.desc() if o.descending else column.asc())
            query = query.order_by(
                LoggedModelRow.creation_time.desc(), LoggedModelRow.model_id.asc()
            )
            rows = session.scalars(query.offset(offset).limit(max_results + 1)).all()
            items = self._logged_models(session, rows[:max_results])
            return Page(items, offset + max_results if len(rows) > max_results else None)


def _int(experiment_id: str | int) -> int:
    try:
        return int(experiment_id)
    except (TypeError, ValueError):
        raise InvalidInput(f"invalid experiment id {experiment_id!r}") from None
