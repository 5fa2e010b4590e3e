"""Tracking's store and run artifacts over a tracking server's REST API (``/api/v1``).

:class:`RestTrackingStore` implements :class:`~mlreg.tracking.store.TrackingStore` and
:class:`RestRunArtifacts` implements :class:`~mlreg.tracking.artifacts.RunArtifacts`, so the
fluent API, autologging and ``runs:/`` URIs work unchanged against a server. A ``log_batch``
carries an idempotency key: a retry after a lost answer writes nothing twice.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlreg.errors import ArtifactNotFound, ExperimentNotFound, RunNotFound
from mlreg.models.files import model_files
from mlreg.store.files import FileInfo, Stream
from mlreg.store.http import Http, open_remote, release
from mlreg.store.pages import Page, page_token
from mlreg.tracking.entities import (
    Experiment,
    Lifecycle,
    Metric,
    Run,
    RunInfo,
    RunStatus,
    ViewType,
)
from mlreg.tracking.search import Filter, OrderBy, filter_text, order_by_text


class RestTrackingStore:
    """Experiments and runs kept by a tracking server."""

    def __init__(self, http: Http) -> None:
        self.http = http

    def create_experiment(self, name: str, artifact_location: str, now: int) -> Experiment:
        # The server decides where the experiment's artifacts live.
        doc = self.http.json("POST", self.http.url("experiments"), json={"name": name})
        return Experiment.from_dict(doc["experiment"])

    def get_experiment(self, experiment_id: str) -> Experiment:
        doc = self.http.json(
            "GET", self.http.url("experiments", experiment_id), not_found=ExperimentNotFound
        )
        return Experiment.from_dict(doc["experiment"])

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        doc = self.http.json("GET", self.http.url("experiments"), params={"name": name})
        found = doc["experiments"]
        return Experiment.from_dict(found[0]) if found else None

    def search_experiments(
        self, *, name_like: str | None = None, max_results: int = 100, offset: int = 0
    ) -> Page:
        params = {"max_results": max_results, "page_token": page_token(offset) if offset else None}
        if name_like:
            params["name_like"] = name_like
        doc = self.http.json("GET", self.http.url("experiments"), params=params)
        items = [Experiment.from_dict(e) for e in doc["experiments"]]
        return Page(items, offset + max_results if doc.get("next_page_token") else None)

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        self.http.json(
            "PUT",
            self.http.url("experiments", experiment_id, "tags", key),
            json={"value": value},
            not_found=ExperimentNotFound,
        )

    def create_run(
        self,
        experiment_id: str,
        run_name: str | None,
        start_time: int,
        tags: dict[str, str],
        parent_run_id: str | None,
        artifact_root: str,
    ) -> Run:
        doc = self.http.json(
            "POST",
            self.http.url("runs"),
            json={
                "experiment_id": experiment_id,
                "run_name": run_name,
                "tags": tags,
                "parent_run_id": parent_run_id,
            },
            not_found=ExperimentNotFound,
        )
        return Run.from_dict(doc["run"])

    def get_run(self, run_id: str) -> Run:
        doc = self.http.json("GET", self.http.url("runs", run_id), not_found=RunNotFound)
        return Run.from_dict(doc["run"])

    def update_run(self, run_id: str, status: RunStatus, end_time: int | None) -> None:
        self.http.json(
            "PATCH",
            self.http.url("runs", run_id),
            json={"status": status.value},
            not_found=RunNotFound,
            idempotent=True,
        )

    def update_run_info(
        self, run_id: str, *, run_name: str | None = None, lifecycle: Lifecycle | None = None
    ) -> None:
        # The routes of the server's MLflow-compatible API (rename, delete, restore).
        url = self.http.url("runs", run_id)
        if run_name is not None:
            self.http.json(
                "PATCH", url, json={"run_name": run_name}, not_found=RunNotFound, idempotent=True
            )
        if lifecycle is Lifecycle.DELETED:
            self.http.json("DELETE", url, not_found=RunNotFound)
        elif lifecycle is Lifecycle.ACTIVE:
            self.http.json("POST", url + "/restore", not_found=RunNotFound, idempotent=True)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        *,
        request_id: str | None = None,
    ) -> None:
        self.http.json(
            "POST",
            self.http.url("runs", run_id, "batch"),
            json={
                "metrics": [m.to_dict() for m in metrics],
                "params": params or {},
                "tags": tags or {},
            },
            headers={"Idempotency-Key": request_id or uuid.uuid4().hex},
            idempotent=True,
            not_found=RunNotFound,
        )

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        doc = self.http.json(
            "GET", self.http.url("runs", run_id, "metrics", key), not_found=RunNotFound
        )
        return [Metric.from_dict(m) for m in doc["metrics"]]

    def search_runs(
        self,
        *,
        experiment_ids: list[str],
        filters: Sequence[Filter] = (),
        order_by: Sequence[OrderBy] = (),
        max_results: int = 1000,
        offset: int = 0,
        view: ViewType = ViewType.ACTIVE_ONLY,
    ) -> Page:
        body: dict[str, Any] = {
            "experiment_ids": list(experiment_ids),
            "filter": filter_text(filters) or None,
            "order_by": [order_by_text(o) for o in order_by],
            "max_results": max_results,
            "page_token": page_token(offset) if offset else None,
        }
        if view is not ViewType.ACTIVE_ONLY:  # servers before lifecycle stages know no "view"
            body["view"] = view.value
        doc = self.http.json(
            "POST",
            self.http.url("runs", "search"),
            json=body,
            idempotent=True,  # a search changes nothing
            not_found=ExperimentNotFound,
        )
        runs = [Run.from_dict(r) for r in doc["runs"]]
        return Page(runs, offset + max_results if doc.get("next_page_token") else None)

    def close(self) -> None:
        """Release this store's share of the process's session with the server."""
        release(self.http)


class RestRunArtifacts:
    """Run artifacts kept by a tracking server: uploaded file by file (streamed), downloaded
    into ``MLREG_HOME/cache/runs/<run id>`` when a local path is asked for."""

    def __init__(self, http: Http, cache: Path) -> None:
        self.http = http
        self.cache = cache

    def _url(self, run: RunInfo, *parts: str) -> str:
        return self.http.url("runs", run.run_id, "artifacts", *parts)

    def log_file(self, run: RunInfo, local_file: Path, artifact_path: str | None) -> None:
        target = f"{artifact_path}/{local_file.name}" if artifact_path else local_file.name

        def body() -> Any:
            return local_file.open("rb")

        self.http.json(
            "PUT",
            self._url(run, target),
            data=body,
            headers={"Content-Type": "application/octet-stream"},
            not_found=RunNotFound,
            timeout=3600,
        )

    def log_dir(self, run: RunInfo, local_dir: Path, artifact_path: str | None) -> None:
        for rel, path in model_files(local_dir):
            parent = rel.rpartition("/")[0]
            parts = [p for p in (artifact_path, parent) if p]
            self.log_file(run, path, "/".join(parts) or None)

    def list(self, run: RunInfo, path: str | None = None) -> list[FileInfo]:
        params = {"path": path} if path else None
        doc = self.http.json("GET", self._url(run), params=params, not_found=RunNotFound)
        files = [FileInfo(f["path"], f["is_dir"], f.get("size")) for f in doc["files"]]
        if path and not files:
            raise ArtifactNotFound(f"no artifact {path!r} in run {run.run_id}")
        return files

    def local_path(self, run: RunInfo, path: str | None = None) -> Path:
        entries = self.list(run, path)  # ArtifactNotFound if there is nothing at path
        single = len(entries) == 1 and not entries[0].is_dir and entries[0].path == path
        target = self.cache / run.run_id / "artifacts" / (path or "")
        scratch = self.cache / run.run_id / f".tmp-{uuid.uuid4().hex}"
        try:
            if single:
                assert path is not None
                self._download_file(run, path, scratch)
            else:
                self._download_dir(run, entries, scratch)
            if target.is_dir():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            scratch.replace(target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return target

    def _download_dir(self, run: RunInfo, entries: list[FileInfo], dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        for entry in entries:
            child = dest / entry.path.rsplit("/", 1)[-1]
            if entry.is_dir:
                self._download_dir(run, self.list(run, entry.path), child)
            else:
                self._download_file(run, entry.path, child)

    def _download_file(self, run: RunInfo, path: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with dest.open("wb") as out:
            for chunk in self.open(run, path).chunks:
                out.write(chunk)

    def open(self, run: RunInfo, path: str, start: int = 0, end: int | None = None) -> Stream:
        return open_remote(self.http, self._url(run, path), start, end)

    def delete(self, run: RunInfo, path: str) -> None:
        self.http.json("DELETE", self._url(run, path), not_found=RunNotFound)
