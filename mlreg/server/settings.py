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
PERMISSIONS = ("NONE", "READ", "EDIT", "PROMOTE", "MANAGE")
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
    #: Require users and tokens; without it the server trusts the X-Mlreg-User a client names.
    auth: bool = False
    #: Listen beyond loopback without authentication (a trusted network only).
    allow_unauthenticated: bool = False
    #: Host names the server answers to besides IP addresses and localhost (comma-separated;
    #: ``*.example.com`` patterns; ``*`` any): other Host headers are refused (DNS rebinding).
    allowed_hosts: str = ""
    #: Reverse proxies in front of the server whose X-Forwarded-For/-Proto it believes (an
    #: ingress: 1); the client's address is what the rate limit and the audit trail record.
    proxy_hops: int = 0
    #: Origins whose browser scripts may call the API (comma-separated; ``*`` any); requests
    #: from other origins are refused.
    cors_origins: str = ""
    #: What everyone gets on a new model or experiment (its creator gets MANAGE).
    default_permission: str = "READ"
    #: The first admin, created at start-up when there is no admin and a password is given.
    admin_user: str = "admin"
    admin_password: str | None = field(default=None, repr=False)
    #: Failed sign-ins per user name, and per client address, within the window.
    login_max_failures: int = 10
    login_max_failures_per_address: int = 100
    login_window_seconds: int = 300
    #: Lifetime of a new API token unless its creator says otherwise.
    token_days: float = 90.0
    #: A browser stays signed in to the web UI this long after its last page.
    session_hours: float = 12.0
    #: Webhooks: deliver from this process (one deliverer per worker), how often to look for
    #: due deliveries, the receiver's time to answer, attempts before giving up, first backoff.
    deliver_webhooks: bool = True
    webhook_poll_seconds: float = 1.0
    webhook_timeout: float = 10.0
    webhook_max_attempts: int = 12
    webhook_backoff_seconds: float = 2.0
    #: The database and artifact root the server keeps (never an http:// URI).
    store: StoreSettings = field(default_factory=lambda: StoreSettings.from_env({}))

    def __post_init__(self) -> None:
        config.lowercase(self, "log_format", "log_level")
        object.__setattr__(self, "default_permission", self.default_permission.upper())
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
        config.check(
            "default_permission",
            self.default_permission,
            self.default_permission in PERMISSIONS,
            config.one_of(PERMISSIONS),
        )
        config.check("proxy_hops", self.proxy_hops, 0 <= self.proxy_hops <= 5, "0-5")
        for name in ("login_max_failures", "login_max_failures_per_address"):
            value = getattr(self, name)
            config.check(name, value, value >= 1, "an integer >= 1")
        config.check(
            "login_window_seconds",
            self.login_window_seconds,
            self.login_window_seconds >= 1,
            ">= 1",
        )
        config.check("token_days", self.token_days, 0 < self.token_days <= 3650, "0-3650 days")
        config.check(
            "session_hours", self.session_hours, 0 < self.session_hours <= 720, "0-720 hours"
        )
        for name in ("webhook_poll_seconds", "webhook_timeout", "webhook_backoff_seconds"):
            value = getattr(self, name)
            config.check(name, value, value > 0, "a number of seconds > 0")
        config.check(
            "webhook_max_attempts",
            self.webhook_max_attempts,
            self.webhook_max_attempts >= 1,
            ">= 1",
        )
        if not (self.auth or self.loopback or self.allow_unauthenticated):
            raise InvalidInput(
                f"refusing to listen on {self.host} without authentication (anyone who reaches "
                "it could change the registry): start with --auth, or --allow-unauthenticated "
                "on a trusted network"
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

    @property
    def host_patterns(self) -> tuple[str, ...]:
        return _split(self.allowed_hosts)

    @property
    def origins(self) -> tuple[str, ...]:
        return tuple(o.rstrip("/") for o in _split(self.cors_origins))

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


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip().lower() for part in value.split(",") if part.strip())
