"""Adaptive batching: merge concurrent single requests into one model call, then split back.

A collector thread takes the first waiting request and gathers more while other requests
are known to be on their way (entered the runner but not yet queued), up to
``max_size`` rows or ``timeout_ms``. With one client nothing else is on its way, so a lone
request is dispatched at once and pays no batching delay.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

Observer = Callable[[int, int], None]
_STOP: Any = object()


@dataclass
class _Item:
    data: np.ndarray | dict[str, np.ndarray]
    rows: int
    key: tuple
    future: Future = field(default_factory=Future)


def batch_key(data: Any) -> tuple | None:
    """What must match for two inputs to be concatenated; None if ``data`` cannot batch."""
    if isinstance(data, np.ndarray):
        return ((None, data.dtype.str, data.shape[1:]),) if data.ndim >= 1 else None
    if isinstance(data, Mapping) and data:
        key = []
        for name, arr in data.items():
            if not isinstance(arr, np.ndarray) or arr.ndim < 1:
                return None
            key.append((name, arr.dtype.str, arr.shape[1:]))
        return tuple(key)
    return None


def _rows(data: Any) -> int:
    if isinstance(data, np.ndarray):
        return len(data)
    return len(next(iter(data.values())))


def _concat(items: list[_Item]) -> Any:
    first = items[0].data
    if isinstance(first, np.ndarray):
        return np.concatenate([it.data for it in items])
    return {k: np.concatenate([it.data[k] for it in items]) for k in first}  # type: ignore[index]


def _slice(result: Any, start: int, stop: int) -> Any:
    if isinstance(result, np.ndarray):
        return result[start:stop]
    return {k: v[start:stop] for k, v in result.items()}


def _result_rows(result: Any) -> set[int]:
    if isinstance(result, np.ndarray):
        return {len(result)} if result.ndim else {-1}
    if isinstance(result, Mapping):
        return {len(v) if isinstance(v, np.ndarray) and v.ndim else -1 for v in result.values()}
    return {-1}


class Batcher:
    """Queue enforced tensor inputs and run them in merged model calls on ``executor``."""

    def __init__(
        self,
        predict: Callable[[Any], Any],
        executor: Executor,
        max_size: int,
        timeout_ms: float,
        observe: Observer | None = None,
    ) -> None:
        self._predict = predict
        self._executor = executor
        self._max_size = max_size
        self._timeout = timeout_ms / 1000.0
        self._observe = observe or (lambda requests, rows: None)
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._coming = 0
        self._carry: _Item | None = None
        self._thread = threading.Thread(target=self._loop, name="mlreg-batcher", daemon=True)
        self._thread.start()

    def expect(self) -> None:
        """Say a request is on its way, so the collector waits for it."""
        with self._lock:
            self._coming += 1

    def cancel_expect(self) -> None:
        """Say a request that called expect() will not come after all (e.g. it failed)."""
        with self._lock:
            self._coming -= 1

    def submit(self, data: Any, key: tuple) -> Future:
        """Queue ``data`` (after expect()); the future holds this request's slice of the result."""
        item = _Item(data, _rows(data), key)
        self._queue.put(item)
        return item.future

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=5)

    def _waiting_for_more(self, batch_len: int) -> bool:
        with self._lock:
            return self._coming > batch_len

    def _loop(self) -> None:
        while True:
            first = self._carry if self._carry is not None else self._queue.get()
            self._carry = None
            if first is _STOP:
                return
            batch, rows = [first], first.rows
            deadline = time.monotonic() + self._timeout
            while rows < self._max_size and self._waiting_for_more(len(batch)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
                if item is _STOP or item.key != first.key or rows + item.rows > self._max_size:
                    self._carry = item
                    break
                batch.append(item)
                rows += item.rows
            with self._lock:
                self._coming -= len(batch)
            self._executor.submit(self._run, batch)

    def _run(self, batch: list[_Item]) -> None:
        live = [it for it in batch if it.future.set_running_or_notify_cancel()]
        if not live:
            return
        self._observe(len(live), sum(it.rows for it in live))
        if len(live) == 1:
            self._run_one(live[0])
            return
        try:
            result = self._predict(_concat(live))
        except BaseException as e:  # each caller gets the model's error as its own
            for it in live:
                it.future.set_exception(e)
            return
        total = sum(it.rows for it in live)
        if _result_rows(result) != {total}:
            # The model's outputs are not one row per input row: batching cannot split them.
            logger.warning("outputs are not per-row; running %d requests one by one", len(live))
            for it in live:
                self._run_one(it)
            return
        start = 0
        for it in live:
            it.future.set_result(_slice(result, start, start + it.rows))
            start += it.rows

    def _run_one(self, item: _Item) -> None:
        try:
            item.future.set_result(self._predict(item.data))
        except BaseException as e:
            item.future.set_exception(e)


__all__ = ["Batcher", "batch_key"]
