"""A serving pod as charts/mlreg-serving runs it with registry.uri: `mlreg serve` resolves
models:/NAME@ALIAS from a server with authentication at start-up, with the token the chart
puts in MLREG_TRACKING_TOKEN, and serves that version; a wrong token stops it with one line.
Real TensorFlow and a real `mlreg serve`: slow."""

from __future__ import annotations

import os
import subprocess

import pytest
import requests

from mlreg.server.audit import AuditQuery
from mlreg.server.permissions import Level, Resource
from tests.teams.conftest import ADMIN_ACTOR

pytestmark = pytest.mark.slow


@pytest.fixture
def cnn_dir(tmp_path, tf):
    from tests.serving.models import save_cnn

    return save_cnn(tmp_path / "cnn")


def test_a_serving_pod_resolves_its_model_from_the_server(live_team, cnn_dir, tmp_path):
    from tests.serving.data import images
    from tests.serving.server import MLREG, Server

    team = live_team.team
    registry = team.services.registry_as(ADMIN_ACTOR)
    for _ in range(2):
        registry.register_model(str(cnn_dir), "cnn")
    registry.set_alias("cnn", "champion", 2)
    access = team.services.access
    access.create_user(ADMIN_ACTOR, "serving-bot", None)
    access.grant(ADMIN_ACTOR, Resource.MODEL, "cnn", "serving-bot", Level.READ)
    _, token = access.create_token(ADMIN_ACTOR, "serving-bot", "mnist-serving")
    env = {  # what the chart renders into the pod (the token from its Secret)
        "MLREG_MODEL_URI": "models:/cnn@champion",
        "MLREG_TRACKING_URI": live_team.url,
        "MLREG_TRACKING_TOKEN": token,
        "MLREG_HOME": str(tmp_path / "pod-home"),
    }
    server = Server("models:/cnn@champion", tmp_path / "serve.log", env=env)
    try:
        server.wait_ready(300)
        meta = requests.get(server.url + "/metadata", timeout=30).json()
        assert (meta["name"], meta["version"]) == ("cnn", 2)
        answer = server.post("/invocations", {"inputs": images(2).tolist()})
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["predictions"]) == 2
    finally:
        server.stop()
    assert team.services.audit.search(AuditQuery(user="serving-bot")).items == []  # it only read

    wrong = {**env, "MLREG_TRACKING_TOKEN": "mlreg_" + "x" * 43}
    result = subprocess.run(
        [MLREG, "serve"],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("MLREG_")}, **wrong},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 13, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == "Error: invalid token"
