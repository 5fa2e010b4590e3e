"""What the server predicts with: a Backend. ``local`` runs the model in-process through pyfunc;
``tfserving`` checks requests here and forwards the tensors to TensorFlow Serving over gRPC.
Both implement the same protocol, so the routes, codecs and runner never change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

from mlreg.errors import InvalidInput
from mlreg.models.model import Model
from mlreg.models.signature import ModelSignature
from mlreg.pyfunc import load_model
from mlreg.serving.metrics import Metrics
from mlreg.serving.settings import ServingSettings
from mlreg.uris import ResolvedModel, resolve_model_uri


class Backend(Protocol):
    """The model as the server sees it (``mlreg.pyfunc.PyFuncModel`` is one)."""

    metadata: Model
    source: ResolvedModel

    @property
    def signature(self) -> ModelSignature | None: ...

    @property
    def serving_input_example(self) -> str | None: ...

    def enforce(self, data: Any, params: dict[str, Any] | None = None) -> tuple[Any, dict]: ...

    def predict_unchecked(self, data: Any, params: dict[str, Any] | None = None) -> Any: ...

    # A backend that computes in another server (tfserving) also has
    # ``unready_reason() -> str | None``: None when that server can answer now, else why not.


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
    model = load_model(source.path)
    # Keep what the registry said (name, version, stage, digest), not just the path.
    model.source = dataclasses.replace(source)
    return model


def load_tfserving(
    settings: ServingSettings, source: ResolvedModel | None, metrics: Metrics
) -> Backend:
    """Connect to TensorFlow Serving (the gRPC stubs are imported only for this backend)."""
    from mlreg.serving.tfserving import load_tfserving

    return load_tfserving(settings, source, metrics)


Loader = Callable[[ServingSettings, ResolvedModel | None, Metrics], Backend]
BACKENDS: dict[str, Loader] = {"local": load_local, "tfserving": load_tfserving}


def load_backend(
    settings: ServingSettings, source: ResolvedModel | None, metrics: Metrics
) -> Backend:
    """Load the backend ``settings.backend`` names."""
    return BACKENDS[settings.backend](settings, source, metrics)


__all__ = ["BACKENDS", "Backend", "load_backend", "load_local", "load_tfserving", "model_source"]
