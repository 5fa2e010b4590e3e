"""Where MLflow's clients find files: ``mlflow-artifacts:`` URIs and the paths of the artifact
proxy, mapped onto the files mlreg keeps (no second store).

- ``<experiment id>/<run id>/artifacts/<path>``: a run's artifacts;
- ``<experiment id>/models/<model id>/artifacts/<path>``: a logged model's files;
- ``registry/<model name>/<version>/<path>``: a registered version's files (read-only).

The experiment id in a path must be the run's (or logged model's) experiment: permissions
are checked on the experiment a path names.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from mlreg.errors import ArtifactNotFound, InvalidInput
from mlreg.registry.entities import ModelVersion, VersionStatus
from mlreg.registry.service import RegistryService
from mlreg.store.validation import safe_relpath, validate_version
from mlreg.tracking.artifacts import ArtifactOwner
from mlreg.tracking.service import TrackingService

SCHEME = "mlflow-artifacts:"
REGISTRY = "registry"


def experiment_uri(experiment_id: str) -> str:
    return f"{SCHEME}/{experiment_id}"


def run_uri(experiment_id: str, run_id: str) -> str:
    return f"{SCHEME}/{experiment_id}/{run_id}/artifacts"


def logged_model_uri(experiment_id: str, model_id: str) -> str:
    return f"{SCHEME}/{experiment_id}/models/{model_id}/artifacts"


def version_uri(name: str, version: int) -> str:
    return f"{SCHEME}/{REGISTRY}/{name}/{version}"


def proxy_path(uri: str) -> str:
    """The proxy path of an ``mlflow-artifacts:`` URI (with or without a host)."""
    return urlparse(uri).path.strip("/")


@dataclass(frozen=True)
class Location:
    """What a proxy path names: files of a run or logged model (``owner``) or of a registered
    version (``version``), and the path below that root (None: the root itself)."""

    path: str | None
    owner: ArtifactOwner | None = None
    version: ModelVersion | None = None


def locate(path: str, tracking: TrackingService, registry: RegistryService) -> Location:
    """The files a proxy path names; ArtifactNotFound (saying which paths exist) otherwise."""
    path = path.strip("/")
    if path:
        safe_relpath(path)
    parts = path.split("/") if path else []
    rest = lambda n: "/".join(parts[n:]) or None  # noqa: E731
    if len(parts) >= 3 and parts[0] == REGISTRY:
        version = registry.get_model_version(parts[1], validate_version(parts[2]))
        if version.status is not VersionStatus.READY:
            raise ArtifactNotFound(
                f"version {version.version} of {version.name!r} is {version.status.value}; "
                "it has no files yet"
            )
        return Location(rest(3), version=version)
    if len(parts) >= 3 and parts[0].isdigit() and parts[2] == "artifacts":
        info = tracking.get_run(parts[1]).info
        _same_experiment(parts[0], info.experiment_id, f"run {info.run_id}")
        return Location(rest(3), owner=info)
    if len(parts) >= 4 and parts[0].isdigit() and parts[1] == "models" and parts[3] == "artifacts":
        model = tracking.get_logged_model(parts[2])
        _same_experiment(parts[0], model.experiment_id, f"logged model {model.model_id}")
        return Location(rest(4), owner=model)
    raise ArtifactNotFound(
        f"no artifact location {path!r}: mlreg serves <experiment id>/<run id>/artifacts/…, "
        "<experiment id>/models/<model id>/artifacts/… and registry/<model>/<version>/…"
    )


def _same_experiment(named: str, actual: str, what: str) -> None:
    if named != actual:
        raise ArtifactNotFound(f"{what} is in experiment {actual}, not {named}")


def writable(location: Location) -> ArtifactOwner:
    """The owner whose files a write goes to (registered versions are never written)."""
    if location.owner is None:
        raise InvalidInput(
            "a registered version's files cannot be changed; register a new version instead"
        )
    return location.owner
