"""Serving settings: read once from ``MLREG_*`` variables; ``mlreg serve`` flags override them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlreg.errors import InvalidInput

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
#: What computes the predictions (mlreg.serving.backends has a loader for each).
BACKENDS = ("local", "tfserving")


@dataclass(frozen=True)
class ServingSettings:
    """Everything the scoring server is configured by."""

    model_uri: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    threads: int = 4
    timeout: float = 60.0
    graceful_timeout: float = 30.0
    max_request_bytes: int = 100 * 1024 * 1024
    log_format: str = "text"
    log_level: str = "info"
    batch_max_size: int = 0
    batch_timeout_ms: float = 2.0
    backend: str = "local"
    # backend=tfserving: where TF Serving listens (gRPC) and which servable to call.
    tfserving_target: str | None = None
    tfserving_model_name: str | None = None
    tfserving_model_version: int | None = None
    tfserving_version_label: str | None = None
    tfserving_signature: str = "serving_default"
    tfserving_timeout_ms: float = 5000.0

    def __post_init__(self) -> None:
        _check("port", self.port, 0 <= self.port <= 65535, "a port number 0-65535")
        _check("workers", self.workers, self.workers >= 1, "an integer >= 1")
        _check("threads", self.threads, self.threads >= 1, "an integer >= 1")
        _check("timeout", self.timeout, self.timeout > 0, "a number of seconds > 0")
        _check("graceful_timeout", self.graceful_timeout, self.graceful_timeout >= 0, ">= 0")
        _check("max_request_bytes", self.max_request_bytes, self.max_request_bytes > 0, "> 0")
        _check("log_format", self.log_format, self.log_format in LOG_FORMATS, _one_of(LOG_FORMATS))
        _check("log_level", self.log_level, self.log_level in LOG_LEVELS, _one_of(LOG_LEVELS))
        _check("batch_max_size", self.batch_max_size, self.batch_max_size >= 0, ">= 0 (0 = off)")
        _check("batch_timeout_ms", self.batch_timeout_ms, self.batch_timeout_ms >= 0, ">= 0")
        _check("backend", self.backend, self.backend in BACKENDS, _one_of(BACKENDS))
        _check(
            "tfserving_timeout_ms", self.tfserving_timeout_ms, self.tfserving_timeout_ms > 0, "> 0"
        )
        version = self.tfserving_model_version
        _check("tfserving_model_version", version, version is None or version >= 1, ">= 1")
        if version is not None and self.tfserving_version_label:
            raise InvalidInput(
                "MLREG_TFSERVING_MODEL_VERSION and MLREG_TFSERVING_VERSION_LABEL are exclusive: "
                "set one"
            )
        if self.backend == "tfserving" and not self.tfserving_target:
            raise InvalidInput(
                "MLREG_TFSERVING_TARGET: expected HOST:PORT of TensorFlow Serving's gRPC port "
                "when the backend is tfserving"
            )

    @property
    def batching(self) -> bool:
        return self.batch_max_size > 1

    @property
    def bind(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> ServingSettings:
        """Read ``MLREG_*`` variables from ``environ``; non-None ``overrides`` win."""
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            var = env_var(field.name)
            raw = environ.get(var)
            if raw is None or raw.strip() == "":
                continue
            values[field.name] = _parse(var, raw.strip(), _PARSERS[field.name])
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise InvalidInput(f"unknown serving settings: {', '.join(sorted(unknown))}")
        return cls(**values)

    def replace(self, **changes: Any) -> ServingSettings:
        return dataclasses.replace(self, **changes)


def env_var(field_name: str) -> str:
    """The environment variable that sets ``field_name``."""
    return f"MLREG_{field_name.upper()}"


def _one_of(choices: tuple[str, ...]) -> str:
    return "one of " + ", ".join(choices)


def _check(name: str, value: Any, ok: bool, expected: str) -> None:
    if not ok:
        raise InvalidInput(f"{env_var(name)}: expected {expected}, got {value!r}")


def _lower(raw: str) -> str:
    return raw.lower()


_PARSERS: dict[str, Callable[[str], Any]] = {
    "model_uri": str,
    "host": str,
    "port": int,
    "workers": int,
    "threads": int,
    "timeout": float,
    "graceful_timeout": float,
    "max_request_bytes": int,
    "log_format": _lower,
    "log_level": _lower,
    "batch_max_size": int,
    "batch_timeout_ms": float,
    "backend": _lower,
    "tfserving_target": str,
    "tfserving_model_name": str,
    "tfserving_model_version": int,
    "tfserving_version_label": str,
    "tfserving_signature": str,
    "tfserving_timeout_ms": float,
}


def _parse(var: str, raw: str, parser: Callable[[str], Any]) -> Any:
    try:
        return parser(raw)
    except ValueError:
        kind = "an integer" if parser is int else "a number"
        raise InvalidInput(f"{var}: expected {kind}, got {raw!r}") from None


__all__ = ["BACKENDS", "LOG_FORMATS", "LOG_LEVELS", "ServingSettings", "env_var"]
