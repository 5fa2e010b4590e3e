"""`mlreg server` as users run it: the installed command under gunicorn, in a subprocess.

A server has its own MLREG_HOME (its SQLite database, artifact root and staging area live
there unless a PostgreSQL URI is given); it is started on a free loopback port, waited for on
/ready, and stopped with SIGTERM as a process manager would.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests
from sqlalchemy import Engine, create_engine

from mlreg.store.tables import Base
from tests.s3 import free_port

MLREG = Path(sys.executable).with_name("mlreg")
READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass(frozen=True)
class Snapshot:
    rows: dict[str, list[str]]
    files: dict[str, int]


@dataclass
class ServerProcess:
    """One running ``mlreg server``: where it answers, where it keeps its data, its process."""

    url: str
    home: Path
    process: subprocess.Popen
    log: Path
    registry_uri: str | None = None
    http: requests.Session = field(default_factory=requests.Session)
    _engine: Engine | None = None

    @property
    def api(self) -> str:
        return self.url + "/api/v1"

    @property
    def artifacts(self) -> Path:
        return self.home / "artifacts"

    @property
    def staging(self) -> Path:
        return self.home / "staging"

    @property
    def database(self) -> str:
        return self.registry_uri or f"sqlite:///{self.home / 'registry.db'}"

    def worker_pids(self) -> list[int]:
        """gunicorn's workers (the master's children)."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children")
        return [int(p) for p in children.read_text().split()] if children.exists() else []

    def healthy(self) -> bool:
        try:
            return self.http.get(self.url + "/health", timeout=10).status_code == 200
        except requests.RequestException:
            return False

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlreg server exited: {self.log_text()[-3000:]}")
            try:
                if requests.get(self.url + "/ready", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"mlreg server not ready in {timeout} s: {self.log_text()[-3000:]}")

    def send(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        *,
        json: Any = None,
    ) -> Answer:
        """One request with ``path`` sent exactly as written (no client-side normalisation of
        ``..`` or percent-escapes, which requests and urllib3 would do)."""
        if json is not None:
            body = orjson.dumps(json)
            headers = {"Content-Type": "application/json", **(headers or {})}
        where = urlsplit(self.url)
        conn = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return Answer(response.status, dict(response.headers), response.read())
        finally:
            conn.close()

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine(self.database, pool_pre_ping=True)
        return self._engine

    def snapshot(self) -> Snapshot:
        """Every row of every table, every file under the artifact root and the staging area:
        equal snapshots mean nothing was written in between."""
        with self.engine().connect() as conn:
            # The driver's own cursor: SQLAlchemy's statement and row layers tripled the cost
            # of a snapshot, which the bad-input tables take twice per case.
            cursor = conn.connection.driver_connection.cursor()
            rows = {}
            for table in Base.metadata.sorted_tables:
                cursor.execute(f'SELECT * FROM "{table.name}"')
                rows[table.name] = sorted(repr(row) for row in cursor.fetchall())
            cursor.close()
        files = {
            str(p.relative_to(self.home)): p.stat().st_size if p.is_file() else -1
            for root in (self.artifacts, self.staging)
            if root.exists()
            for p in root.rglob("*")
        }
        return Snapshot(rows, files)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (graceful: in-flight requests finish) and wait; the exit code."""
        self.http.close()
        if self._engine is not None:
            self._engine.dispose()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.wait()

    def kill(self) -> None:
        """SIGKILL the master and its workers at once (a crash, an OOM kill)."""
        pids = self.worker_pids()
        for pid in [self.process.pid, *pids]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(30)
        # The workers are not our children: wait until the kernel has reaped them.
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)


def start_server(
    home: Path,
    *,
    registry_uri: str | None = None,
    workers: int = 2,
    threads: int = 8,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    wait: bool = True,
) -> ServerProcess:
    """Start ``mlreg server`` on a free port with ``home`` as its MLREG_HOME."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [str(MLREG), "server", "-p", str(port), "--workers", str(workers)]
    command += ["--threads", str(threads), *(args or [])]
    if registry_uri:
        command += ["--registry-uri", registry_uri]
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLREG_", "MLFLOW_")) or k == "MLREG_TEST_POSTGRES_URI"
    }
    environ.update({"MLREG_HOME": str(home), "MLREG_LOG_LEVEL": "warning", **(env or {})})
    log = home.parent / f"{home.name}-server.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, env=environ, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = ServerProcess(f"http://127.0.0.1:{port}", home, process, log, registry_uri)
    if wait:
        try:
            server.wait_ready()
        except BaseException:
            server.kill()
            raise
    return server
