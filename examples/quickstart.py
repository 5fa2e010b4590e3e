"""The main job on the embedded defaults: train, register, promote, serve, predict.

Training is autologged and registers the model through ``registered_model_name``; the
registry is SQLite plus local artifacts under ./.mlreg (override with MLREG_HOME,
MLREG_REGISTRY_URI, MLREG_ARTIFACT_ROOT). Run from the repository root after
`bash .ci/setup`:  .venv/bin/python examples/quickstart.py
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import keras
import numpy as np

import mlreg
import mlreg.tensorflow
from mlreg import pyfunc

MODEL_NAME = "mnist-cnn"
MLREG = str(Path(sys.executable).with_name("mlreg"))


def train() -> np.ndarray:
    """Train the reference docs' CNN on random 28x28x3 images, with autologging on."""
    mlreg.tensorflow.autolog(registered_model_name=MODEL_NAME, log_input_examples=True)
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
    mlreg.set_experiment("quickstart")
    with mlreg.start_run(run_name="reference-cnn") as run:
        model.fit(data, label, batch_size=5, epochs=2, verbose=0)
    logged = mlreg.get_run(run.info.run_id)
    print(
        f"trained  run {run.info.run_id}: loss {logged.data.metrics['loss']:.4f}, "
        f"{len(logged.data.params)} params logged"
    )
    return data


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_and_predict(uri: str, body: str) -> dict:
    """Run `mlreg serve` on the model, POST the body to /invocations, stop the server."""
    port = free_port()
    server = subprocess.Popen([MLREG, "serve", "-m", uri, "--port", str(port)])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"mlreg serve did not become ready (exit code {server.poll()})")
            time.sleep(0.5)
        request = urllib.request.Request(
            f"{base}/invocations", body.encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            return json.loads(r.read())
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def main() -> None:
    data = train()
    with mlreg.MlregClient() as client:
        version = client.search_model_versions(name=MODEL_NAME, max_results=1).items[0]
        print(f"registered {version.uri} (sha256:{version.digest[:12]})")
        client.transition_model_version_stage(
            MODEL_NAME, version.version, "Production", archive_existing_versions=True
        )
        history = client.get_stage_history(MODEL_NAME, version.version)
    print(f"promoted {version.uri} to Production by {history[-1].user}")

    uri = f"models:/{MODEL_NAME}/Production"
    loaded = pyfunc.load_model(uri)
    print(f"loaded   {uri} -> version {loaded.source.version}")
    print(f"signature inputs: {json.dumps(loaded.signature.to_json_dict()['inputs'])}")
    prediction = loaded.predict(data[:3])
    print(f"predict  {np.round(prediction.astype(float), 4).tolist()}")

    answer = serve_and_predict(uri, loaded.serving_input_example)
    print(f"served   POST /invocations -> {json.dumps(answer)[:160]}")


if __name__ == "__main__":
    main()
