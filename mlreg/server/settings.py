"""Settings of ``mlreg server``: read once from ``MLREG_*`` variables; flags override them."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from mlreg import config
from mlreg.errors import InvalidInput
from mlreg.store.settings import StoreSettings

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
GiB = 1 << 30
MiB = 1 << 20


@dataclass(frozen=True)
class ServerSettings:
    """Everything the registry and tracking server is configured by."""

    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 2
    threads: int = 8
    #: Seconds a request may take (uploads and downloads of large models included).
    timeout: float = 600.0
    graceful_timeout: float = 30.0
    #: Largest JSON request body.
    max_request_bytes: int = 16 * MiB
    #: Largest upload: one artifact file, or all the files of one model version.
    max_upload_bytes: int = 20 * GiB
    log_format: str = "text"
    log_level: str = "info"
    #: Signs the web UI's session cookie and its CSRF tokens. Every worker and replica of one
    #: server needs the same key: unset, ``mlreg server`` makes one at start-up (its workers
    #: share it; a restart signs everyone's forms anew). Set it behind a load balancer.
    secret_key: str | None = field(default=None, repr=False)
    #: The database and artifact root the server keeps (never an http:// URI).
    store: StoreSettings = field(default_factory=lambda: StoreSettings.from_env({}))

    def __post_init__(self) -> None:
        config.lowercase(self, "log_format", "log_level")
        config.check("port", self.port, 0 <= self.port <= 65535, "a port number 0-65535")
        config.check("workers", self.workers, self.workers >= 1, "an integer >= 1")
        config.check("threads", self.threads, self.threads >= 1, "an integer >= 1")
        config.check("timeout", self.timeout, self.timeout > 0, "a number of seconds > 0")
        config.check("graceful_timeout", self.graceful_timeout, self.graceful_timeout >= 0, ">= 0")
        for name in ("max_request_bytes", "max_upload_bytes"):
            value = getattr(self, name)
            config.check(name, value, value > 0, "a number of bytes > 0")
        config.check(
            "log_format",
            self.log_format,
            self.log_format in LOG_FORMATS,
            config.one_of(LOG_FORMATS),
        )
        config.check(
            "log_level", self.log_level, self.log_level in LOG_LEVELS, config.one_of(LOG_LEVELS)
        )
        if self.secret_key is not None and len(self.secret_key) < 16:
            raise InvalidInput(
                "MLREG_SECRET_KEY: expected at least 16 characters of a random secret (e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        if self.store.uri.startswith(("http://", "https://")):
            raise InvalidInput(
                f"MLREG_TRACKING_URI: the server keeps the data itself and needs a database URI "
                f"(sqlite:///… or postgresql+psycopg://…), got {self.store.uri!r}"
            )

    @property
    def bind(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def loopback(self) -> bool:
        """True when only this machine can connect."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str],
        *,
        registry_uri: str | None = None,
        artifact_root: str | None = None,
        **flags: Any,
    ) -> ServerSettings:
        """Read ``MLREG_*``; ``--registry-uri`` and ``--artifact-root`` override the store's."""
        env = dict(environ)
        if registry_uri:
            env.pop("MLREG_REGISTRY_URI", None)
            env["MLREG_TRACKING_URI"] = registry_uri
        if artifact_root:
            env["MLREG_ARTIFACT_ROOT"] = artifact_root
        return config.from_env(cls, env, store=StoreSettings.from_env(env), **flags)

    def replace(self, **changes: Any) -> ServerSettings:
        return replace(self, **changes)
