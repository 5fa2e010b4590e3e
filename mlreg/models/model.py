"""The ``MLmodel`` file: MLflow's YAML description of a saved model directory.

Keys we do not know (written by MLflow or other tools) are kept as they were, so a
model read and written by mlreg is still a valid model for them.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from mlreg.errors import MLmodelError, ModelNotFound
from mlreg.models.signature import ModelSignature, ParamSchema, Schema
from mlreg.version import __version__

MLMODEL_FILE = "MLmodel"
#: An MLmodel file is a few kilobytes (a big signature: tens); parsing YAML is slow and
#: memory-hungry, so anything past this is refused unread.
MAX_MLMODEL_BYTES = 4 << 20

_KNOWN = (
    "artifact_path",
    "flavors",
    "model_uuid",
    "run_id",
    "utc_time_created",
    "signature",
    "saved_input_example_info",
    "model_size_bytes",
    "metadata",
    "mlreg_version",
)


@cache
def _validator() -> jsonschema.protocols.Validator:
    text = resources.files("mlreg.schemas").joinpath("mlmodel.schema.json").read_text()
    schema = json.loads(text)
    return jsonschema.Draft202012Validator(schema)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


class Model:
    """An MLmodel file in memory."""

    def __init__(
        self,
        artifact_path: str | None = None,
        flavors: dict[str, dict[str, Any]] | None = None,
        model_uuid: str | None = None,
        run_id: str | None = None,
        utc_time_created: str | None = None,
        signature: ModelSignature | None = None,
        saved_input_example_info: dict[str, Any] | None = None,
        model_size_bytes: int | None = None,
        metadata: dict[str, Any] | None = None,
        mlreg_version: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.artifact_path = artifact_path
        self.flavors = dict(flavors or {})
        self.model_uuid = model_uuid or uuid.uuid4().hex
        self.run_id = run_id
        self.utc_time_created = utc_time_created or _now()
        self.signature = signature
        self.saved_input_example_info = saved_input_example_info
        self.model_size_bytes = model_size_bytes
        self.metadata = metadata
        self.mlreg_version = mlreg_version or __version__
        self.extra = dict(extra or {})

    # --- flavors ---

    def add_flavor(self, name: str, **conf: Any) -> Model:
        self.flavors[name] = conf
        return self

    def flavor(self, name: str) -> dict[str, Any]:
        """Return one flavor's section, or say which flavors the model has."""
        if name not in self.flavors:
            raise MLmodelError(
                f"model has no {name!r} flavor; it has: {', '.join(sorted(self.flavors)) or 'none'}"
            )
        return self.flavors[name]

    def get_input_example_info(self) -> dict[str, Any] | None:
        return self.saved_input_example_info

    # MLflow's accessors of the signature's parts (None when the model has no signature).

    def get_input_schema(self) -> Schema | None:
        return self.signature.inputs if self.signature is not None else None

    def get_output_schema(self) -> Schema | None:
        return self.signature.outputs if self.signature is not None else None

    def get_params_schema(self) -> ParamSchema | None:
        return self.signature.params if self.signature is not None else None

    # --- (de)serialisation ---

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = dict(self.extra)
        doc.update(
            {
                "flavors": self.flavors,
                "model_uuid": self.model_uuid,
                "utc_time_created": self.utc_time_created,
                "mlreg_version": self.mlreg_version,
            }
        )
        optional = {
            "artifact_path": self.artifact_path,
            "run_id": self.run_id,
            "signature": self.signature.to_dict() if self.signature is not None else None,
            "saved_input_example_info": self.saved_input_example_info,
            "model_size_bytes": self.model_size_bytes,
            "metadata": self.metadata,
        }
        doc.update({k: v for k, v in optional.items() if v is not None})
        return doc

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), default_flow_style=False, sort_keys=True)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the MLmodel file into directory ``path`` (or to ``path`` if it names the file)."""
        target = Path(path)
        if target.is_dir():
            target = target / MLMODEL_FILE
        target.write_text(self.to_yaml())
        return target

    @classmethod
    def from_dict(cls, doc: dict[str, Any], source: str = MLMODEL_FILE) -> Model:
        if "utc_time_created" in doc:
            doc = {**doc, "utc_time_created": _as_str(doc["utc_time_created"])}
        errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
        if errors:
            err = errors[0]
            where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
            raise MLmodelError(f"{source}: {where}: {err.message}")
        signature = None
        if doc.get("signature") is not None:
            try:
                signature = ModelSignature.from_dict(doc["signature"])
            except MLmodelError as e:
                raise MLmodelError(f"{source}: {e.message}") from None
        return cls(
            artifact_path=doc.get("artifact_path"),
            flavors=doc["flavors"],
            model_uuid=doc.get("model_uuid"),
            run_id=doc.get("run_id"),
            utc_time_created=doc.get("utc_time_created"),
            signature=signature,
            saved_input_example_info=doc.get("saved_input_example_info"),
            model_size_bytes=doc.get("model_size_bytes"),
            metadata=doc.get("metadata"),
            mlreg_version=doc.get("mlreg_version"),
            extra={k: v for k, v in doc.items() if k not in _KNOWN},
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Model:
        """Read ``path/MLmodel`` (or the file ``path``), validating it against the schema."""
        target = Path(path)
        if target.is_dir():
            target = target / MLMODEL_FILE
        if not target.is_file():
            raise ModelNotFound(f"no MLmodel file at {target}")
        size = target.stat().st_size
        if size > MAX_MLMODEL_BYTES:
            raise MLmodelError(
                f"{target}: {size} bytes is larger than any MLmodel file needs "
                f"(the limit is {MAX_MLMODEL_BYTES}); refusing to parse it"
            )
        try:
            doc = yaml.safe_load(target.read_text())
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise MLmodelError(f"{target}: not valid YAML{where}") from None
        except UnicodeDecodeError:
            raise MLmodelError(f"{target}: not a text file") from None
        except RecursionError:
            raise MLmodelError(f"{target}: nested too deeply to be an MLmodel file") from None
        if not isinstance(doc, dict):
            kind = "empty" if doc is None else f"a {type(doc).__name__}"
            raise MLmodelError(f"{target}: expected a mapping of MLmodel keys, the file is {kind}")
        return cls.from_dict(doc, source=str(target))

    def __repr__(self) -> str:
        return f"Model(flavors={sorted(self.flavors)}, model_uuid={self.model_uuid!r})"


def _as_str(value: Any) -> str | None:
    # YAML may turn an unquoted timestamp into a datetime; MLflow writes it as a string.
    if value is None or isinstance(value, str):
        return value
    return str(value)
