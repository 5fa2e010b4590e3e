"""The main job on the embedded defaults: train, save, register, promote, load, predict.

The registry is SQLite plus local artifacts under ./.mlreg (override with MLREG_HOME,
MLREG_REGISTRY_URI, MLREG_ARTIFACT_ROOT).

Run from the repository root after `bash .ci/setup`:  .venv/bin/python examples/quickstart.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import keras
import numpy as np

import mlreg
import mlreg.tensorflow
from mlreg import pyfunc

MODEL_NAME = "mnist-cnn"


def train() -> tuple[keras.Model, np.ndarray]:
    """Train the reference docs' CNN on random 28x28x3 images, as in the MLflow guide."""
    rng = np.random.default_rng(0)
    data = rng.uniform(size=[20, 28, 28, 3]).astype(np.float32)
    label = rng.integers(2, size=20)
    keras.utils.set_random_seed(0)
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
    model.fit(data, label, batch_size=5, epochs=2, verbose=0)
    return model, data


def main() -> None:
    model, data = train()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / MODEL_NAME
        mlreg.tensorflow.save_model(model, path, input_example=data[:2])
        print(f"saved    {path} ({', '.join(sorted(p.name for p in path.iterdir()))})")
        version = mlreg.register_model(str(path), MODEL_NAME, tags={"data": "random"})
    print(f"registered {version.uri} (sha256:{version.digest[:12]})")

    with mlreg.MlregClient() as client:
        client.transition_model_version_stage(
            MODEL_NAME, version.version, "Production", archive_existing_versions=True
        )
        history = client.get_stage_history(MODEL_NAME, version.version)
    print(f"promoted {version.uri} to Production by {history[-1].user}")

    loaded = pyfunc.load_model(f"models:/{MODEL_NAME}/Production")
    print(f"loaded   models:/{MODEL_NAME}/Production -> version {loaded.source.version}")
    print(f"signature inputs: {json.dumps(loaded.signature.to_json_dict()['inputs'])}")
    prediction = loaded.predict(data[:3])
    print(f"predict  {np.round(prediction.astype(float), 4).tolist()}")


if __name__ == "__main__":
    main()
