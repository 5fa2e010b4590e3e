"""Run predictions off the request thread, bounded by the request timeout, batched if asked.

The model call happens on a thread pool and the request waits for it with a timeout: a
call that runs too long answers 504 while the request thread (and so the worker) moves on.
The call itself cannot be interrupted; it finishes on its pool thread and is discarded.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from mlreg.errors import Timeout
from mlreg.serving.backends import Backend
from mlreg.serving.batching import Batcher, batch_key
from mlreg.serving.metrics import VersionMetrics
from mlreg.serving.settings import ServingSettings


class Runner:
    """Enforce the signature on the request thread, then run the model on the pool."""

    def __init__(
        self, backend: Backend, settings: ServingSettings, metrics: VersionMetrics
    ) -> None:
        self.backend = backend
        self._timeout = settings.timeout
        self._metrics = metrics
        # One spare thread so a batch can run while the collector hands over the next one.
        self._pool = ThreadPoolExecutor(
            max_workers=settings.threads + 1, thread_name_prefix="mlreg-predict"
        )
        self._batcher = (
            Batcher(
                self._predict_batch,
                self._pool,
                settings.batch_max_size,
                settings.batch_timeout_ms,
                self._observe,
            )
            if settings.batching
            else None
        )

    def predict(
        self,
        data: Any,
        params: dict[str, Any] | None = None,
        enforced: Callable[[Any], None] | None = None,
    ) -> Any:
        """Check ``data`` against the signature and return the model's prediction;
        ``enforced`` is shown the checked and converted data (the prediction log keeps it)."""
        batcher = self._batcher
        if batcher is None:
            data, params = self.backend.enforce(data, params)
            if enforced is not None:
                enforced(data)
            future = self._pool.submit(self._predict_one, data, params)
        else:
            batcher.expect()
            try:
                data, params = self.backend.enforce(data, params)
                if enforced is not None:
                    enforced(data)
                key = None if params else batch_key(data)
            except BaseException:
                batcher.cancel_expect()
                raise
            if key is None:
                batcher.cancel_expect()
                future = self._pool.submit(self._predict_one, data, params)
            else:
                future = batcher.submit(data, key)
        return self._wait(future)

    def call(
        self,
        data: Any,
        params: dict[str, Any] | None = None,
        enforced: Callable[[Any], None] | None = None,
    ) -> Any:
        """Like :meth:`predict`, in the calling thread: its caller bounds it by the timeout
        (the HTTP worker's direct path does, on its event loop)."""
        data, params = self.backend.enforce(data, params)
        if enforced is not None:
            enforced(data)
        return self._predict_one(data, params)

    def timed_out(self) -> Timeout:
        """The 504 for a prediction past the timeout (counted in the metrics)."""
        self._metrics.timeouts.inc()
        return timeout_error(self._timeout)

    def _wait(self, future: Future) -> Any:
        try:
            return future.result(timeout=self._timeout)
        except FutureTimeout:
            future.cancel()
            raise self.timed_out() from None

    def _predict_one(self, data: Any, params: dict[str, Any] | None) -> Any:
        self._observe(1, _rows(data))
        return self.backend.predict_unchecked(data, params)

    def _predict_batch(self, data: Any) -> Any:
        return self.backend.predict_unchecked(data, None)

    def _observe(self, requests: int, rows: int) -> None:
        self._metrics.batch_size.observe(requests)
        if rows >= 0:
            self._metrics.batch_rows.observe(rows)

    def close(self) -> None:
        """Stop the batcher and let running calls finish."""
        if self._batcher is not None:
            self._batcher.close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def timeout_error(seconds: float) -> Timeout:
    return Timeout(
        f"the prediction did not finish within {seconds:g} s (MLREG_TIMEOUT); "
        "send fewer rows or raise the timeout"
    )


def _rows(data: Any) -> int:
    try:
        if hasattr(data, "shape"):
            return int(data.shape[0]) if len(data.shape) else 1
        if isinstance(data, dict) and data:
            first = next(iter(data.values()))
            return int(first.shape[0]) if getattr(first, "shape", ()) else 1
    except (TypeError, IndexError):
        pass
    return -1


__all__ = ["Runner", "timeout_error"]
