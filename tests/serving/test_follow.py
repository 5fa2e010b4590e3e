"""Follow mode: the server serves whatever version a registry alias names, swapping with no
downtime; versions that fail or would break clients are refused and the old one serves on.

In this process against a registry (SQLite, PostgreSQL, or through an mlreg server), with
numpy models whose versions answer differently (fakes.shifted); then the real server with two
workers under load while the alias moves. tests/serving/test_follow_load.py does the same
with TensorFlow models and a real ``mlreg server``, and measures memory.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from flask.testing import FlaskClient

from mlreg.errors import StoreError
from mlreg.registry import MlregClient
from mlreg.serving import ServingSettings, create_app
from mlreg.serving.follow import Follower
from mlreg.serving.metrics import Metrics
from mlreg.serving.state import ServingState
from mlreg.store.settings import StoreSettings
from mlreg.uris import ModelRef
from tests.serving import fakes
from tests.serving.server import Server

NAME, ALIAS = "shift", "champion"
#: How long after a move a worker may still answer with the previous version (a poll, a swap).
SWAP_LAG = 2.0
URI = f"models:/{NAME}@{ALIAS}"
X = np.array([[1.0, 2.0]], np.float32)


def named_between(moves: list[tuple[float, str]], start: float, end: float) -> set[str]:
    """The versions an alias named at some time in [start, end], from (time, version) moves."""
    before = [v for t, v in moves if t <= start][-1:]
    return {*before, *(v for t, v in moves if start < t <= end)}


def register(client: MlregClient, root: Path, shift: float, **kwargs: object) -> int:
    """Register a fakes.shifted model answering x + shift; return its version."""
    path = root / f"v-{shift}-{len(list(root.glob('v-*')))}"
    fakes.shifted(path, shift, **kwargs)
    return client.register_model(str(path), NAME).version


@dataclass
class Following:
    """An app serving URI, its state and follower (polled by hand: no thread, no timing)."""

    client: MlregClient
    state: ServingState
    follower: Follower
    http: FlaskClient
    root: Path

    def predict(self) -> tuple[list, str]:
        r = self.http.post("/invocations", json={"inputs": X.tolist()})
        assert r.status_code == 200, r.text
        return r.get_json()["predictions"], r.headers.get("X-Model-Version", "")

    def move(self, version: int) -> None:
        self.client.set_alias(NAME, ALIAS, version)
        self.follower.poll()


def follow(client: MlregClient, root: Path, allow_signature_change: bool = False) -> Following:
    state = ServingState(ServingSettings(model_uri=URI, follow=True), Metrics())
    source = client.resolve(URI)
    app = create_app(state.settings, state=state)
    state.load(lambda: fakes.open_model(source))
    follower = Follower(
        state,
        URI,
        lambda moved: fakes.open_model(moved),
        interval=60,
        allow_signature_change=allow_signature_change,
        lookup=lambda uri: _ref(client, uri),
        resolve=client.resolve,
    )
    return Following(client, state, follower, app.test_client(), root)


def _ref(client: MlregClient, uri: str) -> ModelRef:
    v = client.get_version_for_uri(uri)
    return ModelRef(v.name, v.version, v.digest)


@pytest.fixture
def following(client: MlregClient, tmp_path: Path) -> Iterator[Following]:
    """Version 1 (x + 1) under the alias, served and followed."""
    client.set_alias(NAME, ALIAS, register(client, tmp_path, 1.0))
    f = follow(client, tmp_path)
    yield f
    f.state.close()


def test_a_moved_alias_is_served_next_with_its_version_everywhere(following: Following) -> None:
    assert following.predict() == ([[2.0, 3.0]], "1")
    following.move(register(following.client, following.root, 2.0))
    assert following.predict() == ([[3.0, 4.0]], "2")
    meta = following.http.get("/metadata").get_json()
    assert meta["version"] == 2
    assert meta["follow"]["uri"] == URI
    assert (meta["follow"]["swaps"], meta["follow"]["refused"]) == (1, None)
    metrics = following.http.get("/metrics").get_data(as_text=True)
    assert 'mlreg_model_swaps_total{model_version="2",result="swapped"} 1.0' in metrics
    assert 'mlreg_model_ready{model_version="1"} 0.0' in metrics
    assert 'mlreg_model_ready{model_version="2"} 1.0' in metrics
    assert 'model_version="1",status="200"} 1.0' in metrics  # each version's own traffic
    assert 'model_version="2",status="200"} 1.0' in metrics
    following.follower.poll()  # nothing moved: nothing happens
    assert following.follower.status["swaps"] == 1


def test_a_request_in_flight_finishes_on_the_version_it_started_with(
    following: Following,
) -> None:
    with following.state.serving(1) as old:
        following.move(register(following.client, following.root, 5.0))
        assert following.state.version == "2"
        # The old version still answers this request, and is not closed under it.
        assert old.version == "1" and not old.closed.is_set()
        np.testing.assert_allclose(old.runner.predict(X), X + 1.0)
    assert old.closed.is_set()  # freed once its last request answered
    assert following.predict() == ([[6.0, 7.0]], "2")


def test_an_incompatible_signature_is_refused_until_the_alias_moves_again(
    following: Following, caplog: pytest.LogCaptureFixture
) -> None:
    wide = register(following.client, following.root, 3.0, width=3)
    with caplog.at_level(logging.INFO, "mlreg.serving.follow"):
        following.move(wide)
        following.follower.poll()  # still on the refused version: not tried again
    refusals = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.ERROR and r.name == "mlreg.serving.follow"
    ]
    assert refusals == [
        f"version {wide} of 'shift' not swapped in: its signature is incompatible with the "
        "served one: input #0: float32 (-1, 2) -> float32 (-1, 3); output #0: float32 (-1, 2) "
        "-> float32 (-1, 3) (--allow-signature-change serves it anyway); version 1 goes on "
        "serving"
    ]
    assert following.predict() == ([[2.0, 3.0]], "1")
    refused = following.http.get("/metadata").get_json()["follow"]["refused"]
    assert refused["version"] == wide
    assert refused["reason"].startswith("its signature is incompatible")
    metrics = following.http.get("/metrics").get_data(as_text=True)
    assert f'mlreg_model_swaps_total{{model_version="{wide}",result="refused"}} 1.0' in metrics
    # The next move is tried.
    following.move(register(following.client, following.root, 4.0))
    assert following.predict() == ([[5.0, 6.0]], "3")
    assert following.http.get("/metadata").get_json()["follow"]["refused"] is None


def test_allow_signature_change_swaps_it_in_anyway(client: MlregClient, tmp_path: Path) -> None:
    client.set_alias(NAME, ALIAS, register(client, tmp_path, 1.0))
    f = follow(client, tmp_path, allow_signature_change=True)
    f.move(register(client, tmp_path, 3.0, width=3))
    r = f.http.post("/invocations", json={"inputs": [[1.0, 2.0, 3.0]]})
    assert r.get_json() == {"predictions": [[4.0, 5.0, 6.0]]}
    f.state.close()


def test_a_version_that_fails_its_warm_up_is_not_swapped_in(
    following: Following, caplog: pytest.LogCaptureFixture
) -> None:
    broken = register(following.client, following.root, 9.0, broken=True)
    with caplog.at_level(logging.ERROR, "mlreg.serving.follow"):
        following.move(broken)
    [line] = [r.getMessage() for r in caplog.records if r.name == "mlreg.serving.follow"]
    assert line == (
        f"version {broken} of 'shift' not swapped in: it failed to load or warm up: the model "
        "failed: the graph cannot run; version 1 goes on serving"
    )
    assert following.predict() == ([[2.0, 3.0]], "1")
    metrics = following.http.get("/metrics").get_data(as_text=True)
    assert f'mlreg_model_swaps_total{{model_version="{broken}",result="failed"}} 1.0' in metrics


def test_a_registry_that_cannot_answer_leaves_the_served_version_serving(
    following: Following, caplog: pytest.LogCaptureFixture
) -> None:
    def down(uri: str) -> ModelRef:
        raise StoreError("the database at sqlite:///x is unavailable")

    following.follower.lookup = down
    with caplog.at_level(logging.WARNING, "mlreg.serving.follow"):
        following.follower.poll()
        following.follower.poll()  # the same trouble is logged once
    assert [r.getMessage() for r in caplog.records if r.name == "mlreg.serving.follow"] == [
        f"cannot tell which version {URI} names: the database at sqlite:///x is unavailable; "
        "version 1 goes on serving"
    ]
    assert following.predict() == ([[2.0, 3.0]], "1")
    status = following.http.get("/metadata").get_json()["follow"]
    assert status["last_error"].startswith("cannot tell which version")


# --- the real server, two workers, under load -----------------------------------------------


@pytest.mark.slow  # 10 s of load
def test_two_workers_follow_the_alias_under_load_without_a_failed_request(
    tmp_path: Path,
) -> None:
    env = {"MLREG_HOME": str(tmp_path / "home"), "MLREG_USER": "ci"}
    registry = MlregClient(StoreSettings.from_env(env))
    shifts = {}
    for shift in (1.0, 2.0, 3.0, 4.0):
        shifts[str(register(registry, tmp_path, shift))] = shift
    registry.set_alias(NAME, ALIAS, 1)
    server = Server.fake(
        "uri",
        tmp_path,
        tmp_path / "server.log",
        env={
            **env,
            "MLREG_MODEL_URI": URI,
            "MLREG_FOLLOW": "true",
            "MLREG_POLL_INTERVAL": "100ms",
            "MLREG_WORKERS": "2",
            "MLREG_THREADS": "4",
        },
    ).wait_ready()
    moves: list[tuple[float, str]] = [(time.monotonic(), "1")]
    results: list[tuple[float, float, str, list]] = []
    failures: list[object] = []
    stop = threading.Event()
    lock = threading.Lock()

    def load() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        body = json.dumps({"inputs": X.tolist()})
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
                else:
                    version = r.getheader("X-Model-Version")
                    predictions = json.loads(data)["predictions"]
                    results.append((sent, time.monotonic(), version, predictions))
        conn.close()

    try:
        with ThreadPoolExecutor(6) as pool:
            clients = [pool.submit(load) for _ in range(6)]
            for version in ("2", "3", "4"):
                time.sleep(1.0)
                registry.set_alias(NAME, ALIAS, int(version))
                moves.append((time.monotonic(), version))
            # Until both workers serve the last move (seconds here; a loaded machine needs more).
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                time.sleep(0.2)
                with lock:
                    if results and all(v == "4" for _, _, v, _ in results[-20:]):
                        break
            stop.set()
            for c in clients:
                c.result(timeout=30)
    finally:
        server.stop()
        registry.close()
    assert failures == []
    assert len(results) > 100
    for sent, answered, version, predictions in results:
        # Computed by the version it names...
        np.testing.assert_allclose(predictions, X + shifts[version])
        # ...which the alias named while the request was in flight, or shortly before: a
        # worker takes up to a poll and a swap to notice a move.
        assert version in named_between(moves, sent - SWAP_LAG, answered), (sent, version)
    assert {v for _, _, v, _ in results[-20:]} == {"4"}
    assert server.log().count("now serving version 4") == 2  # each worker swapped
    assert "Traceback" not in server.log()
