"""The Python entry points: ``MlregClient`` and ``register_model``, on settings from the env."""

from __future__ import annotations

import threading

from mlreg.registry.artifacts import ArtifactStore
from mlreg.registry.entities import ModelVersion
from mlreg.registry.rest_store import RestArtifactStore, RestRegistryStore
from mlreg.registry.service import RegistryService
from mlreg.registry.sql_store import SqlRegistryStore
from mlreg.registry.storage import artifact_store
from mlreg.registry.store import RegistryStore
from mlreg.store.http import open_http
from mlreg.store.journal import Actor
from mlreg.store.settings import StoreSettings, tracking_uri_generation
from mlreg.uris import ModelRef, ResolvedModel


def open_stores(settings: StoreSettings) -> tuple[RegistryStore, ArtifactStore]:
    """The stores ``settings`` name: a registry server's REST API for an http(s) URI, else
    the database and the artifact root."""
    if settings.remote:
        store = RestRegistryStore(open_http(settings.uri, settings.user))
        return store, RestArtifactStore(store.http, settings.cache_dir)
    # Writes straight to the database are recorded as the local user (MLREG_USER).
    return SqlRegistryStore(settings.uri, Actor(settings.user)), artifact_store(settings)


class MlregClient(RegistryService):
    """The registry service wired to the configured store (a database, or a server)."""

    def __init__(self, settings: StoreSettings | None = None) -> None:
        self.settings = settings or StoreSettings.from_env()
        super().__init__(*open_stores(self.settings), self.settings.user)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> MlregClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_default: MlregClient | None = None
_default_generation = -1
_default_lock = threading.Lock()


def default_client() -> MlregClient:
    """The process-wide client, built from the environment on first use (and again after
    ``set_tracking_uri`` points the process elsewhere)."""
    global _default, _default_generation
    with _default_lock:
        if _default is not None and _default_generation != tracking_uri_generation():
            _default.close()
            _default = None
        if _default is None:
            _default = MlregClient()
            _default_generation = tracking_uri_generation()
        return _default


def reset_default_client() -> None:
    """Forget the process-wide client (after the environment changed, e.g. in tests)."""
    global _default
    with _default_lock:
        if _default is not None:
            _default.close()
        _default = None


def register_model(
    source: str,
    name: str,
    tags: dict[str, str] | None = None,
    description: str | None = None,
) -> ModelVersion:
    """Register the model at ``source`` (a path or model URI) as the next version of ``name``."""
    return default_client().register_model(str(source), name, tags=tags, description=description)


def registry_version_of(uri: str) -> ModelRef:
    """Which READY version ``models:/...`` names now (the entry in mlreg.uris.LOOKUPS): one
    query, no download, through the process-wide client (a database or ``mlreg server``)."""
    version = default_client().get_version_for_uri(uri)
    return ModelRef(version.name, version.version, version.digest)


def resolve_registry_uri(uri: str) -> ResolvedModel:
    """Resolve ``models:/...`` with the process-wide client (the entry in mlreg.uris.SCHEMES)."""
    return default_client().resolve(uri)
