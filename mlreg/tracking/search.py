"""What runs, experiments and logged models can be searched and ordered by, in MLflow's
search syntax (the grammar is :mod:`mlreg.store.search`)."""

from __future__ import annotations

from mlreg.errors import InvalidInput
from mlreg.store.search import (
    ID_OPS,
    NUMBER_OPS,
    STRING_OPS,
    Field,
    Filter,
    OrderBy,
    check_clause,
    filter_text,
    order_attribute,
    order_by_text,
    order_clause,
    order_items,
    parse_clauses,
)
from mlreg.store.search import field_of as _field

__all__ = ["Filter", "OrderBy", "filter_text", "order_by_text", "parse_clauses"]

# --- runs -------------------------------------------------------------------------------

_RUN_KINDS = {
    "metrics": "metrics",
    "metric": "metrics",
    "params": "params",
    "param": "params",
    "parameters": "params",
    "tags": "tags",
    "tag": "tags",
    "attributes": "attributes",
    "attribute": "attributes",
    "attr": "attributes",
    "run": "attributes",
}
RUN_ATTRIBUTES = {
    "status": Field("status"),
    "run_name": Field("run_name"),
    "user_id": Field("user_id"),
    "run_id": Field("run_id", ops=ID_OPS),
    "start_time": Field("start_time", numeric=True, ops=NUMBER_OPS),
    "end_time": Field("end_time", numeric=True, ops=NUMBER_OPS),
    "created": Field("start_time", numeric=True, ops=NUMBER_OPS),
}


def parse_filter(text: str | None) -> list[Filter]:
    """A run filter: ``metrics.``, ``params.``, ``tags.`` or ``attributes.`` clauses."""
    filters = []
    for clause in parse_clauses(text):
        if clause.kind is None:
            raise InvalidInput(
                f"cannot parse filter clause {clause.text!r}; expected e.g. "
                '"metrics.val_loss < 0.5" or "params.optimizer = \'adam\'"'
            )
        kind = _RUN_KINDS.get(clause.kind)
        if kind is None:
            raise InvalidInput(
                f"in {clause.text!r}: unknown entity {clause.kind or clause.key!r}; use "
                "metrics., params., tags. or attributes."
            )
        if kind == "attributes":
            field = _field(clause, RUN_ATTRIBUTES)
            filters.append(check_clause(clause, kind, field.name, field.numeric, field.ops))
        elif kind == "metrics":
            filters.append(check_clause(clause, kind, clause.key, True, NUMBER_OPS))
        else:
            filters.append(check_clause(clause, kind, clause.key, False, STRING_OPS))
    return filters


RUN_ORDER_ATTRIBUTES = {
    "start_time": "start_time",
    "created": "start_time",
    "end_time": "end_time",
    "run_name": "run_name",
    "status": "status",
    "run_id": "run_id",
}


def parse_order_by(clauses: list[str] | str | None) -> list[OrderBy]:
    """Run order-by clauses: ``metrics.loss ASC``, ``attributes.start_time DESC`` ..."""
    out = []
    for clause in order_items(clauses):
        kind, key, descending = order_clause(clause)
        kind = _RUN_KINDS.get(kind or "attributes")  # a bare name is an attribute
        if kind is None:
            raise InvalidInput(
                f"in order_by {clause!r}: unknown entity; use metrics., params., tags. or "
                "attributes."
            )
        if kind == "attributes":
            key = order_attribute(clause, key, RUN_ORDER_ATTRIBUTES)
        out.append(OrderBy(kind, key, descending))
    return out


# --- experiments --------------------------------------------------------------------------

EXPERIMENT_ATTRIBUTES = {
    "name": Field("name"),
    "experiment_id": Field("experiment_id", ops=ID_OPS),
    "creation_time": Field("creation_time", numeric=True, ops=NUMBER_OPS),
    "last_update_time": Field("last_update_time", numeric=True, ops=NUMBER_OPS),
}
EXPERIMENT_ORDER = {
    "name": "name",
    "experiment_id": "experiment_id",
    "creation_time": "creation_time",
    "last_update_time": "last_update_time",
}


def parse_experiment_filter(text: str | None) -> list[Filter]:
    """An experiment filter: ``name LIKE 'cnn%'``, ``tags.team = 'cv'``, ``creation_time > 0``."""
    filters = []
    for clause in parse_clauses(text):
        if clause.kind in ("tags", "tag"):
            filters.append(check_clause(clause, "tags", clause.key, False, STRING_OPS))
        elif clause.kind in (None, "attributes", "attribute", "attr"):
            field = _field(clause, EXPERIMENT_ATTRIBUTES)
            filters.append(check_clause(clause, "attributes", field.name, field.numeric, field.ops))
        else:
            raise InvalidInput(
                f"in {clause.text!r}: experiments are searched by name, experiment_id, "
                "creation_time, last_update_time and tags."
            )
    return filters


def parse_experiment_order_by(clauses: list[str] | str | None) -> list[OrderBy]:
    out = []
    for clause in order_items(clauses):
        kind, key, descending = order_clause(clause)
        if kind not in (None, "attributes", "attribute", "attr"):
            raise InvalidInput(
                f"in order_by {clause!r}: experiments are ordered by "
                f"{', '.join(sorted(EXPERIMENT_ORDER))}"
            )
        out.append(
            OrderBy("attributes", order_attribute(clause, key, EXPERIMENT_ORDER), descending)
        )
    return out


# --- logged models ------------------------------------------------------------------------

LOGGED_MODEL_ATTRIBUTES = {
    "name": Field("name"),
    "model_id": Field("model_id", ops=ID_OPS),
    "model_type": Field("model_type"),
    "status": Field("status"),
    "source_run_id": Field("source_run_id", ops=ID_OPS),
    "creation_timestamp": Field("creation_time", numeric=True, ops=NUMBER_OPS),
    "creation_time": Field("creation_time", numeric=True, ops=NUMBER_OPS),
    "last_updated_timestamp": Field("last_update_time", numeric=True, ops=NUMBER_OPS),
    "last_update_time": Field("last_update_time", numeric=True, ops=NUMBER_OPS),
}
LOGGED_MODEL_ORDER = {
    "name": "name",
    "model_id": "model_id",
    "creation_timestamp": "creation_time",
    "creation_time": "creation_time",
    "last_updated_timestamp": "last_update_time",
    "last_update_time": "last_update_time",
}


def parse_logged_model_filter(text: str | None) -> list[Filter]:
    """A logged-model filter: attributes (name, status, source_run_id ...), ``params.``,
    ``tags.``, and ``metrics.`` (a model matches when any value logged for it does)."""
    filters = []
    for clause in parse_clauses(text):
        kind = _RUN_KINDS.get(clause.kind or "attributes")
        if kind == "attributes":
            field = _field(clause, LOGGED_MODEL_ATTRIBUTES)
            filters.append(check_clause(clause, kind, field.name, field.numeric, field.ops))
        elif kind == "metrics":
            filters.append(check_clause(clause, kind, clause.key, True, NUMBER_OPS))
        elif kind in ("params", "tags"):
            filters.append(check_clause(clause, kind, clause.key, False, STRING_OPS))
        else:
            raise InvalidInput(
                f"in {clause.text!r}: unknown entity {clause.kind!r}; use attributes, "
                "metrics., params. or tags."
            )
    return filters


def logged_model_order(field_name: str, ascending: bool = True) -> OrderBy:
    """One order-by of a logged-model search (a field name and a direction, MLflow's form)."""
    kind, key, _ = order_clause(field_name)
    if kind not in (None, "attributes", "attribute"):
        raise InvalidInput(
            f"cannot order logged models by {field_name!r}; use "
            f"{', '.join(sorted(LOGGED_MODEL_ORDER))}"
        )
    return OrderBy(
        "attributes", order_attribute(field_name, key, LOGGED_MODEL_ORDER), not ascending
    )
