"""The reference documents' model registry examples, as written for MLflow, with only the
tracking URI changed (``MLFLOW_TRACKING_URI``): register a run's model, move it through the
stages, point an alias at it, load it by stage and by alias."""

import mlflow
import numpy as np
from mlflow import MlflowClient
from tensorflow import keras

model = keras.Sequential([keras.Input([4]), keras.layers.Dense(2), keras.layers.Softmax()])
model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
model.fit(np.random.uniform(size=[20, 4]), np.random.randint(2, size=20), epochs=1, verbose=0)
example = np.random.uniform(size=[2, 4]).astype("float32")

# log_model with registered_model_name registers it in one step
with mlflow.start_run() as run:
    mlflow.tensorflow.log_model(
        model, name="keras-model", input_example=example, registered_model_name="keras-dense"
    )

# or register a model already logged, from its MODEL URI
result = mlflow.register_model(f"runs:/{run.info.run_id}/keras-model", "keras-dense")

client = MlflowClient()
client.transition_model_version_stage(
    name="keras-dense", version=result.version, stage="Production", archive_existing_versions=True
)
client.set_registered_model_alias("keras-dense", "champion", result.version)
client.update_model_version("keras-dense", result.version, description="the dense one")

model_name, stage = "keras-dense", "Production"
production = mlflow.pyfunc.load_model(model_uri=f"models:/{model_name}/{stage}")
champion = mlflow.pyfunc.load_model(model_uri=f"models:/{model_name}@champion")
print("versions", [v.version for v in client.search_model_versions(f"name = '{model_name}'")])
print("production", production.predict(example).shape, "champion", champion.predict(example).shape)
