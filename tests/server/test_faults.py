"""Faults under a real gunicorn server: the database restarts under logging clients, the server
is killed in the middle of an upload, and stopped (SIGTERM) with uploads in flight."""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from mlreg.registry import MlregClient
from mlreg.registry.artifacts import dir_digest
from mlreg.registry.entities import VersionStatus
from mlreg.store import StoreSettings
from mlreg.store.tables import MetricRow, ModelVersionRow
from mlreg.store.tarstream import iter_tar
from mlreg.tracking.client import TrackingClient
from tests.conftest import make_model_dir
from tests.server.process import MLREG, ServerProcess, start_server

SPAWN = multiprocessing.get_context("spawn")
pytestmark = pytest.mark.slow


def settings_for(url: str, home: Path) -> StoreSettings:
    return StoreSettings(url, home / "unused", "worker", home=home)


def status_counts(server: ServerProcess) -> dict[str, int]:
    """Requests answered so far, by status (from the server's /metrics, all workers)."""
    text_ = server.http.get(server.url + "/metrics", timeout=10).text
    counts: dict[str, int] = {}
    for m in re.finditer(
        r'^mlreg_server_requests_total\{[^}]*status="(\d+)"[^}]*\} (\S+)$', text_, re.M
    ):
        counts[m[1]] = counts.get(m[1], 0) + int(float(m[2]))
    return counts


# --- PostgreSQL restarts while clients log -----------------------------------------------------


def cluster_of(uri: str) -> tuple[str, str]:
    """(version, name) of the local cluster listening on the URI's port."""
    if shutil.which("pg_lsclusters") is None or os.geteuid() != 0:
        pytest.skip("restarting PostgreSQL needs pg_ctlcluster and root")
    port = str(make_url(uri).port or 5432)
    for line in subprocess.run(
        ["pg_lsclusters", "-h"], capture_output=True, text=True, check=True
    ).stdout.splitlines():
        version, name, cluster_port, *_ = line.split()
        if cluster_port == port:
            return version, name
    pytest.skip(f"no local cluster on port {port}")


def wait_for_database(uri: str, timeout: float = 60) -> None:
    engine = create_engine(uri)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        engine.dispose()


def log_steadily(url: str, home: str, run_id: str, batches: int) -> None:
    with TrackingClient(settings_for(url, Path(home))) as tracking:
        for i in range(batches):
            metrics = [("m", float(step), step, None) for step in range(i * 100, i * 100 + 100)]
            tracking.log_batch(run_id, metrics)
            time.sleep(0.05)


def wait_until_logging(server: ServerProcess, run_ids: list[str], points: int) -> None:
    """Until every run has ``points`` stored: all clients are mid-way through their batches."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        with server.engine().connect() as conn:
            counts = (
                conn.execute(
                    select(func.count())
                    .select_from(MetricRow)
                    .where(MetricRow.run_id.in_(run_ids))
                    .group_by(MetricRow.run_id)
                )
                .scalars()
                .all()
            )
        if len(counts) == len(run_ids) and min(counts) >= points:
            return
        time.sleep(0.1)
    raise AssertionError("the clients did not start logging")


@pytest.mark.postgres
def test_postgres_restart_under_logging_clients_is_503_then_exact_counts(
    pg_server, pg_database, tmp_path
):
    version, cluster = cluster_of(pg_database.uri)
    with TrackingClient(settings_for(pg_server.url, tmp_path / "setup")) as tracking:
        run_ids = [tracking.create_run(None).info.run_id for _ in range(4)]
    before = status_counts(pg_server)
    batches = 120
    with ProcessPoolExecutor(4, mp_context=SPAWN) as pool:
        futures = [
            pool.submit(log_steadily, pg_server.url, str(tmp_path / f"c{i}"), run_id, batches)
            for i, run_id in enumerate(run_ids)
        ]
        wait_until_logging(pg_server, run_ids, points=1000)
        try:
            subprocess.run(
                ["pg_ctlcluster", version, cluster, "restart", "-m", "fast"],
                check=True,
                timeout=120,
            )
        finally:
            # The shared test server must be up again whatever happened.
            subprocess.run(
                ["pg_ctlcluster", version, cluster, "start"], capture_output=True, timeout=120
            )
            wait_for_database(pg_database.uri)
        for future in futures:
            future.result(timeout=600)
    after = status_counts(pg_server)
    new = {status: after.get(status, 0) - before.get(status, 0) for status in after}
    assert new.get("503", 0) > 0, new  # the clients saw the outage ...
    assert new.get("500", 0) == 0, new  # ... as "unavailable", never as a server error
    with pg_server.engine().connect() as conn:
        per_run = conn.execute(
            select(MetricRow.run_id, func.count(), func.count(func.distinct(MetricRow.step)))
            .where(MetricRow.run_id.in_(run_ids))
            .group_by(MetricRow.run_id)
        ).all()
    assert sorted((count, distinct) for _, count, distinct in per_run) == [(batches * 100,) * 2] * 4


# --- the server killed in the middle of an upload -----------------------------------------------


@pytest.fixture
def own_server(tmp_path) -> Iterator[ServerProcess]:
    running = start_server(tmp_path / "home", workers=1, threads=4)
    yield running
    running.stop()


def big_model(path: Path, megabytes: int) -> Path:
    model = make_model_dir(path)
    with (model / "data" / "big.bin").open("wb") as out:
        block = os.urandom(1 << 20)
        for _ in range(megabytes):
            out.write(block)
    return model


def staged_bytes(server: ServerProcess) -> int:
    return sum(p.stat().st_size for p in server.staging.rglob("*") if p.is_file())


def test_killed_mid_upload_leaves_no_ready_version_and_gc_cleans_up(tmp_path):
    home = tmp_path / "home"
    server = start_server(home, workers=1, threads=4)
    model = big_model(tmp_path / "model", 300)
    errors: list[BaseException] = []

    def register() -> None:
        try:
            with MlregClient(settings_for(server.url, tmp_path / "client")) as client:
                client.register_model(str(model), "big")
        except BaseException as e:
            errors.append(e)

    uploader = threading.Thread(target=register)
    uploader.start()
    deadline = time.monotonic() + 120
    while staged_bytes(server) < 50 << 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert staged_bytes(server) >= 50 << 20, "the upload never got going"
    server.kill()
    uploader.join(120)
    assert errors and "unreachable" in str(errors[0])  # the client was told, not left hanging
    assert list(server.staging.iterdir()), "expected the killed upload's leftovers"

    server = start_server(home, workers=1, threads=4)  # same home: same database and files
    try:
        [version] = server.send("GET", "/api/v1/versions?name=big").json()["model_versions"]
        assert version["status"] != "READY"
        env = {**os.environ, "MLREG_TRACKING_URI": server.url, "MLREG_HOME": str(tmp_path / "gc")}
        out = subprocess.run(
            [str(MLREG), "gc", "--older-than", "0"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        assert f"Removed version big/1 ({version['status']})" in out.stdout
        assert "Removed 1 versions and 1 temporary copies" in out.stdout, out.stdout
        assert list(server.staging.iterdir()) == []
        assert [p for p in server.artifacts.rglob("*") if p.is_file()] == []
        assert server.send("GET", "/api/v1/versions?name=big").json()["model_versions"] == []
        again = subprocess.run(
            [str(MLREG), "gc", "--older-than", "0"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.stdout.strip().splitlines()[-1] == "Removed 0 versions and 0 temporary copies"
    finally:
        server.stop()


def test_gc_through_the_server_keeps_the_files_of_ready_versions(own_server, tmp_path):
    """gc removes what no version needs; the stored copy of a READY version is needed, even
    though a REST client never sees where the server keeps it."""
    settings = settings_for(own_server.url, tmp_path / "client")
    with MlregClient(settings) as client:
        ready = client.register_model(str(make_model_dir(tmp_path / "model")), "kept")
        failed = client.begin_version("kept", "s", None, None, None, None)
        client.store.finish_model_version("kept", failed.version, VersionStatus.FAILED_REGISTRATION)
    stored = sorted(p for p in own_server.artifacts.rglob("*") if p.is_file())
    assert stored
    env = {**os.environ, "MLREG_TRACKING_URI": own_server.url, "MLREG_HOME": str(tmp_path / "gc")}
    out = subprocess.run(
        [str(MLREG), "gc", "--older-than", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "Removed version kept/2 (FAILED_REGISTRATION)",
        "Removed 1 versions and 0 temporary copies",
    ]
    assert sorted(p for p in own_server.artifacts.rglob("*") if p.is_file()) == stored
    with MlregClient(settings_for(own_server.url, tmp_path / "other-client")) as client:
        assert dir_digest(client.resolve("models:/kept/1").path) == ready.digest


def test_gc_leaves_an_upload_that_is_still_arriving(own_server, tmp_path):
    """A staging directory written to just now is an upload in progress, not a leftover."""
    partial = own_server.staging / "upload-inprogress"
    partial.mkdir()
    (partial / "part").write_bytes(b"x")
    env = {**os.environ, "MLREG_TRACKING_URI": own_server.url, "MLREG_HOME": str(tmp_path / "gc")}
    out = subprocess.run(
        [str(MLREG), "gc", "--older-than", "600"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert partial.exists()
    listed = own_server.send("GET", "/api/v1/leftovers").json()["leftovers"]
    assert [item["location"] for item in listed] == [str(partial)]


# --- SIGTERM with uploads in flight ------------------------------------------------------------


def slow_upload(server: ServerProcess, model: Path, name: str, seconds: float) -> tuple[int, dict]:
    """PUT a version's files as a tar, spread over ``seconds`` (a slow client link)."""
    import http.client
    import json
    from urllib.parse import urlsplit

    created = server.send("POST", f"/api/v1/models/{name}/versions", json={"source": "slow"})
    number = created.json()["model_version"]["version"]
    chunks = list(iter_tar(model))
    where = urlsplit(server.url)
    conn = http.client.HTTPConnection(where.hostname, where.port, timeout=120)
    conn.putrequest("PUT", f"/api/v1/models/{name}/versions/{number}/content")
    conn.putheader("Content-Type", "application/x-tar")
    conn.putheader("X-Mlreg-Digest", dir_digest(model))
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    for chunk in chunks:
        conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        time.sleep(seconds / len(chunks))
    conn.send(b"0\r\n\r\n")
    answer = conn.getresponse()
    result = answer.status, json.loads(answer.read())
    conn.close()
    return result


def test_sigterm_lets_uploads_in_flight_finish(tmp_path):
    server = start_server(tmp_path / "home", workers=2, threads=4)
    model = big_model(tmp_path / "model", 8)
    results: dict[str, tuple[int, dict]] = {}

    def upload(name: str) -> None:
        results[name] = slow_upload(server, model, name, seconds=4)

    uploads = [threading.Thread(target=upload, args=(f"slow{i}",)) for i in range(3)]
    for t in uploads:
        t.start()
    time.sleep(1.5)  # all three are mid-body
    code = server.stop()
    for t in uploads:
        t.join(60)
    assert code == 0, server.log_text()[-2000:]
    assert sorted(results) == ["slow0", "slow1", "slow2"]
    for status, doc in results.values():
        assert status == 200, doc
        assert doc["model_version"]["status"] == "READY"
        assert doc["model_version"]["digest"] == dir_digest(model)
    engine = create_engine(server.database)
    with engine.connect() as conn:
        statuses = conn.scalars(select(ModelVersionRow.status)).all()
    engine.dispose()
    assert statuses == ["READY"] * 3
    assert list(server.staging.iterdir()) == []


def test_sigterm_does_not_wait_on_idle_keep_alive_connections(tmp_path):
    """A client's pooled connection, idle between requests, is closed at SIGTERM: the server
    exits as soon as its requests are answered, not after the graceful timeout (it waited the
    whole 30 s for one idle connection before)."""
    import socket
    from urllib.parse import urlsplit

    server = start_server(
        tmp_path / "home", workers=1, threads=2, env={"MLREG_GRACEFUL_TIMEOUT": "60"}
    )
    try:
        where = urlsplit(server.url)
        with socket.create_connection((where.hostname, where.port), timeout=90) as idle:
            idle.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += idle.recv(65536)
            head, body = answer.split(b"\r\n\r\n", 1)
            assert head.startswith(b"HTTP/1.1 200"), head
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            while len(body) < length:
                body += idle.recv(65536)
            started = time.monotonic()
            code = server.stop(timeout=90)
            took = time.monotonic() - started
            assert code == 0, server.log_text()[-2000:]
            assert took < 30, f"the server took {took:.1f} s to stop (graceful timeout: 60 s)"
            assert idle.recv(65536) == b""  # closed by the server, cleanly
    finally:
        server.stop()  # (again: a failed assertion above must not leave it running)
