"""mlreg.registry: registered models, versions, stages and aliases on SQL + an artifact store."""

from mlreg.registry.client import (
    MlregClient,
    default_client,
    register_model,
    reset_default_client,
    resolve_registry_uri,
)
from mlreg.registry.entities import ModelVersion, RegisteredModel, Stage, VersionStatus
from mlreg.registry.settings import RegistrySettings
from mlreg.uris import register_scheme

register_scheme("models", resolve_registry_uri)

__all__ = [
    "MlregClient",
    "ModelVersion",
    "RegisteredModel",
    "RegistrySettings",
    "Stage",
    "VersionStatus",
    "default_client",
    "register_model",
    "reset_default_client",
]
