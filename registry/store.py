"""The one interface between the registry's rules and its persistence.

:class:`~mlreg.registry.sql_store.SqlRegistryStore` implements it on SQLite and
PostgreSQL; a REST client for a shared registry server implements the same calls.
"""

from __future__ import annotations

from typing import Any, Protocol

from mlreg.registry.entities import (
    ModelVersion,
    Page,
    RegisteredModel,
    Stage,
    StageTransition,
    VersionStatus,
)


class RegistryStore(Protocol):
    def create_registered_model(
        self, name: str, description: str | None, tags: dict[str, str]
    ) -> RegisteredModel: ...
    def get_registered_model(self, name: str) -> RegisteredModel: ...
    def search_registered_models(
        self,
        name_like: str | None,
        tags: dict[str, str],
        order_by: str,
        max_results: int,
        offset: int,
    ) -> Page: ...
    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel: ...
    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel: ...
    def delete_registered_model(self, name: str) -> list[str]: ...
    def set_registered_model_tag(self, name: str, key: str, value: str | None) -> None: ...
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None,
        description: str | None,
        tags: dict[str, str],
        signature: dict[str, Any] | None,
    ) -> ModelVersion: ...
    def finish_model_version(
        self,
        name: str,
        version: int,
        status: VersionStatus,
        digest: str | None = None,
        storage_location: str | None = None,
        message: str | None = None,
    ) -> None: ...
    def get_model_version(self, name: str, version: int) -> ModelVersion: ...
    def search_model_versions(
        self,
        name: str | None,
        stage: Stage | None,
        alias: str | None,
        tags: dict[str, str],
        status: VersionStatus | None,
        order_by: str,
        max_results: int,
        offset: int,
    ) -> Page: ...
    def versions_by_stage(self, name: str) -> dict[Stage, list[int]]: ...
    def update_model_version(
        self, name: str, version: int, description: str | None
    ) -> ModelVersion: ...
    def set_model_version_tag(
        self, name: str, version: int, key: str, value: str | None
    ) -> None: ...
    def delete_model_version(self, name: str, version: int) -> str | None: ...
    def transition_stage(
        self, name: str, version: int, stage: Stage, archive_existing: bool, user: str
    ) -> ModelVersion: ...
    def stage_history(self, name: str, version: int | None) -> list[StageTransition]: ...
    def set_alias(self, name: str, alias: str, version: int) -> None: ...
    def delete_alias(self, name: str, alias: str) -> None: ...
    def version_for_alias(self, name: str, alias: str) -> int: ...
    def close(self) -> None: ...
