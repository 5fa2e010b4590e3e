"""Paging: one page of results and where the next one starts, for every search."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlreg.errors import InvalidInput

MAX_PAGE = 1000


@dataclass(frozen=True)
class Page:
    """One page of search results; ``next_offset`` is None on the last page."""

    items: list[Any] = field(default_factory=list)
    next_offset: int | None = None


def check_paging(max_results: int, offset: int, limit: int = MAX_PAGE) -> None:
    """Raise InvalidInput unless 1 <= max_results <= limit and 0 <= offset."""
    if not isinstance(max_results, int) or not 1 <= max_results <= limit:
        raise InvalidInput(f"max_results must be between 1 and {limit}, got {max_results}")
    if not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput(f"offset must be between 0 and {MAX_OFFSET}, got {offset}")


MAX_OFFSET = 2**62  # past any table, and still a 64-bit integer for the database
