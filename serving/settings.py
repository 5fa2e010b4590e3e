"""Serving settings: read once from ``MLREG_*`` variables; ``mlreg serve`` flags override them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlreg import config
from mlreg.config import Seconds, check, env_var, one_of
from mlreg.errors import InvalidInput

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
#: What computes the predictions (mlreg.serving.backends has a loader for each).
BACKENDS = ("local", "tfserving")


@dataclass(frozen=True)
class ServingSettings:
    """Everything the scoring server is configured by."""

    model_uri: str | None = None
    #: The name TF Serving's and V2 clients address the model by (default: its registered
    #: name, else its directory's name); KServe passes the InferenceService's name.
    model_name: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    #: The Open Inference Protocol's gRPC service listens here too when set.
    grpc_port: int | None = None
    workers: int = 1
    threads: int = 4
    timeout: float = 60.0
    #: Opt-in: a prediction with a small body runs on the HTTP worker's event loop, without the
    #: hand-off to a thread, while that model's recent small ones took at most this long on
    #: average (mlreg.serving.direct says what it costs: 0, off, keeps every guarantee).
    inline_ms: float = 0.0
    #: Opt-in: batches of 1..N rows run as XLA-compiled functions, one per size, each kept
    #: only where it agrees with the plain function and is faster (mlreg.tensorflow.xla).
    xla_max_batch: int = 0
    #: Seconds a client has to send a whole request (headers and body) from its first byte.
    read_timeout: float = 30.0
    graceful_timeout: float = 30.0
    #: None: derived from the signature (mlreg.serving.limits).
    max_request_bytes: int | None = None
    log_format: str = "text"
    log_level: str = "info"
    batch_max_size: int = 0
    batch_timeout_ms: float = 2.0
    #: Follow mode: serve whatever version the model URI (a stage or alias) names now.
    follow: bool = False
    poll_interval: Seconds = 30.0  # type: ignore[assignment]
    #: Swap in a version whose signature would break the served one's clients anyway.
    allow_signature_change: bool = False
    #: Prediction logging: a directory for JSON lines, or an http(s) collector of CloudEvents.
    log_predictions: str | None = None
    log_sample_rate: float = 1.0
    #: A logged tensor larger than this is summarised (shape, dtype).
    log_max_tensor_bytes: int = 64 * 1024
    #: Sampled requests waiting for the writer; more are dropped (and counted).
    log_queue_size: int = 10_000
    log_file_bytes: int = 64 * 1024 * 1024
    log_file_backups: int = 5
    backend: str = "local"
    # backend=tfserving: where TF Serving listens (gRPC) and which servable to call.
    tfserving_target: str | None = None
    tfserving_model_name: str | None = None
    tfserving_model_version: int | None = None
    tfserving_version_label: str | None = None
    tfserving_signature: str = "serving_default"
    tfserving_timeout_ms: float = 5000.0

    def __post_init__(self) -> None:
        config.lowercase(self, "log_format", "log_level", "backend")
        check("port", self.port, 0 <= self.port <= 65535, "a port number 0-65535")
        grpc = self.grpc_port
        check("grpc_port", grpc, grpc is None or 0 < grpc <= 65535, "a port number 1-65535")
        check("workers", self.workers, self.workers >= 1, "an integer >= 1")
        check("threads", self.threads, self.threads >= 1, "an integer >= 1")
        check("timeout", self.timeout, self.timeout > 0, "a number of seconds > 0")
        check("inline_ms", self.inline_ms, self.inline_ms >= 0, ">= 0 (0 = off)")
        xla = self.xla_max_batch
        check("xla_max_batch", xla, 0 <= xla <= 64, "an integer 0-64 (0 = off)")
        check("read_timeout", self.read_timeout, self.read_timeout > 0, "a number of seconds > 0")
        check("graceful_timeout", self.graceful_timeout, self.graceful_timeout >= 0, ">= 0")
        limit = self.max_request_bytes
        check("max_request_bytes", limit, limit is None or limit > 0, "> 0")
        check(
            "log_format",
            self.log_format,
            self.log_format in LOG_FORMATS,
            one_of(LOG_FORMATS),
        )
        check("log_level", self.log_level, self.log_level in LOG_LEVELS, one_of(LOG_LEVELS))
        check("batch_max_size", self.batch_max_size, self.batch_max_size >= 0, ">= 0 (0 = off)")
        check("batch_timeout_ms", self.batch_timeout_ms, self.batch_timeout_ms >= 0, ">= 0")
        check("backend", self.backend, self.backend in BACKENDS, one_of(BACKENDS))
        check("poll_interval", self.poll_interval, self.poll_interval > 0, "a duration > 0")
        rate = self.log_sample_rate
        check("log_sample_rate", rate, 0.0 <= rate <= 1.0, "a fraction from 0 to 1")
        for name in ("log_max_tensor_bytes", "log_queue_size", "log_file_bytes"):
            check(name, getattr(self, name), getattr(self, name) > 0, "> 0")
        check("log_file_backups", self.log_file_backups, self.log_file_backups >= 0, ">= 0")
        check(
            "tfserving_timeout_ms", self.tfserving_timeout_ms, self.tfserving_timeout_ms > 0, "> 0"
        )
        version = self.tfserving_model_version
        check("tfserving_model_version", version, version is None or version >= 1, ">= 1")
        if version is not None and self.tfserving_version_label:
            raise InvalidInput(
                "MLREG_TFSERVING_MODEL_VERSION and MLREG_TFSERVING_VERSION_LABEL are exclusive: "
                "set one"
            )
        if self.backend == "tfserving" and xla:
            raise InvalidInput(
                "MLREG_XLA_MAX_BATCH: XLA compiles models computed in mlreg; with the tfserving "
                "backend, TF Serving computes them (its --xla_cpu_compilation_enabled)"
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
        """Read ``MLREG_*`` variables from ``environ``; non-None ``overrides`` (flags) win."""
        return config.from_env(cls, environ, **overrides)

    def replace(self, **changes: Any) -> ServingSettings:
        return dataclasses.replace(self, **changes)


__all__ = ["BACKENDS", "LOG_FORMATS", "LOG_LEVELS", "ServingSettings", "env_var"]
