"""File formats for batch scoring, and the one convention for cells that hold JSON text.

A column whose values could not be given one Arrow type (a JSON field that is a number in
one row and a string in the next) travels as JSON text with :data:`JSON_FIELD_META` on its
field: readers of rows decode it back to the original values, JSON writers embed it as JSON,
and CSV and Parquet writers keep the text. Nothing is lost and nothing is guessed.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from mlreg.errors import InvalidInput

FORMATS = ("csv", "json", "jsonl", "parquet")
STDIO = "-"

_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_COMPRESSED = (".gz", ".bz2", ".zst", ".lz4")

#: Field metadata marking a string column that holds one JSON value per row.
JSON_FIELD_META = {b"mlreg.encoding": b"json"}


def format_of(path: str, given: str | None, role: str) -> str:
    """The format named by ``given``, else by the file's extension (``role``: input/output)."""
    if given:
        return given
    if path != STDIO:
        name = Path(path).name.lower()
        for ext in _COMPRESSED:
            name = name.removesuffix(ext)
        fmt = _SUFFIXES.get(Path(name).suffix)
        if fmt:
            return fmt
    where = "standard input" if path == STDIO and role == "input" else path
    if path == STDIO and role == "output":
        where = "standard output"
    raise InvalidInput(
        f"cannot tell the {role} format of {where}; pass --format "
        f"({'|'.join(FORMATS)}) or use one of the extensions {', '.join(sorted(_SUFFIXES))}"
    )


def is_json_field(field: pa.Field) -> bool:
    return bool(field.metadata) and field.metadata.get(b"mlreg.encoding") == b"json"


def json_field(name: str) -> pa.Field:
    return pa.field(name, pa.string(), metadata=JSON_FIELD_META)


__all__ = ["FORMATS", "JSON_FIELD_META", "STDIO", "format_of", "is_json_field", "json_field"]
