"""``log_model``: save a model into the active run's artifacts, optionally register it."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlreg.models.model import Model
from mlreg.models.signature import ModelSignature
from mlreg.registry import ModelVersion, default_client
from mlreg.store.validation import safe_relpath
from mlreg.tensorflow.flavor import save_model
from mlreg.tracking import fluent


@dataclass(frozen=True)
class ModelInfo:
    """Where a logged model lives: ``model_uri`` is ``runs:/<run_id>/<name>``."""

    run_id: str
    artifact_path: str
    model_uri: str
    metadata: Model
    registered_model_version: ModelVersion | None = None


def log_model(
    model: Any,
    name: str = "model",
    signature: ModelSignature | None = None,
    input_example: Any = None,
    registered_model_name: str | None = None,
    pip_requirements: list[str] | str | None = None,
    extra_pip_requirements: list[str] | str | None = None,
    metadata: dict[str, Any] | None = None,
) -> ModelInfo:
    """Save ``model`` as artifact ``name`` of the active run (one is started if none is)."""
    safe_relpath(name)
    run_id = fluent.active_run_id()
    with tempfile.TemporaryDirectory(prefix="mlreg-log-model-") as tmp:
        target = Path(tmp) / "model"
        mlmodel = save_model(
            model,
            target,
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
            metadata=metadata,
        )
        mlmodel.run_id = run_id
        mlmodel.artifact_path = name
        mlmodel.save(target)
        fluent.client().log_artifacts(run_id, target, name)
    uri = f"runs:/{run_id}/{name}"
    version = None
    if registered_model_name is not None:
        version = default_client().register_model(uri, registered_model_name, run_id=run_id)
    return ModelInfo(run_id, name, uri, mlmodel, version)
