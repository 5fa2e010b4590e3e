"""Logging for mlreg's servers: plain text or one JSON object per line (``MLREG_LOG_FORMAT``)."""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from typing import Any

import orjson

#: Attributes every LogRecord has; anything else was passed with ``extra=`` and is logged.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Write each record as one JSON line with the ``extra`` fields at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


def make_formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(log_format: str, level: str) -> None:
    """Send mlreg's logs to stderr in ``log_format``; safe to call more than once."""
    logger = logging.getLogger("mlreg")
    logger.setLevel(level.upper())
    for handler in list(logger.handlers):
        if getattr(handler, "_mlreg", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._mlreg = True  # type: ignore[attr-defined]
    handler.setFormatter(make_formatter(log_format))
    logger.addHandler(handler)
    logger.propagate = False


class GunicornName(logging.Filter):
    """gunicorn logs everything (booting workers, too) under ``gunicorn.error``: name it
    ``gunicorn`` so an INFO line does not read as an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "gunicorn.error":
            record.name = "gunicorn"
        return True


#: glog/absl severity letters at the start of a native line (``I1127 12:00:00.0 ...``).
_NATIVE_LEVELS = {
    "I": logging.DEBUG,
    "W": logging.WARNING,
    "E": logging.ERROR,
    "F": logging.CRITICAL,
}
_NATIVE_PREFIX = re.compile(r"([IWEF])\d{4} ")


def capture_native_stderr(name: str = "mlreg.native") -> None:
    """Turn what native libraries write to file descriptor 2 (TensorFlow's C++ and absl logging,
    which ignore TF_CPP_MIN_LOG_LEVEL before absl is initialised) into log records: JSON in
    JSON mode, informational lines at DEBUG, warnings and errors at their level.

    Python's own stderr moves to a copy of the descriptor first, so records written by the
    handlers never come back through the pipe. Call once per process, after the handlers
    exist."""
    original = sys.stderr
    own = open(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
    for logger in [logging.getLogger(), *logging.root.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and handler.stream is original:
                handler.setStream(own)
    sys.stderr = own
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)
    native = logging.getLogger(name)

    def forward() -> None:
        with open(read, "rb") as pipe:
            for raw in pipe:
                line = raw.decode("utf-8", errors="replace").rstrip()
                if line:
                    found = _NATIVE_PREFIX.match(line)
                    level = _NATIVE_LEVELS[found.group(1)] if found else logging.DEBUG
                    native.log(level, "%s", line)

    threading.Thread(target=forward, name="mlreg-native-stderr", daemon=True).start()


def gunicorn_logconfig(log_format: str, level: str) -> dict[str, Any]:
    """A logging dictConfig for gunicorn's own logger in the same format as ours."""
    formatter: dict[str, Any] = (
        {"()": "mlreg.web.logs.JsonFormatter"} if log_format == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"mlreg": formatter},
        "filters": {"gunicorn_name": {"()": "mlreg.web.logs.GunicornName"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "mlreg",
                "filters": ["gunicorn_name"],
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
        },
        "root": {"level": "WARNING", "handlers": ["stderr"]},
    }


__all__ = [
    "GunicornName",
    "JsonFormatter",
    "capture_native_stderr",
    "configure_logging",
    "gunicorn_logconfig",
    "make_formatter",
]
