"""Search clauses as SQL conditions (the registry's and tracking's SQL stores share these)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func

from mlreg.errors import InvalidInput

coalesce = func.coalesce


def compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    """``column op value`` for the operators the parser accepts."""
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == ">":
        return column > value
    if op == ">=":
        return column >= value
    if op == "LIKE":
        return column.like(value)
    if op == "ILIKE":
        return func.lower(column).like(func.lower(value))
    if op == "IN":
        return column.in_(list(value))
    if op == "NOT IN":
        return column.not_in(list(value))
    raise InvalidInput(f"unsupported operator {op!r}")  # the parser lets none through
