"""The registry's store and artifact store over a registry server's REST API (``/api/v1``).

:class:`RestRegistryStore` implements :class:`~mlreg.registry.store.RegistryStore` and
:class:`RestArtifactStore` implements :class:`~mlreg.registry.artifacts.ArtifactStore`, so
``RegistryService`` (and with it the CLI, ``register_model`` and ``models:/`` URIs) works
unchanged against ``MLREG_TRACKING_URI=http://host:5000``. Downloads are cached by digest
under ``MLREG_HOME/cache`` and checked against it on every load.
"""

from __future__ import annotations

import shutil
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from mlreg.errors import DigestMismatch, ModelNotFound
from mlreg.registry.artifacts import Leftover, StoredFiles, dir_digest
from mlreg.registry.entities import (
    ModelVersion,
    RegisteredModel,
    Stage,
    StageTransition,
    VersionStatus,
)
from mlreg.store.files import FileInfo, Stream
from mlreg.store.http import Http, open_remote, release
from mlreg.store.pages import Page, page_token
from mlreg.store.tarstream import MEDIA_TYPE, iter_tar

DIGEST_HEADER = "X-Mlreg-Digest"


def _page_params(max_results: int, offset: int) -> dict[str, Any]:
    return {"max_results": max_results, "page_token": page_token(offset) if offset else None}


class RestRegistryStore:
    """Registered models and versions kept by a registry server."""

    def __init__(self, http: Http) -> None:
        self.http = http

    def _model(self, *parts: str) -> str:
        return self.http.url("models", *parts)

    def _get(self, method: str, url: str, **kwargs: Any) -> Any:
        return self.http.json(method, url, not_found=ModelNotFound, **kwargs)

    def create_registered_model(
        self, name: str, description: str | None, tags: dict[str, str]
    ) -> RegisteredModel:
        doc = self._get(
            "POST",
            self.http.url("models"),
            json={"name": name, "description": description, "tags": tags},
        )
        return RegisteredModel.from_dict(doc["registered_model"])

    def get_registered_model(self, name: str) -> RegisteredModel:
        return RegisteredModel.from_dict(self._get("GET", self._model(name))["registered_model"])

    def search_registered_models(
        self,
        *,
        name_like: str | None = None,
        tags: dict[str, str] | None = None,
        order_by: str = "name ASC",
        max_results: int = 100,
        offset: int = 0,
    ) -> Page:
        params = [
            ("name_like", name_like),
            ("order_by", order_by),
            *[("tag", f"{k}={v}") for k, v in (tags or {}).items()],
            *_page_params(max_results, offset).items(),
        ]
        doc = self._get("GET", self.http.url("models"), params=_present(params))
        return _page(doc, "registered_models", RegisteredModel.from_dict, offset, max_results)

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        doc = self._get("PATCH", self._model(name), json={"description": description})
        return RegisteredModel.from_dict(doc["registered_model"])

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        doc = self._get(
            "POST", self._model(name, "rename"), json={"new_name": new_name}, idempotent=False
        )
        return RegisteredModel.from_dict(doc["registered_model"])

    def delete_registered_model(self, name: str) -> list[str]:
        self._get("DELETE", self._model(name))
        return []  # the server removed the files with the versions

    def set_registered_model_tag(self, name: str, key: str, value: str | None) -> None:
        if value is None:
            self._get("DELETE", self._model(name, "tags", key))
        else:
            self._get("PUT", self._model(name, "tags", key), json={"value": value})

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
    ) -> ModelVersion:
        doc = self._get(
            "POST",
            self._model(name, "versions"),
            json={
                "source": source,
                "run_id": run_id,
                "description": description,
                "tags": tags,
                "signature": signature,
            },
            headers={"Idempotency-Key": request_id or uuid.uuid4().hex},
            idempotent=True,
        )
        return ModelVersion.from_dict(doc["model_version"])

    def finish_model_version(
        self,
        name: str,
        version: int,
        status: VersionStatus,
        digest: str | None = None,
        storage_location: str | None = None,
        message: str | None = None,
    ) -> None:
        self._get(
            "POST",
            self._model(name, "versions", str(version), "finish"),
            json={"status": status.value, "digest": digest, "message": message},
            idempotent=True,
        )

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        doc = self._get("GET", self._model(name, "versions", str(version)))
        return ModelVersion.from_dict(doc["model_version"])

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
    ) -> Page:
        params = [
            ("name", name),
            ("stage", stage.value if stage else None),
            ("alias", alias),
            ("status", status.value if status else None),
            ("order_by", order_by),
            *[("tag", f"{k}={v}") for k, v in (tags or {}).items()],
            *_page_params(max_results, offset).items(),
        ]
        doc = self._get("GET", self.http.url("versions"), params=_present(params))
        return _page(doc, "model_versions", ModelVersion.from_dict, offset, max_results)

    def versions_by_stage(self, name: str) -> dict[Stage, list[int]]:
        doc = self._get("GET", self._model(name, "stages"))
        return {Stage(stage): numbers for stage, numbers in doc["stages"].items()}

    def update_model_version(
        self, name: str, version: int, description: str | None
    ) -> ModelVersion:
        doc = self._get(
            "PATCH",
            self._model(name, "versions", str(version)),
            json={"description": description},
        )
        return ModelVersion.from_dict(doc["model_version"])

    def set_model_version_tag(self, name: str, version: int, key: str, value: str | None) -> None:
        url = self._model(name, "versions", str(version), "tags", key)
        if value is None:
            self._get("DELETE", url)
        else:
            self._get("PUT", url, json={"value": value})

    def delete_model_version(self, name: str, version: int) -> str | None:
        self._get("DELETE", self._model(name, "versions", str(version)))
        return None  # the server removed the files with the row

    def transition_stage(
        self, name: str, version: int, stage: Stage, archive_existing: bool, user: str
    ) -> ModelVersion:
        doc = self._get(
            "POST",
            self._model(name, "versions", str(version), "stage"),
            json={"stage": stage.value, "archive_existing": archive_existing, "user": user},
            idempotent=True,  # moving to the same stage twice changes nothing
        )
        return ModelVersion.from_dict(doc["model_version"])

    def stage_history(self, name: str, version: int | None) -> list[StageTransition]:
        params = {"version": version} if version is not None else None
        doc = self._get("GET", self._model(name, "history"), params=params)
        return [StageTransition.from_dict(t) for t in doc["transitions"]]

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self._get("PUT", self._model(name, "aliases", alias), json={"version": version})

    def delete_alias(self, name: str, alias: str) -> None:
        self._get("DELETE", self._model(name, "aliases", alias))

    def version_for_alias(self, name: str, alias: str) -> int:
        doc = self._get("GET", self._model(name, "aliases", alias))
        return int(doc["model_version"]["version"])

    def close(self) -> None:
        """Release this store's share of the process's session with the server."""
        release(self.http)


class RestArtifactStore:
    """Version files kept by a registry server: uploaded as one tar stream, downloaded file by
    file into a cache keyed by digest (a model is fetched once per machine)."""

    def __init__(self, http: Http, cache: Path) -> None:
        self.http = http
        self.cache = cache

    def _files(self, version: ModelVersion, *parts: str) -> str:
        return self.http.url("models", version.name, "versions", str(version.version), *parts)

    def put_version(self, source: Path, name: str, version: int) -> StoredFiles:
        digest = dir_digest(source)
        self.http.json(
            "PUT",
            self.http.url("models", name, "versions", str(version), "content"),
            data=lambda: iter_tar(source),
            headers={"Content-Type": MEDIA_TYPE, DIGEST_HEADER: digest},
            not_found=ModelNotFound,
            timeout=3600,
        )
        return StoredFiles(None, digest)  # the server chose the location

    def get_version(self, version: ModelVersion) -> Path:
        if version.digest is None:
            raise DigestMismatch(f"{version.uri} has no stored files ({version.status.value})")
        target = self.cache / "models" / version.digest
        if not target.is_dir():
            self._download(version, target)
        actual = dir_digest(target)
        if actual != version.digest:
            raise DigestMismatch(
                f"the cached copy of {version.uri} at {target} does not match its digest "
                f"(expected sha256 {version.digest[:12]}…, found {actual[:12]}…): it was changed "
                "after download; delete it to fetch the model again"
            )
        return target

    def _download(self, version: ModelVersion, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex}"
        try:
            for info in self.list_files(version):
                dest = tmp / info.path
                dest.parent.mkdir(parents=True, exist_ok=True)
                with dest.open("wb") as out:
                    for chunk in self.open_file(version, info.path).chunks:
                        out.write(chunk)
            if dir_digest(tmp) != version.digest:
                raise DigestMismatch(
                    f"the files of {version.uri} downloaded from {self.http.base_url} do not "
                    "match their digest; refusing them"
                )
            try:
                tmp.rename(target)
            except OSError:
                if not target.is_dir():  # another process won the race: use its copy
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def list_files(self, version: ModelVersion) -> list[FileInfo]:
        doc = self.http.json("GET", self._files(version, "files"), not_found=ModelNotFound)
        return [FileInfo(f["path"], False, f.get("size")) for f in doc["files"]]

    def open_file(
        self, version: ModelVersion, path: str, start: int = 0, end: int | None = None
    ) -> Stream:
        return open_remote(self.http, self._files(version, "files", path), start, end)

    def delete(self, location: str) -> None:
        """Nothing to do: the server deletes a version's files with the version."""

    def leftovers(self) -> list[Leftover]:
        doc = self.http.json("GET", self.http.url("leftovers"))
        return [
            Leftover(
                item["location"],
                datetime.fromisoformat(item["modified"]),
                item.get("name"),
                item.get("version"),
            )
            for item in doc["leftovers"]
        ]

    def discard(self, leftover: Leftover) -> None:
        self.http.json(
            "POST",
            self.http.url("leftovers", "discard"),
            json={"location": leftover.location},
            idempotent=True,
        )


def _present(params: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in params if v is not None]


def _page(doc: dict[str, Any], key: str, parse: Any, offset: int, max_results: int) -> Page:
    more = doc.get("next_page_token") is not None
    return Page([parse(item) for item in doc[key]], offset + max_results if more else None)
