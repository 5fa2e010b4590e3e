"""What the server's routes call: the registry and tracking services on the server's store.

Built once per worker process (after gunicorn forks). Each request acts as an
:class:`~mlreg.store.journal.Actor` (who moved a stage, from which address, what their searches
may show, what they get on what they create): :meth:`Services.registry_as` and
:meth:`Services.tracking_as` hand out the services bound to it, sharing the stores.
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

from mlreg.errors import InternalError
from mlreg.registry.artifacts import Leftover
from mlreg.registry.client import MlregClient
from mlreg.registry.entities import ModelVersion, VersionStatus
from mlreg.registry.service import RegistryService
from mlreg.registry.sql_store import SqlRegistryStore
from mlreg.server.access.service import AccessService, LoginPolicy
from mlreg.server.access.store import AccessStore
from mlreg.server.audit import AuditLog
from mlreg.server.permissions import Level
from mlreg.server.webhooks.deliverer import Deliverer
from mlreg.server.webhooks.store import WebhookStore
from mlreg.store.journal import Actor
from mlreg.store.pages import MAX_PAGE
from mlreg.store.settings import StoreSettings
from mlreg.tracking.client import TrackingClient
from mlreg.tracking.service import TrackingService
from mlreg.tracking.sql_store import SqlTrackingStore

STAGING_DIR = "staging"
SCRATCH_PREFIX = "upload-"


@dataclass
class Services:
    registry: MlregClient
    tracking: TrackingClient
    #: Uploads land here before they are stored (same machine as the worker).
    staging: Path
    #: Users, groups, tokens, grants (on the same database).
    access: AccessService
    audit: AuditLog
    webhooks: WebhookStore

    #: The webhook deliverer of this process, if it delivers (stopped by :meth:`close`).
    deliverer: Deliverer | None = None

    @classmethod
    def open(
        cls,
        store: StoreSettings,
        login: LoginPolicy | None = None,
        default_level: Level = Level.READ,
    ) -> Services:
        """Open the database and artifact stores named by ``store`` (StoreError if unusable)."""
        registry = MlregClient(store)
        try:
            tracking = TrackingClient(store)
        except BaseException:
            registry.close()
            raise
        if not isinstance(registry.store, SqlRegistryStore) or not isinstance(
            tracking.store, SqlTrackingStore
        ):
            raise InternalError("the server keeps its data in a database, not behind a server")
        staging = store.home / STAGING_DIR
        staging.mkdir(parents=True, exist_ok=True)
        db = registry.store.db
        return cls(
            registry,
            tracking,
            staging,
            AccessService(AccessStore(db), policy=login, default_level=default_level),
            AuditLog(db),
            WebhookStore(db),
        )

    def close(self) -> None:
        if self.deliverer is not None:
            self.deliverer.stop()
            self.deliverer = None
        self.tracking.close()
        self.registry.close()

    def registry_as(self, actor: Actor) -> RegistryService:
        """The registry acting as ``actor`` (see ``mlreg.server.routes.acting``)."""
        store = self.registry.store
        assert isinstance(store, SqlRegistryStore)
        if not isinstance(actor, Actor):
            raise TypeError("registry_as takes an Actor: pass mlreg.server.routes.acting()")
        service = copy.copy(self.registry)
        service.user = actor.user
        service.store = store.acting(actor)
        return service

    def tracking_as(self, actor: Actor) -> TrackingService:
        """Tracking acting as ``actor`` (see ``mlreg.server.routes.acting``)."""
        store = self.tracking.store
        assert isinstance(store, SqlTrackingStore)
        if not isinstance(actor, Actor):
            raise TypeError("tracking_as takes an Actor: pass mlreg.server.routes.acting()")
        service = copy.copy(self.tracking)
        service.user = actor.user
        service.store = store.acting(actor)
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
