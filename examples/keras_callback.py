"""The guide's Keras-callback examples: MlregCallback and a custom callback."""

import math

import numpy as np
from tensorflow import keras

import mlreg
import mlreg.tensorflow

data = np.random.uniform(size=[64, 28, 28, 3])
labels = np.random.randint(2, size=64)


def make_model():
    model = keras.Sequential(
        [
            keras.Input([28, 28, 3]),
            keras.layers.Conv2D(8, 2),
            keras.layers.MaxPool2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
            keras.layers.Softmax(),
        ]
    )
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


# Create an mlreg run and add the callback
with mlreg.start_run() as run:
    make_model().fit(
        data,
        labels,
        batch_size=32,
        epochs=10,
        callbacks=[mlreg.tensorflow.MlregCallback(run)],
    )

step_callback = mlreg.tensorflow.MlregCallback(
    log_every_epoch=True,  # Log metrics at the end of each epoch
    log_every_n_steps=1,  # Log metrics every N steps as well
)


class CustomMlregCallback(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        mlreg.log_metric("current_epoch", epoch)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        # Log metrics in log scale
        for k, v in logs.items():
            if v > 0:  # Avoid log(0) or log(negative)
                mlreg.log_metric(f"log_{k}", math.log(v), step=epoch)
            mlreg.log_metric(k, v, step=epoch)

    def on_train_end(self, logs=None):
        # Log final model weights statistics
        weights = self.model.get_weights()
        mlreg.log_metric("total_parameters", sum(w.size for w in weights))
        mlreg.log_metric(
            "average_weight",
            sum(w.sum() for w in weights) / sum(w.size for w in weights),
        )


with mlreg.start_run() as run2:
    make_model().fit(data, labels, epochs=3, callbacks=[step_callback, CustomMlregCallback()])

print(sorted(mlreg.get_run(run.info.run_id).data.metrics))
print(sorted(mlreg.get_run(run2.info.run_id).data.metrics))
