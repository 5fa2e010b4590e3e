"""MLflow's search syntax, shared by the registry and tracking: the grammar and its clauses.

``metrics.val_loss < 0.5 and params.optimizer = 'adam' and tags.team = "cv"``,
``attributes.status IN ('FINISHED', 'FAILED')``, ``tags.`my key` ILIKE '%cnn%'``, and
order-by clauses such as ``metrics.val_loss ASC``. :func:`parse_clauses` reads the grammar;
each searchable thing (runs, experiments, logged models, registered models, versions) checks
the clauses against what it can be searched by (:func:`check_clause`) and says what is
allowed when a clause asks for something else.
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


def order_items(clauses: list[str] | str | None) -> list[str]:
    if not clauses:
        return []
    return [clauses] if isinstance(clauses, str) else list(clauses)


def order_clause(clause: str) -> tuple[str | None, str, bool]:
    """``kind.key [ASC|DESC]`` as (kind or None, key, descending)."""
    match = _ORDER.match(clause)
    if match is None:
        raise InvalidInput(
            f"cannot parse order_by {clause!r}; expected e.g. 'metrics.val_loss ASC'"
        )
    kind = match["kind"].lower() if match["kind"] else None
    return kind, _unquote_key(match["key"]), (match["dir"] or "ASC").upper() == "DESC"


def field_of(clause: Clause, fields: dict[str, Field]) -> Field:
    """The attribute a clause names, or InvalidInput listing the ones there are."""
    field = fields.get(clause.key) or fields.get(clause.key.lower())
    if field is None:
        raise InvalidInput(
            f"in {clause.text!r}: unknown attribute {clause.key!r}; use {', '.join(sorted(fields))}"
        )
    return field


def order_attribute(clause: str, key: str, allowed: dict[str, str]) -> str:
    found = allowed.get(key) or allowed.get(key.lower())
    if found is None:
        raise InvalidInput(
            f"in order_by {clause!r}: cannot order by {key!r}; use {', '.join(sorted(allowed))}"
        )
    return found


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
