"""The main job through a shared server: the quickstart's flow, with the registry and tracking
kept by `mlreg server` instead of local files.

It starts `mlreg server` on a free port (its database and artifacts in a scratch directory),
points this process and every command it starts at it with one variable,
MLREG_TRACKING_URI=http://127.0.0.1:<port>, then trains with autologging (which registers the
model through the server), promotes it, loads models:/mnist-cnn/Production (downloaded from
the server, cached by digest, checked on load), serves it with `mlreg serve` and stops the
server. Run from the repository root after `bash .ci/setup`:
    .venv/bin/python examples/team.py
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
from quickstart import MLREG, MODEL_NAME, free_port, serve_and_predict, train

import mlreg
from mlreg import pyfunc


def start_server(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`mlreg server` on a free loopback port, storing under ``home``; wait until /ready."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLREG_")}
    server = subprocess.Popen(
        [MLREG, "server", "--port", str(port), "--workers", "2", "--log-level", "warning"],
        env={**env, "MLREG_HOME": str(home)},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=2) as r:
                if r.status == 200:
                    return server, url
        except (urllib.error.URLError, ConnectionError):
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"mlreg server did not become ready (exit code {server.poll()})")
        time.sleep(0.2)


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="mlreg-team-"))
    server, url = start_server(scratch / "server")
    print(f"server   {url} (data in {scratch / 'server'})")
    # One variable points everything at the server: this process, and every `mlreg` command
    # it starts. MLREG_HOME is now only the client's download cache.
    os.environ["MLREG_TRACKING_URI"] = url
    os.environ["MLREG_HOME"] = str(scratch / "client")
    try:
        data = train()
        with mlreg.MlregClient() as client:
            version = client.search_model_versions(name=MODEL_NAME, max_results=1).items[0]
            print(f"registered {version.uri} (sha256:{version.digest[:12]}) on the server")
            client.transition_model_version_stage(
                MODEL_NAME, version.version, "Production", archive_existing_versions=True
            )
            history = client.get_stage_history(MODEL_NAME, version.version)
        print(f"promoted {version.uri} to Production by {history[-1].user}")

        uri = f"models:/{MODEL_NAME}/Production"
        loaded = pyfunc.load_model(uri)
        print(f"loaded   {uri} -> version {loaded.source.version} from {loaded.model_dir}")
        prediction = loaded.predict(data[:3])
        print(f"predict  {np.round(prediction.astype(float), 4).tolist()}")

        answer = serve_and_predict(uri, loaded.serving_input_example)
        print(f"served   POST /invocations -> {json.dumps(answer)[:160]}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        print(f"stopped  the server (exit code {server.returncode})")


if __name__ == "__main__":
    main()
