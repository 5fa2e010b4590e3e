"""Models built once per session; servers for them started once per session (TF is slow)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving import models
from tests.serving.server import Server

COLUMNS_LIMIT = 64 * 1024


@pytest.fixture(scope="session")
def cnn_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return models.save_cnn(tmp_path_factory.mktemp("serving") / "cnn")


@pytest.fixture(scope="session")
def columns_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return models.save_columns(tmp_path_factory.mktemp("serving") / "columns")


@pytest.fixture(scope="session")
def multi_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return models.save_multi(tmp_path_factory.mktemp("serving") / "multi")


@pytest.fixture(scope="session")
def trouble_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return models.save_trouble(tmp_path_factory.mktemp("serving") / "trouble")


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
