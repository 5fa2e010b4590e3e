from __future__ import annotations

import functools
import gc
import importlib
import os
import sqlite3
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, create_engine, inspect, text
from werkzeug.serving import make_server

from mlreg.models import ModelSignature, Schema, TensorSpec
from mlreg.models.model import Model
from mlreg.registry import MlregClient, reset_default_client
from mlreg.server.access import credentials
from mlreg.server.app import create_app
from mlreg.server.services import Services
from mlreg.server.settings import ServerSettings
from mlreg.store import StoreSettings, migrate
from mlreg.store.tables import Base
from mlreg.tracking import fluent
from tests.threads import serve_in_thread

PG_ENV = "MLREG_TEST_POSTGRES_URI"
#: The real schema check and creation (_sqlite_schema_from_a_template replaces it for tests).
ENSURE_SCHEMA = migrate.ensure_schema
#: argon2id with its cost turned down, for the users the tests make by the hundred (the
#: server's own parameters are asserted in tests/teams/test_auth.py).
CHEAP_HASHER = dict(time_cost=1, memory_cost=1024, parallelism=1)
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


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    """Every in-process server hashes and checks passwords in microseconds instead of 150 ms
    (servers started as processes keep the real cost)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            credentials, "PasswordHasher", functools.partial(PasswordHasher, **CHEAP_HASHER)
        )
        yield


@pytest.fixture(scope="session", autouse=True)
def _sqlite_schema_from_a_template(tmp_path_factory) -> Iterator[None]:
    """An empty SQLite database that a store opens in this process gets the schema copied from
    one migrated once per test process, in 1 ms instead of the 55 ms of running every
    migration (600 times in the fast selection); PostgreSQL tests copy a template database the
    same way. What is copied is what the migrations made. Servers started as processes, and
    tests that ask for ``real_migrations`` (tests/store/test_migrations.py), migrate for real."""
    template = tmp_path_factory.mktemp("schema") / "template.db"
    engine = create_engine(f"sqlite:///{template}")
    migrate.upgrade(engine)
    engine.dispose()

    def from_template(engine: Engine) -> None:
        if engine.dialect.name == "sqlite" and not inspect(engine).get_table_names():
            with closing(sqlite3.connect(template)) as source, engine.connect() as conn:
                source.backup(conn.connection.driver_connection)
        ENSURE_SCHEMA(engine)  # its checks, as for any database (now at the head: no-op)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(migrate, "ensure_schema", from_template)
        yield


@pytest.fixture
def real_migrations(monkeypatch) -> None:
    """This test's stores run the migrations on an empty database, as users' stores do."""
    monkeypatch.setattr(migrate, "ensure_schema", ENSURE_SCHEMA)


#: Fixtures that start a process outside the test's own: S3 (moto's server) and helm.
PROCESS_FIXTURES = {"moto_s3", "helm"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The fast selection (`-m "not slow"`) needs nothing outside the test process. Here, before
    # `-m` selects: a test that is not slow of its own and needs PostgreSQL or one of
    # PROCESS_FIXTURES is marked `process`, and every `process` test is also `slow`.
    for item in items:
        if not item.get_closest_marker("slow") and (
            item.get_closest_marker("postgres") or PROCESS_FIXTURES & set(item.fixturenames)
        ):
            item.add_marker(pytest.mark.process)
        if item.get_closest_marker("process"):
            item.add_marker(pytest.mark.slow)


def pytest_collection_finish(session: pytest.Session) -> None:
    # What collecting made lives until the end (7,560 items, the test modules, SQLAlchemy's
    # and Flask's tables): frozen, the garbage collector stops walking it again in every full
    # collection (a sixth of the CPU time of the UI, registry and tracking tests).
    gc.collect()
    gc.freeze()


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist workers run under execnet, whose __main__ has neither __spec__ nor __file__;
    # pyspark.sql.connect (which mlflow imports to recognise Spark frames) takes that for a
    # doctest run and exits the worker. Name the file the worker runs.
    main = sys.modules["__main__"]
    if getattr(main, "__spec__", None) is None and not hasattr(main, "__file__"):
        main.__file__ = "<pytest-xdist worker>"


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
    # pre_ping: a slow test restarts the PostgreSQL server; pooled connections are then dead.
    admin = create_engine(admin_uri, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
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


@pytest.fixture(scope="session")
def _postgres_shared(postgres_admin, postgres_template):
    """One database at the current schema for the session's tests that need no empty one."""
    name = _create_database(postgres_admin, postgres_template)
    engine = create_engine(_uri(postgres_admin, name), pool_pre_ping=True)
    yield _uri(postgres_admin, name), engine
    engine.dispose()
    _drop_database(postgres_admin, name)


#: Every row deleted (children first) and every id sequence back at 1: 2 ms, where
#: ``TRUNCATE ... RESTART IDENTITY CASCADE`` of the 30 tables took 170 ms a test.
EMPTY_POSTGRES = "; ".join(
    [
        *(f"DELETE FROM {t.name}" for t in reversed(Base.metadata.sorted_tables)),
        "SELECT setval(oid::regclass, 1, false) FROM pg_class WHERE relkind = 'S'",
    ]
)


@pytest.fixture
def postgres_migrated_uri(_postgres_shared):
    """A PostgreSQL database at the current schema with no rows: the session's shared one,
    emptied before each test (far cheaper than creating a database per test)."""
    uri, engine = _postgres_shared
    with engine.begin() as conn:
        conn.execute(text(EMPTY_POSTGRES))
    return uri


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


@dataclass
class LiveServer:
    """An mlreg server (the real app) on a real loopback socket, in a thread of this process,
    with its own SQLite store; ``services`` are the server's side of it."""

    url: str
    services: Services
    stop: Callable[[], None]


def start_live_server(home: Path) -> LiveServer:
    app = create_app(ServerSettings(store=StoreSettings.for_home(home, "server")))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    stop_serving = serve_in_thread(server, "live-server")

    def stop() -> None:
        stop_serving()
        app.extensions["mlreg.server"].close()

    url = f"http://127.0.0.1:{server.server_port}"
    return LiveServer(url, app.extensions["mlreg.server"], stop)


@pytest.fixture
def live_server(tmp_path) -> Iterator[LiveServer]:
    server = start_live_server(tmp_path / "server-home")
    yield server
    server.stop()


LOCAL_STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
STORES = [*LOCAL_STORES, pytest.param("server", marks=pytest.mark.server)]


def _settings(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> StoreSettings:
    if kind == "server":
        url = request.getfixturevalue("live_server").url
        return StoreSettings(url, tmp_path / "unused", "alice", home=tmp_path / "client-home")
    if request.param == "sqlite":
        return StoreSettings(
            f"sqlite:///{tmp_path / 'registry.db'}", tmp_path / "artifacts", "alice"
        )
    uri = request.getfixturevalue("postgres_migrated_uri")
    return StoreSettings(uri, tmp_path / "artifacts", "alice")


@pytest.fixture(params=STORES)
def settings(request, tmp_path) -> StoreSettings:
    """The registry and tracking of one test: on SQLite, on PostgreSQL, or through an mlreg
    server (REST stores over real HTTP, the server on SQLite)."""
    return _settings(request.param, request, tmp_path)


@pytest.fixture(params=LOCAL_STORES)
def local_settings(request, tmp_path) -> StoreSettings:
    """A registry on a database and local artifacts (tests that touch the stored files)."""
    return _settings(request.param, request, tmp_path)


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
def local_client(local_settings):
    with MlregClient(local_settings) as c:
        yield c


@pytest.fixture
def stored(client, request) -> Callable[[str, int], Path]:
    """Where the registry ``client`` talks to keeps the files of a version (its own, or its
    server's), for tests that look at or tamper with them."""
    owner = (
        request.getfixturevalue("live_server").services.registry
        if client.settings.remote
        else client
    )

    def path(name: str, version: int) -> Path:
        return owner.artifacts.path(owner.get_model_version(name, version).storage_location)

    path.root = owner.artifacts.root  # type: ignore[attr-defined]
    return path


@pytest.fixture(params=["local", pytest.param("server", marks=pytest.mark.server)])
def tracking_home(request, tmp_path, monkeypatch):
    """Fresh MLREG_HOME for the fluent tracking API and the default registry client: local
    (SQLite and files under it), or pointed at an mlreg server."""
    monkeypatch.setenv("MLREG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLREG_USER", "dora")
    for var in ("MLREG_REGISTRY_URI", "MLREG_TRACKING_URI", "MLREG_ARTIFACT_ROOT"):
        monkeypatch.delenv(var, raising=False)
    if request.param == "server":
        monkeypatch.setenv("MLREG_TRACKING_URI", request.getfixturevalue("live_server").url)
    fluent.reset()
    reset_default_client()
    yield tmp_path / "home"
    fluent.reset()
    reset_default_client()


# --- TensorFlow, only through fixtures ----------------------------------------------------
# TensorFlow takes seconds to import and the fast selection runs without it: these import
# it when the first (slow) test that needs it runs, never while collecting.


@pytest.fixture(scope="session")
def tf() -> ModuleType:
    return pytest.importorskip("tensorflow")


@pytest.fixture(scope="session")
def keras(tf: ModuleType) -> ModuleType:
    return pytest.importorskip("keras")


@pytest.fixture(scope="session")
def zoo(keras: ModuleType) -> ModuleType:
    """tests/tensorflow/zoo.py: a small model of each kind the flavor saves."""
    return importlib.import_module("tests.tensorflow.zoo")


@pytest.fixture(scope="session")
def mlreg_tf(tf: ModuleType) -> ModuleType:
    """mlreg.tensorflow: save_model, load_model, log_model, autolog, MlregCallback."""
    return importlib.import_module("mlreg.tensorflow")
