"""How values read on a page: times, durations, sizes, metric values, shell commands."""

from __future__ import annotations

import math
import shlex
from datetime import datetime, timezone

_UNITS = ("B", "kB", "MB", "GB", "TB")


def when(value: datetime | int | float | None) -> str:
    """A moment in UTC to the second (``int``/``float``: epoch milliseconds)."""
    if value is None:
        return "—"
    moment = _moment(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(value: datetime | int | float | None) -> str:
    """The moment as ISO 8601, for ``<time datetime=...>``."""
    return "" if value is None else _moment(value).isoformat()


def _moment(value: datetime | int | float) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.fromtimestamp(value / 1000, timezone.utc)


def ago(value: datetime | int | float | None, now: datetime | None = None) -> str:
    """How long ago, roughly: ``just now``, ``5 min ago``, ``3 h ago``, ``12 days ago``."""
    if value is None:
        return "—"
    seconds = ((now or datetime.now(timezone.utc)) - _moment(value)).total_seconds()
    if seconds < 60:
        return "just now"
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"  # unreachable: seconds >= 60 matched "min"


def duration(start_ms: int | None, end_ms: int | None) -> str:
    """``1h 02m``, ``3m 05s``, ``4.2s``; ``—`` while running."""
    if start_ms is None or end_ms is None:
        return "—"
    seconds = max(end_ms - start_ms, 0) / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def size(value: int | None) -> str:
    if value is None:
        return ""
    amount = float(value)
    for unit in _UNITS:
        if amount < 1000 or unit == _UNITS[-1]:
            return f"{int(amount)} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{value} B"  # unreachable


def number(value: float | int | None) -> str:
    """A metric value to 6 significant digits (NaN and infinities by name)."""
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
    return f"{value:.6g}"


def shell(*words: str) -> str:
    """A command line with each word quoted for a POSIX shell where it needs it."""
    return " ".join(shlex.quote(w) for w in words)
