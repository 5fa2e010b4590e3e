"""Output shared by the commands: aligned tables for people."""

from __future__ import annotations

from typing import Any


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """Left-aligned columns separated by two spaces; ``(none)`` under the header when empty."""
    cells = [headers, *[["" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines) if rows else f"{lines[0]}\n(none)"
