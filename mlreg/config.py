"""Settings objects from ``MLREG_*`` variables: one reader for every frozen settings dataclass.

Each field ``foo_bar`` is read from ``MLREG_FOO_BAR`` and parsed by its annotated type
(str, int, float, bool, or ``X | None`` of those); an explicit override (a command-line
flag) wins over the variable. A value that does not parse is an InvalidInput naming the
variable — or the flag, when the value came from one.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, NewType, TypeVar

from mlreg.errors import InvalidInput

T = TypeVar("T")
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")
#: A number of seconds, written as ``30``, ``30s``, ``500ms``, ``2m`` or ``1h``.
Seconds = NewType("Seconds", float)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def env_var(field_name: str) -> str:
    """The environment variable that sets ``field_name``."""
    return f"MLREG_{field_name.upper()}"


def flag(field_name: str) -> str:
    """The command-line flag that sets ``field_name``."""
    return "--" + field_name.replace("_", "-")


def _parse_bool(raw: str) -> bool:
    if raw.lower() in TRUE:
        return True
    if raw.lower() in FALSE:
        return False
    raise ValueError(raw)


def parse_seconds(raw: str) -> float:
    """``30``, ``30s``, ``500ms``, ``2m``, ``1h`` -> seconds; ValueError for anything else."""
    text = raw.strip().lower()
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * _UNITS[unit]
    return float(text)


_PARSERS: dict[Any, Callable[[str], Any]] = {
    str: str,
    int: int,
    float: float,
    bool: _parse_bool,
    Seconds: parse_seconds,
}
_KINDS = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    Seconds: "a duration like 30s, 500ms or 2m",
}


def _base_type(annotation: Any) -> type:
    """``int | None`` -> int; ``str`` -> str."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0]
    return annotation


def from_env(cls: type[T], environ: Mapping[str, str], **overrides: Any) -> T:
    """Build ``cls`` from ``MLREG_*`` variables in ``environ``; non-None ``overrides`` win."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        kind = _base_type(hints[field.name])
        if not field.init or kind not in _PARSERS:
            continue  # nested settings objects are read by their own from_env
        var = env_var(field.name)
        raw = environ.get(var)
        if raw is None or not raw.strip():
            continue
        try:
            values[field.name] = _PARSERS[kind](raw.strip())
        except ValueError:
            raise InvalidInput(f"{var}: expected {_KINDS[kind]}, got {raw.strip()!r}") from None
    flags = {k: v for k, v in overrides.items() if v is not None}
    for name, value in flags.items():
        kind = _base_type(hints[name]) if name in hints else str
        if isinstance(value, str) and kind is not str and kind in _PARSERS:
            # A flag given as text (a duration): parsed, and named, like its variable.
            try:
                flags[name] = _PARSERS[kind](value)
            except ValueError:
                expected = _KINDS[kind]
                raise InvalidInput(f"{flag(name)}: expected {expected}, got {value!r}") from None
    values.update(flags)
    unknown = set(values) - {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    if unknown:
        raise InvalidInput(f"unknown settings: {', '.join(sorted(unknown))}")
    try:
        return cls(**values)
    except InvalidInput as e:
        # The settings check names the variable; name the flag when the value came from one.
        for name in flags:
            if e.message.startswith(env_var(name) + ":"):
                raise InvalidInput(flag(name) + e.message[len(env_var(name)) :]) from None
        raise


def check(name: str, value: Any, ok: bool, expected: str) -> None:
    """Raise InvalidInput naming the variable of ``name`` unless ``ok``."""
    if not ok:
        raise InvalidInput(f"{env_var(name)}: expected {expected}, got {value!r}")


def lowercase(settings: Any, *names: str) -> None:
    """Lower-case the string fields ``names`` of a frozen settings object (choices like
    ``json`` or ``INFO`` are case-insensitive); call it first in ``__post_init__``."""
    for name in names:
        value = getattr(settings, name)
        if isinstance(value, str):
            object.__setattr__(settings, name, value.lower())


def one_of(choices: tuple[str, ...]) -> str:
    return "one of " + ", ".join(choices)
