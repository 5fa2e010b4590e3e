"""The reference documents' TensorFlow autologging example, as written for MLflow, with only
the tracking URI changed (``MLFLOW_TRACKING_URI``); then the same with
``registered_model_name``, which registers the model the run logged."""

import mlflow
import numpy as np
import tensorflow as tf  # noqa: F401  (as in the example)
from tensorflow import keras

# Enable autologging
mlflow.tensorflow.autolog()

# Prepare sample data
data = np.random.uniform(size=[20, 28, 28, 3])
label = np.random.randint(2, size=20)

# Define model
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

model.compile(
    loss=keras.losses.SparseCategoricalCrossentropy(),
    optimizer=keras.optimizers.Adam(0.001),
    metrics=[keras.metrics.SparseCategoricalAccuracy()],
)

# Training with automatic logging
with mlflow.start_run() as run:
    model.fit(data, label, batch_size=5, epochs=2)

# The same, registering the model: what the design card's flow starts from.
mlflow.tensorflow.autolog(
    log_models=True,
    log_input_examples=True,
    log_model_signatures=True,
    log_every_n_steps=1,
    registered_model_name="autolog-cnn",
)
mlflow.set_experiment("autolog")
with mlflow.start_run() as registered:
    model.fit(data, label, batch_size=5, epochs=2)

print("autologged", run.info.run_id, sorted(mlflow.get_run(run.info.run_id).data.metrics))
print("registered run", registered.info.run_id)
