"""The webhook deliverer: one per server process, off the request path.

A thread claims due deliveries from the outbox (see :meth:`WebhookStore.claim`) as long as a
sender is free, and a small pool POSTs them, signed, with a timeout; each attempt and its
answer is recorded, and a failed one is due again after an exponential backoff. It wakes when
this process commits an outbox row and otherwise looks every ``poll_seconds``, so another
worker's or replica's events are delivered too (by whichever deliverer claims them first).
A slow receiver holds one sender for at most its timeout; the API never waits for it.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import requests

from mlreg.server.metrics import ServerMetrics
from mlreg.server.webhooks.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)
from mlreg.server.webhooks.store import Claim, WebhookStore
from mlreg.store import journal
from mlreg.version import __version__

logger = logging.getLogger(__name__)
CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class DeliveryPolicy:
    poll_seconds: float = 1.0
    timeout: float = 10.0
    max_attempts: int = 12
    backoff_seconds: float = 2.0
    senders: int = 4


def shown(url: str) -> str:
    """``url`` without any user name or password in it (for logs)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=netloc).geturl()


class Deliverer:
    def __init__(
        self, store: WebhookStore, policy: DeliveryPolicy, metrics: ServerMetrics | None = None
    ) -> None:
        self.store = store
        self.policy = policy
        self.metrics = metrics
        # A claim outlives the longest attempt, so only a dead deliverer's claims expire.
        self.lease = timedelta(seconds=policy.timeout + CONNECT_TIMEOUT + 30)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._in_flight = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(policy.senders, thread_name_prefix="mlreg-webhook")
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._run, name="mlreg-deliverer", daemon=True)

    def start(self) -> Deliverer:
        journal.outbox_listeners.add(self._wake.set)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop claiming; wait for the POSTs in flight (each bounded by its timeout)."""
        journal.outbox_listeners.discard(self._wake.set)
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()
        self._pool.shutdown(wait=True)
        self._session.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            claimed = 0
            with self._lock:
                free = self.policy.senders - self._in_flight
            if free > 0:
                try:
                    claims = self.store.claim(free, self.lease)
                except Exception as e:  # the database is away: try again later
                    if self.metrics is not None:
                        self.metrics.webhook_errors.inc()
                    logger.warning("webhook deliverer: cannot read the outbox: %s", e)
                    claims = []
                for claim in claims:
                    with self._lock:
                        self._in_flight += 1
                    self._pool.submit(self._deliver, claim)
                claimed = len(claims)
            if not claimed:
                self._wake.wait(self.policy.poll_seconds)

    def _deliver(self, claim: Claim) -> None:
        try:
            status, error, took = self._post(claim)
            state = self.store.finish(
                claim,
                status,
                error,
                took,
                self.policy.max_attempts,
                self.policy.backoff_seconds,
            )
            outcome = {"delivered": "delivered", "failed": "failed", "dropped": "dropped"}.get(
                state, "retry"
            )
            if self.metrics is not None:
                self.metrics.webhook_attempts.labels(outcome).inc()
            level = logging.INFO if state == "delivered" else logging.WARNING
            logger.log(
                level,
                "webhook %s delivery %s (%s) to %s: %s in %.0f ms; %s",
                claim.webhook_id,
                claim.id,
                claim.event,
                shown(claim.url),
                status if status is not None else error,
                took,
                state,
            )
        except Exception:  # a bug or the database: the lease expires and it is tried again
            if self.metrics is not None:
                self.metrics.webhook_errors.inc()
            logger.exception("webhook delivery %s could not be recorded", claim.id)
        finally:
            with self._lock:
                self._in_flight -= 1
            self._wake.set()

    def _post(self, claim: Claim) -> tuple[int | None, str | None, float]:
        body = claim.payload.encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"mlreg-webhooks/{__version__}",
            EVENT_HEADER: claim.event,
            EVENT_ID_HEADER: claim.event_id,
            DELIVERY_HEADER: str(claim.id),
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(claim.secret, timestamp, body),
        }
        start = time.perf_counter()
        try:
            response = self._session.post(
                claim.url,
                data=body,
                headers=headers,
                timeout=(CONNECT_TIMEOUT, self.policy.timeout),
                allow_redirects=False,
            )
            response.close()
            return response.status_code, None, (time.perf_counter() - start) * 1000
        except requests.RequestException as e:
            text = str(e).splitlines()[0][:300] if str(e) else ""
            return None, f"{type(e).__name__}: {text}", (time.perf_counter() - start) * 1000
