"""What the server predicts with: a Backend. ``local`` runs the model in-process through pyfunc;
``tfserving`` checks requests here and forwards the tensors to TensorFlow Serving over gRPC.
Both implement the same protocol, so the routes, codecs and runner never change.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any, Protocol

from mlreg.errors import InvalidInput
from mlreg.models.model import Model
from mlreg.models.serving_export import ServingExport
from mlreg.models.signature import ModelSignature, Schema
from mlreg.pyfunc import load_model
from mlreg.serving.metrics import Metrics
from mlreg.serving.settings import ServingSettings
from mlreg.uris import ResolvedModel, resolve_model_uri

#: The name of a model's one unnamed tensor input when nothing gives it another (MLflow's
#: models without a SavedModel export).
UNNAMED_INPUT = "input"


class Backend(Protocol):
    """The model as the server sees it (``mlreg.pyfunc.PyFuncModel`` is one)."""

    @property
    def metadata(self) -> Model:
        """The MLmodel file: flavors, signature, run id, model uuid."""

    @property
    def source(self) -> ResolvedModel:
        """Where the model came from: its URI and, from the registry, name, version, digest."""

    @property
    def signature(self) -> ModelSignature | None:
        """The signature requests are checked against; None when the model has none."""

    @property
    def serving_input_example(self) -> str | None:
        """The saved example request body (JSON text); None when the model has none."""

    @property
    def remote(self) -> bool:
        """True when another server computes the predictions (its outages are not ours)."""

    def enforce(self, data: Any, params: dict[str, Any] | None = None) -> tuple[Any, dict]:
        """The data and params checked and converted per the signature; raises SchemaError."""

    def predict_unchecked(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """The prediction for enforced data; raises ModelExecutionError, or a remote's error.

        A remote backend maps its server's failures onto BackendUnavailable, Timeout,
        BackendError, InvalidInput and ModelNotFound.
        """

    def unready_reason(self) -> str | None:
        """None when a prediction can be answered now; else why not (what /ping reports)."""


def input_schema(backend: Backend) -> Schema | None:
    """The schema requests are decoded for; None when the model has no signature."""
    signature = backend.signature
    return signature.inputs if signature is not None else None


def tensor_names(backend: Backend) -> list[str] | None:
    """The names a request may give the model's tensor inputs: the signature's, or for one
    unnamed tensor the name its SavedModel signature gives it (what V2 clients must send, and
    the only name a named form may use); None for a column signature or none at all."""
    signature = backend.signature
    if signature is None or not signature.inputs.is_tensor_spec():
        return None
    if signature.inputs.has_input_names():
        return signature.inputs.input_names()
    export = ServingExport.of(backend.metadata)
    names = list(export.inputs) if export is not None else []
    return names if len(names) == 1 else [UNNAMED_INPUT]


def version_of(source: ResolvedModel) -> str:
    """The registry version a model came from, as the metrics and headers show it ("" for a
    model served from a directory)."""
    return str(source.version) if source.version is not None else ""


def model_source(settings: ServingSettings, source: ResolvedModel | None) -> ResolvedModel:
    """Where the model is: as ``mlreg serve`` resolved it, else from MLREG_MODEL_URI."""
    if source is not None:
        return source
    if not settings.model_uri:
        raise InvalidInput("no model to serve: pass -m URI or set MLREG_MODEL_URI")
    return resolve_model_uri(settings.model_uri)


def load_local(
    settings: ServingSettings, source: ResolvedModel | None, metrics: Metrics
) -> Backend:
    """Load the model in this process (imports TensorFlow: call it after the fork)."""
    source = model_source(settings, source)
    model = load_model(source.path, xla_max_batch=settings.xla_max_batch)
    # Keep what the registry said (name, version, stage, digest), not just the path.
    model.source = dataclasses.replace(source)
    return model


#: Makes the backend a ServingSettings names; called in the worker, after the fork.
Loader = Callable[[ServingSettings, ResolvedModel | None, Metrics], Backend]
#: One loader per name in mlreg.serving.settings.BACKENDS, as "module:function": a backend's
#: module (TF Serving's gRPC stubs, TensorFlow) is imported only when it is used.
LOADERS: dict[str, str] = {
    "local": "mlreg.serving.backends:load_local",
    "tfserving": "mlreg.serving.tfserving:connect",
}


def load_backend(
    settings: ServingSettings, source: ResolvedModel | None, metrics: Metrics
) -> Backend:
    """Load the backend ``settings.backend`` names."""
    module, _, function = LOADERS[settings.backend].partition(":")
    loader: Loader = getattr(importlib.import_module(module), function)
    return loader(settings, source, metrics)


__all__ = [
    "LOADERS",
    "Backend",
    "Loader",
    "input_schema",
    "load_backend",
    "load_local",
    "model_source",
    "tensor_names",
    "version_of",
]
