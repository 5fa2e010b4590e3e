"""Fixtures for the serving tests: real models and servers (slow), their numpy stand-ins (fast).

TensorFlow takes seconds to import and the fast selection runs without it: the real models
come from ``tf_models``, which only slow tests reach, and nothing here imports TensorFlow
at collection time. Models and servers are built once per session.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import logging
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mlreg import config
from mlreg.pyfunc import load_model
from mlreg.serving import ServingSettings, create_app
from mlreg.serving.app import ACCESS_LOGGER
from tests.serving import fakes
from tests.serving.server import Server
from tests.serving.targets import AppClient, ListHandler, Target

COLUMNS_LIMIT = 64 * 1024


# --- real TensorFlow models and `mlreg serve` processes (slow) ---------------------------------


@pytest.fixture(scope="session")
def tf_models() -> ModuleType:
    """tests/serving/models.py, which imports TensorFlow."""
    pytest.importorskip("tensorflow")
    return importlib.import_module("tests.serving.models")


@pytest.fixture(scope="session")
def cnn_dir(tmp_path_factory: pytest.TempPathFactory, tf_models: ModuleType) -> Path:
    return tf_models.save_cnn(tmp_path_factory.mktemp("serving") / "cnn")


@pytest.fixture(scope="session")
def columns_dir(tmp_path_factory: pytest.TempPathFactory, tf_models: ModuleType) -> Path:
    return tf_models.save_columns(tmp_path_factory.mktemp("serving") / "columns")


@pytest.fixture(scope="session")
def multi_dir(tmp_path_factory: pytest.TempPathFactory, tf_models: ModuleType) -> Path:
    return tf_models.save_multi(tmp_path_factory.mktemp("serving") / "multi")


@pytest.fixture(scope="session")
def trouble_dir(tmp_path_factory: pytest.TempPathFactory, tf_models: ModuleType) -> Path:
    return tf_models.save_trouble(tmp_path_factory.mktemp("serving") / "trouble")


def _serve(tmp: pytest.TempPathFactory, model: Path, name: str, *args: str) -> Server:
    return Server(model, tmp.mktemp("logs") / f"{name}.log", args=args)


@pytest.fixture(scope="session")
def cnn_server(tmp_path_factory: pytest.TempPathFactory, cnn_dir: Path) -> Iterator[Server]:
    server = _serve(tmp_path_factory, cnn_dir, "cnn").wait_ready()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def columns_server(tmp_path_factory: pytest.TempPathFactory, columns_dir: Path) -> Iterator[Server]:
    # A small body limit here, so the 413 test needs no 100 MB upload.
    server = _serve(
        tmp_path_factory, columns_dir, "columns", "--max-request-bytes", str(COLUMNS_LIMIT)
    ).wait_ready()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def multi_server(tmp_path_factory: pytest.TempPathFactory, multi_dir: Path) -> Iterator[Server]:
    server = _serve(tmp_path_factory, multi_dir, "multi").wait_ready()
    yield server
    server.stop()


# --- the same HTTP tests in this process, on numpy stand-ins (fast) ----------------------------


@pytest.fixture(scope="session")
def access_log() -> Iterator[list[str]]:
    """The access-log lines the in-process apps write (a server writes them to its log file)."""
    lines: list[str] = []
    logger = logging.getLogger(ACCESS_LOGGER)
    handler, level = ListHandler(lines), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture(scope="session")
def fake_cnn(tmp_path_factory: pytest.TempPathFactory) -> fakes.NumpyModel:
    return fakes.cnn(tmp_path_factory.mktemp("fakes") / "cnn")


@pytest.fixture(scope="session")
def fake_columns(tmp_path_factory: pytest.TempPathFactory) -> fakes.NumpyModel:
    return fakes.columns(tmp_path_factory.mktemp("fakes") / "columns")


@pytest.fixture(scope="session")
def fake_multi(tmp_path_factory: pytest.TempPathFactory) -> fakes.NumpyModel:
    return fakes.multi(tmp_path_factory.mktemp("fakes") / "multi")


@pytest.fixture(
    scope="session",
    # The real server is a process; on the TensorFlow model, slow.
    params=[
        "app",
        pytest.param("fake-served", marks=pytest.mark.process),
        pytest.param("served", marks=pytest.mark.slow),
    ],
)
def kind(request: pytest.FixtureRequest) -> str:
    """Where the HTTP tests run: ``app`` (the app factory, a numpy model, Flask's test client),
    ``fake-served`` (the real server, gunicorn and its HTTP worker's direct path, on the numpy
    model) or ``served`` (``mlreg serve`` of the TensorFlow model, over loopback)."""
    return request.param


@pytest.fixture(scope="session")
def fake_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """The real server on each numpy model, started when first asked for."""
    servers: dict[str, Server] = {}

    def start(name: str, env: dict[str, str]) -> Server:
        if name not in servers:
            tmp = tmp_path_factory.mktemp(f"fake-served-{name}")
            servers[name] = Server.fake(name, tmp / name, tmp / "server.log", env=env).wait_ready()
        return servers[name]

    yield start  # type: ignore[misc]
    for server in servers.values():
        server.stop()


def _target(request: pytest.FixtureRequest, kind: str, name: str, **settings: Any) -> Target:
    if kind == "served":
        model_dir = request.getfixturevalue(f"{name}_dir")
        return Target(request.getfixturevalue(f"{name}_server"), load_model(model_dir))
    fake = request.getfixturevalue(f"fake_{name}")
    if kind == "fake-served":
        env = {config.env_var(k): str(v) for k, v in settings.items()}
        server = request.getfixturevalue("fake_servers")(name, env)
        model = dataclasses.replace(fake.source, path=server_model_dir(server, name))
        fake_copy = copy.copy(fake)
        fake_copy.source = model
        return Target(server, fake_copy)
    app = create_app(ServingSettings(**settings), model=fake)
    return Target(AppClient(app, request.getfixturevalue("access_log")), fake)


def server_model_dir(server: Server, name: str) -> Path:
    """Where the fake server saved its model (its directory's name is the model's name)."""
    return server.log_path.parent / name


@pytest.fixture(scope="session")
def cnn_target(request: pytest.FixtureRequest, kind: str) -> Target:
    return _target(request, kind, "cnn")


@pytest.fixture(scope="session")
def columns_target(request: pytest.FixtureRequest, kind: str) -> Target:
    return _target(request, kind, "columns", max_request_bytes=COLUMNS_LIMIT)


@pytest.fixture(scope="session")
def multi_target(request: pytest.FixtureRequest, kind: str) -> Target:
    return _target(request, kind, "multi")
