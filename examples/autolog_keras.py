"""The TensorFlow guide's autologging example, with `mlreg.` in place of `mlflow.`."""

import numpy as np
from tensorflow import keras

import mlreg
import mlreg.tensorflow

# Enable autologging
mlreg.tensorflow.autolog()

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
with mlreg.start_run() as run:
    model.fit(data, label, batch_size=5, epochs=2)

# Customised autologging
mlreg.tensorflow.autolog(
    log_models=True,
    log_input_examples=True,
    log_model_signatures=True,
    log_every_n_steps=1,
)
with mlreg.start_run() as run2:
    model.fit(data, label, batch_size=5, epochs=2)

for r in (run, run2):
    logged = mlreg.get_run(r.info.run_id)
    print(r.info.run_id, sorted(logged.data.metrics), logged.data.params["opt_name"])
