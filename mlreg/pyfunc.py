"""Load any supported model by URI and predict with its signature enforced.

``load_model`` picks the flavor's loader module by name (from the MLmodel file), so
importing this module does not import TensorFlow; loading a TensorFlow model does.
"""

from __future__ import annotations

import importlib
import os
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from mlreg.errors import MLmodelError, MlregError, ModelExecutionError, SchemaError
from mlreg.models.enforce import enforce_params, enforce_schema
from mlreg.models.example import load_input_example, load_serving_input_example
from mlreg.models.files import check_model_tree
from mlreg.models.model import Model
from mlreg.models.signature import ModelSignature
from mlreg.uris import ResolvedModel, resolve_model_uri

#: ``python_function.loader_module`` values we can load, and the mlreg module that does it.
#: MLflow's TensorFlow and Keras models open through our TensorFlow flavor.
LOADERS = {
    "mlreg.tensorflow": "mlreg.tensorflow",
    "mlflow.tensorflow": "mlreg.tensorflow",
    "mlflow.keras": "mlreg.tensorflow",
}


class Predictor(Protocol):
    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any: ...


class PyFuncModel:
    """A loaded model: its MLmodel metadata, where it came from, and ``predict``."""

    #: Predictions are computed in this process (a subclass may forward them to a server).
    remote: bool = False

    def __init__(self, predictor: Predictor, metadata: Model, source: ResolvedModel) -> None:
        self._predictor = predictor
        self.metadata = metadata
        self.source = source

    @property
    def model_dir(self) -> Path:
        return self.source.path

    @property
    def signature(self) -> ModelSignature | None:
        return self.metadata.signature

    @cached_property
    def input_example(self) -> Any:
        info = self.metadata.saved_input_example_info
        return load_input_example(self.model_dir, info) if info else None

    @cached_property
    def serving_input_example(self) -> str | None:
        info = self.metadata.saved_input_example_info
        return load_serving_input_example(self.model_dir, info) if info else None

    def enforce(self, data: Any, params: dict[str, Any] | None = None) -> tuple[Any, dict]:
        """Check and convert ``data`` and ``params`` against the signature."""
        signature = self.signature
        if signature is None:
            if params:
                raise SchemaError(
                    f"unknown param {', '.join(map(repr, params))}: the model has no signature "
                    "and so takes no params"
                )
            return _plain(data), {}
        return enforce_schema(data, signature.inputs), enforce_params(params, signature.params)

    def predict_unchecked(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Run the model on already-enforced data; a failure inside it is a ModelExecutionError."""
        try:
            return self._predictor.predict(data, params)
        except MlregError:
            raise
        except Exception as e:
            raise ModelExecutionError(f"the model failed: {type(e).__name__}: {e}") from e

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Enforce the signature on ``data`` and ``params``, then run the model."""
        data, params = self.enforce(data, params)
        return self.predict_unchecked(data, params)

    def unready_reason(self) -> str | None:
        """None: a model loaded in this process can always answer."""
        return None

    def __repr__(self) -> str:
        return f"PyFuncModel(uri={self.source.uri!r}, flavors={sorted(self.metadata.flavors)})"


def _plain(data: Any) -> Any:
    if isinstance(data, list):
        return np.asarray(data)
    if isinstance(data, dict) and not isinstance(data, pd.DataFrame):
        return {k: np.asarray(v) if isinstance(v, list) else v for k, v in data.items()}
    return data


def load_model(model_uri: str | os.PathLike[str], *, xla_max_batch: int = 0) -> PyFuncModel:
    """Load a model from a path, ``file://`` or registry URI for prediction.

    ``xla_max_batch`` > 0 compiles batch sizes 1..N with XLA where that is as exact and
    faster (mlreg.tensorflow.xla) and logs which sizes do.
    """
    source = resolve_model_uri(str(model_uri))
    # A model directory must not make the flavor read files from outside it (a symlinked
    # data/model.keras or tfserving/1/variables), nor from a device or a FIFO.
    check_model_tree(source.path)
    metadata = Model.load(source.path)
    pyfunc_conf = metadata.flavors.get("python_function")
    if pyfunc_conf is None:
        raise MLmodelError(
            f"{source.path}: the model has no python_function flavor, so it cannot be loaded "
            f"for prediction (flavors: {', '.join(sorted(metadata.flavors)) or 'none'})"
        )
    loader = LOADERS.get(str(pyfunc_conf.get("loader_module")))
    if loader is None:
        raise MLmodelError(
            f"{source.path}: no mlreg loader for loader_module "
            f"{pyfunc_conf.get('loader_module')!r}; supported: {', '.join(sorted(LOADERS))}"
        )
    predictor = importlib.import_module(loader).load_predictor(
        source.path, metadata, xla_max_batch=xla_max_batch
    )
    return PyFuncModel(predictor, metadata, source)


def __getattr__(name: str) -> Any:
    # spark_udf needs pyspark and pyarrow: load them only when it is asked for.
    if name == "spark_udf":
        return importlib.import_module("mlreg.batch.spark").spark_udf
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["LOADERS", "PyFuncModel", "load_model"]
