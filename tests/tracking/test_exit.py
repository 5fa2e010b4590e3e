"""A run a script leaves active is ended when its process exits, never left RUNNING."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from mlreg.store import StoreSettings
from mlreg.tracking import RunStatus, TrackingClient

SCRIPTS = {
    "normal-exit": ("mlreg.log_metric('loss', 0.5)", RunStatus.FINISHED, 0),
    "uncaught-exception": (
        "mlreg.log_metric('loss', 0.5)\nraise RuntimeError('boom')",
        RunStatus.FAILED,
        1,
    ),
    "ctrl-c": ("mlreg.start_run()\nraise KeyboardInterrupt", RunStatus.KILLED, -2),  # SIGINT
    "sys-exit": ("mlreg.start_run()\nimport sys; sys.exit(3)", RunStatus.FINISHED, 3),
}


@pytest.mark.parametrize(("body", "status", "code"), SCRIPTS.values(), ids=list(SCRIPTS))
def test_a_run_left_active_is_ended_at_exit(tmp_path, body, status, code):
    env = {**os.environ, "MLREG_HOME": str(tmp_path / "home"), "MLREG_USER": "dora"}
    for var in ("MLREG_TRACKING_URI", "MLREG_REGISTRY_URI", "MLREG_ARTIFACT_ROOT"):
        env.pop(var, None)
    script = "import mlreg\n" + textwrap.dedent(body)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == code, done.stderr
    with TrackingClient(StoreSettings.for_home(tmp_path / "home")) as client:
        runs = client.search_runs()
    assert [r.info.status for r in runs] == [status]
    assert runs[0].info.end_time is not None


def test_nested_runs_are_all_ended_and_a_forked_child_ends_none(tmp_path):
    env = {**os.environ, "MLREG_HOME": str(tmp_path / "home")}
    script = textwrap.dedent(
        """
        import os, mlreg
        mlreg.start_run(run_name="parent")
        mlreg.start_run(run_name="child", nested=True)
        pid = os.fork()
        if pid == 0:
            raise SystemExit(0)  # a forked child's exit must not end the parent's runs
        os.waitpid(pid, 0)
        assert all(s == "RUNNING" for s in mlreg.search_runs()["status"])
        raise ValueError("the parent dies")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 1 and "the parent dies" in done.stderr, done.stderr
    with TrackingClient(StoreSettings.for_home(tmp_path / "home")) as client:
        runs = client.search_runs()
    assert {r.info.run_name: r.info.status for r in runs} == {
        "parent": RunStatus.FAILED,
        "child": RunStatus.FAILED,
    }
