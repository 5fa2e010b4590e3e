"""mlreg: a deployment-first model registry and serving platform for TensorFlow models."""

from mlreg.version import __version__

__all__ = ["__version__"]
