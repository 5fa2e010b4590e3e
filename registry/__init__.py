"""mlreg.registry: registered models, versions, stages and aliases on SQL + an artifact store."""

from mlreg.registry.client import (
    MlregClient,
    default_client,
    register_model,
    reset_default_client,
    resolve_registry_uri,
)
from mlreg.registry.entities import ModelVersion, RegisteredModel, Stage, VersionStatus
from mlreg.store.pages import Page

__all__ = [
    "MlregClient",
    "ModelVersion",
    "Page",
    "RegisteredModel",
    "Stage",
    "VersionStatus",
    "default_client",
    "register_model",
    "reset_default_client",
    "resolve_registry_uri",
]
