"""The server's models: load (after the fork), warm up, serve, and swap for a new version.

A loaded version is a :class:`Served`: the backend and its runner. A request takes the current
one when it starts and keeps it until it has answered, so a swap (follow mode) never changes
the model under a request: the new version is loaded and warmed up next to the old one, made
current in one assignment, and the old one is closed once its last request has left.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from mlreg.errors import BackendUnavailable, MlregError, SignatureChanged, SwapRefused
from mlreg.models.signature import ColSpec, ModelSignature, TensorSpec
from mlreg.serving import codecs
from mlreg.serving.backends import Backend, input_schema, tensor_names, version_of
from mlreg.serving.limits import MAX_LIMIT, limits_for
from mlreg.serving.metrics import Metrics
from mlreg.serving.prediction_log import PredictionLog
from mlreg.serving.runner import Runner
from mlreg.serving.settings import ServingSettings

logger = logging.getLogger(__name__)

#: Seconds between attempts of a first load whose backend is unavailable (TF Serving down).
LOAD_RETRY_SECONDS = 1.0
#: Checks a new version against the served one; returns what would break its clients.
SignatureCheck = Callable[[Backend, Backend], list[str]]


class _NotUpYet(BackendUnavailable):
    """The loader could not reach its backend (TF Serving down or still loading the model):
    the first load is retried, not failed. A warm-up that fails is not this."""


class Served:
    """One loaded, warmed-up version: what a request runs on from its start to its answer."""

    def __init__(self, backend: Backend, runner: Runner, load_seconds: float) -> None:
        self.backend = backend
        self.runner = runner
        self.version = version_of(backend.source)
        self.limits = limits_for(backend.signature)
        self.tensor_names = tensor_names(backend)
        self.load_seconds = load_seconds
        self.closed = threading.Event()
        #: A moving average of how long its predictions of small bodies took, in seconds
        #: (None until one has): the HTTP worker runs them on its loop while they are quick.
        self.quick_seconds: float | None = None
        self._users = 0
        self._retired = False
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            done = self._retired and self._users == 0
        if done:
            self._close()

    def timed(self, seconds: float) -> None:
        """Note how long a prediction of a small body took (races between threads only blur
        the average)."""
        last = self.quick_seconds
        self.quick_seconds = seconds if last is None else last + (seconds - last) / 5

    def retire(self) -> None:
        """No new request gets this version; close it when the last one has answered."""
        with self._lock:
            self._retired = True
            done = self._users == 0
        if done:
            self._close()

    def _close(self) -> None:
        self.runner.close()
        self.closed.set()


class ServingState:
    """The served version (and, in follow mode, how the last move went); routes ask it."""

    def __init__(self, settings: ServingSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.current: Served | None = None
        self.error: str | None = None
        self.draining = False
        #: Follow mode's report for /metadata (see mlreg.serving.follow).
        self.follow: dict[str, Any] | None = None
        #: Why the first load is being retried (a remote backend not up yet), else None.
        self.waiting: str | None = None
        #: Where sampled requests go (mlreg.serving.prediction_log), when asked for.
        self.prediction_log: PredictionLog | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._swap_lock = threading.Lock()
        self._drain_hooks: list[Callable[[], None]] = []

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def backend(self) -> Backend | None:
        served = self.current
        return served.backend if served is not None else None

    @property
    def version(self) -> str:
        """The served version's label ("" for a directory, or before anything is loaded)."""
        served = self.current
        return served.version if served is not None else ""

    def max_request_bytes(self) -> int:
        """The body limit now: MLREG_MAX_REQUEST_BYTES, else what the served signature needs."""
        if self.settings.max_request_bytes is not None:
            return self.settings.max_request_bytes
        served = self.current
        return served.limits.body_bytes if served is not None else MAX_LIMIT

    # --- loading --------------------------------------------------------------------------

    def load(self, loader: Callable[[], Backend]) -> None:
        """Load and warm up the first model in this thread; raise what the load raised."""
        try:
            served = self._prepare(loader)
        except _NotUpYet:
            raise  # a remote backend not up yet: start_loading retries
        except BaseException as e:
            if isinstance(e, MlregError):
                # Our own errors say what is wrong in one line; a traceback would bury it.
                self.error = e.message
                logger.error("model failed to load: %s", self.error)
            else:
                self.error = f"{type(e).__name__}: {e}"
                logger.exception("model failed to load: %s", self.error)
            raise
        self.waiting = None
        self._make_current(served)
        # TensorFlow and Keras leave millions of long-lived objects behind; a full garbage
        # collection walking them stalls a request for hundreds of milliseconds. Freezing
        # them after the load keeps the collector to what requests allocate.
        gc.collect()
        gc.freeze()
        self._ready.set()
        source = served.backend.source
        logger.info(
            "model ready: %s%s loaded and warmed up in %.2f s",
            source.uri,
            f" (version {served.version})" if served.version else "",
            served.load_seconds,
            extra={
                "model_uri": source.uri,
                "model_version": served.version,
                "model_digest": source.digest,
                "load_seconds": round(served.load_seconds, 3),
            },
        )

    def swap(self, loader: Callable[[], Backend], check: SignatureCheck | None = None) -> Served:
        """Load a new version next to the served one, warm it up, check it, and make it the one
        new requests get; the old one closes when its last request has answered.

        Raises SwapRefused (the served version stays) when the new one fails to load or warm
        up, SignatureChanged when ``check`` finds its signature would break the served one's
        clients.
        """
        with self._swap_lock:
            old = self.current
            try:
                new = self._prepare(loader)
            except BaseException as e:
                reason = e.message if isinstance(e, MlregError) else f"{type(e).__name__}: {e}"
                raise SwapRefused(f"it failed to load or warm up: {reason}") from e
            problems = check(old.backend, new.backend) if check and old is not None else []
            if problems:
                new.retire()
                raise SignatureChanged(
                    "its signature is incompatible with the served one: " + "; ".join(problems)
                )
            self._make_current(new)
            self._ready.set()
            if old is not None:
                self.metrics.model_ready.labels(old.version).set(0)
                closed, version, gone = old.closed, old.version, weakref.ref(old)
                old.retire()
                del old  # the last reference here: requests still using it hold their own
                threading.Thread(
                    target=_collect,
                    args=(closed, gone, version),
                    name=f"mlreg-free-{version}",
                    daemon=True,
                ).start()
            return new

    def _prepare(self, loader: Callable[[], Backend]) -> Served:
        start = time.perf_counter()
        try:
            backend = loader()
        except BackendUnavailable as e:
            raise _NotUpYet(e.message) from e
        runner = Runner(backend, self.settings, self.metrics.of(version_of(backend.source)))
        try:
            warm_up(runner, backend)
        except MlregError as e:
            # A remote backend (TF Serving) that is slow or failing right now is not a
            # reason to stop: its signature was checked, and /ping reports its state.
            if not backend.remote:
                runner.close()
                raise
            logger.warning("warm-up through the backend failed: %s", e.message)
        except BaseException:
            runner.close()
            raise
        return Served(backend, runner, time.perf_counter() - start)

    def _make_current(self, served: Served) -> None:
        self.current = served  # one assignment: a request sees the old or the new, never half
        self.error = None
        self.metrics.model_load.labels(served.version).set(served.load_seconds)
        self.metrics.model_ready.labels(served.version).set(1)

    def start_loading(self, loader: Callable[[], Backend], on_failure: Callable[[], None]) -> None:
        """Load in a background thread so /ping and /health answer meanwhile."""

        def run() -> None:
            logged = 0.0
            while not self.draining:
                try:
                    self.load(loader)
                    return
                except _NotUpYet as e:
                    # TF Serving down or still loading: requests and /ping say so at once
                    # (not after a request timeout), and the load is retried.
                    if e.message != self.waiting or time.monotonic() - logged > 30:
                        logger.warning("waiting for the backend: %s", e.message)
                        logged = time.monotonic()
                    self.waiting = e.message
                    time.sleep(LOAD_RETRY_SECONDS)
                except BaseException:
                    on_failure()
                    return

        self._thread = threading.Thread(target=run, name="mlreg-model-loader", daemon=True)
        self._thread.start()

    # --- serving --------------------------------------------------------------------------

    @contextmanager
    def serving(self, timeout: float) -> Iterator[Served]:
        """The current version, held for the duration of a request (waits up to ``timeout``
        for a load in progress, else BackendUnavailable: 503)."""
        if self.waiting is not None and not self._ready.is_set():
            raise BackendUnavailable(self.not_ready_message())  # known why: do not wait
        if not self._ready.wait(timeout):
            raise BackendUnavailable(self.not_ready_message())
        served = self.current
        if served is None:
            raise BackendUnavailable(self.not_ready_message())
        served.acquire()
        try:
            yield served
        finally:
            served.release()

    def on_drain(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` when the server starts shutting down (e.g. stop the gRPC service)."""
        self._drain_hooks.append(hook)

    def drain(self) -> None:
        """The server is shutting down: /ping says so, so load balancers stop sending."""
        self.draining = True
        for hook in self._drain_hooks:
            try:
                hook()
            except Exception:
                logger.exception("a shutdown step failed")

    def unready_reason(self) -> str | None:
        """None when a prediction can be answered now; else why not (what /ping reports)."""
        if self.draining:
            return "the server is shutting down; requests in flight are being finished"
        served = self.current
        if not self.ready or served is None:
            return self.not_ready_message()
        return served.backend.unready_reason()

    def not_ready_message(self) -> str:
        if self.error is not None:
            return f"the model failed to load: {self.error}"
        if self.waiting is not None:
            return f"{self.waiting}; retrying every {LOAD_RETRY_SECONDS:g} s"
        return "the model is still loading; retry when GET /ping answers 200"

    def close(self) -> None:
        served = self.current
        if served is not None:
            served.retire()
        if self.prediction_log is not None:
            self.prediction_log.close()


def _collect(closed: threading.Event, gone: weakref.ref[Served], version: str) -> None:
    """Give a retired version's memory back once its last request has answered (requests are
    bounded by the timeout, so this wait ends)."""
    closed.wait()
    # The last request sets `closed` while its frame still holds the version: collect until
    # that frame has returned too (a few milliseconds), or the model would stay until the next
    # automatic collection, which frozen objects never get.
    gc.unfreeze()  # its objects were frozen with everything else after the first load
    for _ in range(100):
        if gone() is None:
            break
        gc.collect()
        time.sleep(0.05)
    # Once the version itself is gone, what it held in reference cycles (the loaded
    # SavedModel, its variables) is unreachable: this collection frees it.
    gc.collect()
    gc.freeze()
    _trim_heap()
    if gone() is None:
        logger.info("version %s freed: its last request has answered", version or "(none)")
    else:
        logger.warning("version %s is still referenced after its last request", version)


def _trim_heap() -> None:
    """Hand freed heap pages back to the OS. After the first free of a large buffer glibc
    raises its mmap threshold, so the next version's weights live on the heap, and freeing them
    keeps the pages mapped (RSS stays one model higher) until malloc_trim."""
    try:
        libc = ctypes.CDLL(None)
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim this way
        pass


def warm_up(runner: Runner, backend: Backend) -> None:
    """Run the saved input example (or a made-up one) through decode, enforce and predict."""
    body = backend.serving_input_example
    if body is not None:
        doc = codecs.decode_json(body.encode())
        payload = codecs.decode_invocations(doc, input_schema(backend))
        data, params = payload.data, payload.params
    else:
        data, params = synthetic_input(backend.signature), None
        if data is None:
            logger.info("no input example and no signature: skipping warm-up")
            return
    for _ in range(2):  # the first call allocates; the second shows the steady state
        codecs.encode_predictions(runner.predict(data, params))


def synthetic_input(signature: ModelSignature | None) -> Any:
    """One row of zeros (or empty strings) shaped like the signature's inputs."""
    if signature is None:
        return None
    specs = signature.inputs.inputs
    if isinstance(specs[0], TensorSpec):
        tensors = {
            s.name: np.zeros([1 if d == -1 else d for d in s.shape], dtype=s.dtype)
            for s in specs
            if isinstance(s, TensorSpec)
        }
        return tensors if signature.inputs.has_input_names() else next(iter(tensors.values()))
    row = {}
    for i, s in enumerate(specs):
        if isinstance(s, ColSpec):
            row[s.name if s.name is not None else i] = _zero(s.type)
    return [row]


def _zero(column_type: str) -> Any:
    return {"string": "", "binary": b"", "boolean": False, "datetime": "1970-01-01"}.get(
        column_type, 0
    )


__all__ = ["Served", "ServingState", "SignatureCheck", "synthetic_input", "warm_up"]
