"""TensorFlow, Keras, mlreg.tensorflow and the zoo reach these tests through fixtures.

They take seconds to import and the fast selection runs without them: a fixture imports
them when the first (slow) test that needs them runs, never while collecting.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest


@pytest.fixture(scope="session")
def images() -> np.ndarray:
    return np.random.default_rng(0).uniform(size=(4, 28, 28, 3)).astype(np.float32)


@pytest.fixture(scope="session")
def cnn(zoo: ModuleType) -> Any:
    return zoo.reference_cnn()


@pytest.fixture(scope="session")
def cnn_dir(
    tmp_path_factory: pytest.TempPathFactory, mlreg_tf: ModuleType, cnn: Any, images: np.ndarray
) -> Path:
    path = tmp_path_factory.mktemp("cnn") / "model"
    mlreg_tf.save_model(cnn, path, input_example=images[:2])
    return path
