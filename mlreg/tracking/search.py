"""Search syntax, as MLflow writes it: clauses joined by AND, and order-by clauses.

``metrics.val_loss < 0.5 and params.optimizer = 'adam' and tags.team = "cv"``,
``attributes.status IN ('FINISHED', 'FAILED')``, ``tags.`my key` ILIKE '%cnn%'`` —
ordered by ``metrics.val_loss ASC``. :func:`parse_clauses` reads the grammar; the functions
below it check the clauses against what can be searched (runs, experiments, logged models)
and say what is allowed when a clause asks for something else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlreg.errors import InvalidInput

STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")
ID_OPS = ("=", "!=", "IN", "NOT IN")

_IDENT = r"(?:(?P<kind>\w+)\.)?(?P<key>`[^`]*`|\"[^\"]*\"|[\w.\-/:]+)"
_OP = r"(?P<op><=|>=|!=|<>|=|<|>|(?i:not\s+in)\b|(?i:in)\b|(?i:ilike)\b|(?i:like)\b)"
_VALUE = r"(?P<value>'[^']*'|\"[^\"]*\"|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|\([^)]*\))"
_CLAUSE = re.compile(rf"\s*{_IDENT}\s*{_OP}\s*{_VALUE}\s*")
_AND = re.compile(r"(?i:and)\s+")
_ORDER = re.compile(rf"\s*{_IDENT}(?:\s+(?P<dir>(?i:asc|desc)))?\s*$")
_ITEM = re.compile(r"\s*('[^']*'|\"[^\"]*\"|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(,|$)")


@dataclass(frozen=True)
class Clause:
    """One comparison as written: ``kind.key op value`` (kind None when unprefixed)."""

    kind: str | None
    key: str
    op: str
    #: A str (quoted), a float (a number), or a tuple of them (IN lists).
    value: Any
    text: str
    #: The value as written.
    raw: str


@dataclass(frozen=True)
class Filter:
    kind: str
    key: str
    op: str
    value: Any


@dataclass(frozen=True)
class OrderBy:
    kind: str
    key: str
    descending: bool


def parse_clauses(text: str | None) -> list[Clause]:
    """Split ``a.b OP value [AND ...]`` into clauses, with a clear error on anything else."""
    if not text or not text.strip():
        return []
    clauses = []
    pos, end = 0, len(text.rstrip())
    while True:
        match = _CLAUSE.match(text, pos)
        if match is None:
            rest = text[pos:].strip()
            raise InvalidInput(
                f"cannot parse filter clause {rest!r}; expected e.g. "
                '"metrics.val_loss < 0.5" or "params.optimizer = \'adam\'" joined by AND'
            )
        op = " ".join(match["op"].upper().split())
        clauses.append(
            Clause(
                match["kind"].lower() if match["kind"] else None,
                _unquote_key(match["key"]),
                "!=" if op == "<>" else op,
                _value(match["value"], match.group(0).strip()),
                match.group(0).strip(),
                match["value"],
            )
        )
        pos = match.end()
        if pos >= end:
            return clauses
        joined = _AND.match(text, pos)
        if joined is None:
            raise InvalidInput(
                f"cannot parse filter {text.strip()!r} after {match.group(0).strip()!r}: clauses "
                "are joined by AND (OR is not supported)"
            )
        pos = joined.end()


def _unquote_key(key: str) -> str:
    return key[1:-1] if key[:1] in '`"' and key[-1:] == key[:1] else key


def _value(raw: str, clause: str) -> Any:
    if raw[0] in "'\"":
        return raw[1:-1]
    if raw[0] == "(":
        inner, items, pos = raw[1:-1], [], 0
        while pos < len(inner.rstrip()):
            item = _ITEM.match(inner, pos)
            if item is None:
                raise InvalidInput(f"in {clause!r}: expected a list like ('a', 'b')")
            items.append(_value(item.group(1), clause))
            pos = item.end()
        if not items:
            raise InvalidInput(f"in {clause!r}: the list is empty")
        return tuple(items)
    return float(raw)


@dataclass(frozen=True)
class Field:
    """What a clause may compare: an attribute with its value type and operators."""

    name: str
    numeric: bool = False
    ops: tuple[str, ...] = STRING_OPS


def check_clause(clause: Clause, kind: str, key: str, numeric: bool, ops: Sequence[str]) -> Filter:
    """The clause as a Filter on ``kind.key``, once its operator and value type fit."""
    if numeric and clause.op in ("LIKE", "ILIKE"):
        raise InvalidInput(f"in {clause.text!r}: {clause.op} works on strings only")
    if clause.op not in ops:
        raise InvalidInput(
            f"in {clause.text!r}: operator {clause.op} does not apply to {kind}.{key}; use "
            f"{', '.join(ops)}"
        )
    values = clause.value if isinstance(clause.value, tuple) else (clause.value,)
    if clause.op in ("IN", "NOT IN") and not isinstance(clause.value, tuple):
        raise InvalidInput(f"in {clause.text!r}: {clause.op} takes a list like ('a', 'b')")
    if clause.op not in ("IN", "NOT IN") and isinstance(clause.value, tuple):
        raise InvalidInput(f"in {clause.text!r}: a list goes with IN or NOT IN")
    for value in values:
        if numeric and isinstance(value, str):
            raise InvalidInput(f"in {clause.text!r}: {kind}.{key} compares with a number")
        if not numeric and not isinstance(value, str):
            raise InvalidInput(f"in {clause.text!r}: {kind} values are strings; quote {clause.raw}")
    return Filter(kind, key, clause.op, clause.value)


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


def _field(clause: Clause, fields: dict[str, Field]) -> Field:
    field = fields.get(clause.key) or fields.get(clause.key.lower())
    if field is None:
        raise InvalidInput(
            f"in {clause.text!r}: unknown attribute {clause.key!r}; use {', '.join(sorted(fields))}"
        )
    return field


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
    for clause in _order_items(clauses):
        kind, key, descending = _order_clause(clause)
        kind = _RUN_KINDS.get(kind or "attributes")  # a bare name is an attribute
        if kind is None:
            raise InvalidInput(
                f"in order_by {clause!r}: unknown entity; use metrics., params., tags. or "
                "attributes."
            )
        if kind == "attributes":
            key = _order_attribute(clause, key, RUN_ORDER_ATTRIBUTES)
        out.append(OrderBy(kind, key, descending))
    return out


def _order_items(clauses: list[str] | str | None) -> list[str]:
    if not clauses:
        return []
    return [clauses] if isinstance(clauses, str) else list(clauses)


def _order_clause(clause: str) -> tuple[str | None, str, bool]:
    match = _ORDER.match(clause)
    if match is None:
        raise InvalidInput(
            f"cannot parse order_by {clause!r}; expected e.g. 'metrics.val_loss ASC'"
        )
    kind = match["kind"].lower() if match["kind"] else None
    return kind, _unquote_key(match["key"]), (match["dir"] or "ASC").upper() == "DESC"


def _order_attribute(clause: str, key: str, allowed: dict[str, str]) -> str:
    found = allowed.get(key) or allowed.get(key.lower())
    if found is None:
        raise InvalidInput(
            f"in order_by {clause!r}: cannot order by {key!r}; use {', '.join(sorted(allowed))}"
        )
    return found


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
    for clause in _order_items(clauses):
        kind, key, descending = _order_clause(clause)
        if kind not in (None, "attributes", "attribute", "attr"):
            raise InvalidInput(
                f"in order_by {clause!r}: experiments are ordered by "
                f"{', '.join(sorted(EXPERIMENT_ORDER))}"
            )
        out.append(
            OrderBy("attributes", _order_attribute(clause, key, EXPERIMENT_ORDER), descending)
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
    kind, key, _ = _order_clause(field_name)
    if kind not in (None, "attributes", "attribute"):
        raise InvalidInput(
            f"cannot order logged models by {field_name!r}; use "
            f"{', '.join(sorted(LOGGED_MODEL_ORDER))}"
        )
    return OrderBy(
        "attributes", _order_attribute(field_name, key, LOGGED_MODEL_ORDER), not ascending
    )


# --- written back, for a remote store -----------------------------------------------------


def filter_text(filters: Sequence[Filter]) -> str:
    """Filters written back in the syntax :func:`parse_clauses` reads."""
    return " and ".join(f"{f.kind}.`{f.key}` {f.op} {_literal(f.value)}" for f in filters)


def order_by_text(order: OrderBy) -> str:
    return f"{order.kind}.`{order.key}` {'DESC' if order.descending else 'ASC'}"


def _literal(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_literal(v) for v in value) + ")"
    if isinstance(value, str):
        return '"' + value + '"' if "'" in value else "'" + value + "'"
    return repr(float(value))
