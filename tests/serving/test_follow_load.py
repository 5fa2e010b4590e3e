"""Follow mode for real: ``mlreg serve --follow`` of TensorFlow models registered in a real
``mlreg server`` (REST stores, downloads cached by digest), under load from keep-alive
clients while the alias moves three times.

Zero failed requests; every answer computed by the version its X-Model-Version header names,
and that version named by the alias while the request was in flight (or within a poll and a
swap before); and the worker's memory back to one model after each swap: each version holds
a 32 MiB weight, so versions that were never freed would add up.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import requests

from mlreg.registry import MlregClient
from mlreg.store.settings import StoreSettings
from tests.serving.server import MLREG, Server, free_port
from tests.serving.test_follow import named_between

pytestmark = pytest.mark.slow

NAME, ALIAS = "wide", "champion"
URI = f"models:/{NAME}@{ALIAS}"
X = np.array([[1.0, 2.0, 3.0, 4.0]], np.float32)
SHIFTS = {1: 10.0, 2: 20.0, 3: 30.0, 4: 40.0}
SWAP_LAG = 5.0  # a poll (0.5 s) and a TensorFlow load and warm-up


class RegistryServer:
    """``mlreg server`` in a subprocess, on SQLite and files under ``home``."""

    def __init__(self, home: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLREG_")}
        env |= {"MLREG_HOME": str(home), "MLREG_PORT": str(self.port), "MLREG_WORKERS": "1"}
        self._log = open(log, "wb")  # noqa: SIM115  (closed in stop())
        self.proc = subprocess.Popen(
            [MLREG, "server"], stdout=self._log, stderr=subprocess.STDOUT, env=env
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError(f"mlreg server did not start: {log.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self._log.close()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, tf_models: ModuleType) -> Iterator[dict]:
    """Four versions of the wide model (x + 10, 20, 30, 40) in a running mlreg server."""
    tmp = tmp_path_factory.mktemp("follow-load")
    server = RegistryServer(tmp / "server-home", tmp / "registry.log")
    env = {
        "MLREG_TRACKING_URI": server.url,
        "MLREG_HOME": str(tmp / "client-home"),
        "MLREG_USER": "ci",
    }
    with MlregClient(StoreSettings.from_env(env)) as client:
        for version, shift in SHIFTS.items():
            path = tf_models.save_wide(tmp / f"wide-{version}", shift)
            assert client.register_model(str(path), NAME).version == version
    yield {"env": env, "tmp": tmp, "bytes": tf_models.WIDE_BYTES}
    server.stop()


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in values.items()}


def worker_rss(server: Server) -> int:
    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text()
    [pid] = children.split()
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) * 1024


@pytest.mark.parametrize("onednn", ["0", "1"], ids=["onednn-off", "onednn-on"])
def test_the_alias_moves_three_times_under_load(registry: dict, onednn: str) -> None:
    """With oneDNN's CPU allocator (TensorFlow's default on x86) freed tensors go back to its
    pool, not to the OS: after the first swap the pool keeps one model's worth, which every
    later swap reuses. Without it, RSS is back to one model after each swap."""
    env, tmp, model_bytes = registry["env"], registry["tmp"], registry["bytes"]
    with MlregClient(StoreSettings.from_env(env)) as client:
        client.set_alias(NAME, ALIAS, 1)  # where the previous run left it: 4
    serve = Server(
        URI,
        tmp / f"serve-onednn-{onednn}.log",
        args=("--follow", "--poll-interval", "500ms", "--threads", "4"),
        env={**env, "TF_ENABLE_ONEDNN_OPTS": onednn},
    ).wait_ready()
    moves: list[tuple[float, str]] = [(time.monotonic(), "1")]
    results: list[tuple[float, float, str, list]] = []
    failures: list[object] = []
    stop = threading.Event()
    lock = threading.Lock()
    body = json.dumps({"inputs": X.tolist()})

    def load() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=60)
        while not stop.is_set():
            sent = time.monotonic()
            try:
                conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
            except (OSError, http.client.HTTPException) as e:
                failures.append(repr(e))
                conn.close()
                continue
            with lock:
                if r.status != 200:
                    failures.append((r.status, data))
                    continue
                predictions = json.loads(data)["predictions"]
                results.append(
                    (sent, time.monotonic(), r.getheader("X-Model-Version"), predictions)
                )
            time.sleep(0.002)  # eight clients, not a flood: the swap needs the CPU too
        conn.close()

    def swapped_to(version: str) -> bool:
        return f"now serving version {version} " in serve.log()

    def freed(version: str) -> bool:
        return f"version {version} freed" in serve.log()

    rss: dict[str, int] = {}
    try:
        with ThreadPoolExecutor(8) as pool, MlregClient(StoreSettings.from_env(env)) as client:
            clients = [pool.submit(load) for _ in range(8)]
            time.sleep(2.0)
            rss["1"] = worker_rss(serve)  # one model, under the same load
            for version in ("2", "3", "4"):
                client.set_alias(NAME, ALIAS, int(version))
                moves.append((time.monotonic(), version))
                previous = str(int(version) - 1)
                deadline = time.monotonic() + 60
                # Swapped in; then the old version's last requests answer and it is freed.
                while not (swapped_to(version) and freed(previous)):
                    assert time.monotonic() < deadline, serve.log()[-3000:]
                    time.sleep(0.1)
                time.sleep(0.5)
                rss[version] = worker_rss(serve)
            stop.set()
            for c in clients:
                c.result(timeout=60)
    finally:
        serve.stop()
    log = serve.log()
    assert failures == []
    assert len(results) > 200
    for sent, answered, version, predictions in results:
        np.testing.assert_allclose(predictions, X + SHIFTS[int(version)])
        assert version in named_between(moves, sent - SWAP_LAG, answered), (sent, version)
    assert {v for _, _, v, _ in results} == {"1", "2", "3", "4"}
    assert {v for _, _, v, _ in results[-50:]} == {"4"}
    # Three unfreed 32 MiB versions would add 96 MiB.
    growth = {v: (rss[v] - rss["1"]) / model_bytes for v in rss}
    print(f"oneDNN {onednn}: worker RSS above one model, in models:", _rounded(growth))
    pooled = 1.0 if onednn == "1" else 0.0  # what oneDNN's pool keeps after the first swap
    assert all(g < pooled + 0.5 for g in growth.values()), growth
    assert growth["4"] - growth["2"] < 0.25, growth  # nothing accumulates
    assert "Traceback" not in log
