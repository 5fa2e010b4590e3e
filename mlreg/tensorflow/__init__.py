"""The TensorFlow / Keras flavor: save, load and the pyfunc loader for ``mlreg.pyfunc``."""

from mlreg.tensorflow.flavor import FLAVOR_NAME, load_model, load_predictor, save_model

__all__ = ["FLAVOR_NAME", "load_model", "load_predictor", "save_model"]
