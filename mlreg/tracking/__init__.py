"""Experiments and runs: params, metrics with history, tags, artifacts; runs:/ URIs."""

from mlreg.tracking.client import TrackingClient
from mlreg.tracking.entities import Experiment, Metric, Run, RunStatus
from mlreg.tracking.fluent import (
    ActiveRun,
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
from mlreg.tracking.fluent import client as tracking_client
from mlreg.uris import register_scheme

register_scheme("runs", lambda uri: tracking_client().resolve(uri))

__all__ = [
    "ActiveRun",
    "Experiment",
    "Metric",
    "Run",
    "RunStatus",
    "TrackingClient",
    "active_run",
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
    "search_runs",
    "set_experiment",
    "set_experiment_tag",
    "set_tag",
    "set_tags",
    "start_run",
    "tracking_client",
]
