"""Request data for the serving tests: numpy and pandas only, so any test may import it."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Rows for the three-column models (two doubles and a long).
FRAME = pd.DataFrame({"a": [0.5, -1.25, 3.0], "b": [2.0, 0.0, -4.5], "c": [1, 7, -2]})


def images(n: int, seed: int = 0) -> np.ndarray:
    """``n`` 28x28 RGB images with values in [0, 1)."""
    return np.random.default_rng(seed).uniform(size=(n, 28, 28, 3)).astype(np.float32)


def columns_example() -> pd.DataFrame:
    return pd.DataFrame({"a": [0.5, 1.5], "b": [-1.0, 2.0], "c": [1, 2]})


def multi_example(n: int = 2, seed: int = 3) -> dict[str, np.ndarray]:
    """Named inputs ``a`` (n x 3) and ``b`` (n x 2) for the two-input models."""
    rng = np.random.default_rng(seed)
    return {
        "a": rng.normal(size=(n, 3)).astype(np.float32),
        "b": rng.normal(size=(n, 2)).astype(np.float32),
    }
