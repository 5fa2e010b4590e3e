"""A real ``mlreg server`` (gunicorn) and a real ``mlflow server`` in subprocesses on loopback,
for the MLflow compatibility tests and the benchmark (each one's log goes to a file)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

#: Quiet, offline MLflow: no telemetry, no tracking of the tests.
MLFLOW_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A server process answering on ``url`` once ``/health`` says 200."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log: Path, port: int):
        self.name = name
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log
        self._log = log.open("wb")
        # A process group of its own: MLflow 2's server runs gunicorn as a child that outlives
        # it, so stop() signals the whole group.
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout: float) -> Process:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer in {timeout} s: {self.log_path}")

    def pids(self) -> list[int]:
        """The server's process and its workers (for CPU accounting)."""
        found = [self.proc.pid]
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
            for child in children.split():
                found.append(int(child))
                grand = Path(f"/proc/{child}/task/{child}/children")
                if grand.exists():
                    found += [int(g) for g in grand.read_text().split()]
        except OSError:
            pass
        return found

    def stop(self) -> None:
        """Stop the server and every process it started (its process group)."""
        self._signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while self._group_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        self._signal(signal.SIGKILL)  # whatever did not stop in time
        self.proc.wait(timeout=10)
        self._log.close()

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):  # else the whole group is gone
            os.killpg(self.proc.pid, sig)

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        return True


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLREG_", "MLFLOW_"))}
    return {**env, **MLFLOW_ENV, **extra}


def start_mlreg(home: Path, workers: int = 2, timeout: float = 60) -> Process:
    """``mlreg server`` (gunicorn, ``workers`` processes) on SQLite and files under ``home``."""
    port = free_port()
    mlreg = str(Path(sys.executable).with_name("mlreg"))
    cmd = [mlreg, "server", "-p", str(port), "--workers", str(workers), "--log-level", "warning"]
    env = _clean_env({"MLREG_HOME": str(home)})
    home.mkdir(parents=True, exist_ok=True)
    return Process("mlreg server", cmd, env, home / "server.log", port).wait_ready(timeout)


def start_mlflow(root: Path, workers: int = 2, timeout: float = 180) -> Process:
    """``mlflow server`` with a SQLite backend and its artifact proxy (``mlflow-artifacts:``)."""
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return Process("mlflow server", cmd, _clean_env({}), root / "server.log", port).wait_ready(
        timeout
    )
