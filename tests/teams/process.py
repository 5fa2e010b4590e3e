"""``mlreg server`` as a real process (gunicorn, its workers, its logs), started and stopped by
the tests that need what only a process shows: a restart, the log output."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

MLREG = str(Path(sys.executable).parent / "mlreg")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> str:
        """SIGTERM, wait for the drain, return everything it logged."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.log.read_text(errors="replace")


def start_server(
    home: Path, env: dict[str, str], *args: str, port: int | None = None
) -> ServerProcess:
    """``mlreg server`` on a free loopback port with ``env`` (MLREG_* of this process are not
    passed on); returns once /ready answers."""
    port = port or free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLREG_", "MLFLOW_"))}
    log = home / f"server-{port}-{time.monotonic_ns()}.log"
    home.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [MLREG, "server", "--port", str(port), "--workers", "2", *args],
            env={**clean, "MLREG_HOME": str(home), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{server.url}/ready", timeout=2) as r:
                if r.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            output = server.stop()
            raise AssertionError(f"mlreg server did not become ready:\n{output[-3000:]}")
        time.sleep(0.2)
