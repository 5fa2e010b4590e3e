"""The model every benchmark measures: the reference docs' 28x28x3 Keras CNN."""

from __future__ import annotations

import keras


def reference_cnn() -> keras.Model:
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
