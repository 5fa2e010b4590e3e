"""Small real models for the serving tests, saved with mlreg.tensorflow.save_model.

This module imports TensorFlow: only fixtures of slow tests import it (see conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mlreg.models.signature import ColSpec, ModelSignature, Schema, TensorSpec
from mlreg.tensorflow import save_model
from tests.serving.data import columns_example, images, multi_example
from tests.tensorflow.zoo import reference_cnn, two_in_two_out


def save_cnn(path: Path) -> Path:
    save_model(reference_cnn(), path, input_example=images(2))
    return path


def save_columns(path: Path) -> Path:
    """A Keras model on three named columns (two doubles and a long), with a ColSpec signature."""
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    signature = ModelSignature(
        inputs=Schema([ColSpec("double", "a"), ColSpec("double", "b"), ColSpec("long", "c")]),
        outputs=Schema([TensorSpec(np.dtype("float32"), (-1, 1))]),
    )
    save_model(model, path, signature=signature, input_example=columns_example())
    return path


def save_multi(path: Path) -> Path:
    save_model(two_in_two_out(), path, input_example=multi_example())
    return path


class Trouble(tf.Module):
    """Spins for x[0, 0] seconds' worth of loop steps, and fails inside the graph for x >= 100.

    Stands for a slow model (timeouts, graceful shutdown) and a broken one (500s).
    """

    def __init__(self, steps_per_second: float) -> None:
        super().__init__()
        self.rate = tf.constant(steps_per_second, tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
    def __call__(self, x):
        tf.debugging.assert_less(x, 100.0, message="input too large")
        steps = tf.cast(x[0, 0] * self.rate, tf.int32)
        m = tf.ones([32, 32])

        def body(i, acc):
            return i + 1, acc + tf.reduce_sum(tf.matmul(m, m)) * 0.0

        _, acc = tf.while_loop(lambda i, acc: i < steps, body, (0, tf.constant(0.0)))
        return {"y": x + 1.0 + acc}


def save_trouble(path: Path) -> Path:
    save_model(Trouble(steps_per_second=200_000), path, input_example=np.zeros((1, 2), np.float32))
    return path


class Wide(tf.Module):
    """``x + shift`` with a large weight riding along (a version costs ``WIDE_BYTES`` loaded),
    so whether a retired version's memory comes back shows in the worker's RSS."""

    def __init__(self, shift: float) -> None:
        super().__init__()
        self.shift = tf.constant(shift, tf.float32)
        # Random, so no page is shared or left untouched: the whole weight is resident.
        self.w = tf.Variable(tf.random.stateless_uniform(WIDE_SHAPE, seed=[1, int(shift)]))

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def __call__(self, x):
        # The weight is read on every call, but adds nothing.
        return {"y": x + self.shift + 0.0 * tf.reduce_sum(self.w[:1, :1])}


WIDE_SHAPE = (2048, 4096)
WIDE_BYTES = 2048 * 4096 * 4  # 32 MiB


def save_wide(path: Path, shift: float) -> Path:
    save_model(Wide(shift), path, input_example=np.zeros((1, 4), np.float32))
    return path
