"""The tensorflow flavor's ``serving`` section: the SavedModel export TensorFlow Serving loads.

``mlreg.tensorflow.save_model`` writes that export at ``<path>/<version>`` inside the model
directory (TF Serving's versioned layout) and records here which of its signatures to call
and how the MLmodel's input and output names map onto that signature's names. The local
backend calls the same export in-process; the tfserving backend checks that TF Serving serves
a matching one; TF Serving's REST route answers under its signature name. Nothing here
imports TensorFlow, so the server's routes read it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from mlreg.errors import MLmodelError
from mlreg.models.model import Model

#: The flavor that holds the section (MLflow's name for TensorFlow and Keras models).
FLAVOR = "tensorflow"
EXPORT_DIR = "tfserving"
EXPORT_VERSION = 1
DEFAULT_SIGNATURE = "serving_default"

_WHERE = f"flavors.{FLAVOR}.serving"


@dataclass(frozen=True)
class ServingExport:
    """Where the export is, which signature serves, and the names on either side of it.

    ``inputs`` and ``outputs`` map the MLmodel's names (what requests use) onto the
    signature's argument and output names; an empty mapping means the names are the same.
    """

    inputs: Mapping[str, str] = field(default_factory=dict)
    outputs: Mapping[str, str] = field(default_factory=dict)
    path: str = EXPORT_DIR
    version: int = EXPORT_VERSION
    signature_name: str = DEFAULT_SIGNATURE

    def __post_init__(self) -> None:
        # Frozen means the mappings too: read-only views of private copies.
        object.__setattr__(self, "inputs", MappingProxyType(dict(self.inputs)))
        object.__setattr__(self, "outputs", MappingProxyType(dict(self.outputs)))

    @property
    def saved_model_dir(self) -> str:
        """The SavedModel directory relative to the model directory, e.g. ``tfserving/1``."""
        return f"{self.path}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """The section as the MLmodel file holds it."""
        return {
            "path": self.path,
            "version": self.version,
            "signature_name": self.signature_name,
            "inputs": dict(self.inputs),
            "outputs": dict(self.outputs),
        }

    @classmethod
    def from_dict(cls, doc: Any) -> ServingExport:
        """Read a ``serving`` section; MLmodelError naming the field when it is malformed."""
        if not isinstance(doc, Mapping):
            raise MLmodelError(f"{_WHERE}: expected a mapping, got {_kind(doc)}")
        missing = [k for k in ("path", "version", "inputs", "outputs") if k not in doc]
        if missing:
            raise MLmodelError(f"{_WHERE}: missing {', '.join(map(repr, missing))}")
        path, version = doc["path"], doc["version"]
        if not isinstance(path, str) or not path.strip():
            raise MLmodelError(f"{_WHERE}.path: expected a directory name, got {path!r}")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise MLmodelError(f"{_WHERE}.version: expected an integer >= 1, got {version!r}")
        name = doc.get("signature_name", DEFAULT_SIGNATURE)
        if not isinstance(name, str) or not name:
            raise MLmodelError(f"{_WHERE}.signature_name: expected a name, got {name!r}")
        return cls(
            inputs=_names(doc["inputs"], "inputs"),
            outputs=_names(doc["outputs"], "outputs"),
            path=path,
            version=version,
            signature_name=name,
        )

    @classmethod
    def from_flavor(cls, conf: Mapping[str, Any]) -> ServingExport | None:
        """The export a tensorflow flavor section describes; None without one (MLflow's models)."""
        doc = conf.get("serving")
        return None if doc is None else cls.from_dict(doc)

    @classmethod
    def of(cls, model: Model) -> ServingExport | None:
        """The model's export; None without a tensorflow flavor or a ``serving`` section."""
        conf = model.flavors.get(FLAVOR)
        return cls.from_flavor(conf) if isinstance(conf, Mapping) else None


def _names(value: Any, key: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise MLmodelError(f"{_WHERE}.{key}: expected a mapping of names, got {_kind(value)}")
    bad = [k for k, v in value.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise MLmodelError(
            f"{_WHERE}.{key}: expected names (strings) on both sides, got {bad[0]!r}: "
            f"{value[bad[0]]!r}"
        )
    return dict(value)


def _kind(value: Any) -> str:
    return "nothing" if value is None else f"a {type(value).__name__}"


__all__ = ["DEFAULT_SIGNATURE", "EXPORT_DIR", "EXPORT_VERSION", "FLAVOR", "ServingExport"]
