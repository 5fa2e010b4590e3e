"""One set of rules and limits for what users name and store: the registry's and tracking's.

Names become parts of URIs (``models:/name/1``) and of storage paths; keys become
columns in the UI and filter expressions; every rule is a full match (a trailing newline
is not silently accepted).
"""

from __future__ import annotations

import json
import math
import numbers
import re
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote

from mlreg.errors import InvalidInput

MAX_NAME = 128
MAX_ALIAS = 64
MAX_KEY = 250
MAX_TAG_VALUE = 8000
MAX_PARAM_VALUE = 6000
MAX_DESCRIPTION = 5000
MAX_EXPERIMENT_NAME = 256
MAX_RUN_NAME = 250
MAX_VERSION = 2**31 - 1  # the database column is a 32-bit integer

_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_NAME - 1}}}")
_ALIAS = re.compile(rf"[A-Za-z_][A-Za-z0-9_-]{{0,{MAX_ALIAS - 1}}}")
_RESERVED_ALIAS = re.compile(r"(latest|v\d+)", re.IGNORECASE)
_KEY = re.compile(rf"[\w\-. /]{{1,{MAX_KEY}}}")


def validate_name(name: Any) -> str:
    """A registered model name: 1-128 letters, digits, '_', '.', '-'; no '..'."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise InvalidInput(
            f"invalid model name {name!r}: use 1-{MAX_NAME} letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def validate_alias(alias: Any) -> str:
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias):
        raise InvalidInput(
            f"invalid alias {alias!r}: use 1-{MAX_ALIAS} letters, digits, '_' or '-', not "
            "starting with a digit or '-'"
        )
    if _RESERVED_ALIAS.fullmatch(alias):
        raise InvalidInput(f"alias {alias!r} is reserved ('latest' and 'v<number>' name versions)")
    return alias


def validate_key(kind: str, key: Any) -> str:
    """A tag, param or metric key: 1-250 of letters, digits, '_', '-', '.', ' ' and '/'."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InvalidInput(
            f"invalid {kind} key {key!r}: use 1-{MAX_KEY} letters, digits, '_', '-', '.', ' ' "
            "or '/'"
        )
    if key.startswith("/") or ".." in key.split("/"):
        raise InvalidInput(f"invalid {kind} key {key!r}: it must not look like a path escape")
    return key


def value_text(kind: str, key: str, value: Any, limit: int) -> str:
    """A value as stored text (dicts and lists as JSON, None as ''), at most ``limit`` long."""
    if value is None:
        text = ""
    elif isinstance(value, str):
        text = value
    elif isinstance(value, dict | list):
        text = json.dumps(value)
    else:
        text = str(value)
    if len(text) > limit:
        raise InvalidInput(f"{kind} {key!r}: value is {len(text)} characters; the limit is {limit}")
    return text


def validate_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    """Tags of models, versions, experiments and runs: one rule for all of them."""
    return {
        validate_key("tag", k): value_text("tag", k, v, MAX_TAG_VALUE)
        for k, v in (tags or {}).items()
    }


def validate_params(params: Mapping[str, Any] | None) -> dict[str, str]:
    return {
        validate_key("param", k): value_text("param", k, v, MAX_PARAM_VALUE)
        for k, v in (params or {}).items()
    }


def validate_description(description: str | None) -> str | None:
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise InvalidInput(f"description longer than {MAX_DESCRIPTION} characters")
    return description


def validate_text_name(kind: str, name: Any, limit: int) -> str:
    """A free-text name (experiment, run): 1-``limit`` characters, not blank, one line."""
    if (
        not isinstance(name, str)
        or not name.strip()
        or len(name) > limit
        or any(c in name for c in "\r\n\x00")
    ):
        raise InvalidInput(f"invalid {kind} name {name!r}: 1-{limit} characters on one line")
    return name


def validate_version(version: int | str) -> int:
    try:
        number = int(str(version))
    except ValueError:
        raise InvalidInput(f"invalid version {version!r}: expected a positive integer") from None
    if not 1 <= number <= MAX_VERSION:
        raise InvalidInput(
            f"invalid version {version!r}: expected a positive integer up to {MAX_VERSION}"
        )
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


def validate_metric_value(key: str, value: Any) -> float:
    """A metric value: a real number; NaN is kept, infinities clamp, strings and None fail."""
    if isinstance(value, bool) or (
        not isinstance(value, int | float) and not hasattr(value, "__float__")
    ):
        raise InvalidInput(
            f"metric {key!r}: expected a number, got {type(value).__name__} {value!r}"
        )
    number = float(value)
    if math.isinf(number):
        # JSON and most databases store infinities poorly; clamp as MLflow does.
        number = math.copysign(sys.float_info.max, number)
    return number


def validate_step(key: str, step: Any) -> int:
    """A metric step: an integer (None means 0)."""
    if step is None:
        return 0
    # numbers.Integral covers numpy's integers too (numpy registers them).
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise InvalidInput(f"metric {key!r}: step must be an integer, got {step!r}")
    return int(step)


def parse_timestamp(text: str, what: str = "timestamp") -> datetime:
    """An ISO 8601 time (``2026-06-01``, ``2026-06-01 12:00``, ``…T12:00:00Z``, ``…+02:00``)
    as an aware datetime; a time without an offset is UTC."""
    raw = text.strip()
    try:
        value = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    except ValueError:
        raise InvalidInput(
            f"{what}: expected an ISO 8601 time such as 2026-06-01T12:00:00Z, got {text!r}"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
