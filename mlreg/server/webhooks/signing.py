"""How a delivery is signed, and how a receiver checks it (the README's snippet does the same).

``X-Mlreg-Signature: sha256=<hex>`` is HMAC-SHA256 with the webhook's secret over
``<X-Mlreg-Timestamp>.<body>``: the timestamp is signed too, so a captured delivery cannot be
replayed later with a fresh timestamp, and a receiver refuses old ones.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Mlreg-Signature"
TIMESTAMP_HEADER = "X-Mlreg-Timestamp"
EVENT_HEADER = "X-Mlreg-Event"
DELIVERY_HEADER = "X-Mlreg-Delivery"
EVENT_ID_HEADER = "X-Mlreg-Event-Id"
#: How old a delivery a receiver accepts (seconds).
TOLERANCE = 300


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, now: float | None = None
) -> bool:
    """True when ``signature`` is this body's and the timestamp is recent."""
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except ValueError:
        return False
    return age <= TOLERANCE and hmac.compare_digest(sign(secret, timestamp, body), signature)
