from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from mlreg.models import ModelSignature, Schema, TensorSpec
from mlreg.models.model import Model
from mlreg.registry import MlregClient, reset_default_client
from mlreg.store import StoreSettings
from mlreg.tracking import fluent

PG_ENV = "MLREG_TEST_POSTGRES_URI"


def make_model_dir(path: Path, payload: bytes = b"weights") -> Path:
    """A small but valid model directory (no TensorFlow needed to register one)."""
    path.mkdir(parents=True)
    (path / "data").mkdir()
    (path / "data" / "weights.bin").write_bytes(payload)
    Model(
        signature=ModelSignature(Schema([TensorSpec(np.float32, (-1, 3))])),
    ).add_flavor("python_function", loader_module="mlreg.tensorflow").save(path)
    return path


@pytest.fixture
def model_dir(tmp_path) -> Path:
    return make_model_dir(tmp_path / "src")


def postgres_admin_uri() -> str | None:
    uri = os.environ.get(PG_ENV)
    if not uri:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{PG_ENV} is not set; CI must run the PostgreSQL tests (.ci/postgres.sh)")
        pytest.skip(f"set {PG_ENV} (bash .ci/postgres.sh prints it) to run PostgreSQL tests")
    return uri


@pytest.fixture
def postgres_uri():
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    admin_uri = postgres_admin_uri()
    name = f"mlreg_t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_uri, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_uri).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return request.getfixturevalue("postgres_uri")


@pytest.fixture
def settings(backend, tmp_path) -> StoreSettings:
    return StoreSettings(backend, tmp_path / "artifacts", "alice")


@pytest.fixture
def client(settings):
    with MlregClient(settings) as c:
        yield c


@pytest.fixture
def tracking_home(tmp_path, monkeypatch):
    """Fresh MLREG_HOME for the fluent tracking API and the default registry client."""
    monkeypatch.setenv("MLREG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLREG_USER", "dora")
    monkeypatch.delenv("MLREG_REGISTRY_URI", raising=False)
    monkeypatch.delenv("MLREG_ARTIFACT_ROOT", raising=False)
    fluent.reset()
    reset_default_client()
    yield tmp_path / "home"
    fluent.reset()
    reset_default_client()
