"""The reference documents' Keras callback examples (MLflow's callback and a custom one), as
written for MLflow, with only the tracking URI changed (``MLFLOW_TRACKING_URI``)."""

import math

import mlflow
import numpy as np
from tensorflow import keras

data = np.random.uniform(size=[20, 4])
labels = np.random.randint(2, size=20)
model = keras.Sequential([keras.Input([4]), keras.layers.Dense(2), keras.layers.Softmax()])
model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")

# Create an MLflow run and add the callback
with mlflow.start_run() as run:
    model.fit(
        data,
        labels,
        batch_size=32,
        epochs=10,
        callbacks=[mlflow.tensorflow.MlflowCallback(run)],
    )


class CustomMlflowCallback(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        mlflow.log_metric("current_epoch", epoch)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        # Log metrics in log scale
        for k, v in logs.items():
            if v > 0:  # Avoid log(0) or log(negative)
                mlflow.log_metric(f"log_{k}", math.log(v), step=epoch)
            mlflow.log_metric(k, v, step=epoch)

    def on_train_end(self, logs=None):
        # Log final model weights statistics
        weights = self.model.get_weights()
        mlflow.log_metric("total_parameters", sum(w.size for w in weights))
        mlflow.log_metric(
            "average_weight",
            sum(w.sum() for w in weights) / sum(w.size for w in weights),
        )


with mlflow.start_run() as custom:
    model.fit(data, labels, epochs=3, callbacks=[CustomMlflowCallback()])

print("callback", sorted(mlflow.get_run(run.info.run_id).data.metrics))
print("custom", sorted(mlflow.get_run(custom.info.run_id).data.metrics))
