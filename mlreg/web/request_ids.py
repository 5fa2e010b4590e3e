"""Request ids: taken from the client's ``X-Request-ID`` when sane, else made up."""

from __future__ import annotations

import re
import uuid

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


def request_id(incoming: str | None) -> str:
    """The client's request id when it is a sane one, else a new one."""
    if incoming and _VALID_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


__all__ = ["REQUEST_ID_HEADER", "request_id"]
