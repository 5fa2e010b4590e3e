"""The MLmodel format: Model, signature and schema types, input examples, env files."""

from mlreg.models.infer import infer_signature
from mlreg.models.model import Model
from mlreg.models.signature import (
    ColSpec,
    ModelSignature,
    ParamSchema,
    ParamSpec,
    Schema,
    TensorSpec,
)

__all__ = [
    "ColSpec",
    "Model",
    "ModelSignature",
    "ParamSchema",
    "ParamSpec",
    "Schema",
    "TensorSpec",
    "infer_signature",
]
