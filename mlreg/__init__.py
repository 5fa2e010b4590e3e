"""mlreg: a deployment-first model registry and serving platform for TensorFlow models.

``import mlreg`` is cheap: the fluent tracking API (``mlreg.start_run`` ...), the registry
client and the submodules load on first use through the table below, so a gunicorn worker,
``mlreg --help`` or ``import mlreg.errors`` pays only for what it uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mlreg.version import __version__

#: Public name -> the module that defines it (a submodule when the name is the module).
_LAZY = {
    "MlregClient": "mlreg.registry",
    "register_model": "mlreg.registry",
    "TrackingClient": "mlreg.tracking",
    **{
        name: "mlreg.tracking.fluent"
        for name in (
            "active_run",
            "create_experiment",
            "delete_run",
            "get_tracking_uri",
            "last_active_run",
            "restore_run",
            "search_experiments",
            "set_tracking_uri",
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
            "search_runs",
            "set_experiment",
            "set_experiment_tag",
            "set_tag",
            "set_tags",
            "start_run",
        )
    },
    "pyfunc": "mlreg.pyfunc",
}

if TYPE_CHECKING:  # what the names are, for type checkers and editors
    from mlreg import pyfunc
    from mlreg.registry import MlregClient, register_model
    from mlreg.tracking import TrackingClient
    from mlreg.tracking.fluent import (
        active_run,
        create_experiment,
        delete_run,
        end_run,
        get_experiment_by_name,
        get_run,
        get_tracking_uri,
        last_active_run,
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
        restore_run,
        search_experiments,
        search_runs,
        set_experiment,
        set_experiment_tag,
        set_tag,
        set_tags,
        set_tracking_uri,
        start_run,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mlreg' has no attribute {name!r}")
    loaded = importlib.import_module(module)
    value = loaded if module == f"mlreg.{name}" else getattr(loaded, name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def autolog(**kwargs: Any) -> None:
    """Turn on autologging for every supported framework (today: Keras / TensorFlow)."""
    importlib.import_module("mlreg.tensorflow").autolog(**kwargs)


__all__ = [
    "MlregClient",
    "TrackingClient",
    "__version__",
    "active_run",
    "autolog",
    "create_experiment",
    "delete_run",
    "end_run",
    "get_experiment_by_name",
    "get_run",
    "get_tracking_uri",
    "last_active_run",
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
    "restore_run",
    "search_experiments",
    "search_runs",
    "set_experiment",
    "set_experiment_tag",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]
