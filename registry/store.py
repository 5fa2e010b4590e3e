"""The one interface between the registry's rules and its persistence.

:class:`~mlreg.registry.sql_store.SqlRegistryStore` implements it on SQLite and
PostgreSQL; a REST client for a shared registry server implements exactly these calls.
Every call is one transaction. Inputs arrive validated by the service; a missing model or
version raises ModelNotFound (saying what exists), a taken name AlreadyExists, and a
database that fails underneath StoreError.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from mlreg.registry.entities import (
    ModelState,
    ModelVersion,
    RegisteredModel,
    Stage,
    StageTransition,
    VersionStatus,
)
from mlreg.store.pages import Page
from mlreg.store.search import Filter


class RegistryStore(Protocol):
    def create_registered_model(
        self, name: str, description: str | None, tags: dict[str, str]
    ) -> RegisteredModel:
        """Create a model with no versions; AlreadyExists if the name is taken."""

    def get_registered_model(self, name: str) -> RegisteredModel:
        """The model with its tags, aliases and latest version number; ModelNotFound."""

    def search_registered_models(
        self,
        *,
        name_like: str | None = None,
        tags: dict[str, str] | None = None,
        order_by: str = "name ASC",
        max_results: int = 100,
        offset: int = 0,
        filters: Sequence[Filter] = (),
    ) -> Page:
        """A page of models matching a SQL LIKE pattern, every tag and every filter (see
        :mod:`mlreg.registry.search`); ``order_by`` is ``name|created|updated [ASC|DESC]``,
        several comma-separated; InvalidInput on a bad one."""

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        """Set the description; ModelNotFound."""

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename, keeping versions, aliases and history; ModelNotFound or AlreadyExists."""

    def delete_registered_model(self, name: str) -> list[str]:
        """Delete the model and its versions; return their storage locations to remove."""

    def set_registered_model_tag(self, name: str, key: str, value: str | None) -> None:
        """Set (value None: remove) one tag; ModelNotFound."""

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None,
        description: str | None,
        tags: dict[str, str],
        signature: dict[str, Any] | None,
        *,
        request_id: str | None = None,
        model_id: str | None = None,
    ) -> ModelVersion:
        """Allocate the next number (creating the model if new); the version is PENDING.
        A ``request_id`` seen before returns the version that request made (a retry).
        ``model_id`` records the logged model the version is made from."""

    def finish_model_version(
        self,
        name: str,
        version: int,
        status: VersionStatus,
        digest: str | None = None,
        storage_location: str | None = None,
        message: str | None = None,
    ) -> None:
        """Record how a registration ended (READY with digest and location, or FAILED)."""

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        """One version; ModelNotFound naming the versions that exist."""

    def search_model_versions(
        self,
        *,
        name: str | None = None,
        stage: Stage | None = None,
        alias: str | None = None,
        tags: dict[str, str] | None = None,
        status: VersionStatus | None = None,
        order_by: str = "version DESC",
        max_results: int = 100,
        offset: int = 0,
        run_id: str | None = None,
        filters: Sequence[Filter] = (),
    ) -> Page:
        """A page of versions matching every given filter (``run_id``: the versions a run
        produced); ``order_by`` is ``version|created|updated|name [ASC|DESC]``, several
        comma-separated; InvalidInput on a bad one."""

    def versions_by_stage(self, name: str) -> dict[Stage, list[int]]:
        """READY version numbers of ``name`` grouped by stage, ascending; ModelNotFound."""

    def update_model_version(
        self, name: str, version: int, description: str | None
    ) -> ModelVersion:
        """Set a version's description; ModelNotFound."""

    def set_model_version_tag(self, name: str, version: int, key: str, value: str | None) -> None:
        """Set (value None: remove) one version tag; ModelNotFound."""

    def delete_model_version(self, name: str, version: int) -> str | None:
        """Delete a version and its aliases (the number stays taken); return its location."""

    def transition_stage(
        self, name: str, version: int, stage: Stage, archive_existing: bool, user: str
    ) -> ModelVersion:
        """Move a version (and archive the others in that stage), recording who and when."""

    def stage_history(self, name: str, version: int | None) -> list[StageTransition]:
        """Every transition of the model (or one version), oldest first; ModelNotFound."""

    def model_state_at(self, name: str, at: datetime) -> ModelState:
        """The model as it was at ``at`` (UTC): its versions, the version in each stage, its
        aliases (from the stage history and the audit trail); ModelNotFound."""

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``alias`` at ``version`` (moving it if it exists); ModelNotFound."""

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias; ModelNotFound naming the aliases that exist."""

    def version_for_alias(self, name: str, alias: str) -> int:
        """The version number ``alias`` points at; ModelNotFound naming the aliases."""

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""
