"""Follow mode: serve whatever version a registry stage or alias names, swapping with no downtime.

Each worker polls which version the URI names (a query: mlreg.uris.current_version, through
a local registry or ``mlreg server``). When it moves, the worker downloads and loads the new
version next to the served one, warms it up with its input example, checks that its
signature keeps the served one's clients working, and swaps it in (ServingState.swap):
requests in flight finish on the version they started with, the old one is freed once they
have. A version that fails to load or warm up, or whose signature is incompatible (unless
``--allow-signature-change``), is not swapped in: one log line says why, ``/metadata`` and
``mlreg_model_swaps_total`` report it, and it is tried again only when the URI moves again.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any

from mlreg.errors import MlregError, SignatureChanged
from mlreg.models.compat import signature_changes
from mlreg.serving.backends import Backend
from mlreg.serving.state import ServingState
from mlreg.uris import ModelRef, ResolvedModel, current_version, resolve_model_uri

logger = logging.getLogger(__name__)

Lookup = Callable[[str], ModelRef]
Resolve = Callable[[str], ResolvedModel]


def signature_check(old: Backend, new: Backend) -> list[str]:
    return signature_changes(old.signature, new.signature)


class Follower:
    """Polls one model URI and swaps the served version when it moves."""

    def __init__(
        self,
        state: ServingState,
        uri: str,
        loader: Callable[[ResolvedModel], Backend],
        interval: float,
        allow_signature_change: bool = False,
        lookup: Lookup = current_version,
        resolve: Resolve = resolve_model_uri,
    ) -> None:
        self.state = state
        self.uri = uri
        self.loader = loader
        self.interval = interval
        self.check = None if allow_signature_change else signature_check
        self.lookup = lookup
        self.resolve = resolve
        #: The version last refused, not tried again until the URI names another.
        self.refused: ModelRef | None = None
        self._last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.status: dict[str, Any] = {
            "uri": uri,
            "poll_interval_seconds": interval,
            "last_check": None,
            "last_error": None,
            "refused": None,
            "swaps": 0,
        }
        state.follow = self.status

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mlreg-follow", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self.state.ready and not self.state.draining:
                self.poll()

    def poll(self) -> None:
        """Look once; swap if the URI names a version other than the served one."""
        self.status["last_check"] = _now()
        try:
            ref = self.lookup(self.uri)
        except MlregError as e:
            self._error(f"cannot tell which version {self.uri} names: {e.message}")
            return
        self.status["last_error"] = self._last_error = None
        if self.state.current is None:
            return
        if self._is_served(ref):
            # Back on the served version: a refused one is tried again if it comes back.
            self.refused = self.status["refused"] = None
            return
        if ref == self.refused:
            return  # tried and refused: wait for the URI to move again
        self._swap(ref)

    def _is_served(self, ref: ModelRef) -> bool:
        served = self.state.current
        if served is None:
            return False
        source = served.backend.source
        return source.version == ref.version and (ref.digest is None or source.digest == ref.digest)

    def _swap(self, ref: ModelRef) -> None:
        old = self.state.version or "(none)"
        logger.info(
            "%s now names version %s of %r; loading it next to version %s",
            self.uri,
            ref.version,
            ref.name,
            old,
        )
        version = str(ref.version)
        try:
            source = self.resolve(self.uri)  # downloads it (a server's copy is cached by digest)
            version = str(source.version)
            served = self.state.swap(lambda: self.loader(source), self.check)
        except MlregError as e:
            refused = isinstance(e, SignatureChanged)
            self.refused = ref
            hint = " (--allow-signature-change serves it anyway)" if refused else ""
            reason = f"{e.message}{hint}"
            self.status["refused"] = {
                "version": ref.version,
                "digest": ref.digest,
                "reason": reason,
            }
            self.state.metrics.swaps.labels("refused" if refused else "failed", version).inc()
            logger.error(
                "version %s of %r not swapped in: %s; version %s goes on serving",
                ref.version,
                ref.name,
                reason,
                old,
            )
            return
        self.refused = None
        self.status["refused"] = None
        self.status["swaps"] += 1
        self.state.metrics.swaps.labels("swapped", served.version).inc()
        logger.info(
            "now serving version %s of %r (was %s); it took %.2f s to load and warm up",
            served.version,
            ref.name,
            old,
            served.load_seconds,
            extra={"model_version": served.version, "previous_version": old},
        )

    def _error(self, message: str) -> None:
        self.status["last_error"] = message
        if message != self._last_error:  # once per new trouble, not every poll
            logger.warning("%s; version %s goes on serving", message, self.state.version)
        self._last_error = message


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


__all__ = ["Follower", "signature_check"]
