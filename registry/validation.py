"""Rules for user-given names, aliases, tags and artifact paths."""

from __future__ import annotations

import re
from urllib.parse import unquote

from mlreg.errors import InvalidInput

# Names become parts of URIs (models:/name/1) and of storage paths, so they are
# restricted to characters that need no escaping in either.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
_RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)
MAX_TAG_KEY = 250
MAX_TAG_VALUE = 5000
MAX_DESCRIPTION = 5000


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise InvalidInput(
            f"invalid model name {name!r}: use 1-128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def validate_alias(alias: str) -> str:
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise InvalidInput(
            f"invalid alias {alias!r}: use 1-64 letters, digits, '_' or '-', not starting "
            "with a digit or '-'"
        )
    if _RESERVED_ALIAS.match(alias):
        raise InvalidInput(f"alias {alias!r} is reserved ('latest' and 'v<number>' name versions)")
    return alias


def validate_tags(tags: dict[str, str] | None) -> dict[str, str]:
    out = {}
    for key, value in (tags or {}).items():
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_TAG_KEY:
            raise InvalidInput(f"invalid tag key {key!r}: 1-{MAX_TAG_KEY} characters")
        value = "" if value is None else str(value)
        if len(value) > MAX_TAG_VALUE:
            raise InvalidInput(f"tag {key!r}: value longer than {MAX_TAG_VALUE} characters")
        out[key] = value
    return out


def validate_description(description: str | None) -> str | None:
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise InvalidInput(f"description longer than {MAX_DESCRIPTION} characters")
    return description


def validate_version(version: int | str) -> int:
    try:
        number = int(str(version))
    except ValueError:
        raise InvalidInput(f"invalid version {version!r}: expected a positive integer") from None
    if number < 1:
        raise InvalidInput(f"invalid version {version!r}: expected a positive integer")
    return number


def safe_relpath(path: str) -> str:
    """Return ``path`` as a relative POSIX path that cannot leave the directory it is joined to.

    Rejects absolute paths, ``..`` segments, backslashes, NUL bytes and the URL-encoded
    forms of each (``%2e%2e%2f``), decoding repeatedly so double encoding does not help.
    """
    decoded = path
    for _ in range(3):
        decoded = unquote(decoded)
    if (
        not path
        or "\\" in decoded
        or "\x00" in decoded
        or decoded.startswith(("/", "~"))
        or re.match(r"^[A-Za-z]:", decoded)
    ):
        raise InvalidInput(f"unsafe path {path!r}: must be relative, with '/' separators")
    parts = decoded.split("/")
    if any(p in ("", "..", ".") for p in parts) or decoded != path:
        raise InvalidInput(f"unsafe path {path!r}: no empty, '.', '..' or encoded segments allowed")
    return path
