from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from mlreg.models import ModelSignature, Schema, TensorSpec
from mlreg.models.model import Model
from mlreg.registry import MlregClient, reset_default_client
from mlreg.store import StoreSettings, migrate
from mlreg.tracking import fluent

PG_ENV = "MLREG_TEST_POSTGRES_URI"
#: Variables that could point boto3's credential chain somewhere other than the test's user.
AWS_VARS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "MLREG_S3_ENDPOINT_URL",
)


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


@pytest.fixture(scope="session")
def postgres_admin():
    """An AUTOCOMMIT engine on the server of MLREG_TEST_POSTGRES_URI (to create databases)."""
    admin_uri = postgres_admin_uri()
    admin = create_engine(admin_uri, isolation_level="AUTOCOMMIT")
    yield admin
    admin.dispose()


def _create_database(admin, template: str | None = None) -> str:
    name = f"mlreg_t_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(
            text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        )
    return name


def _drop_database(admin, name: str) -> None:
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _uri(admin, database: str) -> str:
    return admin.url.set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_template(postgres_admin):
    """A database at the current schema, migrated once; test databases are copies of it."""
    name = _create_database(postgres_admin)
    engine = create_engine(_uri(postgres_admin, name))
    migrate.upgrade(engine)
    engine.dispose()
    yield name
    _drop_database(postgres_admin, name)


@pytest.fixture
def postgres_uri(postgres_admin):
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = _create_database(postgres_admin)
    try:
        yield _uri(postgres_admin, name)
    finally:
        _drop_database(postgres_admin, name)


@pytest.fixture
def postgres_migrated_uri(postgres_admin, postgres_template):
    """A fresh PostgreSQL database already at the current schema (a copy of the template)."""
    name = _create_database(postgres_admin, postgres_template)
    try:
        yield _uri(postgres_admin, name)
    finally:
        _drop_database(postgres_admin, name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request, tmp_path) -> str:
    """An empty database (the stores create the schema on first use)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return request.getfixturevalue("postgres_uri")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def migrated_backend(request, tmp_path) -> str:
    """A database at the current schema: on PostgreSQL a copy of a template migrated once."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return request.getfixturevalue("postgres_migrated_uri")


@pytest.fixture
def settings(migrated_backend, tmp_path) -> StoreSettings:
    return StoreSettings(migrated_backend, tmp_path / "artifacts", "alice")


@pytest.fixture
def client(settings):
    with MlregClient(settings) as c:
        yield c


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory):
    """One S3 endpoint (moto's server, checking signatures) for the session, stopped after."""
    from tests.s3 import MotoS3

    if not (Path(sys.executable).parent / "moto_server").exists():
        if os.environ.get("CI") == "true":
            pytest.fail("moto_server is missing; CI installs it with the dev extra (.ci/setup)")
        pytest.skip('S3 tests need moto\'s server: pip install -e ".[dev]"')
    server = MotoS3.start(tmp_path_factory.mktemp("moto") / "moto_server.log")
    yield server
    server.stop()


@pytest.fixture
def s3_root(moto_s3, monkeypatch, tmp_path) -> str:
    """A fresh prefix in moto's bucket; boto3's standard chain finds the writer's keys."""
    for var in AWS_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for var, value in moto_s3.env().items():
        monkeypatch.setenv(var, value)
    return f"s3://{moto_s3.bucket}/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def s3_settings(migrated_backend, tmp_path, s3_root, moto_s3) -> StoreSettings:
    """Registry and tracking settings with the artifact root in S3 (and a cache in the home)."""
    return StoreSettings(
        migrated_backend, s3_root, "alice", tmp_path / "home", s3_endpoint_url=moto_s3.endpoint
    )


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
