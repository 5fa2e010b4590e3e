"""The HTTP side of the REST stores: one session per server per process, retries, errors.

- One ``requests.Session`` (keep-alive, a connection pool) per server URL per process.
- Every call has timeouts. A call is retried (with exponential backoff) only when a retry
  cannot apply it twice: reads, PUT/DELETE, and POSTs that carry an ``Idempotency-Key``
  (the server applies a key once). Connection failures are retried a few times; 502/503/504
  (the server is up, its database is not) for up to RETRY_UNAVAILABLE_FOR seconds.
- The server's ``{"error_code", "message"}`` becomes the mlreg error class with that code
  (the caller may name the NotFound subclass it expects), so code above the store cannot
  tell a remote registry from a local one.
"""

from __future__ import annotations

import io
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from mlreg.errors import (
    AlreadyExists,
    DigestMismatch,
    InvalidInput,
    MethodNotAllowed,
    MLmodelError,
    MlregError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RegistrationFailed,
    StoreError,
    Unauthenticated,
    UnsupportedMediaType,
    VersionConflict,
)
from mlreg.store.files import CHUNK, Stream
from mlreg.version import __version__

API = "/api/v1"
RETRY_STATUSES = frozenset([502, 503, 504])
#: How long answers of RETRY_STATUSES are retried: the server is up and says its database is
#: not (a restart or a failover takes seconds). An unreachable server gets ``attempts`` only.
RETRY_UNAVAILABLE_FOR = 30.0
SAFE_METHODS = frozenset(["GET", "HEAD", "PUT", "DELETE"])

#: Error codes of the server's answers, as the classes that carry them.
ERROR_CLASSES: dict[str, type[MlregError]] = {
    cls.error_code: cls
    for cls in (
        InvalidInput,
        NotFound,
        AlreadyExists,
        VersionConflict,
        DigestMismatch,
        StoreError,
        PayloadTooLarge,
        UnsupportedMediaType,
        MethodNotAllowed,
        MLmodelError,
        RegistrationFailed,
        Unauthenticated,
        PermissionDenied,
    )
}


@dataclass(frozen=True)
class Credentials:
    """How the client proves who it is (``MLREG_TRACKING_*``, or the ``MLFLOW_`` names)."""

    token: str | None = None
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Credentials:
        env = os.environ if environ is None else environ

        def read(name: str) -> str | None:
            return env.get(f"MLREG_TRACKING_{name}") or env.get(f"MLFLOW_TRACKING_{name}") or None

        return cls(read("TOKEN"), read("USERNAME"), read("PASSWORD"))

    def apply(self, session: requests.Session) -> None:
        if self.token:
            session.headers["Authorization"] = f"Bearer {self.token}"
        elif self.username is not None:
            session.auth = (self.username, self.password or "")

    def __repr__(self) -> str:  # never print a secret
        return f"Credentials(token={'***' if self.token else None}, username={self.username!r})"


class Http:
    """Calls to one mlreg server."""

    def __init__(
        self,
        base_url: str,
        user: str,
        credentials: Credentials | None = None,
        *,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        attempts: int = 5,
        unavailable_for: float = RETRY_UNAVAILABLE_FOR,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, timeout)
        self.attempts = attempts
        self.unavailable_for = unavailable_for
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=16)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = f"mlreg/{__version__}"
        self.session.headers["X-Mlreg-User"] = user
        (credentials or Credentials()).apply(self.session)
        self._users = 0

    def url(self, *parts: str) -> str:
        """``base/api/v1/part/part``, each part percent-encoded (``/`` kept inside a part
        only where the route takes a path)."""
        return self.base_url + API + "".join("/" + quote(p, safe="/") for p in parts)

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        data: Callable[[], Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        not_found: type[NotFound] = NotFound,
        stream: bool = False,
        timeout: float | None = None,
    ) -> requests.Response:
        """Send one request (retrying where that is safe) and return the 2xx response.

        ``data`` is a factory of the body, so a retry can send it again. POSTs are retried
        only with ``idempotent=True``: the call then carries a fresh ``Idempotency-Key``.
        """
        headers = dict(headers or {})
        retry = method in SAFE_METHODS if idempotent is None else idempotent
        if method == "POST" and retry:
            headers.setdefault("Idempotency-Key", uuid.uuid4().hex)
        attempt = 0
        started = time.monotonic()
        while True:
            attempt += 1
            body = data() if data is not None else None
            try:
                response = self.session.request(
                    method,
                    path,
                    json=json,
                    params=params,
                    data=body,
                    headers=headers,
                    stream=stream,
                    timeout=(self.timeout[0], timeout or self.timeout[1]),
                )
            except (requests.ConnectionError, requests.Timeout) as e:
                if retry and attempt < self.attempts:
                    self._pause(attempt)
                    continue
                raise StoreError(
                    f"the mlreg server at {self.base_url} is unreachable: {_first(e)}"
                ) from None
            finally:
                if isinstance(body, io.IOBase):
                    body.close()
            if response.status_code in RETRY_STATUSES and retry:
                waited = time.monotonic() - started
                if attempt < self.attempts or waited < self.unavailable_for:
                    response.close()
                    self._pause(attempt)
                    continue
            if response.status_code >= 400:
                raise self._error(response, not_found)
            return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """``call`` and the decoded JSON answer."""
        response = self.call(method, path, **kwargs)
        return response.json() if response.content else {}

    @staticmethod
    def _pause(attempt: int) -> None:
        time.sleep(min(5.0, 0.1 * 2**attempt) * (0.5 + random.random() / 2))  # noqa: S311

    def _error(self, response: requests.Response, not_found: type[NotFound]) -> MlregError:
        try:
            doc = response.json()
            code, message = doc["error_code"], doc["message"]
        except (ValueError, KeyError, TypeError):
            text = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
            return StoreError(
                f"the mlreg server at {self.base_url} answered {response.status_code}"
                + (f": {text}" if text else "")
            )
        cls = ERROR_CLASSES.get(code, StoreError if response.status_code >= 500 else InvalidInput)
        if cls is NotFound:
            cls = not_found
        return cls(message)

    def close(self) -> None:
        self.session.close()


def _first(e: Exception) -> str:
    text = str(e)
    return text.splitlines()[0][:300] if text else type(e).__name__


def open_remote(http: Http, url: str, start: int = 0, end: int | None = None) -> Stream:
    """Stream bytes ``start``..``end`` of a file the server hands out (a Range request)."""
    headers = {}
    if start or end is not None:
        headers["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
    response = http.call("GET", url, headers=headers, stream=True)
    length = int(response.headers.get("Content-Length", "0"))
    content_range = response.headers.get("Content-Range", "")
    if response.status_code == 206 and content_range.startswith("bytes "):
        span, _, total = content_range.removeprefix("bytes ").partition("/")
        first, _, last = span.partition("-")
        return Stream(int(total), int(first), int(last) + 1, response.iter_content(CHUNK))
    return Stream(length, 0, length, response.iter_content(CHUNK))


_lock = threading.Lock()
_sessions: dict[tuple[str, str, Credentials], Http] = {}


def open_http(base_url: str, user: str, credentials: Credentials | None = None) -> Http:
    """The process's session for one server (shared by the registry and tracking stores)."""
    credentials = credentials or Credentials.from_env()
    key = (base_url.rstrip("/"), user, credentials)
    with _lock:
        http = _sessions.get(key)
        if http is None:
            http = _sessions[key] = Http(base_url, user, credentials)
        http._users += 1
        return http


def release(http: Http) -> None:
    """Release one share of a session from :func:`open_http`; the last closes it."""
    with _lock:
        http._users -= 1
        if http._users > 0:
            return
        for key, value in list(_sessions.items()):
            if value is http:
                del _sessions[key]
    http.close()


def _after_fork_in_child() -> None:
    # A forked child must not share the parent's sockets.
    with _lock:
        _sessions.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
