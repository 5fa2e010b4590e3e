"""Paging: one page of results and where the next one starts, for every search."""

from __future__ import annotations

import base64
import binascii
import json
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


def page_token(offset: int | None) -> str | None:
    """An opaque token for the page starting at ``offset`` (None: there is no next page).

    The HTTP APIs hand out tokens, the stores speak offsets; both ends use these two.
    """
    if offset is None:
        return None
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode().rstrip("=")


def offset_of(token: str | None) -> int:
    """The offset a page token stands for; InvalidInput for a token we did not make."""
    if not token:
        return 0
    try:
        doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset = doc["offset"]
        if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
            raise ValueError(offset)
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            f"invalid page_token {token!r}: pass the next_page_token of a previous page"
        ) from None
    return offset
