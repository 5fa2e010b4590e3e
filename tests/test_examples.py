"""The reference documents' examples, with `mlreg.` in place of `mlflow.`, run as users run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

EXPECTED = {
    "autolog_keras.py": "step_loss",
    "keras_callback.py": "average_weight",
    "log_model_and_signatures.py": "manual (4, 2)",
    "nested_runs.py": "['model_1', 'model_2']",
    "tracking_basics.py": "versioning 0.35",
}


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(EXPECTED), ids=lambda s: s.removesuffix(".py"))
def test_example_runs(script, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLREG_")}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=tmp_path,
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert EXPECTED[script] in result.stdout
    assert (tmp_path / ".mlreg" / "registry.db").is_file()


@pytest.mark.slow
def test_team_example_runs_the_quickstart_through_a_server(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLREG_")}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "team.py")],
        cwd=tmp_path,
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "registered models:/mnist-cnn/1" in out and "on the server" in out
    assert "loaded   models:/mnist-cnn/Production -> version 1 from " in out
    assert "/client/cache/models/" in out  # downloaded from the server, cached by digest
    assert 'served   POST /invocations -> {"predictions": [[' in out
    assert "stopped  the server (exit code 0)" in out
    assert not (tmp_path / ".mlreg").exists()  # everything went through the server


def test_every_example_is_run():
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    assert scripts - {"quickstart.py", "team.py"} == set(EXPECTED)
