"""The repository's promises: packaging lists every package, the README's main job runs."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAPPED = {
    "mlreg": "mlreg",
    "mlreg.registry": "registry",
    "mlreg.serving": "serving",
    "mlreg.builder": "builder",
    "mlreg.schemas": "schemas",
}


def test_setup_cfg_lists_every_package():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    listed = set(cfg["options"]["packages"].split())
    found = set()
    for package, folder in MAPPED.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join([package, *rel]))
    assert found == listed


def test_readme_starts_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    blocks = readme.split("```")
    commands = [b.strip().removeprefix("sh").strip() for b in blocks[1:4:2]]
    assert commands == [
        "bash .ci/setup && .venv/bin/python examples/quickstart.py",
        "bash .ci/test",
    ]


@pytest.mark.slow
def test_quickstart_main_job_runs(tmp_path, monkeypatch):
    for var in ("MLREG_HOME", "MLREG_REGISTRY_URI", "MLREG_ARTIFACT_ROOT"):
        monkeypatch.delenv(var, raising=False)
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "registered models:/mnist-cnn/1" in result.stdout
    assert "promoted models:/mnist-cnn/1 to Production" in result.stdout
    assert "predict  [[" in result.stdout
    assert 'served   POST /invocations -> {"predictions": [[' in result.stdout
    assert (tmp_path / ".mlreg" / "registry.db").is_file()
    again = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert "loaded   models:/mnist-cnn/Production -> version 2" in again.stdout
