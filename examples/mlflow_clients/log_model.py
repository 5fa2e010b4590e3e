"""The reference documents' model logging examples (log_model, signatures, nested runs), as
written for MLflow, with only the tracking URI changed (``MLFLOW_TRACKING_URI``)."""

import mlflow
import numpy as np
import tensorflow as tf
from mlflow.models import ModelSignature, infer_signature
from mlflow.types import Schema, TensorSpec
from tensorflow import keras

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

with mlflow.start_run():
    # Log the model to MLflow
    model_info = mlflow.tensorflow.log_model(model, name="model")

# Later, load the model for inference
loaded_model = mlflow.tensorflow.load_model(model_info.model_uri)
predictions = loaded_model.predict(tf.random.uniform([1, 28, 28, 3]))

# Signatures: inferred from data, and written by hand.
data = np.random.uniform(size=[4, 28, 28, 3]).astype("float32")
signature = infer_signature(data, model.predict(data))
with mlflow.start_run():
    inferred = mlflow.tensorflow.log_model(model, name="model", signature=signature)
input_schema = Schema([TensorSpec(np.dtype(np.float32), (-1, 28, 28, 3))])
output_schema = Schema([TensorSpec(np.dtype(np.float32), (-1, 2))])
signature = ModelSignature(inputs=input_schema, outputs=output_schema)
with mlflow.start_run():
    manual = mlflow.tensorflow.log_model(model, name="model", signature=signature)

# Nested runs: one model per child, the ensemble in the parent.
model_1, model_2, ensemble_model = model, model, model
accuracy_1, accuracy_2, ensemble_accuracy = 0.81, 0.83, 0.86
with mlflow.start_run(run_name="ensemble_experiment") as parent_run:
    mlflow.log_param("experiment_type", "ensemble")

    with mlflow.start_run(run_name="model_1", nested=True) as child_run_1:
        mlflow.tensorflow.log_model(model_1, name="model_1")
        mlflow.log_metric("accuracy", accuracy_1)

    with mlflow.start_run(run_name="model_2", nested=True) as child_run_2:
        mlflow.tensorflow.log_model(model_2, name="model_2")
        mlflow.log_metric("accuracy", accuracy_2)

    mlflow.tensorflow.log_model(ensemble_model, name="ensemble_model")
    mlflow.log_metric("ensemble_accuracy", ensemble_accuracy)

children = mlflow.search_runs(
    filter_string=f"tags.mlflow.parentRunId = '{parent_run.info.run_id}'",
    order_by=["attributes.run_name ASC"],
)
print("predictions", predictions.shape)
print("signatures", inferred.signature is not None, manual.signature is not None)
print("nested", list(children["tags.mlflow.runName"]))
