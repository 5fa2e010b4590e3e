"""Experiment search as MLflow's ``search_experiments`` writes it, on experiments in memory.

``name LIKE 'mnist%' AND tags.team = 'cv'``; order by ``name``, ``experiment_id`` or
``creation_time`` (ASC or DESC). A team has tens of experiments, not millions, so they are
filtered where they arrive.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from mlreg.errors import InvalidInput
from mlreg.tracking.entities import Experiment

_CLAUSE = re.compile(
    r"(?P<key>name|attributes?\.name|tags?\.(?:`[^`]+`|\"[^\"]+\"|[\w.\-/]+))\s*"
    r"(?P<op>!=|=|(?i:ilike)|(?i:like))\s*(?P<value>'[^']*'|\"[^\"]*\")\s*$"
)
_ORDER_KEYS = {"name": "name", "experiment_id": "experiment_id", "creation_time": "creation_time"}


def _like(pattern: str, value: str, flags: int = 0) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags | re.DOTALL) is not None


def experiment_matches(experiment: Experiment, filter_string: str | None) -> bool:
    """True when ``experiment`` passes every clause of ``filter_string`` (InvalidInput for a
    clause this search does not understand)."""
    if not filter_string or not filter_string.strip():
        return True
    for clause in re.split(r"\s+(?i:and)\s+", filter_string.strip()):
        match = _CLAUSE.match(clause.strip())
        if match is None:
            raise InvalidInput(
                f"cannot parse experiment filter {clause.strip()!r}; expected e.g. "
                "\"name LIKE 'mnist%'\" or \"tags.team = 'cv'\" (=, !=, LIKE, ILIKE)"
            )
        key, op, value = match["key"], match["op"].upper(), match["value"][1:-1]
        if key.startswith("tag"):
            actual: Any = experiment.tags.get(key.split(".", 1)[1].strip('`"'))
        else:
            actual = experiment.name
        if actual is None:
            return False
        if not _compare(op, actual, value):
            return False
    return True


def _compare(op: str, actual: str, value: str) -> bool:
    if op == "=":
        return actual == value
    if op == "!=":
        return actual != value
    return _like(value, actual, re.IGNORECASE if op == "ILIKE" else 0)


def sort_experiments(
    experiments: Sequence[Experiment], order_by: list[str] | str | None
) -> list[Experiment]:
    """``experiments`` in the order ``order_by`` asks (oldest first when it asks none)."""
    clauses = [order_by] if isinstance(order_by, str) else list(order_by or [])
    out = sorted(experiments, key=lambda e: (e.creation_time, _id_key(e.experiment_id)))
    for clause in reversed(clauses):  # a stable sort per clause, the first clause last
        parts = clause.split()
        key = _ORDER_KEYS.get(parts[0].removeprefix("attributes.")) if parts else None
        direction = parts[1].upper() if len(parts) == 2 else "ASC"
        if key is None or len(parts) > 2 or direction not in ("ASC", "DESC"):
            raise InvalidInput(
                f"cannot parse order_by {clause!r}; expected name, experiment_id or "
                "creation_time, then ASC or DESC"
            )
        out.sort(key=lambda e, k=key: _sort_key(e, k), reverse=direction == "DESC")
    return out


def _sort_key(experiment: Experiment, key: str) -> Any:
    return _id_key(experiment.experiment_id) if key == "experiment_id" else getattr(experiment, key)


def _id_key(experiment_id: str) -> tuple[int, str]:
    return (int(experiment_id), "") if experiment_id.isdigit() else (0, experiment_id)
