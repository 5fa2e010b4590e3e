"""Models for the batch tests, saved once per session (TensorFlow is imported only here)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def cnn_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.serving import models

    return models.save_cnn(tmp_path_factory.mktemp("batch") / "cnn")


@pytest.fixture(scope="session")
def columns_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.serving import models

    return models.save_columns(tmp_path_factory.mktemp("batch") / "columns")


@pytest.fixture(scope="session")
def multi_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.serving import models

    return models.save_multi(tmp_path_factory.mktemp("batch") / "multi")


@pytest.fixture(scope="session")
def trouble_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.serving import models

    return models.save_trouble(tmp_path_factory.mktemp("batch") / "trouble")
