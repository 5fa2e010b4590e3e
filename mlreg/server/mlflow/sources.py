"""Where the files of a version MLflow's clients register come from.

MLflow's ``create_model_version`` only records a ``source`` URI; mlreg's registry holds the
files themselves. The server copies them from what it already keeps into the registry's
artifact store (digest computed on the way), so the version is READY, checked on every load
and servable, like one registered with mlreg's own client:

- ``mlflow-artifacts:/<experiment>/<run>/artifacts/<path>`` and
  ``mlflow-artifacts:/<experiment>/models/<model id>/artifacts`` (the artifact proxy's paths);
- ``runs:/<run id>/<path>`` (a run's artifacts, or the logged model of that run and name);
- ``models:/<model id>`` (an MLflow 3 logged model), ``models:/<name>/<version>`` and the
  other ``models:/`` forms (a registered version, e.g. to copy it).
"""

from __future__ import annotations

from pathlib import Path

from mlreg.errors import InvalidInput, MLmodelError
from mlreg.models.model import Model
from mlreg.registry.service import MODELS_SCHEME, RegistryService
from mlreg.server.mlflow import paths
from mlreg.tracking.service import RUNS_SCHEME, TrackingService

LOGGED_MODEL_PREFIX = "m-"
MLMODEL = "MLmodel"


def source_directory(source: str, tracking: TrackingService, registry: RegistryService) -> Path:
    """A local directory holding the model ``source`` names (downloaded from S3 if needed)."""
    if source.startswith(paths.SCHEME):
        location = paths.locate(paths.proxy_path(source), tracking, registry)
        if location.version is not None:
            directory = registry.artifacts.get_version(location.version)
            return directory / location.path if location.path else directory
        assert location.owner is not None
        return tracking.artifacts.local_path(location.owner, location.path)
    if source.startswith(RUNS_SCHEME):
        return tracking.resolve(source).path
    if source.startswith(MODELS_SCHEME):
        rest = source[len(MODELS_SCHEME) :].strip("/")
        if rest.startswith(LOGGED_MODEL_PREFIX) and "/" not in rest and "@" not in rest:
            return tracking.artifacts.local_path(tracking.get_logged_model(rest), None)
        return registry.resolve(source).path
    raise InvalidInput(
        f"source {source!r}: mlreg server registers model files it holds; use an "
        "mlflow-artifacts:/ URI of a run's or logged model's files, runs:/<run id>/<path>, "
        "models:/<logged model id> or models:/<name>/<version>"
    )


def check_model(directory: Path, source: str) -> Model:
    """The MLmodel of the directory (a registered version is a model, not any files)."""
    if not (directory / MLMODEL).is_file():
        raise InvalidInput(f"source {source!r} holds no MLmodel file; register a model directory")
    try:
        return Model.load(directory)
    except MLmodelError as e:
        raise InvalidInput(f"source {source!r}: {e.message}") from None
