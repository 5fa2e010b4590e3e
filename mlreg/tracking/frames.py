"""Runs as a pandas DataFrame, with the columns MLflow's ``search_runs`` gives."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mlreg.tracking.entities import Run

INFO_COLUMNS = ("run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time")


def runs_frame(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per run: ``run_id, experiment_id, status, artifact_uri, start_time, end_time``
    (UTC timestamps), then ``metrics.<key>`` (NaN where a run lacks it), ``params.<key>`` and
    ``tags.<key>`` (None where a run lacks it), each group sorted by key."""
    data: dict[str, list] = {
        "run_id": [r.info.run_id for r in runs],
        "experiment_id": [r.info.experiment_id for r in runs],
        "status": [r.info.status.value for r in runs],
        "artifact_uri": [r.info.artifact_uri for r in runs],
        "start_time": [_utc(r.info.start_time) for r in runs],
        "end_time": [_utc(r.info.end_time) for r in runs],
    }
    for prefix, missing in (("metrics", np.nan), ("params", None), ("tags", None)):
        keys = sorted({k for r in runs for k in getattr(r.data, prefix)})
        for key in keys:
            data[f"{prefix}.{key}"] = [getattr(r.data, prefix).get(key, missing) for r in runs]
    return pd.DataFrame(data)


def _utc(ms: int | None) -> pd.Timestamp:
    return pd.to_datetime(ms, unit="ms", utc=True)  # None -> NaT
