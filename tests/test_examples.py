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


def test_every_example_is_run():
    assert {p.name for p in EXAMPLES.glob("*.py")} - {"quickstart.py"} == set(EXPECTED)
