"""Tracking's rules, free of any transport: experiments, runs, logging, artifacts, runs:/ URIs.

The service talks to persistence only through :class:`~mlreg.tracking.store.TrackingStore`
and to files through :class:`~mlreg.tracking.artifacts.RunArtifacts`, so REST clients of a
tracking server can replace the SQL store and the local files without touching anything
here. Everything is validated before anything is written.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from mlreg.errors import AlreadyExists, ArtifactNotFound, InvalidInput
from mlreg.store.files import FileInfo
from mlreg.store.pages import Page, check_paging
from mlreg.store.validation import (
    MAX_EXPERIMENT_NAME,
    MAX_RUN_NAME,
    MAX_TAG_VALUE,
    safe_relpath,
    validate_key,
    validate_metric_value,
    validate_params,
    validate_step,
    validate_tags,
    validate_text_name,
    value_text,
)
from mlreg.tracking.artifacts import RunArtifacts
from mlreg.tracking.entities import (
    Experiment,
    Lifecycle,
    Metric,
    Run,
    RunInfo,
    RunStatus,
    ViewType,
)
from mlreg.tracking.search import parse_filter, parse_order_by
from mlreg.tracking.store import DEFAULT_EXPERIMENT, TrackingStore
from mlreg.uris import ResolvedModel, local_path

MAX_BATCH = 1000
MAX_SEARCH = 50_000
RUNS_SCHEME = "runs:/"
USER_TAG = "mlreg.user"
PARENT_TAG = "mlreg.parentRunId"


def now_ms() -> int:
    return int(time.time() * 1000)


class TrackingService:
    """Experiments and runs over a tracking store and a run-artifact store."""

    def __init__(
        self, store: TrackingStore, artifacts: RunArtifacts, user: str, artifact_root: str
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.user = user
        #: Where new experiments put their runs' artifacts.
        self.artifact_root = artifact_root

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> TrackingService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- experiments ---------------------------------------------------------------------

    def create_experiment(self, name: str, tags: Mapping[str, Any] | None = None) -> str:
        validate_text_name("experiment", name, MAX_EXPERIMENT_NAME)
        clean = validate_tags(tags)
        exp = self.store.create_experiment(name, self.artifact_root, now_ms())
        for key, value in clean.items():
            self.store.set_experiment_tag(exp.experiment_id, key, value)
        return exp.experiment_id

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.store.get_experiment_by_name(name)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.store.get_experiment(experiment_id)

    def search_experiments(
        self, name_like: str | None = None, max_results: int = 100, offset: int = 0
    ) -> Page:
        check_paging(max_results, offset)
        return self.store.search_experiments(
            name_like=name_like, max_results=max_results, offset=offset
        )

    def get_or_create_experiment(self, name: str) -> str:
        exp = self.store.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        try:
            return self.create_experiment(name)
        except AlreadyExists:  # created concurrently by another process
            found = self.store.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def default_experiment_id(self) -> str:
        return self.get_or_create_experiment(DEFAULT_EXPERIMENT)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        validate_key("tag", key)
        self.store.set_experiment_tag(
            experiment_id, key, value_text("tag", key, value, MAX_TAG_VALUE)
        )

    # --- runs ----------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str | None = None,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
    ) -> Run:
        if run_name is not None:
            validate_text_name("run", run_name, MAX_RUN_NAME)
        clean = validate_tags(tags)
        experiment_id = experiment_id or self.default_experiment_id()
        if parent_run_id:
            self.store.get_run(parent_run_id)
            clean[PARENT_TAG] = parent_run_id
        clean.setdefault(USER_TAG, self.user)
        experiment = self.store.get_experiment(experiment_id)
        return self.store.create_run(
            experiment_id, run_name, now_ms(), clean, parent_run_id, experiment.artifact_location
        )

    def get_run(self, run_id: str) -> Run:
        return self.store.get_run(run_id)

    def set_terminated(self, run_id: str, status: RunStatus | str = RunStatus.FINISHED) -> None:
        self.store.update_run(run_id, RunStatus(status), now_ms())

    def reopen(self, run_id: str) -> Run:
        """Resume a finished run: it takes logs again."""
        self.store.update_run(run_id, RunStatus.RUNNING, None)
        return self.store.get_run(run_id)

    def delete_run(self, run_id: str) -> None:
        """Mark a run deleted (MLflow's semantics): searches leave it out, ``get_run`` still
        finds it, its artifacts stay, and :meth:`restore_run` brings it back."""
        self.store.update_run_info(run_id, lifecycle=Lifecycle.DELETED)

    def restore_run(self, run_id: str) -> None:
        self.store.update_run_info(run_id, lifecycle=Lifecycle.ACTIVE)

    # --- logging -------------------------------------------------------------------------

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        self.log_batch(run_id, params={key: value})

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: Any,
        step: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        self.log_batch(run_id, metrics=[(key, value, step, timestamp)])

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self.log_batch(run_id, tags={key: value})

    def log_batch(
        self,
        run_id: str,
        metrics: Iterable[Metric | tuple[str, Any, int | None, int | None]] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        *,
        request_id: str | None = None,
    ) -> None:
        """Validate everything first, then write it in one transaction per 1000 metrics.

        With ``request_id`` a retried call writes nothing twice (each chunk remembers it).
        """
        ts = now_ms()
        clean_metrics = []
        for m in metrics:
            key, value, step, timestamp = (
                (m.key, m.value, m.step, m.timestamp) if isinstance(m, Metric) else m
            )
            validate_key("metric", key)
            clean_metrics.append(
                Metric(
                    key,
                    validate_metric_value(key, value),
                    int(timestamp or ts),
                    validate_step(key, step),
                )
            )
        clean_params = validate_params(params)
        clean_tags = validate_tags(tags)
        for start in range(0, max(len(clean_metrics), 1), MAX_BATCH):
            chunk = clean_metrics[start : start + MAX_BATCH]
            first = start == 0
            self.store.log_batch(
                run_id,
                chunk,
                clean_params if first else None,
                clean_tags if first else None,
                request_id=f"{request_id}:{start}" if request_id else None,
            )

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        return self.store.get_metric_history(run_id, validate_key("metric", key))

    # --- artifacts -----------------------------------------------------------------------

    def _run_info(self, run_id: str) -> RunInfo:
        return self.store.get_run(run_id).info

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        source = Path(local_path)
        if not source.exists():
            raise ArtifactNotFound(f"cannot log artifact {source}: no such file")
        if not source.is_file():
            raise InvalidInput(f"cannot log artifact {source}: not a regular file")
        path = safe_relpath(artifact_path) if artifact_path else None
        self.artifacts.log_file(self._run_info(run_id), source, path)

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        source = Path(local_dir)
        if not source.is_dir():
            raise ArtifactNotFound(f"cannot log artifacts from {source}: no such directory")
        path = safe_relpath(artifact_path) if artifact_path else None
        self.artifacts.log_dir(self._run_info(run_id), source, path)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        path = safe_relpath(path) if path else None
        return self.artifacts.list(self._run_info(run_id), path)

    def artifact_path(self, run_id: str, path: str | None = None) -> Path:
        """A local file or directory holding the run's artifact at ``path`` (downloaded if
        the artifacts are remote); ArtifactNotFound."""
        path = safe_relpath(path) if path else None
        return self.artifacts.local_path(self._run_info(run_id), path)

    def _log_written(self, run_id: str, artifact_file: str, write: Callable[[Path], None]) -> None:
        """Write one artifact with ``write(path)`` into a scratch file, then log it."""
        relpath = safe_relpath(artifact_file)
        parent, _, name = relpath.rpartition("/")
        with tempfile.TemporaryDirectory(prefix="mlreg-artifact-") as tmp:
            target = Path(tmp) / name
            write(target)
            self.log_artifact(run_id, target, parent or None)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self._log_written(run_id, artifact_file, lambda p: p.write_text(text, encoding="utf-8"))

    def log_dict(self, run_id: str, dictionary: Mapping[str, Any], artifact_file: str) -> None:
        if artifact_file.endswith((".yaml", ".yml")):
            text = yaml.safe_dump(dict(dictionary), sort_keys=False)
        else:
            text = json.dumps(dictionary, indent=2, default=str)
        self.log_text(run_id, text, artifact_file)

    def log_image(self, run_id: str, image: Any, artifact_file: str) -> None:
        """Save a PIL image or a numpy array (HxW, HxWx3, HxWx4; uint8, or floats in [0, 1])."""
        pil = _as_pil_image(image)
        self._log_written(run_id, artifact_file, pil.save)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None:
        """Save a matplotlib figure (format from the file extension)."""
        if not hasattr(figure, "savefig"):
            raise InvalidInput(f"expected a matplotlib figure, got {type(figure).__name__}")
        self._log_written(run_id, artifact_file, figure.savefig)

    # --- search --------------------------------------------------------------------------

    def search_runs(
        self,
        experiment_ids: list[str] | None = None,
        filter_string: str | None = None,
        order_by: list[str] | str | None = None,
        max_results: int = 1000,
        offset: int = 0,
        view: ViewType | str | int | None = None,
    ) -> list[Run]:
        return self.search_runs_page(
            experiment_ids, filter_string, order_by, max_results, offset, view
        ).items

    def search_runs_page(
        self,
        experiment_ids: list[str] | None = None,
        filter_string: str | None = None,
        order_by: list[str] | str | None = None,
        max_results: int = 1000,
        offset: int = 0,
        view: ViewType | str | int | None = None,
    ) -> Page:
        if not 1 <= max_results <= MAX_SEARCH:
            raise InvalidInput(f"max_results must be between 1 and {MAX_SEARCH}, got {max_results}")
        return self.store.search_runs(
            experiment_ids=experiment_ids or [self.default_experiment_id()],
            filters=parse_filter(filter_string),
            order_by=parse_order_by(order_by),
            max_results=max_results,
            offset=offset,
            view=ViewType.parse(view),
        )

    # --- runs:/ URIs ---------------------------------------------------------------------

    def resolve(self, uri: str) -> ResolvedModel:
        """``runs:/<run_id>/<path>`` -> the model directory inside that run's artifacts."""
        rest = uri[len(RUNS_SCHEME) :].lstrip("/") if uri.startswith(RUNS_SCHEME) else ""
        run_id, _, path = rest.partition("/")
        if not run_id or not path:
            raise InvalidInput(f"invalid run URI {uri!r}: expected runs:/<run_id>/<artifact path>")
        model_dir = self.artifact_path(run_id, path.rstrip("/"))
        return ResolvedModel(path=local_path(str(model_dir)), uri=uri)


def _as_pil_image(image: Any) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    arr = np.asarray(image)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise InvalidInput(f"image must be HxW, HxWx1, HxWx3 or HxWx4, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if arr.size and (np.nanmin(arr) < 0 or np.nanmax(arr) > 1 or math.isnan(float(arr.sum()))):
            raise InvalidInput("float image values must lie in [0, 1]")
        arr = (arr * 255).round().astype(np.uint8)
    elif arr.dtype != np.uint8:
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise InvalidInput("integer image values must lie in [0, 255]")
        arr = arr.astype(np.uint8)
    return Image.fromarray(arr[:, :, 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr)
