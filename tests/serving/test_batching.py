"""Adaptive batching: merged calls give the same answers as separate ones."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from mlreg.errors import ModelExecutionError
from mlreg.serving.batching import Batcher, batch_key
from tests.serving.data import images
from tests.serving.server import Server


class Recorder:
    """A real (numpy) model that records the batch sizes it was called with."""

    def __init__(self, fn=lambda x: x * 2.0, delay: float = 0.0) -> None:
        self.calls: list[int] = []
        self.fn = fn
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(self, data):
        with self.lock:
            self.calls.append(
                len(next(iter(data.values()))) if isinstance(data, dict) else len(data)
            )
        time.sleep(self.delay)
        return self.fn(data)


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(8) as p:
        yield p


def _submit_all(batcher: Batcher, inputs: list) -> list:
    for _ in inputs:
        batcher.expect()
    futures = [batcher.submit(x, batch_key(x)) for x in inputs]
    return [f.result(timeout=10) for f in futures]


def test_concurrent_requests_merge_and_split_back(pool: ThreadPoolExecutor) -> None:
    model = Recorder()
    batcher = Batcher(model, pool, max_size=8, timeout_ms=50)
    inputs = [np.full((1, 3), i, np.float32) for i in range(6)] + [np.ones((2, 3), np.float32)]
    try:
        results = _submit_all(batcher, inputs)
    finally:
        batcher.close()
    for x, y in zip(inputs, results, strict=True):
        np.testing.assert_array_equal(y, x * 2.0)
    assert model.calls == [8]  # 6 single rows and one of 2, in one call


def test_max_size_splits_batches(pool: ThreadPoolExecutor) -> None:
    model = Recorder()
    batcher = Batcher(model, pool, max_size=4, timeout_ms=50)
    try:
        _submit_all(batcher, [np.zeros((1, 2)) for _ in range(10)])
    finally:
        batcher.close()
    assert sorted(model.calls, reverse=True) == [4, 4, 2]


def test_a_lone_request_does_not_wait(pool: ThreadPoolExecutor) -> None:
    batcher = Batcher(Recorder(), pool, max_size=8, timeout_ms=5000)
    try:
        start = time.monotonic()
        _submit_all(batcher, [np.zeros((1, 2))])
        assert time.monotonic() - start < 1.0
    finally:
        batcher.close()


def test_named_inputs_and_outputs(pool: ThreadPoolExecutor) -> None:
    def fn(d):
        return {"s": d["a"].sum(axis=1), "p": d["a"] * d["b"]}

    batcher = Batcher(Recorder(fn), pool, max_size=8, timeout_ms=50)
    inputs = [{"a": np.full((1, 2), i, float), "b": np.full((1, 2), 2.0)} for i in range(4)]
    try:
        results = _submit_all(batcher, inputs)
    finally:
        batcher.close()
    for x, y in zip(inputs, results, strict=True):
        np.testing.assert_array_equal(y["s"], fn(x)["s"])
        np.testing.assert_array_equal(y["p"], fn(x)["p"])


def test_shapes_that_differ_are_not_merged(pool: ThreadPoolExecutor) -> None:
    model = Recorder()
    batcher = Batcher(model, pool, max_size=8, timeout_ms=50)
    try:
        results = _submit_all(batcher, [np.zeros((1, 2)), np.zeros((1, 3)), np.zeros((1, 2))])
    finally:
        batcher.close()
    assert [r.shape for r in results] == [(1, 2), (1, 3), (1, 2)]
    assert len(model.calls) >= 2


def test_outputs_not_per_row_fall_back_to_separate_calls(pool: ThreadPoolExecutor) -> None:
    model = Recorder(lambda x: x.sum(keepdims=True))  # one value for the whole batch
    batcher = Batcher(model, pool, max_size=8, timeout_ms=50)
    try:
        results = _submit_all(batcher, [np.ones((1, 2)), np.ones((1, 2)) * 3])
    finally:
        batcher.close()
    assert [r.tolist() for r in results] == [[[2.0]], [[6.0]]]


def test_a_model_error_reaches_every_caller(pool: ThreadPoolExecutor) -> None:
    def fail(x):
        raise ModelExecutionError("the model failed: boom")

    batcher = Batcher(Recorder(fail), pool, max_size=8, timeout_ms=50)
    try:
        for _ in range(3):
            batcher.expect()
        futures = [batcher.submit(np.ones((1, 2)), batch_key(np.ones((1, 2)))) for _ in range(3)]
        for f in futures:
            with pytest.raises(ModelExecutionError, match="boom"):
                f.result(timeout=10)
    finally:
        batcher.close()


def test_cancelled_requests_are_skipped() -> None:
    model = Recorder(delay=0.3)
    one = ThreadPoolExecutor(1)  # the second request waits while the first runs
    batcher = Batcher(model, one, max_size=1, timeout_ms=0)
    try:
        batcher.expect()
        batcher.expect()
        first = batcher.submit(np.ones((1, 2)), batch_key(np.ones((1, 2))))
        second = batcher.submit(np.ones((1, 2)), batch_key(np.ones((1, 2))))
        time.sleep(0.05)
        second.cancel()  # as a timed-out request does
        first.result(timeout=5)
        time.sleep(0.4)
    finally:
        batcher.close()
        one.shutdown()
    assert second.cancelled()
    assert model.calls == [1]  # the cancelled one never ran


# --- against the real server -------------------------------------------------------------


@pytest.fixture(scope="module")
def batched_server(tmp_path_factory: pytest.TempPathFactory, cnn_dir: Path) -> Iterator[Server]:
    server = Server(
        cnn_dir,
        tmp_path_factory.mktemp("logs") / "batched.log",
        args=("--threads", "8", "--batch-max-size", "16", "--batch-timeout-ms", "20"),
    ).wait_ready()
    yield server
    server.stop()


@pytest.mark.slow
def test_batched_answers_equal_unbatched_ones(batched_server: Server, cnn_server: Server) -> None:
    x = images(48, seed=21)

    def ask(server: Server, i: int) -> list:
        r = server.post("/invocations", {"inputs": x[i : i + 1].tolist()})
        assert r.status_code == 200, r.text
        return r.json()["predictions"]

    with ThreadPoolExecutor(16) as pool:
        batched = list(pool.map(lambda i: ask(batched_server, i), range(len(x))))
    unbatched = [ask(cnn_server, i) for i in range(len(x))]
    batched, unbatched = np.asarray(batched), np.asarray(unbatched)
    # TensorFlow's kernels round float32 a little differently for a batch of 16 than for
    # one row (a few ulp); the classes and the values to 1e-5 are the same.
    np.testing.assert_allclose(batched, unbatched, rtol=1e-5, atol=1e-7)
    assert (batched.argmax(-1) == unbatched.argmax(-1)).all()
    # One request at a time is never merged, and then the answers are bit for bit the same.
    for i in range(3):
        assert ask(batched_server, i) == unbatched[i].tolist()
    # Requests really were merged: some model calls held more than one request.
    text = batched_server.get("/metrics").text
    count = _metric(text, 'mlreg_batch_size_count{model_version=""}')
    singles = _metric(text, 'mlreg_batch_size_bucket{le="1.0",model_version=""}')
    assert singles < count, text


def _metric(text: str, name: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(name + " "))
    return float(line.split()[-1])
