"""``TrackingClient``: experiments, runs and everything a run logs, by explicit run id."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from mlreg.errors import InvalidInput, ModelNotFound
from mlreg.registry.settings import RegistrySettings
from mlreg.registry.validation import safe_relpath
from mlreg.tracking.entities import Experiment, Metric, Run, RunStatus
from mlreg.tracking.search import parse_filter, parse_order_by
from mlreg.tracking.store import DEFAULT_EXPERIMENT, SqlTrackingStore, metric_value
from mlreg.uris import ResolvedModel, local_path

_KEY = re.compile(r"^[\w\-. /]{1,250}$")
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_BATCH = 1000


def now_ms() -> int:
    return int(time.time() * 1000)


def validate_key(kind: str, key: Any) -> str:
    """Keys: 1-250 of letters, digits, '_', '-', '.', ' ' and '/', and never a path escape."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise InvalidInput(
            f"invalid {kind} key {key!r}: use 1-250 letters, digits, '_', '-', '.', ' ' or '/'"
        )
    if key.startswith("/") or ".." in key.split("/"):
        raise InvalidInput(f"invalid {kind} key {key!r}: it must not look like a path escape")
    return key


def _text(kind: str, key: str, value: Any, limit: int) -> str:
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value)
        if isinstance(value, dict | list)
        else str(value)
    )
    if len(text) > limit:
        raise InvalidInput(f"{kind} {key!r}: value is {len(text)} characters; the limit is {limit}")
    return text


class TrackingClient:
    """Tracking on the registry's database and artifact root (same MLREG_* settings)."""

    def __init__(self, settings: RegistrySettings | None = None) -> None:
        self.settings = settings or RegistrySettings.from_env()
        self.store = SqlTrackingStore(self.settings.registry_uri)
        self.runs_root = self.settings.artifact_root / "runs"

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> TrackingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- experiments ---------------------------------------------------------------------

    def create_experiment(self, name: str, tags: Mapping[str, Any] | None = None) -> str:
        if not isinstance(name, str) or not name.strip() or len(name) > 256:
            raise InvalidInput(f"invalid experiment name {name!r}: 1-256 characters")
        exp = self.store.create_experiment(name, str(self.runs_root), now_ms())
        for key, value in (tags or {}).items():
            self.set_experiment_tag(exp.experiment_id, key, value)
        return exp.experiment_id

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.store.get_experiment_by_name(name)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.store.get_experiment(experiment_id)

    def get_or_create_experiment(self, name: str) -> str:
        exp = self.store.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        try:
            return self.create_experiment(name)
        except Exception:  # created concurrently by another process
            found = self.store.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def default_experiment_id(self) -> str:
        return self.get_or_create_experiment(DEFAULT_EXPERIMENT)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        validate_key("tag", key)
        self.store.set_experiment_tag(experiment_id, key, _text("tag", key, value, MAX_TAG_VALUE))

    # --- runs ----------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str | None = None,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
    ) -> Run:
        experiment_id = experiment_id or self.default_experiment_id()
        clean = {
            validate_key("tag", k): _text("tag", k, v, MAX_TAG_VALUE)
            for k, v in (tags or {}).items()
        }
        if parent_run_id:
            self.store.get_run(parent_run_id)
            clean["mlreg.parentRunId"] = parent_run_id
        clean.setdefault("mlreg.user", self.settings.user)
        if run_name is not None and (not run_name.strip() or len(run_name) > 250):
            raise InvalidInput(f"invalid run name {run_name!r}: 1-250 characters")
        return self.store.create_run(
            experiment_id, run_name, now_ms(), clean, parent_run_id, str(self.runs_root)
        )

    def get_run(self, run_id: str) -> Run:
        return self.store.get_run(run_id)

    def set_terminated(self, run_id: str, status: RunStatus | str = RunStatus.FINISHED) -> None:
        self.store.update_run(run_id, RunStatus(status), now_ms())

    def reopen(self, run_id: str) -> Run:
        """Resume a finished run: it takes logs again."""
        self.store.update_run(run_id, RunStatus.RUNNING, None)
        return self.store.get_run(run_id)

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
    ) -> None:
        """Validate everything first, then write it in one transaction."""
        ts = now_ms()
        clean_metrics = []
        for m in metrics:
            key, value, step, timestamp = (
                (m.key, m.value, m.step, m.timestamp) if isinstance(m, Metric) else m
            )
            validate_key("metric", key)
            if step is not None and (
                isinstance(step, bool) or not isinstance(step, int | np.integer)
            ):
                raise InvalidInput(f"metric {key!r}: step must be an integer, got {step!r}")
            clean_metrics.append(
                Metric(key, metric_value(value, key), int(timestamp or ts), int(step or 0))
            )
        clean_params = {
            validate_key("param", k): _text("param", k, v, MAX_PARAM_VALUE)
            for k, v in (params or {}).items()
        }
        clean_tags = {
            validate_key("tag", k): _text("tag", k, v, MAX_TAG_VALUE)
            for k, v in (tags or {}).items()
        }
        for start in range(0, max(len(clean_metrics), 1), MAX_BATCH):
            chunk = clean_metrics[start : start + MAX_BATCH]
            first = start == 0
            self.store.log_batch(
                run_id, chunk, clean_params if first else None, clean_tags if first else None
            )

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        return self.store.get_metric_history(run_id, key)

    # --- artifacts -----------------------------------------------------------------------

    def artifact_dir(self, run_id: str, artifact_path: str | None = None) -> Path:
        root = Path(self.get_run(run_id).info.artifact_uri)
        return root / safe_relpath(artifact_path) if artifact_path else root

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        source = Path(local_path)
        if not source.is_file():
            raise ModelNotFound(f"cannot log artifact {source}: no such file")
        dest = self.artifact_dir(run_id, artifact_path)
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest / source.name)

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        source = Path(local_dir)
        if not source.is_dir():
            raise ModelNotFound(f"cannot log artifacts from {source}: no such directory")
        shutil.copytree(source, self.artifact_dir(run_id, artifact_path), dirs_exist_ok=True)

    def _artifact_file(self, run_id: str, artifact_file: str) -> Path:
        target = self.artifact_dir(run_id, artifact_file)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self._artifact_file(run_id, artifact_file).write_text(text, encoding="utf-8")

    def log_dict(self, run_id: str, dictionary: Mapping[str, Any], artifact_file: str) -> None:
        target = self._artifact_file(run_id, artifact_file)
        if target.suffix in (".yaml", ".yml"):
            target.write_text(yaml.safe_dump(dict(dictionary), sort_keys=False))
        else:
            target.write_text(json.dumps(dictionary, indent=2, default=str))

    def log_image(self, run_id: str, image: Any, artifact_file: str) -> None:
        """Save a PIL image or a numpy array (HxW, HxWx3, HxWx4; uint8, or floats in [0, 1])."""
        if not isinstance(image, Image.Image):
            arr = np.asarray(image)
            if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
                raise InvalidInput(
                    f"image must be HxW, HxWx1, HxWx3 or HxWx4, got shape {arr.shape}"
                )
            if arr.dtype.kind == "f":
                if arr.size and (
                    np.nanmin(arr) < 0 or np.nanmax(arr) > 1 or math.isnan(float(arr.sum()))
                ):
                    raise InvalidInput("float image values must lie in [0, 1]")
                arr = (arr * 255).round().astype(np.uint8)
            elif arr.dtype != np.uint8:
                if arr.size and (arr.min() < 0 or arr.max() > 255):
                    raise InvalidInput("integer image values must lie in [0, 255]")
                arr = arr.astype(np.uint8)
            image = Image.fromarray(arr[:, :, 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr)
        image.save(self._artifact_file(run_id, artifact_file))

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None:
        """Save a matplotlib figure (format from the file extension)."""
        if not hasattr(figure, "savefig"):
            raise InvalidInput(f"expected a matplotlib figure, got {type(figure).__name__}")
        figure.savefig(self._artifact_file(run_id, artifact_file))

    # --- search --------------------------------------------------------------------------

    def search_runs(
        self,
        experiment_ids: list[str] | None = None,
        filter_string: str | None = None,
        order_by: list[str] | str | None = None,
        max_results: int = 1000,
        offset: int = 0,
    ) -> list[Run]:
        if not 1 <= max_results <= 50_000:
            raise InvalidInput(f"max_results must be between 1 and 50000, got {max_results}")
        ids = experiment_ids or [self.default_experiment_id()]
        runs, _ = self.store.search_runs(
            ids, parse_filter(filter_string), parse_order_by(order_by), max_results, offset
        )
        return runs

    # --- runs:/ URIs ---------------------------------------------------------------------

    def resolve(self, uri: str) -> ResolvedModel:
        """``runs:/<run_id>/<path>`` -> the model directory inside that run's artifacts."""
        rest = uri[len("runs:/") :].lstrip("/")
        run_id, _, path = rest.partition("/")
        if not run_id or not path:
            raise InvalidInput(f"invalid run URI {uri!r}: expected runs:/<run_id>/<artifact path>")
        model_dir = self.artifact_dir(run_id, path.rstrip("/"))
        return ResolvedModel(path=local_path(str(model_dir)), uri=uri)
