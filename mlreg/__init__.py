"""mlreg: a deployment-first model registry and serving platform for TensorFlow models."""

import importlib
from typing import Any

from mlreg import pyfunc
from mlreg.registry import MlregClient, register_model
from mlreg.tracking import (
    TrackingClient,
    active_run,
    create_experiment,
    end_run,
    get_experiment_by_name,
    get_run,
    log_artifact,
    log_artifacts,
    log_dict,
    log_figure,
    log_image,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_text,
    search_runs,
    set_experiment,
    set_experiment_tag,
    set_tag,
    set_tags,
    start_run,
)
from mlreg.version import __version__


def autolog(**kwargs: Any) -> None:
    """Turn on autologging for every supported framework (today: Keras / TensorFlow)."""
    # Imported here, not at the top, so that `import mlreg` does not import TensorFlow.
    importlib.import_module("mlreg.tensorflow").autolog(**kwargs)


__all__ = [
    "MlregClient",
    "TrackingClient",
    "__version__",
    "active_run",
    "autolog",
    "create_experiment",
    "end_run",
    "get_experiment_by_name",
    "get_run",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_image",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "pyfunc",
    "register_model",
    "search_runs",
    "set_experiment",
    "set_experiment_tag",
    "set_tag",
    "set_tags",
    "start_run",
]
