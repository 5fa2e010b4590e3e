"""The server's model lifecycle: load (after the fork), warm up, then report ready."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from mlreg.errors import BackendUnavailable, MlregError
from mlreg.models.signature import ColSpec, ModelSignature, TensorSpec
from mlreg.serving import codecs
from mlreg.serving.backends import Backend, input_schema
from mlreg.serving.metrics import Metrics
from mlreg.serving.runner import Runner
from mlreg.serving.settings import ServingSettings

logger = logging.getLogger(__name__)


class ServingState:
    """Holds the backend once it is loaded and warmed; routes ask it for the runner."""

    def __init__(self, settings: ServingSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.backend: Backend | None = None
        self.runner: Runner | None = None
        self.error: str | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def load(self, loader: Callable[[], Backend]) -> None:
        """Load and warm up the model in this thread; raise what the load raised."""
        start = time.perf_counter()
        try:
            backend = loader()
            runner = Runner(backend, self.settings, self.metrics)
            try:
                warm_up(runner, backend)
            except MlregError as e:
                # A remote backend (TF Serving) that is slow or failing right now is not a
                # reason to stop: its signature was checked, and /ping reports its state.
                if not backend.remote:
                    raise
                logger.warning("warm-up through the backend failed: %s", e.message)
        except BaseException as e:
            if isinstance(e, MlregError):
                # Our own errors say what is wrong in one line; a traceback would bury it.
                self.error = e.message
                logger.error("model failed to load: %s", self.error)
            else:
                self.error = f"{type(e).__name__}: {e}"
                logger.exception("model failed to load: %s", self.error)
            raise
        self.backend, self.runner = backend, runner
        # TensorFlow and Keras leave millions of long-lived objects behind; a full garbage
        # collection walking them stalls a request for hundreds of milliseconds. Freezing
        # them after the load keeps the collector to what requests allocate.
        gc.collect()
        gc.freeze()
        seconds = time.perf_counter() - start
        self.metrics.model_load.set(seconds)
        self.metrics.model_ready.set(1)
        self._ready.set()
        logger.info(
            "model ready",
            extra={"model_uri": backend.source.uri, "load_seconds": round(seconds, 3)},
        )

    def start_loading(self, loader: Callable[[], Backend], on_failure: Callable[[], None]) -> None:
        """Load in a background thread so /ping and /health answer meanwhile."""

        def run() -> None:
            try:
                self.load(loader)
            except BaseException:
                on_failure()

        self._thread = threading.Thread(target=run, name="mlreg-model-loader", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float) -> tuple[Backend, Runner]:
        """The backend and runner; wait up to ``timeout`` for a load in progress, else 503."""
        if not self._ready.wait(timeout) or self.backend is None or self.runner is None:
            raise BackendUnavailable(self.not_ready_message())
        return self.backend, self.runner

    def unready_reason(self) -> str | None:
        """None when a prediction can be answered now; else why not (what /ping reports)."""
        if not self.ready or self.backend is None:
            return self.not_ready_message()
        return self.backend.unready_reason()

    def not_ready_message(self) -> str:
        if self.error is not None:
            return f"the model failed to load: {self.error}"
        return "the model is still loading; retry when GET /ping answers 200"

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()


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


__all__ = ["ServingState", "synthetic_input", "warm_up"]
