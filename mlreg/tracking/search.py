"""Run search syntax, as MLflow writes it: filters joined by AND, and order-by clauses.

``metrics.val_loss < 0.5 and params.optimizer = 'adam' and tags.team = "cv"``
``attributes.status = 'FINISHED'``, ``attributes.run_id IN ('a1b2', 'c3d4')`` — order by
``metrics.val_loss ASC``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlreg.errors import InvalidInput

_KINDS = {
    "metrics": "metrics",
    "metric": "metrics",
    "params": "params",
    "param": "params",
    "tags": "tags",
    "tag": "tags",
    "attributes": "attributes",
    "attribute": "attributes",
    "attr": "attributes",
}
_ATTRIBUTES = {"status", "run_name", "start_time", "end_time", "run_id"}
_KEY = r"(?P<kind>\w+)\.(?P<key>`[^`]+`|\"[^\"]+\"|[\w.\-/]+)"
_VALUE = r"(?P<value>'[^']*'|\"[^\"]*\"|[-+]?[\d.]+(?:[eE][-+]?\d+)?)"
_CLAUSE = re.compile(_KEY + r"\s*(?P<op><=|>=|!=|=|<|>|(?i:like))\s*" + _VALUE + r"\s*$")
_STRING = r"'[^']*'|\"[^\"]*\""
_LIST = r"\s*(?:" + _STRING + r")\s*(?:,\s*(?:" + _STRING + r")\s*)*"
_IN = re.compile(_KEY + r"\s+(?i:in)\s*\((?P<values>" + _LIST + r")\)\s*$")
_ORDER = re.compile(_KEY + r"(?:\s+(?P<dir>(?i:asc|desc)))?\s*$")


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


def _kind_key(match: re.Match[str], text: str) -> tuple[str, str]:
    kind = _KINDS.get(match["kind"].lower())
    if kind is None:
        raise InvalidInput(
            f"in {text!r}: unknown entity {match['kind']!r}; use metrics., params., tags. or "
            "attributes."
        )
    key = match["key"].strip('`"')
    if kind == "attributes" and key not in _ATTRIBUTES:
        raise InvalidInput(
            f"in {text!r}: unknown attribute {key!r}; use {', '.join(sorted(_ATTRIBUTES))}"
        )
    return kind, key


def parse_filter(text: str | None) -> list[Filter]:
    """Parse ``a.b OP value [AND ...]`` into filters, with a clear error on anything else."""
    if not text or not text.strip():
        return []
    filters = []
    for clause in re.split(r"\s+(?i:and)\s+", text.strip()):
        listed = _IN.match(clause.strip())
        if listed is not None:
            kind, key = _kind_key(listed, clause)
            if kind == "metrics" or key in ("start_time", "end_time"):
                raise InvalidInput(f"in {clause.strip()!r}: IN works on strings only")
            values = tuple(v[1:-1] for v in re.findall(_STRING, listed["values"]))
            filters.append(Filter(kind, key, "IN", values))
            continue
        match = _CLAUSE.match(clause.strip())
        if match is None:
            raise InvalidInput(
                f"cannot parse filter clause {clause.strip()!r}; expected e.g. "
                '"metrics.val_loss < 0.5" or "params.optimizer = \'adam\'"'
            )
        kind, key = _kind_key(match, clause)
        op = match["op"].upper()
        raw = match["value"]
        quoted = raw[0] in "'\""
        value: Any = raw[1:-1] if quoted else raw
        if kind == "metrics" or key in ("start_time", "end_time"):
            if quoted:
                raise InvalidInput(
                    f"in {clause.strip()!r}: {kind}.{key} compares with a number, not a string"
                )
            value = float(raw)
        elif not quoted:
            raise InvalidInput(f"in {clause.strip()!r}: {kind} values are strings; quote {raw}")
        if op == "LIKE" and kind == "metrics":
            raise InvalidInput(f"in {clause.strip()!r}: LIKE works on strings only")
        filters.append(Filter(kind, key, op, value))
    return filters


def parse_order_by(clauses: list[str] | str | None) -> list[OrderBy]:
    if not clauses:
        return []
    items = [clauses] if isinstance(clauses, str) else clauses
    out = []
    for clause in items:
        match = _ORDER.match(clause.strip())
        if match is None:
            raise InvalidInput(
                f"cannot parse order_by {clause!r}; expected e.g. 'metrics.val_loss ASC'"
            )
        kind, key = _kind_key(match, clause)
        out.append(OrderBy(kind, key, (match["dir"] or "ASC").upper() == "DESC"))
    return out


def filter_text(filters: Sequence[Filter]) -> str:
    """Filters written back in the syntax :func:`parse_filter` reads (for a remote store)."""
    return " and ".join(f"{f.kind}.`{f.key}` {f.op} {_literal(f.value)}" for f in filters)


def order_by_text(order: OrderBy) -> str:
    return f"{order.kind}.`{order.key}` {'DESC' if order.descending else 'ASC'}"


def _literal(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_literal(v) for v in value) + ")"
    if isinstance(value, str):
        return '"' + value + '"' if "'" in value else "'" + value + "'"
    return repr(float(value))
