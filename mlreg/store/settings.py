"""Where mlreg keeps its data, read once from ``MLREG_*`` variables.

The registry and tracking both stand on these settings: one database (any SQLAlchemy URI;
SQLite under ``MLREG_HOME`` by default) and one artifact root.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from mlreg.credentials import mask_password, redact
from mlreg.errors import InvalidInput, StoreError

HOME_VAR = "MLREG_HOME"
URI_VARS = ("MLREG_TRACKING_URI", "MLREG_REGISTRY_URI")
ARTIFACT_ROOT_VAR = "MLREG_ARTIFACT_ROOT"
USER_VAR = "MLREG_USER"
S3_ENDPOINT_VAR = "MLREG_S3_ENDPOINT_URL"
S3_SCHEME = "s3://"
#: Artifact roots that are URIs of remote storage, not local paths.
REMOTE_ROOTS = (S3_SCHEME,)
DEFAULT_HOME = ".mlreg"
MAX_UPLOAD_VAR = "MLREG_MAX_UPLOAD_BYTES"
DEFAULT_MAX_UPLOAD_BYTES = 20 << 30
CACHE_DIR = "cache"


@dataclass(frozen=True)
class StoreSettings:
    """The database URI, the artifact root, and who is acting.

    ``artifact_root`` is an absolute local path or an ``s3://bucket/prefix`` URI (then
    ``s3_endpoint_url`` points at MinIO, Ceph or another S3-compatible service, if not AWS).
    """

    uri: str
    artifact_root: str
    user: str
    home: Path = Path(DEFAULT_HOME)
    s3_endpoint_url: str | None = None
    #: Largest model version (all its files) or artifact the stores take.
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES

    def __post_init__(self) -> None:
        root = str(self.artifact_root)
        if not root.startswith(REMOTE_ROOTS):
            root = str(Path(root).expanduser().absolute())
        object.__setattr__(self, "artifact_root", root)

    @property
    def remote(self) -> bool:
        """True when the store is an mlreg server (``http(s)://``), not a database."""
        return self.uri.startswith(("http://", "https://"))

    @property
    def cache_dir(self) -> Path:
        """Where downloaded artifacts are kept (``MLREG_HOME/cache``), models by digest."""
        return self.home / CACHE_DIR

    def artifact_location(self, *parts: str) -> str:
        """``artifact_root`` joined with ``parts`` ('/' for URIs, the OS's way for paths)."""
        if self.artifact_root.startswith(REMOTE_ROOTS):
            return "/".join([self.artifact_root.rstrip("/"), *parts])
        return str(Path(self.artifact_root, *parts))

    @property
    def described(self) -> str:
        """The store's URI with any password masked (for messages and ``mlreg info``)."""
        return mask_password(self.uri)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StoreSettings:
        """Read ``MLREG_HOME``, ``MLREG_TRACKING_URI`` (or ``MLREG_REGISTRY_URI``),
        ``MLREG_ARTIFACT_ROOT`` and ``MLREG_USER``; raise StoreError if they disagree.

        A URI given to :func:`set_tracking_uri` in this process wins over the variables.
        """
        env = os.environ if environ is None else environ
        home = Path(env.get(HOME_VAR) or DEFAULT_HOME).expanduser().absolute()
        if isinstance(_override, Path):  # a directory: the embedded layout there
            home = _override
        given = {var: env[var].strip() for var in URI_VARS if env.get(var, "").strip()}
        if _override is not None:
            given = {"set_tracking_uri()": str(_override)} if isinstance(_override, str) else {}
        if len(set(given.values())) > 1:
            raise StoreError(
                f"{' and '.join(given)} name different stores; set one of them (they mean the same)"
            )
        for var, value in given.items():
            check_store_uri(var, value)
        uri = next(iter(given.values()), None) or f"sqlite:///{home / 'registry.db'}"
        return cls(
            uri=uri,
            artifact_root=env.get(ARTIFACT_ROOT_VAR) or str(home / "artifacts"),
            user=env.get(USER_VAR) or _os_user(),
            home=home,
            s3_endpoint_url=env.get(S3_ENDPOINT_VAR) or None,
            max_upload_bytes=_size(env, MAX_UPLOAD_VAR),
        )

    @classmethod
    def for_home(cls, home: str | os.PathLike[str], user: str = "test") -> StoreSettings:
        """The embedded layout under one directory (handy for tests and scripts)."""
        home = Path(home).absolute()
        return cls(f"sqlite:///{home / 'registry.db'}", str(home / "artifacts"), user, home)


# --- set_tracking_uri: this process's choice, over MLREG_TRACKING_URI (as in MLflow) ----------

#: None: the environment decides; a str: a store URI; a Path: a directory (embedded layout).
_override: str | Path | None = None
#: Bumped by every set_tracking_uri, so process-wide clients know to rebuild themselves.
_generation = 0


def set_tracking_uri(uri: str | os.PathLike[str] | None) -> None:
    """Point this process at another store: a database URI (``sqlite:///…``,
    ``postgresql+psycopg://…``), an mlreg server (``http(s)://…``), or a directory (a path or
    ``file://`` URI) that holds ``registry.db`` and ``artifacts/``. None goes back to the
    ``MLREG_*`` variables. StoreError names what is accepted."""
    global _override, _generation
    if uri is None:
        _override = None
    else:
        text = os.fspath(uri).strip()
        if not text:
            raise StoreError("set_tracking_uri: the URI is empty")
        if isinstance(uri, os.PathLike) or text.startswith("file:") or "://" not in text:
            _override = _directory(text)
        else:
            check_store_uri("set_tracking_uri", text)
            _override = text
    _generation += 1


def _directory(text: str) -> Path:
    if text.startswith("file:"):
        parsed = urlparse(text)
        if parsed.netloc not in ("", "localhost"):
            raise StoreError(f"set_tracking_uri: {text!r} names a remote host; use a local path")
        text = unquote(parsed.path)
    path = Path(text).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise StoreError(
            f"set_tracking_uri: {text!r} is a file; expected a directory (it will hold "
            "registry.db and artifacts/), sqlite:///path/registry.db, or another store URI"
        )
    return path


def get_tracking_uri() -> str:
    """The store this process uses: what :func:`set_tracking_uri` chose, else the
    ``MLREG_*`` variables (a directory reads as its SQLite database's URI)."""
    return StoreSettings.from_env().uri


def tracking_uri_generation() -> int:
    """Changes whenever :func:`set_tracking_uri` is called (clients built before are stale)."""
    return _generation


#: What MLREG_TRACKING_URI may name: a SQLAlchemy database URL, or an mlreg server.
_STORE_URI = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9]*)(?:\+[A-Za-z0-9_]+)?://.")
_SCHEMES = frozenset(["sqlite", "postgresql", "postgres", "mysql", "mariadb", "http", "https"])


def check_store_uri(source: str, uri: str) -> None:
    """Raise StoreError (one line, naming ``source``: the variable or flag) unless ``uri`` is a
    database URL or an http(s) server URL."""
    match = _STORE_URI.match(uri)
    if match is None or match["scheme"].lower() not in _SCHEMES:
        raise StoreError(
            f"{source}: {redact(uri)!r} is not a store URI; expected sqlite:///path/registry.db, "
            "postgresql+psycopg://user:password@host/database, or http(s)://host:port of an "
            "mlreg server"
        )


def _size(env: Mapping[str, str], var: str) -> int:
    raw = env.get(var, "").strip()
    if not raw:
        return DEFAULT_MAX_UPLOAD_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise InvalidInput(f"{var}: expected a number of bytes > 0, got {raw!r}")
    return value


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
