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
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from mlreg.errors import (
    AlreadyExists,
    ArtifactNotFound,
    ExperimentNotFound,
    InvalidInput,
)
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
from mlreg.tracking.artifacts import ArtifactOwner, RunArtifacts
from mlreg.tracking.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    Lifecycle,
    Metric,
    MetricSummary,
    ModelOutput,
    Run,
    RunInfo,
    RunStatus,
    ViewType,
)
from mlreg.tracking.logged_models import LoggedModelRules, check_lengths, now_ms
from mlreg.tracking.search import (
    Filter,
    parse_experiment_filter,
    parse_experiment_order_by,
    parse_filter,
    parse_order_by,
)
from mlreg.tracking.store import DEFAULT_EXPERIMENT, DEFAULT_EXPERIMENT_ID, TrackingStore
from mlreg.uris import ResolvedModel, local_path

MAX_BATCH = 1000
MAX_SEARCH = 50_000
RUNS_SCHEME = "runs:/"
USER_TAG = "mlreg.user"
PARENT_TAG = "mlreg.parentRunId"
#: Limits on what describes a dataset (MLflow's), checked before anything is written.
DATASET_LIMITS = {
    "name": 500,
    "digest": 64,
    "source_type": 64,
    "source": 65_535,
    "schema": 1_048_576,
    "profile": 16_384,
}


class TrackingService(LoggedModelRules):
    """Experiments and runs (and logged models) over a tracking store and a run-artifact
    store."""

    def __init__(
        self,
        store: TrackingStore,
        artifacts: RunArtifacts,
        user: str,
        artifact_root: str,
        logged_model_root: str,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.user = user
        #: Where new experiments put their runs' artifacts.
        self.artifact_root = artifact_root
        #: Where logged models keep their files.
        self.logged_model_root = logged_model_root

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
        # The default experiment has id 0 (MLflow's clients assume it), others count from 1.
        wanted = int(DEFAULT_EXPERIMENT_ID) if name == DEFAULT_EXPERIMENT else None
        exp = self.store.create_experiment(name, self.artifact_root, now_ms(), wanted)
        for key, value in clean.items():
            self.store.set_experiment_tag(exp.experiment_id, key, value)
        return exp.experiment_id

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.store.get_experiment_by_name(name)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.store.get_experiment(experiment_id)

    def search_experiments(
        self,
        name_like: str | None = None,
        max_results: int = 100,
        offset: int = 0,
        *,
        filter_string: str | None = None,
        order_by: list[str] | str | None = None,
        view: ViewType | str | None = None,
    ) -> Page:
        """Experiments by name pattern (SQL LIKE) and MLflow's filter syntax (``name``,
        ``tags.<key>``, ``creation_time``, ``last_update_time``), oldest first by default."""
        check_paging(max_results, offset)
        return self.store.search_experiments(
            name_like=name_like,
            max_results=max_results,
            offset=offset,
            filters=parse_experiment_filter(filter_string),
            order_by=parse_experiment_order_by(order_by),
            view=ViewType.parse(view),
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
        """The default experiment (id 0, created as "Default" on first use)."""
        try:
            return self.store.get_experiment(DEFAULT_EXPERIMENT_ID).experiment_id
        except ExperimentNotFound:
            return self.get_or_create_experiment(DEFAULT_EXPERIMENT)

    def active_experiment(self, experiment_id: str) -> Experiment:
        """The experiment, refused if it is deleted (it takes no new runs or models)."""
        experiment = self.store.get_experiment(experiment_id)
        if experiment.lifecycle_stage is not Lifecycle.ACTIVE:
            raise InvalidInput(
                f"experiment {experiment_id} ({experiment.name!r}) is deleted; restore it first"
            )
        return experiment

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        validate_key("tag", key)
        self.store.set_experiment_tag(
            experiment_id, key, value_text("tag", key, value, MAX_TAG_VALUE)
        )

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove a tag (TagNotFound if it is not set)."""
        self.store.set_experiment_tag(experiment_id, validate_key("tag", key), None)

    def rename_experiment(self, experiment_id: str, new_name: str) -> Experiment:
        validate_text_name("experiment", new_name, MAX_EXPERIMENT_NAME)
        return self.store.update_experiment(experiment_id, now_ms(), name=new_name)

    def delete_experiment(self, experiment_id: str) -> Experiment:
        """Mark an experiment and its runs deleted (kept, and restorable)."""
        if str(experiment_id) == DEFAULT_EXPERIMENT_ID:
            raise InvalidInput("the default experiment (id 0) cannot be deleted")
        return self.store.update_experiment(experiment_id, now_ms(), lifecycle=Lifecycle.DELETED)

    def restore_experiment(self, experiment_id: str) -> Experiment:
        return self.store.update_experiment(experiment_id, now_ms(), lifecycle=Lifecycle.ACTIVE)

    # --- runs ----------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str | None = None,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
        *,
        start_time: int | None = None,
    ) -> Run:
        """Start a run (in the default experiment unless one is named; never in a deleted
        one), recorded as started at ``start_time`` (epoch ms; now by default)."""
        if run_name is not None:
            validate_text_name("run", run_name, MAX_RUN_NAME)
        clean = validate_tags(tags)
        experiment_id = experiment_id or self.default_experiment_id()
        if parent_run_id:
            self.store.get_run(parent_run_id)
            clean[PARENT_TAG] = parent_run_id
        # Who started the run is the service's user, never a tag the caller sent: on a server
        # with authentication that is the signed-in user.
        clean[USER_TAG] = self.user
        experiment = self.active_experiment(experiment_id)
        started = now_ms() if start_time is None else _time_ms("start_time", start_time)
        return self.store.create_run(
            experiment_id, run_name, started, clean, parent_run_id, experiment.artifact_location
        )

    def get_run(self, run_id: str) -> Run:
        return self.store.get_run(run_id)

    def set_terminated(
        self,
        run_id: str,
        status: RunStatus | str = RunStatus.FINISHED,
        end_time: int | None = None,
    ) -> None:
        ended = now_ms() if end_time is None else _time_ms("end_time", end_time)
        self.store.update_run(run_id, RunStatus(status), ended)

    def reopen(self, run_id: str) -> Run:
        """Resume a finished run: it takes logs again."""
        self.store.update_run(run_id, RunStatus.RUNNING, None)
        return self.store.get_run(run_id)

    def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> Run:
        """Rename a run and/or set its status (RUNNING takes it up again; an ended status
        records ``end_time``, now by default)."""
        if run_name is not None:
            validate_text_name("run", run_name, MAX_RUN_NAME)
        if status is not None:
            parsed = _run_status(status)
            if parsed is RunStatus.RUNNING:
                self.store.update_run(run_id, parsed, None)
            else:
                self.set_terminated(run_id, parsed, end_time)
        if run_name is not None:
            self.store.update_run_info(run_id, run_name=run_name)
        return self.store.get_run(run_id)

    def delete_run(self, run_id: str) -> None:
        """Mark a run deleted (MLflow's semantics): searches leave it out, it takes no logs,
        ``get_run`` still finds it, its artifacts stay, and :meth:`restore_run` brings it
        back."""
        self.store.update_run_info(run_id, lifecycle=Lifecycle.DELETED)

    def restore_run(self, run_id: str) -> None:
        self.store.update_run_info(run_id, lifecycle=Lifecycle.ACTIVE)

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag of a run (TagNotFound if it is not set)."""
        self.store.delete_run_tag(run_id, validate_key("tag", key))

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
        allow_ended: bool = False,
    ) -> None:
        """Validate everything first, then write it in one transaction per 1000 metrics.

        With ``request_id`` a retried call writes nothing twice (each chunk remembers it). A
        run that ended takes no more metrics or params, unless ``allow_ended`` (MLflow's
        clients log to finished runs, and MLflow lets them).
        """
        ts = now_ms()
        clean_metrics = []
        for m in metrics:
            key, value, step, timestamp = (
                (m.key, m.value, m.step, m.timestamp) if isinstance(m, Metric) else m
            )
            validate_key("metric", key)
            extra = (
                (m.model_id, m.dataset_name, m.dataset_digest)
                if isinstance(m, Metric)
                else (None, None, None)
            )
            check_lengths(
                f"metric {key!r}",
                {
                    "model_id": (extra[0], 64),
                    "dataset_name": (extra[1], 500),
                    "dataset_digest": (extra[2], 64),
                },
            )
            clean_metrics.append(
                Metric(
                    key,
                    validate_metric_value(key, value),
                    int(timestamp or ts),
                    validate_step(key, step),
                    *extra,
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
                allow_ended=allow_ended,
            )

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        return self.store.get_metric_history(run_id, validate_key("metric", key))

    def get_metric_histories(
        self, run_ids: list[str], key: str, max_points: int | None = None
    ) -> dict[str, list[Metric]]:
        """``key``'s history for each of ``run_ids`` in one question to the store (runs that
        logged none are absent), at most ``max_points`` evenly spaced points a run."""
        validate_key("metric", key)
        if max_points is not None and max_points < 1:
            raise InvalidInput(f"max_points must be at least 1, got {max_points}")
        return self.store.get_metric_histories(run_ids, key, max_points) if run_ids else {}

    def get_metric_summaries(self, run_id: str) -> list[MetricSummary]:
        """Count, min, max and last step of each metric the run logged, by key."""
        return self.store.get_metric_summaries(run_id)

    # --- inputs and outputs --------------------------------------------------------------

    def log_inputs(
        self,
        run_id: str,
        datasets: list[DatasetInput] | None = None,
        model_ids: list[str] | None = None,
    ) -> None:
        """Record the datasets (with the tags of their use) and logged models a run used."""
        for used in datasets or []:
            _check_dataset(used.dataset)
            validate_tags(used.tags)
        self.store.log_inputs(run_id, datasets or [], model_ids or [])

    def log_outputs(self, run_id: str, outputs: list[ModelOutput]) -> None:
        """Record the logged models a run produced (and at which step)."""
        for out in outputs:
            validate_step("model output", out.step)
        self.store.log_outputs(run_id, outputs)

    # --- artifacts -----------------------------------------------------------------------
    # Runs keep files, and so do logged models: the calls that take an ``owner`` take either
    # (a RunInfo or a LoggedModel); the others name a run by its id.

    def _run_info(self, run_id: str) -> RunInfo:
        return self.store.get_run(run_id).info

    def log_owner_file(
        self, owner: ArtifactOwner, local_file: Path, artifact_path: str | None = None
    ) -> None:
        """Copy one file into the artifacts of a run or a logged model (a run's is recorded on
        the audit trail)."""
        if not local_file.is_file():
            raise ArtifactNotFound(f"cannot log artifact {local_file}: no such file")
        path = safe_relpath(artifact_path) if artifact_path else None
        self.artifacts.log_file(owner, local_file, path)
        if isinstance(owner, RunInfo):
            where = f"{path}/{local_file.name}" if path else local_file.name
            self.store.record_artifact(
                owner.run_id, "artifact.logged", where, {"size": local_file.stat().st_size}
            )

    def list_owner_artifacts(self, owner: ArtifactOwner, path: str | None = None) -> list[FileInfo]:
        return self.artifacts.list(owner, safe_relpath(path) if path else None)

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
        where = f"{path}/{source.name}" if path else source.name
        self.store.record_artifact(
            run_id, "artifact.logged", where, {"size": source.stat().st_size}
        )

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        source = Path(local_dir)
        if not source.is_dir():
            raise ArtifactNotFound(f"cannot log artifacts from {source}: no such directory")
        path = safe_relpath(artifact_path) if artifact_path else None
        self.artifacts.log_dir(self._run_info(run_id), source, path)
        files = [p for p in source.rglob("*") if p.is_file()]
        self.store.record_artifact(
            run_id,
            "artifact.logged",
            path or ".",
            {"files": len(files), "size": sum(p.stat().st_size for p in files)},
        )

    def delete_artifact(self, run_id: str, path: str) -> None:
        """Remove an artifact file or directory of a run (recorded on the audit trail)."""
        relpath = safe_relpath(path)
        self.artifacts.delete(self._run_info(run_id), relpath)
        self.store.record_artifact(run_id, "artifact.deleted", relpath, {})

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
        """Runs of the experiments matching MLflow's filter syntax, active ones unless
        ``view`` says otherwise; ``attributes.user_id`` is who started the run."""
        if not 1 <= max_results <= MAX_SEARCH:
            raise InvalidInput(f"max_results must be between 1 and {MAX_SEARCH}, got {max_results}")
        filters = [
            Filter("tags", USER_TAG, f.op, f.value)
            if (f.kind, f.key) == ("attributes", "user_id")
            else f
            for f in parse_filter(filter_string)
        ]
        return self.store.search_runs(
            experiment_ids=experiment_ids or [self.default_experiment_id()],
            filters=filters,
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
        path = path.rstrip("/")
        try:
            model_dir = self.artifact_path(run_id, path)
        except ArtifactNotFound:
            # MLflow 3 keeps a run's models as logged models named by the artifact path.
            logged = self.logged_model_for_run(run_id, path)
            if logged is None:
                raise
            model_dir = self.artifacts.local_path(logged, None)
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


def _time_ms(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"{name}: expected milliseconds since the epoch, got {value!r}")
    return value


def _run_status(value: RunStatus | str) -> RunStatus:
    try:
        return RunStatus(value)
    except ValueError:
        choices = ", ".join(s.value for s in RunStatus)
        raise InvalidInput(f"invalid run status {value!r}; expected one of {choices}") from None


def _check_dataset(dataset: Dataset) -> None:
    for name, limit in DATASET_LIMITS.items():
        value = getattr(dataset, name)
        required = name in ("name", "digest", "source_type", "source")
        if value is None and not required:
            continue
        if not isinstance(value, str) or (required and not value) or len(value) > limit:
            raise InvalidInput(
                f"dataset {dataset.name!r}: {name} must be text of "
                f"{'1-' if required else 'at most '}{limit} characters"
            )
