"""Predictions on the HTTP worker's own path, without the web framework.

The worker's event loop has already read the whole request; one thread of its pool decodes,
checks, predicts and encodes it (mlreg.serving.predict, the same code as the Flask routes) and
the loop answers. That is one hand-off each way, where the Flask path takes three (loop to a
request thread, to the runner's thread for the timeout, and back twice) plus Flask's own work
per request: bench/serve_breakdown.py measures both. The timeout is the loop's deadline on
that thread: past MLREG_TIMEOUT the request is answered 504, and the computation, which cannot
be interrupted, finishes on its thread and is dropped.

With MLREG_INLINE_MS set (off by default), a quick prediction skips even that hand-off:
when the body is small (INLINE_BODY_BYTES), the model is computed here (not by a remote
server) and its recent small predictions took at most MLREG_INLINE_MS on average, the loop
computes it itself. The hand-off to a thread and back costs about 130 us of a 1.1 ms request
(bench/serve.py: 10-15% more requests per second for one image). What it costs is why it is
an option: while the loop computes, probes and reads wait, and the timeout cannot answer. A
model whose time depends on its input (fast, then 1.5 s for one request) holds them for that
one request, whose time then sends the next ones to the threads until quick ones bring the
average back under the budget.

The request id, access log, metrics, ``X-Model-Version`` and the prediction log are kept here
as the Flask hooks keep them for every other route. With batching on
(MLREG_BATCH_MAX_SIZE > 1) predictions take the Flask path, whose runner gathers batches.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any

import orjson

from mlreg.errors import BackendUnavailable, MlregError
from mlreg.serving import predict
from mlreg.serving.predict import Answer, Call, Notes, version_header
from mlreg.serving.prediction_log import Record
from mlreg.serving.state import Served, ServingState
from mlreg.web.http import HttpConfig, log_access
from mlreg.web.request_ids import REQUEST_ID_HEADER, request_id
from mlreg.web.worker import DirectHandler, DirectRequest, Reply

logger = logging.getLogger(__name__)
JSON = "application/json"
#: Bodies up to this size may be computed on the loop (one 28x28x3 image in JSON is 49 KB).
INLINE_BODY_BYTES = 64 * 1024


class DirectPredictions:
    """The direct handlers of the prediction routes (WorkerOptions.direct)."""

    def __init__(self, state: ServingState, config: HttpConfig) -> None:
        self.state = state
        self.config = config
        self.access_log = logging.getLogger(config.access_logger)
        #: Predictions handed to the threads and not yet answered.
        self._pooled = 0

    def handler(self, method: str, path: str) -> DirectHandler | None:
        """The handler of a prediction request; None leaves it to the Flask app."""
        if method != "POST" or self.state.settings.batching:
            return None
        found = predict.match(path)
        if found is None:
            return None
        route, rule, params = found
        return functools.partial(self.handle, route, rule, params)

    async def handle(
        self, route: str, rule: str, params: dict[str, str], request: DirectRequest
    ) -> Reply:
        start = time.perf_counter()
        state = self.state
        rid = request_id(request.headers.get(REQUEST_ID_HEADER.lower()))
        plog = state.prediction_log
        notes = Notes() if plog is not None and plog.sampled() else None
        version, name = state.version, None
        gauge = state.metrics.in_flight_of(version)
        gauge.inc()
        error: tuple[str, str] | None = None
        try:
            served = await self._served()
            version, name = served.version, served.backend.source.name
            call = Call(
                route,
                request.body,
                request.headers.get("content-type", ""),
                params.get("name"),
                params.get("version"),
                request.headers.get(predict.HEADER_LENGTH.lower()),
            )
            answer = await self._answer(call, served, notes)
            reply = Reply(
                answer.status,
                [("Content-Type", answer.content_type), *answer.headers.items()],
                answer.body,
            )
        except MlregError as e:
            error = (e.error_code, e.message)
            reply = self._error(e.status_code, e.error_code, e.message, request.path)
        except Exception as e:  # a bug: the body names the request id, the log has the rest
            logger.exception("unexpected error", extra={"request_id": rid})
            message = f"internal server error ({type(e).__name__}); request id {rid}"
            error = ("INTERNAL_ERROR", message)
            reply = self._error(500, "INTERNAL_ERROR", message, request.path)
        finally:
            gauge.dec()
        seconds = time.perf_counter() - start
        reply.headers += [(REQUEST_ID_HEADER, rid), ("X-Content-Type-Options", "nosniff")]
        reply.headers += list(version_header(version).items())
        if self.config.metrics is not None:
            self.config.metrics.observe(rule, "POST", reply.status, seconds, version)
        log_access(
            self.access_log,
            self.config,
            method="POST",
            path=request.path,
            status=reply.status,
            seconds=seconds,
            request_id=rid,
            remote_addr=request.remote_addr,
            error=error,
        )
        if notes is not None and plog is not None:
            plog.submit(
                Record(
                    request_id=rid,
                    model_name=name,
                    model_version=version,
                    protocol=route,
                    status=reply.status,
                    seconds=seconds,
                    inputs=notes.inputs,
                    outputs=notes.outputs,
                    error=error,
                )
            )
        return reply

    async def _served(self) -> Served:
        """The served version, held until its computation ends (waits, like the Flask path,
        up to the timeout for the first load)."""
        state = self.state
        loop = asyncio.get_running_loop()
        deadline = loop.time() + state.settings.timeout
        # A load that is being retried (TF Serving unreachable) is answered at once, with why.
        while not state.ready and state.waiting is None and loop.time() < deadline:
            await asyncio.sleep(0.05)
        served = state.current
        if not state.ready or served is None:
            raise BackendUnavailable(state.not_ready_message())
        served.acquire()
        return served

    async def _answer(self, call: Call, served: Served, notes: Notes | None) -> Answer:
        """Compute on the loop when it is quick, else on a pool thread bounded by the timeout."""
        settings = self.state.settings
        small = (
            settings.inline_ms > 0
            and len(call.body) <= INLINE_BODY_BYTES
            and not served.backend.remote
        )

        def compute() -> Answer:
            start = time.perf_counter()
            try:
                return predict.answer(call, served, settings, served.runner.call, notes)
            finally:
                if small:
                    # Predictions that ran side by side on the threads each took longer than
                    # one alone would (the GIL, the cores): time is shared out among them.
                    sharing = min(max(self._pooled, 1), settings.threads)
                    served.timed((time.perf_counter() - start) / sharing)
                served.release()  # when the computation ends, even after a 504

        quick = served.quick_seconds
        if small and quick is not None and quick * 1000 <= settings.inline_ms:
            return compute()
        self._pooled += 1  # counted on the loop only
        try:
            future = asyncio.get_running_loop().run_in_executor(None, compute)
            return await asyncio.wait_for(asyncio.shield(future), settings.timeout)
        except asyncio.TimeoutError:  # TimeoutError from Python 3.11
            raise served.runner.timed_out() from None
        finally:
            self._pooled -= 1

    def _error(self, status: int, error_code: str, message: str, path: str) -> Reply:
        doc: dict[str, Any] = {"error_code": error_code, "message": message}
        doc.update(self.config.error_fields(path, message))
        return Reply(status, [("Content-Type", JSON)], orjson.dumps(doc))


__all__ = ["DirectPredictions"]
