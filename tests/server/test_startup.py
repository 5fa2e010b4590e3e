"""What `mlreg server` does with the database it is given (`mlreg db upgrade` semantics): it
creates the schema in an empty database, refuses an old one in one line (exit 7), and starts
once `mlreg db upgrade` has run."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine

from mlreg.store import migrate
from tests.server.process import MLREG, start_server

OLD_REVISION = "0003"
pytestmark = pytest.mark.slow  # a gunicorn start or two per test


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'team.db'}"
    else:
        yield request.getfixturevalue("postgres_uri")


def test_an_empty_database_gets_the_schema(empty_database, tmp_path):
    server = start_server(tmp_path / "home", registry_uri=empty_database, workers=1)
    try:
        ready = server.http.get(server.url + "/ready", timeout=10).json()
        assert ready == {"status": "ready", "schema": migrate.head_revision()}
        created = server.send("POST", "/api/v1/models", json={"name": "m"})
        assert created.status == 201
    finally:
        server.stop()


def test_an_old_schema_is_refused_in_one_line_until_upgraded(empty_database, tmp_path):
    engine = create_engine(empty_database)
    migrate.upgrade(engine, OLD_REVISION)
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLREG_")}
    env["MLREG_HOME"] = str(tmp_path / "home")
    refused = subprocess.run(
        [str(MLREG), "server", "-p", "0", "--registry-uri", empty_database],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 7
    assert refused.stderr == (
        f"Error: the registry database is at schema revision {OLD_REVISION} but this mlreg "
        f"needs {migrate.head_revision()}; run `mlreg db upgrade`\n"
    )
    upgraded = subprocess.run(
        [str(MLREG), "db", "upgrade"],
        env={**env, "MLREG_TRACKING_URI": empty_database},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout == f"Schema at {migrate.head_revision()} (was {OLD_REVISION})\n"
    server = start_server(tmp_path / "home", registry_uri=empty_database, workers=1)
    try:
        assert server.healthy()
    finally:
        server.stop()
