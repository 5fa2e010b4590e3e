"""Small real models of each kind the TensorFlow flavor supports."""

from __future__ import annotations

import keras
import tensorflow as tf


def reference_cnn() -> keras.Model:
    """The reference docs' model: 28x28x3 images, two classes."""
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input([28, 28, 3]),
            keras.layers.Conv2D(8, 2),
            keras.layers.MaxPool2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
            keras.layers.Softmax(),
        ]
    )


def two_in_two_out() -> keras.Model:
    keras.utils.set_random_seed(1)
    a = keras.Input((3,), name="a")
    b = keras.Input((2,), name="b")
    h = keras.layers.Concatenate()([a, b])
    return keras.Model(
        {"a": a, "b": b},
        {
            "score": keras.layers.Dense(1, name="score")(h),
            "probs": keras.layers.Dense(2, name="probs")(h),
        },
    )


class Doubler(keras.Model):
    """A subclassed Keras model."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(4)

    def call(self, x):
        return self.dense(x) * 2.0


class Scaler(tf.Module):
    """A plain tf.Module with a serving signature."""

    def __init__(self):
        super().__init__()
        self.w = tf.Variable(3.0)

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
    def __call__(self, x):
        return {"y": x * self.w}


class Guarded(tf.Module):
    """Fails inside the graph for inputs >= 100, like a model hitting a runtime error."""

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
    def __call__(self, x):
        tf.debugging.assert_less(x, 100.0, message="input too large")
        return {"y": x + 1.0}
