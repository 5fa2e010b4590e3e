"""MLflow's REST API on mlreg server: a translation layer over the same services as ``/api/v1``.

The stock ``mlflow`` client (``MLFLOW_TRACKING_URI=http://host:5000``) tracks experiments and
runs, logs models through the artifact proxy (``mlflow-artifacts:/…``) and uses the registry
(stages and aliases); what it records is mlreg's own data. One module per area declares its
routes, with permissions, on :data:`~mlreg.server.mlflow.table.mlflow_api`; :func:`register`
puts them on an app under ``/api/2.0`` and ``/ajax-api/2.0``. mlreg never imports mlflow.
"""

from __future__ import annotations

from flask import Flask

from mlreg.server.mlflow import (  # noqa: F401  (declare routes)
    artifacts,
    experiments,
    logged_models,
    meta,
    registry,
    runs,
)
from mlreg.server.mlflow.table import mlflow_api


def register(app: Flask) -> None:
    """Serve MLflow's API on ``app`` (both prefixes) with ``/version``, ``/server-info`` and
    the 501 answers for the rest of MLflow's endpoints, each declared with its permission."""
    mlflow_api.mount(app)
    meta.mount(app)
    # MLflow's clients count on the default experiment (id 0) from the start, older than any
    # they create (it lists last, newest first).
    app.extensions["mlreg.server"].tracking.default_experiment_id()
