"""Logging for mlreg's servers: plain text or one JSON object per line (``MLREG_LOG_FORMAT``)."""

from __future__ import annotations

import logging
import sys
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
    "configure_logging",
    "gunicorn_logconfig",
    "make_formatter",
]
