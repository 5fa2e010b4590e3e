"""The guide's multi-model experiment: a parent run with nested child runs."""

import numpy as np
from tensorflow import keras

import mlreg
import mlreg.tensorflow

x = np.random.uniform(size=[40, 8]).astype("float32")
y = np.random.randint(2, size=40)


def create_model(width):
    model = keras.Sequential(
        [
            keras.Input([8]),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def accuracy(model):
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y))


# Main experiment run
with mlreg.start_run(run_name="ensemble_experiment") as parent_run:
    mlreg.log_param("experiment_type", "ensemble")

    # Train first model
    with mlreg.start_run(run_name="model_1", nested=True) as child_run_1:
        model_1 = create_model(4)
        model_1.fit(x, y, epochs=2, verbose=0)
        mlreg.tensorflow.log_model(model_1, name="model_1")
        mlreg.log_metric("accuracy", accuracy(model_1))

    # Train second model
    with mlreg.start_run(run_name="model_2", nested=True) as child_run_2:
        model_2 = create_model(16)
        model_2.fit(x, y, epochs=2, verbose=0)
        mlreg.tensorflow.log_model(model_2, name="model_2")
        mlreg.log_metric("accuracy", accuracy(model_2))

    # Create and log ensemble model
    inputs = keras.Input([8])
    ensemble_model = keras.Model(inputs, keras.layers.Average()([model_1(inputs), model_2(inputs)]))
    mlreg.tensorflow.log_model(ensemble_model, name="ensemble_model")
    mlreg.log_metric("ensemble_accuracy", accuracy(ensemble_model))

children = mlreg.search_runs(
    filter_string=f"tags.mlreg.parentRunId = '{parent_run.info.run_id}'", output_format="list"
)
print(sorted(r.info.run_name for r in children))
