"""mlreg: a deployment-first model registry and serving platform for TensorFlow models."""

from mlreg.registry import MlregClient, register_model
from mlreg.version import __version__

__all__ = ["MlregClient", "__version__", "register_model"]
