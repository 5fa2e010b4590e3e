"""What the server's routes call: the registry and tracking services on the server's store.

Built once per worker process (after gunicorn forks). Each request acts as a user (who
moved a stage, who started a run): :meth:`Services.registry_as` and
:meth:`Services.tracking_as` hand out the services with that user, sharing the stores.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from mlreg.registry.artifacts import Leftover
from mlreg.registry.client import MlregClient
from mlreg.registry.entities import ModelVersion, VersionStatus
from mlreg.registry.service import RegistryService
from mlreg.store.pages import MAX_PAGE
from mlreg.store.settings import StoreSettings
from mlreg.tracking.client import TrackingClient
from mlreg.tracking.service import TrackingService

STAGING_DIR = "staging"
SCRATCH_PREFIX = "upload-"


@dataclass
class Services:
    registry: MlregClient
    tracking: TrackingClient
    #: Uploads land here before they are stored (same machine as the worker).
    staging: Path

    @classmethod
    def open(cls, store: StoreSettings) -> Services:
        """Open the database and artifact stores named by ``store`` (StoreError if unusable)."""
        registry = MlregClient(store)
        try:
            tracking = TrackingClient(store)
        except BaseException:
            registry.close()
            raise
        staging = store.home / STAGING_DIR
        staging.mkdir(parents=True, exist_ok=True)
        return cls(registry, tracking, staging)

    def close(self) -> None:
        self.tracking.close()
        self.registry.close()

    def registry_as(self, user: str) -> RegistryService:
        service = copy.copy(self.registry)
        service.user = user
        return service

    def tracking_as(self, user: str) -> TrackingService:
        service = copy.copy(self.tracking)
        service.user = user
        return service

    @contextmanager
    def scratch(self) -> Iterator[Path]:
        """A fresh directory under the staging area, removed afterwards."""
        path = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=self.staging))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def leftovers(self) -> list[Leftover]:
        """What ``mlreg gc`` may weigh: the artifact store's copies that no READY version
        stores its files in (a client cannot tell: it never sees where the server keeps
        them), and uploads a killed worker left in the staging area (dated by their newest
        file, so an upload still arriving is never old)."""
        in_use = {v.storage_location for v in self._ready_versions()}
        copies = [
            item for item in self.registry.artifacts.leftovers() if item.location not in in_use
        ]
        staged = [
            Leftover(str(path), datetime.fromtimestamp(_newest_mtime(path), timezone.utc))
            for path in sorted(self.staging.glob(f"{SCRATCH_PREFIX}*"))
            if path.is_dir()
        ]
        return copies + staged

    def _ready_versions(self) -> list[ModelVersion]:
        found: list[ModelVersion] = []
        offset: int | None = 0
        while offset is not None:
            page = self.registry.store.search_model_versions(
                status=VersionStatus.READY, max_results=MAX_PAGE, offset=offset
            )
            found += page.items
            offset = page.next_offset
        return found

    def discard(self, location: str) -> None:
        """Remove one leftover that :meth:`leftovers` lists (anything else is left alone)."""
        for item in self.leftovers():
            if item.location != location:
                continue
            if Path(location).parent == self.staging:
                shutil.rmtree(location, ignore_errors=True)
            else:
                self.registry.artifacts.discard(item)
            return


def _newest_mtime(root: Path) -> float:
    newest = root.stat().st_mtime
    for path in root.rglob("*"):
        try:
            newest = max(newest, path.stat().st_mtime)
        except FileNotFoundError:  # removed while we looked
            continue
    return newest
