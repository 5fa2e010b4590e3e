"""One gunicorn ``mlreg server`` per test module (SQLite, or PostgreSQL where the test needs
it), started as users start it and stopped with SIGTERM."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import postgres_admin_uri
from tests.server.process import ServerProcess, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    """One gunicorn ``mlreg server`` on SQLite for the module."""
    running = start_server(tmp_path_factory.mktemp("server") / "home")
    yield running
    running.stop()
    shutil.rmtree(running.home)  # its files (gigabytes in test_streaming); the log stays


@dataclass
class PgDatabase:
    uri: str
    name: str


@pytest.fixture(scope="module")
def pg_database() -> Iterator[PgDatabase]:
    """A fresh, empty PostgreSQL database for one module (the server creates the schema)."""
    admin = create_engine(postgres_admin_uri(), isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    name = f"mlreg_s_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    uri = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        yield PgDatabase(uri, name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory, pg_database) -> Iterator[ServerProcess]:
    """One gunicorn ``mlreg server`` on PostgreSQL for the module."""
    home = tmp_path_factory.mktemp("pg-server") / "home"
    running = start_server(home, registry_uri=pg_database.uri)
    yield running
    running.stop()
    shutil.rmtree(home)
