"""Output shared by the commands: aligned tables, listings, times (always UTC)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import click


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """Left-aligned columns separated by two spaces; ``(none)`` under the header when empty."""
    cells = [headers, *[["" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines) if rows else f"{lines[0]}\n(none)"


def when(value: datetime | int | None) -> str:
    """A time in UTC to the second (columns and fields that show it say "UTC"); "-" if None.
    ``value`` is a datetime or milliseconds since the epoch."""
    if value is None:
        return "-"
    if isinstance(value, int):
        value = datetime.fromtimestamp(value / 1000, timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def listing(
    as_json: bool,
    items: list[dict[str, Any]],
    next_page_token: str | None,
    render: Callable[[], str],
    empty: str,
) -> None:
    """Print one page of a listing.

    JSON (every listing has this shape): ``{"items": [...], "next_page_token": ...}``. Text:
    the table ``render()`` makes, and how to get the next page when there is one; or
    ``empty`` when there is nothing to list.
    """
    if as_json:
        doc = {"items": items, "next_page_token": next_page_token}
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    if not items:
        click.echo(empty)
        return
    click.echo(render())
    if next_page_token:
        click.echo(f"(more results: add --page-token {next_page_token})")
