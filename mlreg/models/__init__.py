"""The MLmodel format: Model, signature and schema types, input examples, env files."""

from mlreg.models.env import (
    default_tensorflow_requirements,
    infer_pip_requirements,
    read_requirements,
    resolve_requirements,
    write_env_files,
)
from mlreg.models.example import (
    load_input_example,
    load_serving_input_example,
    save_input_example,
)
from mlreg.models.infer import infer_signature
from mlreg.models.model import Model
from mlreg.models.serving_export import ServingExport
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
    "ServingExport",
    "TensorSpec",
    "default_tensorflow_requirements",
    "infer_pip_requirements",
    "infer_signature",
    "load_input_example",
    "load_serving_input_example",
    "read_requirements",
    "resolve_requirements",
    "save_input_example",
    "write_env_files",
]
