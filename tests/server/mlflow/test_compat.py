"""The stock MLflow client against ``mlreg server`` and against a real ``mlflow server``: the same
MlflowClient calls (every endpoint mlreg serves), and their results compared field by field.

TensorFlow-free; slow only because ``mlflow server`` takes seconds to start. CI runs this
module with the newest MLflow 3.x (the main virtualenv) and with the last 2.x release
(``.ci/mlflow2.sh``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

mlflow = pytest.importorskip("mlflow")

from mlflow import MlflowClient  # noqa: E402

from tests.server.mlflow import scenario  # noqa: E402
from tests.server.mlflow.peers import start_mlflow, start_mlreg  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.mlflow]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    root = tmp_path_factory.mktemp("servers")
    mlreg = start_mlreg(root / "mlreg")
    try:
        reference = start_mlflow(root / "mlflow")
    except BaseException:
        mlreg.stop()
        raise
    yield {"mlreg": mlreg, "mlflow": reference}
    mlreg.stop()
    reference.stop()


@pytest.fixture(scope="module")
def transcripts(servers, tmp_path_factory) -> dict[str, dict[str, Any]]:
    """Each server's transcript of the scenario (MLflow's own env vars kept out)."""
    out = {}
    for name, server in servers.items():
        work = tmp_path_factory.mktemp(f"work-{name}")
        mlflow.set_tracking_uri(server.url)
        try:
            out[name] = scenario.normalise(scenario.run(MlflowClient(server.url), work))
        finally:
            mlflow.set_tracking_uri(None)
    return out


def test_every_call_answers_as_mlflow_does(transcripts):
    ours, theirs = transcripts["mlreg"], transcripts["mlflow"]
    assert list(ours) == list(theirs)
    differences = []
    for label in theirs:
        for path, mine, reference in _diff(ours[label], theirs[label]):
            if not scenario.known(label, path):
                differences.append(f"{label}{path}: mlreg {mine!r} != mlflow {reference!r}")
    assert not differences, "\n".join(differences)


def test_the_transcript_is_not_empty(transcripts):
    # The comparison above means something only if the calls did what they should.
    steps = transcripts["mlreg"]
    assert steps["create the same experiment"] == {"error": "RESOURCE_ALREADY_EXISTS"}
    assert steps["get missing run"] == {"error": "RESOURCE_DOES_NOT_EXIST"}
    assert steps["log param again, new value"] == {"error": "INVALID_PARAMETER_VALUE"}
    assert steps["get run"]["data"]["metrics"] == {"loss": 0.25, "nan_metric": "NaN", "acc": 0.875}
    assert steps["create version"]["status"] == "READY"
    assert steps["registered files equal the source's"] is True
    assert steps["downloaded files"][0][0] == "a.txt"
    assert len(steps) > 100


def _diff(mine: Any, reference: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Where two plain values differ, as (path, mine, reference)."""
    if isinstance(mine, dict) and isinstance(reference, dict):
        out = []
        for key in sorted(set(mine) | set(reference), key=str):
            out += _diff(mine.get(key, "<absent>"), reference.get(key, "<absent>"), f"{path}.{key}")
        return out
    if isinstance(mine, list) and isinstance(reference, list) and len(mine) == len(reference):
        out = []
        for i, (a, b) in enumerate(zip(mine, reference, strict=True)):
            out += _diff(a, b, f"{path}[{i}]")
        return out
    if json.dumps(mine, sort_keys=True, default=str) != json.dumps(
        reference, sort_keys=True, default=str
    ):
        return [(path, mine, reference)]
    return []
