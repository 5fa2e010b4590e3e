"""``TrackingClient``: the tracking service wired to the configured store (MLREG_* settings)."""

from __future__ import annotations

from mlreg.store.settings import StoreSettings
from mlreg.tracking.service import TrackingService
from mlreg.tracking.sql_store import SqlTrackingStore
from mlreg.tracking.storage import run_artifacts

RUNS_DIR = "runs"


class TrackingClient(TrackingService):
    """Tracking on the registry's database and artifact root (the same MLREG_* settings)."""

    def __init__(self, settings: StoreSettings | None = None) -> None:
        self.settings = settings or StoreSettings.from_env()
        super().__init__(
            SqlTrackingStore(self.settings.uri),
            run_artifacts(self.settings),
            self.settings.user,
            self.settings.artifact_location(RUNS_DIR),
        )

    def __enter__(self) -> TrackingClient:
        return self
