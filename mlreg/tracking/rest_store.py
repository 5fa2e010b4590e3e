"""Tracking's store and run artifacts over a tracking server's REST API (``/api/v1``).

:class:`RestTrackingStore` implements :class:`~mlreg.tracking.store.TrackingStore` and
:class:`RestRunArtifacts` implements :class:`~mlreg.tracking.artifacts.RunArtifacts`, so the
fluent API, autologging and ``runs:/`` URIs work unchanged against a server. A ``log_batch``
carries an idempotency key: a retry after a lost answer writes nothing twice.
"""

from __future__ import annotations

import math
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlreg.errors import (
    ArtifactNotFound,
    ExperimentNotFound,
    InvalidInput,
    ModelNotFound,
    RunNotFound,
    TagNotFound,
)
from mlreg.models.files import model_files
from mlreg.store.files import FileInfo, Stream
from mlreg.store.http import Http, open_remote, release
from mlreg.store.pages import Page, page_token
from mlreg.tracking.artifacts import ArtifactOwner
from mlreg.tracking.entities import (
    DatasetInput,
    Experiment,
    Lifecycle,
    LoggedModel,
    LoggedModelStatus,
    Metric,
    MetricSummary,
    ModelOutput,
    Run,
    RunStatus,
    ViewType,
    thinned,
)
from mlreg.tracking.search import Filter, OrderBy, filter_text, order_by_text


class RestTrackingStore:
    """Experiments and runs kept by a tracking server."""

    def __init__(self, http: Http) -> None:
        self.http = http

    def create_experiment(
        self, name: str, artifact_location: str, now: int, experiment_id: int | None = None
    ) -> Experiment:
        # The server decides where the experiment's artifacts live, and its id.
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
        self,
        *,
        name_like: str | None = None,
        max_results: int = 100,
        offset: int = 0,
        filters: Sequence[Filter] = (),
        order_by: Sequence[OrderBy] = (),
        view: ViewType = ViewType.ACTIVE_ONLY,
    ) -> Page:
        params: list[tuple[str, Any]] = [
            ("max_results", max_results),
            ("view", view.value),
            *[("order_by", order_by_text(o)) for o in order_by],
        ]
        if offset:
            params.append(("page_token", page_token(offset)))
        if name_like:
            params.append(("name_like", name_like))
        if filters:
            params.append(("filter", filter_text(filters)))
        doc = self.http.json("GET", self.http.url("experiments"), params=params)
        items = [Experiment.from_dict(e) for e in doc["experiments"]]
        return Page(items, offset + max_results if doc.get("next_page_token") else None)

    def update_experiment(
        self,
        experiment_id: str,
        now: int,
        *,
        name: str | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> Experiment:
        url = self.http.url("experiments", experiment_id)
        if name is not None:
            self.http.json("PATCH", url, json={"name": name}, not_found=ExperimentNotFound)
        if lifecycle is Lifecycle.DELETED:
            self.http.json("DELETE", url, not_found=ExperimentNotFound)
        elif lifecycle is Lifecycle.ACTIVE:
            self.http.json("POST", url + "/restore", not_found=ExperimentNotFound, idempotent=True)
        return self.get_experiment(experiment_id)

    def set_experiment_tag(self, experiment_id: str, key: str, value: str | None) -> None:
        url = self.http.url("experiments", experiment_id, "tags", key)
        if value is None:
            self.http.json("DELETE", url, not_found=TagNotFound)
        else:
            self.http.json("PUT", url, json={"value": value}, not_found=ExperimentNotFound)

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
                "start_time": start_time,
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
            json={"status": status.value, "end_time": end_time},
            not_found=RunNotFound,
            idempotent=True,
        )

    def update_run_info(
        self, run_id: str, *, run_name: str | None = None, lifecycle: Lifecycle | None = None
    ) -> None:
        url = self.http.url("runs", run_id)
        if run_name is not None:
            self.http.json(
                "PATCH", url, json={"run_name": run_name}, not_found=RunNotFound, idempotent=True
            )
        if lifecycle is Lifecycle.DELETED:
            self.http.json("DELETE", url, not_found=RunNotFound)
        elif lifecycle is Lifecycle.ACTIVE:
            self.http.json("POST", url + "/restore", not_found=RunNotFound, idempotent=True)

    def delete_run_tag(self, run_id: str, key: str) -> None:
        self.http.json("DELETE", self.http.url("runs", run_id, "tags", key), not_found=TagNotFound)

    def log_inputs(
        self, run_id: str, datasets: Sequence[DatasetInput], model_ids: Sequence[str]
    ) -> None:
        self.http.json(
            "POST",
            self.http.url("runs", run_id, "inputs"),
            json={"datasets": [d.to_dict() for d in datasets], "models": list(model_ids)},
            not_found=RunNotFound,
            idempotent=True,  # recording the same inputs twice changes nothing
        )

    def log_outputs(self, run_id: str, outputs: Sequence[ModelOutput]) -> None:
        self.http.json(
            "POST",
            self.http.url("runs", run_id, "outputs"),
            json={"models": [o.to_dict() for o in outputs]},
            not_found=RunNotFound,
            idempotent=True,
        )

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        *,
        request_id: str | None = None,
        allow_ended: bool = False,
    ) -> None:
        self.http.json(
            "POST",
            self.http.url("runs", run_id, "batch"),
            json={
                "metrics": [m.to_dict() for m in metrics],
                "params": params or {},
                "tags": tags or {},
                "allow_ended": allow_ended,
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

    def get_metric_histories(
        self, run_ids: Sequence[str], key: str, max_points: int | None = None
    ) -> dict[str, list[Metric]]:
        # One request per run: the server's pages call its SQL store, which asks once.
        found = {}
        for run_id in run_ids:
            try:
                history = self.get_metric_history(run_id, key)
            except RunNotFound:
                continue
            if history:
                found[run_id] = thinned(history, max_points)
        return found

    def get_metric_summaries(self, run_id: str) -> list[MetricSummary]:
        run = self.get_run(run_id)
        summaries = []
        for key in sorted(run.data.metrics):
            history = self.get_metric_history(run_id, key)
            values = [m.value for m in history if not math.isnan(m.value)]
            summaries.append(
                MetricSummary(
                    key,
                    len(history),
                    min(values) if values else None,
                    max(values) if values else None,
                    max((m.step for m in history), default=0),
                )
            )
        return summaries

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

    # --- logged models -------------------------------------------------------------------

    def create_logged_model(
        self,
        experiment_id: str,
        name: str,
        artifact_root: str,
        now: int,
        *,
        source_run_id: str | None = None,
        model_type: str | None = None,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> LoggedModel:
        doc = self.http.json(
            "POST",
            self.http.url("logged-models"),
            json={
                "experiment_id": experiment_id,
                "name": name,
                "source_run_id": source_run_id,
                "model_type": model_type,
                "params": dict(params or {}),
                "tags": dict(tags or {}),
            },
            not_found=ExperimentNotFound,
        )
        return LoggedModel.from_dict(doc["logged_model"])

    def get_logged_model(self, model_id: str) -> LoggedModel:
        doc = self.http.json(
            "GET",
            self.http.url("logged-models", model_id),
            params={"allow_deleted": "true"},
            not_found=ModelNotFound,
        )
        return LoggedModel.from_dict(doc["logged_model"])

    def update_logged_model(
        self,
        model_id: str,
        now: int,
        *,
        status: LoggedModelStatus | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> LoggedModel:
        url = self.http.url("logged-models", model_id)
        if status is not None:
            self.http.json("PATCH", url, json={"status": status.value}, not_found=ModelNotFound)
        if lifecycle is Lifecycle.DELETED:
            self.http.json("DELETE", url, not_found=ModelNotFound)
        elif lifecycle is not None:
            raise InvalidInput("a deleted logged model cannot be restored")
        return self.get_logged_model(model_id)

    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, str | None]) -> None:
        for key, value in tags.items():
            url = self.http.url("logged-models", model_id, "tags", key)
            if value is None:
                self.http.json("DELETE", url, not_found=TagNotFound)
            else:
                self.http.json("PUT", url, json={"value": value}, not_found=ModelNotFound)

    def log_logged_model_params(self, model_id: str, params: Mapping[str, str]) -> None:
        self.http.json(
            "POST",
            self.http.url("logged-models", model_id, "params"),
            json={"params": dict(params)},
            not_found=ModelNotFound,
            idempotent=True,  # a param that is already there with the same value is a no-op
        )

    def search_logged_models(
        self,
        *,
        experiment_ids: list[str],
        filters: Sequence[Filter] = (),
        order_by: Sequence[OrderBy] = (),
        max_results: int = 100,
        offset: int = 0,
    ) -> Page:
        doc = self.http.json(
            "POST",
            self.http.url("logged-models", "search"),
            json={
                "experiment_ids": list(experiment_ids),
                "filter": filter_text(filters) or None,
                "order_by": [
                    {"field_name": o.key, "ascending": not o.descending} for o in order_by
                ],
                "max_results": max_results,
                "page_token": page_token(offset) if offset else None,
            },
            idempotent=True,
            not_found=ExperimentNotFound,
        )
        items = [LoggedModel.from_dict(m) for m in doc["logged_models"]]
        return Page(items, offset + max_results if doc.get("next_page_token") else None)

    def record_artifact(self, run_id: str, action: str, path: str, detail: dict[str, Any]) -> None:
        """Nothing: the server records the upload or deletion it receives, as the caller."""

    def close(self) -> None:
        """Release this store's share of the process's session with the server."""
        release(self.http)


class RestRunArtifacts:
    """Run artifacts kept by a tracking server: uploaded file by file (streamed), downloaded
    into ``MLREG_HOME/cache/runs/<run id>`` when a local path is asked for."""

    def __init__(self, http: Http, cache: Path) -> None:
        self.http = http
        self.cache = cache

    def _url(self, run: ArtifactOwner, *parts: str) -> str:
        kind = "logged-models" if isinstance(run, LoggedModel) else "runs"
        return self.http.url(kind, run.owner_id, "artifacts", *parts)

    def log_file(self, run: ArtifactOwner, local_file: Path, artifact_path: str | None) -> None:
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

    def log_dir(self, run: ArtifactOwner, local_dir: Path, artifact_path: str | None) -> None:
        for rel, path in model_files(local_dir):
            parent = rel.rpartition("/")[0]
            parts = [p for p in (artifact_path, parent) if p]
            self.log_file(run, path, "/".join(parts) or None)

    def list(self, run: ArtifactOwner, path: str | None = None) -> list[FileInfo]:
        params = {"path": path} if path else None
        # The caller found the owner already: a 404 here is about the path.
        doc = self.http.json("GET", self._url(run), params=params, not_found=ArtifactNotFound)
        files = [FileInfo(f["path"], f["is_dir"], f.get("size")) for f in doc["files"]]
        if path and not files:
            raise ArtifactNotFound(f"no artifact {path!r} in run {run.owner_id}")
        return files

    def local_path(self, run: ArtifactOwner, path: str | None = None) -> Path:
        entries = self.list(run, path)  # ArtifactNotFound if there is nothing at path
        single = len(entries) == 1 and not entries[0].is_dir and entries[0].path == path
        target = self.cache / run.owner_id / "artifacts" / (path or "")
        scratch = self.cache / run.owner_id / f".tmp-{uuid.uuid4().hex}"
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

    def _download_dir(self, run: ArtifactOwner, entries: list[FileInfo], dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        for entry in entries:
            child = dest / entry.path.rsplit("/", 1)[-1]
            if entry.is_dir:
                self._download_dir(run, self.list(run, entry.path), child)
            else:
                self._download_file(run, entry.path, child)

    def _download_file(self, run: ArtifactOwner, path: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with dest.open("wb") as out:
            for chunk in self.open(run, path).chunks:
                out.write(chunk)

    def open(self, run: ArtifactOwner, path: str, start: int = 0, end: int | None = None) -> Stream:
        return open_remote(self.http, self._url(run, path), start, end)

    def delete(self, run: ArtifactOwner, path: str) -> None:
        self.http.json("DELETE", self._url(run, path), not_found=RunNotFound)
