"""``TrackingClient``: the tracking service wired to the configured store (MLREG_* settings)."""

from __future__ import annotations

from mlreg.store.http import open_http
from mlreg.store.journal import Actor
from mlreg.store.settings import StoreSettings
from mlreg.tracking.artifacts import RunArtifacts
from mlreg.tracking.rest_store import RestRunArtifacts, RestTrackingStore
from mlreg.tracking.service import TrackingService
from mlreg.tracking.sql_store import SqlTrackingStore
from mlreg.tracking.storage import run_artifacts
from mlreg.tracking.store import TrackingStore

RUNS_DIR = "runs"
LOGGED_MODELS_DIR = "logged-models"


def open_stores(settings: StoreSettings) -> tuple[TrackingStore, RunArtifacts]:
    """The stores ``settings`` name: a tracking server's REST API for an http(s) URI, else
    the database and local artifact directories."""
    if settings.remote:
        store = RestTrackingStore(open_http(settings.uri, settings.user))
        return store, RestRunArtifacts(store.http, settings.cache_dir / "runs")
    # Writes straight to the database are recorded as the local user (MLREG_USER).
    return SqlTrackingStore(settings.uri, Actor(settings.user)), run_artifacts(settings)


class TrackingClient(TrackingService):
    """Tracking on the configured store (a database, or a server; the same MLREG_* settings)."""

    def __init__(self, settings: StoreSettings | None = None) -> None:
        self.settings = settings or StoreSettings.from_env()
        super().__init__(
            *open_stores(self.settings),
            self.settings.user,
            self.settings.artifact_location(RUNS_DIR),
            self.settings.artifact_location(LOGGED_MODELS_DIR),
        )

    def __enter__(self) -> TrackingClient:
        return self
