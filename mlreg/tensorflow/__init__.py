"""The TensorFlow / Keras flavor: save, load, log to runs, autolog; the pyfunc loader."""

from mlreg.tensorflow.autolog import MlregCallback, autolog
from mlreg.tensorflow.flavor import FLAVOR_NAME, load_model, load_predictor, save_model

# MLflow's pyfunc calls <loader_module>._load_pyfunc(path) on models that name mlreg.tensorflow.
from mlreg.tensorflow.flavor import _load_pyfunc as _load_pyfunc
from mlreg.tensorflow.log import ModelInfo, log_model

__all__ = [
    "FLAVOR_NAME",
    "MlregCallback",
    "ModelInfo",
    "autolog",
    "load_model",
    "load_predictor",
    "log_model",
    "save_model",
]
