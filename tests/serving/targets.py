"""What the HTTP tests talk to: the app in this process with a numpy backend (fast), or a
real ``mlreg serve`` of a TensorFlow model (slow). Both answer through the same interface.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask
from werkzeug.test import TestResponse

from tests.serving.server import Server


class Answer:
    """A test-client response read the way ``requests.Response`` is."""

    def __init__(self, response: TestResponse) -> None:
        self.status_code = response.status_code
        self.headers = response.headers
        self.text = response.get_data(as_text=True)

    def json(self) -> Any:
        return json.loads(self.text)


class AppClient:
    """The app through Flask's test client, called like ``Server``; its log is the access log."""

    def __init__(self, app: Flask, access_log: list[str]) -> None:
        self._client = app.test_client()
        self._log = access_log

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Answer:
        kwargs.pop("timeout", None)
        if body is not None:
            kwargs["json"] = body
        return Answer(self._client.post(path, **kwargs))

    def get(self, path: str, **kwargs: Any) -> Answer:
        kwargs.pop("timeout", None)
        return Answer(self._client.get(path, **kwargs))

    def log(self) -> str:
        return "\n".join(self._log)


class ListHandler(logging.Handler):
    """Keeps each record's message, as the server's log file would hold its line."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.INFO)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@dataclass(frozen=True)
class Target:
    """A server to send requests to, and a model whose predictions it should answer with."""

    client: AppClient | Server
    #: ``PyFuncModel`` of the served model, or the fake backend itself: ``predict`` and ``source``.
    model: Any

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.client.post(path, body, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, **kwargs)

    def log(self) -> str:
        return self.client.log()
