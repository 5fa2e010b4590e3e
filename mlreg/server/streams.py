"""Answer a download from a store's byte stream, with HTTP range requests (RFC 9110 §14)."""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, request

from mlreg.errors import InvalidInput
from mlreg.store.files import Stream

Opener = Callable[[int, int | None], Stream]


def send_stream(open_range: Opener, name: str, etag: str | None = None) -> Response:
    """Stream a file (206 with Content-Range for a single byte range; 416 past its end).

    ``open_range(start, end)`` opens bytes ``start``..``end`` (exclusive; None: to the end);
    nothing is read before the response body is.
    """
    spec = request.headers.get("Range")
    ranged = request.range if spec else None  # werkzeug parses "bytes=a-b", "a-", "-n"
    if ranged is None or ranged.units != "bytes" or len(ranged.ranges) != 1:
        stream = open_range(0, None)  # no range, or one we do not serve: the whole file
        return _answer(stream, 200, name, etag)
    start, stop = ranged.ranges[0]
    if start < 0:  # a suffix: the last -start bytes
        size = open_range(0, 0).size
        start, stop = max(size + start, 0), None
    try:
        stream = open_range(start, stop)
    except InvalidInput:
        stream = None
    if stream is None or stream.end <= stream.start:
        response = Response(status=416)
        response.headers["Content-Range"] = f"bytes */{open_range(0, 0).size}"
        return response
    return _answer(stream, 206, name, etag)


def _answer(stream: Stream, status: int, name: str, etag: str | None) -> Response:
    response = Response(stream.chunks, status=status, mimetype="application/octet-stream")
    response.headers["Content-Length"] = str(stream.end - stream.start)
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["Content-Disposition"] = _disposition(name)
    if etag:
        response.set_etag(etag)
    if status == 206:
        response.headers["Content-Range"] = f"bytes {stream.start}-{stream.end - 1}/{stream.size}"
    return response


def _disposition(path: str) -> str:
    filename = path.rsplit("/", 1)[-1]
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename) or "file"
    return f'attachment; filename="{safe}"'
