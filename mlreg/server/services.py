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
from pathlib import Path

from mlreg.errors import InternalError
from mlreg.registry.client import MlregClient
from mlreg.registry.service import RegistryService
from mlreg.registry.sql_store import SqlRegistryStore
from mlreg.server.access.service import AccessService, LoginPolicy
from mlreg.server.access.store import AccessStore
from mlreg.server.audit import AuditLog
from mlreg.server.permissions import Level
from mlreg.server.webhooks.deliverer import Deliverer
from mlreg.server.webhooks.store import WebhookStore
from mlreg.store.journal import Actor
from mlreg.store.settings import StoreSettings
from mlreg.tracking.client import TrackingClient
from mlreg.tracking.service import TrackingService
from mlreg.tracking.sql_store import SqlTrackingStore

STAGING_DIR = "staging"


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
        path = Path(tempfile.mkdtemp(prefix="upload-", dir=self.staging))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)
