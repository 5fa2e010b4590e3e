"""What the server predicts with: a Backend. ``local`` runs the model in-process through pyfunc.

A second backend (forwarding tensors to TensorFlow Serving over gRPC) implements the same
protocol and registers in ``BACKENDS``; the routes, codecs and runner never change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

from mlreg.errors import InvalidInput
from mlreg.models.model import Model
from mlreg.models.signature import ModelSignature
from mlreg.pyfunc import load_model
from mlreg.serving.settings import ServingSettings
from mlreg.uris import ResolvedModel


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


def load_local(settings: ServingSettings, source: ResolvedModel | None) -> Backend:
    """Load the model in this process (imports TensorFlow: call it after the fork)."""
    if source is None:
        if not settings.model_uri:
            raise InvalidInput("no model to serve: pass -m URI or set MLREG_MODEL_URI")
        return load_model(settings.model_uri)
    model = load_model(source.path)
    # Keep what the registry said (name, version, stage, digest), not just the path.
    model.source = dataclasses.replace(source)
    return model


BACKENDS: dict[str, Callable[[ServingSettings, ResolvedModel | None], Backend]] = {
    "local": load_local,
}


def load_backend(settings: ServingSettings, source: ResolvedModel | None = None) -> Backend:
    """Load the backend ``settings.backend`` names."""
    return BACKENDS[settings.backend](settings, source)


__all__ = ["BACKENDS", "Backend", "load_backend", "load_local"]
