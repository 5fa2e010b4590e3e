"""The registry's rules, free of any transport: validation, registration, stages, URIs.

The service talks to persistence only through the store interface
(:class:`~mlreg.registry.store.RegistryStore`) and to artifacts through an
:class:`~mlreg.registry.artifacts.ArtifactStore`, so a REST client store can replace the
SQL one without touching anything here.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from mlreg.errors import (
    InvalidInput,
    MlregError,
    ModelNotFound,
    NotFound,
    RegistrationFailed,
    StoreError,
    VersionConflict,
)
from mlreg.models.files import copy_model_files
from mlreg.models.model import Model
from mlreg.registry.artifacts import ArtifactStore, dir_digest
from mlreg.registry.entities import (
    ModelVersion,
    RegisteredModel,
    Stage,
    StageTransition,
    VersionStatus,
)
from mlreg.registry.store import RegistryStore
from mlreg.store.pages import MAX_PAGE, Page, check_paging
from mlreg.store.validation import (
    validate_alias,
    validate_description,
    validate_key,
    validate_name,
    validate_tags,
    validate_version,
)
from mlreg.uris import ResolvedModel, resolve_model_uri, scheme_of

MODELS_SCHEME = "models:/"


@dataclass
class GcReport:
    versions: list[str] = field(default_factory=list)
    temp_dirs: list[str] = field(default_factory=list)


class RegistryService:
    def __init__(self, store: RegistryStore, artifacts: ArtifactStore, user: str) -> None:
        self.store = store
        self.artifacts = artifacts
        self.user = user

    # --- registration --------------------------------------------------------------------

    def register_model(
        self,
        source: str,
        name: str,
        tags: dict[str, str] | None = None,
        description: str | None = None,
        run_id: str | None = None,
    ) -> ModelVersion:
        """Copy the model at ``source`` into the store as the next version of ``name``.

        The version is PENDING while its files are copied and digested, READY only
        once they are whole; any failure marks it FAILED_REGISTRATION with the reason.
        """
        validate_name(name)
        tags = validate_tags(tags)
        validate_description(description)
        resolved = self.resolve_any(source)
        mlmodel = Model.load(resolved.path)
        signature = mlmodel.signature.to_json_dict() if mlmodel.signature else None
        # A local source is recorded as the absolute directory it was copied from.
        recorded = str(resolved.path) if scheme_of(source) in ("", "file") else source
        version = self.begin_version(
            name, recorded, run_id or mlmodel.run_id, description, tags, signature
        )
        return self.store_files(version, resolved.path)

    def identical_versions(self, name: str, digest: str) -> list[ModelVersion]:
        """READY versions of ``name`` whose files have ``digest`` (none if ``name`` is new)."""
        found: list[ModelVersion] = []
        offset: int | None = 0
        while offset is not None:
            page = self.store.search_model_versions(
                name=name,
                status=VersionStatus.READY,
                order_by="version ASC",
                max_results=MAX_PAGE,
                offset=offset,
            )
            found += [v for v in page.items if v.digest == digest]
            offset = page.next_offset
        return found

    def unchanged_version(self, source: str, name: str) -> ModelVersion | None:
        """The newest READY version of ``name`` with exactly the files at ``source``, if any."""
        resolved = self.resolve_any(source)
        same = self.identical_versions(name, resolved.digest or dir_digest(resolved.path))
        return same[-1] if same else None

    def begin_version(
        self,
        name: str,
        source: str,
        run_id: str | None,
        description: str | None,
        tags: dict[str, str] | None,
        signature: dict[str, Any] | None,
        request_id: str | None = None,
    ) -> ModelVersion:
        """Allocate the next version of ``name`` (PENDING_REGISTRATION until its files are
        stored); a retried ``request_id`` returns the version it made the first time."""
        return self.store.create_model_version(
            validate_name(name),
            source,
            run_id,
            validate_description(description),
            validate_tags(tags),
            signature,
            request_id=request_id,
        )

    def store_files(
        self, version: ModelVersion, directory: Path, expected_digest: str | None = None
    ) -> ModelVersion:
        """Store ``directory`` as the files of the PENDING ``version`` and make it READY.

        With ``expected_digest`` (what the sender computed), files that arrived different
        are refused. Any failure leaves the version FAILED_REGISTRATION with the reason and
        raises RegistrationFailed.
        """
        name, number = version.name, version.version
        if version.status is not VersionStatus.PENDING_REGISTRATION:
            raise VersionConflict(
                f"version {number} of {name!r} is {version.status.value}; files can only be "
                "stored for a PENDING_REGISTRATION version"
            )
        try:
            stored = self.artifacts.put_version(directory, name, number)
        except BaseException as e:
            reason = f"copying the artifacts failed: {type(e).__name__}: {e}"
            self._record_failure(name, number, reason)
            if isinstance(e, MlregError | OSError | shutil.Error):
                raise RegistrationFailed(
                    f"registration of {name!r} version {number} failed; {reason}"
                ) from e
            raise
        if expected_digest is not None and stored.digest != expected_digest:
            if stored.location is not None:
                self.artifacts.delete(stored.location)
            reason = (
                f"the files arrived different from what was sent (sha256 {stored.digest[:12]}… "
                f"received, {expected_digest[:12]}… sent)"
            )
            self._record_failure(name, number, reason)
            raise RegistrationFailed(f"registration of {name!r} version {number} failed; {reason}")
        try:
            self.store.finish_model_version(
                name,
                number,
                VersionStatus.READY,
                digest=stored.digest,
                storage_location=stored.location,
            )
        except (NotFound, StoreError) as e:
            # The row went away (gc judged it stale) or the database failed: the copy is
            # nobody's now. Remove it, so no files outlive their version.
            if stored.location is not None:
                self.artifacts.delete(stored.location)
            raise RegistrationFailed(
                f"registration of {name!r} version {number} failed after its files were "
                f"copied; {e.message}"
            ) from e
        return self.store.get_model_version(name, number)

    def _record_failure(self, name: str, number: int, reason: str) -> None:
        """Mark the version FAILED_REGISTRATION with ``reason``, unless it is gone already
        (gc removed it) or the database cannot take it (gc removes it later)."""
        with contextlib.suppress(NotFound, StoreError):
            self.store.finish_model_version(
                name, number, VersionStatus.FAILED_REGISTRATION, message=reason
            )

    # --- registered models ---------------------------------------------------------------

    def create_registered_model(
        self, name: str, description: str | None = None, tags: dict[str, str] | None = None
    ) -> RegisteredModel:
        return self.store.create_registered_model(
            validate_name(name), validate_description(description), validate_tags(tags)
        )

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self.store.get_registered_model(name)

    def search_registered_models(
        self,
        *,
        name_like: str | None = None,
        tags: dict[str, str] | None = None,
        order_by: str = "name ASC",
        max_results: int = 100,
        offset: int = 0,
    ) -> Page:
        check_paging(max_results, offset)
        return self.store.search_registered_models(
            name_like=name_like,
            tags=validate_tags(tags),
            order_by=order_by,
            max_results=max_results,
            offset=offset,
        )

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        return self.store.update_registered_model(name, validate_description(description))

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        return self.store.rename_registered_model(name, validate_name(new_name))

    def delete_registered_model(self, name: str) -> None:
        for location in self.store.delete_registered_model(name):
            self.artifacts.delete(location)

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        tags = validate_tags({key: value})
        self.store.set_registered_model_tag(name, key, tags[key])

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self.store.set_registered_model_tag(name, validate_key("tag", key), None)

    # --- versions ------------------------------------------------------------------------

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        return self.store.get_model_version(name, validate_version(version))

    def search_model_versions(
        self,
        *,
        name: str | None = None,
        stage: str | Stage | None = None,
        alias: str | None = None,
        tags: dict[str, str] | None = None,
        status: VersionStatus | None = None,
        order_by: str = "version DESC",
        max_results: int = 100,
        offset: int = 0,
    ) -> Page:
        check_paging(max_results, offset)
        return self.store.search_model_versions(
            name=name,
            stage=Stage.parse(stage) if stage is not None else None,
            alias=alias,
            tags=validate_tags(tags),
            status=status,
            order_by=order_by,
            max_results=max_results,
            offset=offset,
        )

    def update_model_version(
        self, name: str, version: int | str, description: str | None
    ) -> ModelVersion:
        return self.store.update_model_version(
            name, validate_version(version), validate_description(description)
        )

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: str) -> None:
        tags = validate_tags({key: value})
        self.store.set_model_version_tag(name, validate_version(version), key, tags[key])

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        self.store.set_model_version_tag(
            name, validate_version(version), validate_key("tag", key), None
        )

    def delete_model_version(self, name: str, version: int | str) -> None:
        location = self.store.delete_model_version(name, validate_version(version))
        if location:
            self.artifacts.delete(location)

    # --- stages, aliases, history --------------------------------------------------------

    def transition_model_version_stage(
        self,
        name: str,
        version: int | str,
        stage: str | Stage,
        archive_existing_versions: bool = False,
        user: str | None = None,
    ) -> ModelVersion:
        number = validate_version(version)
        target = Stage.parse(stage)
        current = self.store.get_model_version(name, number)
        if current.status is not VersionStatus.READY and target is not Stage.ARCHIVED:
            raise VersionConflict(
                f"version {number} of {name!r} is {current.status.value}; only READY versions "
                f"can move to {target.value}"
            )
        return self.store.transition_stage(
            name, number, target, archive_existing_versions, user or self.user
        )

    def get_stage_history(
        self, name: str, version: int | str | None = None
    ) -> list[StageTransition]:
        number = validate_version(version) if version is not None else None
        history = self.store.stage_history(name, number)
        if number is not None and not history:
            self.store.get_model_version(name, number)  # a version that never was: not found
        return history

    def set_alias(self, name: str, alias: str, version: int | str) -> None:
        self.store.set_alias(name, validate_alias(alias), validate_version(version))

    def delete_alias(self, name: str, alias: str) -> None:
        self.store.delete_alias(name, alias)

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self.store.get_model_version(name, self.store.version_for_alias(name, alias))

    # --- model URIs ----------------------------------------------------------------------

    def get_version_for_uri(self, uri: str) -> ModelVersion:
        """Find the READY version a ``models:/`` URI names."""
        if not uri.startswith(MODELS_SCHEME):
            raise InvalidInput(f"not a registry URI: {uri!r} (expected models:/name/...)")
        rest = uri[len(MODELS_SCHEME) :]
        if rest.startswith("/"):  # models://name/1: a URL's double slash
            raise InvalidInput(
                f"invalid model URI {uri!r}: write models:/<name>/<version|stage|latest> or "
                f"models:/<name>@<alias>, with one slash after 'models:' (e.g. "
                f"models:/{rest.strip('/') or 'mnist/1'})"
            )
        if "@" in rest:
            name, alias = rest.split("@", 1)
            version = self.get_version_by_alias(validate_name(name), alias)
        else:
            name, _, ref = rest.partition("/")
            validate_name(name)
            if not ref or "/" in ref:
                raise InvalidInput(
                    f"invalid model URI {uri!r}: expected models:/<name>/<version|stage|latest> "
                    "or models:/<name>@<alias>"
                )
            version = self._version_for_ref(name, ref)
        if version.status is not VersionStatus.READY:
            detail = f" ({version.status_message})" if version.status_message else ""
            raise VersionConflict(
                f"version {version.version} of {name!r} is {version.status.value}{detail}; "
                "it cannot be loaded"
            )
        return version

    def _version_for_ref(self, name: str, ref: str) -> ModelVersion:
        if ref.isdigit():
            return self.store.get_model_version(name, validate_version(ref))
        if ref.lower() == "latest":
            page = self.store.search_model_versions(
                name=name, status=VersionStatus.READY, order_by="version DESC", max_results=1
            )
            if not page.items:
                self.store.get_registered_model(name)  # says so if the model is unknown
                raise ModelNotFound(f"{name!r} has no READY version yet")
            return page.items[0]
        stage = Stage.parse(ref)
        by_stage = self.store.versions_by_stage(name)
        numbers = by_stage.get(stage)
        if not numbers:
            others = "; ".join(
                f"{s.value}: {', '.join(map(str, n))}"
                for s, n in sorted(by_stage.items(), key=_stage_order)
            )
            raise ModelNotFound(
                f"no version of {name!r} is in stage {stage.value}"
                + (f"; {others}" if others else "; it has no READY versions")
            )
        return self.store.get_model_version(name, numbers[-1])

    def resolve(self, uri: str) -> ResolvedModel:
        """Resolve ``models:/...`` to a verified local directory (implements mlreg.uris)."""
        version = self.get_version_for_uri(uri)
        path = self.artifacts.get_version(version)
        return ResolvedModel(
            path=path,
            uri=uri,
            name=version.name,
            version=version.version,
            stage=version.stage.value,
            digest=version.digest,
        )

    def resolve_any(self, uri: str) -> ResolvedModel:
        """Resolve registry URIs against this registry, anything else as mlreg.uris does."""
        return self.resolve(uri) if uri.startswith(MODELS_SCHEME) else resolve_model_uri(uri)

    def download(self, uri: str, dest: Path) -> ResolvedModel:
        """Copy the model a URI names into ``dest`` (which must not exist or be empty);
        what the URI resolved to (the version of a stage or an alias)."""
        return copy_model(self.resolve_any(uri), dest)

    # --- garbage collection --------------------------------------------------------------

    def gc(self, older_than: timedelta = timedelta(hours=1), dry_run: bool = False) -> GcReport:
        """Remove FAILED versions, PENDING ones older than ``older_than``, and every copy of
        files no version needs.

        Staleness comes from the registry's own timestamps (when a version was created), not
        from file times. A copy is kept while a version needs it: the stored copy of a READY
        version (whatever the model is called now), any copy of a PENDING version younger
        than ``older_than`` (its registration may still be running). Only directories the
        store itself names as its own are ever looked at.
        """
        report = GcReport()
        cutoff = datetime.now(timezone.utc) - older_than
        versions = self._all_versions()
        for v in versions:
            if v.status is VersionStatus.FAILED_REGISTRATION or (
                v.status is VersionStatus.PENDING_REGISTRATION and v.created_at < cutoff
            ):
                report.versions.append(f"{v.name}/{v.version} ({v.status.value})")
                if not dry_run:
                    self.delete_model_version(v.name, v.version)
        in_use = {v.storage_location for v in versions if v.status is VersionStatus.READY}
        running = {
            (v.name, v.version)
            for v in versions
            if v.status is VersionStatus.PENDING_REGISTRATION and v.created_at >= cutoff
        }
        for leftover in self.artifacts.leftovers():
            if leftover.location in in_use:
                continue
            if leftover.name is not None and leftover.version is not None:
                if (leftover.name, leftover.version) in running:
                    continue
            elif leftover.modified >= cutoff:
                continue  # not attributed to a version: judged by its age
            report.temp_dirs.append(leftover.location)
            if not dry_run:
                self.artifacts.discard(leftover)
        return report

    def _all_versions(self) -> list[ModelVersion]:
        found: list[ModelVersion] = []
        offset: int | None = 0
        while offset is not None:
            page = self.store.search_model_versions(
                order_by="created ASC", max_results=MAX_PAGE, offset=offset
            )
            found += page.items
            offset = page.next_offset
        return found


def copy_model(resolved: ResolvedModel, dest: Path) -> ResolvedModel:
    """Copy a resolved model's files into ``dest`` (which must not exist or be empty)."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InvalidInput(f"destination {dest} exists and is not empty")
    copy_model_files(resolved.path, dest)
    return resolved


def _stage_order(item: tuple[Stage, list[int]]) -> int:
    return list(Stage).index(item[0])
