from __future__ import annotations

import numpy as np
import pytest

from mlreg.tensorflow import save_model
from tests.tensorflow.zoo import reference_cnn


@pytest.fixture(scope="session")
def images() -> np.ndarray:
    return np.random.default_rng(0).uniform(size=(4, 28, 28, 3)).astype(np.float32)


@pytest.fixture(scope="session")
def cnn():
    return reference_cnn()


@pytest.fixture(scope="session")
def cnn_dir(tmp_path_factory, cnn, images):
    path = tmp_path_factory.mktemp("cnn") / "model"
    save_model(cnn, path, input_example=images[:2])
    return path
