"""The MLmodel format: Model, signature and schema types, input examples, env files."""

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
    "ModelSignature",
    "ParamSchema",
    "ParamSpec",
    "Schema",
    "TensorSpec",
]
