"""What registered models and versions can be searched and ordered by, in MLflow's search
syntax (the grammar is :mod:`mlreg.store.search`): ``name LIKE 'mnist%'``,
``tags.team = 'cv'``, ``run_id = '…'``, ``version_number > 2`` ...

A tag clause matches what has that tag with a fitting value (``tags.k != 'v'`` needs the tag).
"""

from __future__ import annotations

from mlreg.errors import InvalidInput
from mlreg.store.search import (
    ID_OPS,
    NUMBER_OPS,
    Field,
    Filter,
    OrderBy,
    check_clause,
    field_of,
    order_attribute,
    order_clause,
    order_items,
    parse_clauses,
)

TAG_OPS = ("=", "!=", "LIKE", "ILIKE")
MODEL_ATTRIBUTES = {"name": Field("name")}
#: MLflow's order-by names, as the store's (name, created, updated).
MODEL_ORDER = {
    "name": "name",
    "creation_timestamp": "created",
    "last_updated_timestamp": "updated",
    "timestamp": "updated",
}
VERSION_ATTRIBUTES = {
    "name": Field("name"),
    "run_id": Field("run_id", ops=ID_OPS),
    "source_path": Field("source", ops=TAG_OPS),
    "version_number": Field("version", numeric=True, ops=NUMBER_OPS),
    # The names the store uses, so a filter written back (filter_text) reads the same.
    "source": Field("source", ops=TAG_OPS),
    "version": Field("version", numeric=True, ops=NUMBER_OPS),
}
VERSION_ORDER = {
    "name": "name",
    "version_number": "version",
    "creation_timestamp": "created",
    "last_updated_timestamp": "updated",
    "timestamp": "updated",
}
_TAG_KINDS = ("tags", "tag")
_ATTRIBUTE_KINDS = (None, "attributes", "attribute", "attr")


def _parse(text: str | None, attributes: dict[str, Field], what: str) -> list[Filter]:
    filters = []
    for clause in parse_clauses(text):
        if clause.kind in _TAG_KINDS:
            filters.append(check_clause(clause, "tags", clause.key, False, TAG_OPS))
        elif clause.kind in _ATTRIBUTE_KINDS:
            field = field_of(clause, attributes)
            filters.append(check_clause(clause, "attributes", field.name, field.numeric, field.ops))
        else:
            raise InvalidInput(
                f"in {clause.text!r}: {what} are searched by "
                f"{', '.join(sorted(attributes))} and tags."
            )
    return filters


def parse_model_filter(text: str | None) -> list[Filter]:
    """A registered-model filter: ``name`` (=, !=, LIKE, ILIKE, IN, NOT IN) and tags."""
    return _parse(text, MODEL_ATTRIBUTES, "registered models")


def parse_version_filter(text: str | None) -> list[Filter]:
    """A version filter: ``name``, ``run_id``, ``source_path``, ``version_number``, tags."""
    return _parse(text, VERSION_ATTRIBUTES, "model versions")


def _order(clauses: list[str] | str | None, allowed: dict[str, str]) -> list[OrderBy]:
    out = []
    for clause in order_items(clauses):
        kind, key, descending = order_clause(clause)
        if kind not in _ATTRIBUTE_KINDS:
            raise InvalidInput(f"in order_by {clause!r}: order by {', '.join(sorted(allowed))}")
        out.append(OrderBy("attributes", order_attribute(clause, key, allowed), descending))
    return out


def parse_model_order_by(clauses: list[str] | str | None) -> list[OrderBy]:
    return _order(clauses, MODEL_ORDER)


def parse_version_order_by(clauses: list[str] | str | None) -> list[OrderBy]:
    return _order(clauses, VERSION_ORDER)
