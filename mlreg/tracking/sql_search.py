"""Search filters and orderings as SQL: runs, experiments and logged models.

The parser (:mod:`mlreg.tracking.search`) has checked every clause; here each becomes a
WHERE condition (params, tags and metrics as ``IN (subquery)``, so a clause on a key a row
does not have never matches it) or an ORDER BY column.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select

from mlreg.errors import InvalidInput
from mlreg.store.sql_search import coalesce, compare
from mlreg.store.tables import (
    ExperimentRow,
    ExperimentTagRow,
    LatestMetricRow,
    LoggedModelParamRow,
    LoggedModelRow,
    LoggedModelTagRow,
    MetricRow,
    ParamRow,
    RunRow,
    RunTagRow,
)
from mlreg.tracking.search import Filter, OrderBy


def experiment_id_values(value: Any) -> Any:
    """Experiment ids in a filter as the integers the table keeps."""
    values = value if isinstance(value, tuple) else (value,)
    try:
        ints = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        raise InvalidInput(f"invalid experiment id in {value!r}: ids are integers") from None
    return ints if isinstance(value, tuple) else ints[0]


# --- runs ---------------------------------------------------------------------------------

_RUN_COLUMNS = {
    "status": RunRow.status,
    "run_name": RunRow.run_name,
    "run_id": RunRow.run_id,
    "start_time": RunRow.start_time,
    "end_time": RunRow.end_time,
}


def run_filter(f: Filter) -> ColumnElement[bool]:
    if f.kind == "metrics":
        return RunRow.run_id.in_(
            select(LatestMetricRow.run_id).where(
                LatestMetricRow.key == f.key, compare(LatestMetricRow.value, f.op, f.value)
            )
        )
    if f.kind == "params":
        return RunRow.run_id.in_(
            select(ParamRow.run_id).where(
                ParamRow.key == f.key, compare(ParamRow.value, f.op, f.value)
            )
        )
    if f.kind == "tags":
        return RunRow.run_id.in_(
            select(RunTagRow.run_id).where(
                RunTagRow.key == f.key, compare(RunTagRow.value, f.op, f.value)
            )
        )
    column = _RUN_COLUMNS.get(f.key)
    if column is None:
        raise InvalidInput(f"runs cannot be searched by attribute {f.key!r}")
    return compare(column, f.op, f.value)


def run_order(o: OrderBy) -> Any:
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
    column = _RUN_COLUMNS.get(o.key)
    if column is None:
        raise InvalidInput(f"runs cannot be ordered by attribute {o.key!r}")
    return column


# --- experiments --------------------------------------------------------------------------

_EXPERIMENT_COLUMNS = {
    "name": ExperimentRow.name,
    "experiment_id": ExperimentRow.id,
    "creation_time": ExperimentRow.creation_time,
    # Rows from before revision 0005 have no update time: their creation is the last update.
    "last_update_time": coalesce(ExperimentRow.last_update_time, ExperimentRow.creation_time),
}


def experiment_filter(f: Filter) -> ColumnElement[bool]:
    if f.kind == "tags":
        return ExperimentRow.id.in_(
            select(ExperimentTagRow.experiment_id).where(
                ExperimentTagRow.key == f.key, compare(ExperimentTagRow.value, f.op, f.value)
            )
        )
    column = _EXPERIMENT_COLUMNS.get(f.key)
    if column is None:
        raise InvalidInput(f"experiments cannot be searched by {f.key!r}")
    value = experiment_id_values(f.value) if f.key == "experiment_id" else f.value
    return compare(column, f.op, value)


def experiment_order(o: OrderBy) -> Any:
    column = _EXPERIMENT_COLUMNS.get(o.key)
    if column is None:
        raise InvalidInput(f"experiments cannot be ordered by {o.key!r}")
    return column


# --- logged models ------------------------------------------------------------------------

_LOGGED_MODEL_COLUMNS = {
    "name": LoggedModelRow.name,
    "model_id": LoggedModelRow.model_id,
    "model_type": LoggedModelRow.model_type,
    "status": LoggedModelRow.status,
    "source_run_id": LoggedModelRow.source_run_id,
    "creation_time": LoggedModelRow.creation_time,
    "last_update_time": LoggedModelRow.last_update_time,
}


def logged_model_filter(f: Filter) -> ColumnElement[bool]:
    if f.kind == "metrics":
        return LoggedModelRow.model_id.in_(
            select(MetricRow.model_id).where(
                MetricRow.key == f.key, compare(MetricRow.value, f.op, f.value)
            )
        )
    if f.kind == "params":
        return LoggedModelRow.model_id.in_(
            select(LoggedModelParamRow.model_id).where(
                LoggedModelParamRow.key == f.key,
                compare(LoggedModelParamRow.value, f.op, f.value),
            )
        )
    if f.kind == "tags":
        return LoggedModelRow.model_id.in_(
            select(LoggedModelTagRow.model_id).where(
                LoggedModelTagRow.key == f.key, compare(LoggedModelTagRow.value, f.op, f.value)
            )
        )
    column = _LOGGED_MODEL_COLUMNS.get(f.key)
    if column is None:
        raise InvalidInput(f"logged models cannot be searched by {f.key!r}")
    return compare(column, f.op, f.value)


def logged_model_order(o: OrderBy) -> Any:
    column = _LOGGED_MODEL_COLUMNS.get(o.key)
    if column is None:
        raise InvalidInput(f"logged models cannot be ordered by {o.key!r}")
    return column
