"""The main job on the embedded defaults: train, save, load through pyfunc, predict.

Run from the repository root after `bash .ci/setup`:  .venv/bin/python examples/quickstart.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import keras
import numpy as np

import mlreg.tensorflow
from mlreg import pyfunc


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
        path = Path(tmp) / "mnist-cnn"
        mlreg.tensorflow.save_model(model, path, input_example=data[:2])
        print(f"saved   {path} ({', '.join(sorted(p.name for p in path.iterdir()))})")
        loaded = pyfunc.load_model(path)
        print(f"loaded  {loaded!r}")
        print(f"signature inputs: {json.dumps(loaded.signature.to_json_dict()['inputs'])}")
        prediction = loaded.predict(data[:3])
        print(f"predict {np.round(prediction.astype(float), 4).tolist()}")


if __name__ == "__main__":
    main()
