"""Secrets: password hashes (argon2id through argon2-cffi) and API tokens.

Passwords are chosen by people, so they are guessable: they are stored as argon2id hashes,
deliberately slow and memory-hard, so a stolen database does not give them away.

API tokens are 32 random bytes from ``secrets`` (256 bits): no dictionary or brute force can
find one, so a slow hash would protect nothing and would cost every request its time. They are
stored as plain SHA-256 digests, which the server looks up directly by index (a salted slow hash
could not be looked up; every token would have to be tried). The ``mlreg_`` prefix lets secret
scanners recognise a leaked token.
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mlreg.errors import InvalidInput

TOKEN_PREFIX = "mlreg_"  # noqa: S105  (a marker for secret scanners, not a secret)
#: Characters of a token shown in lists (the prefix and a few random ones).
SHOWN = len(TOKEN_PREFIX) + 6
MIN_PASSWORD = 8
MAX_PASSWORD = 1024


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_password(password: str) -> str:
    """The password if it is acceptable; InvalidInput saying why not."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password: expected at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"password: expected at most {MAX_PASSWORD} characters")
    return password


class Passwords:
    """argon2id hashing (argon2-cffi's defaults: RFC 9106's low-memory profile, 64 MiB)."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        if stored is None:
            # An unknown user (or one without a password) takes as long to refuse as a wrong
            # password, so the timing does not tell which names exist.
            self._dummy = self._dummy or self.hasher.hash(secrets.token_urlsafe(16))
            stored, known = self._dummy, False
        else:
            known = True
        try:
            return self.hasher.verify(stored, password) and known
        except (VerificationError, InvalidHashError):
            return False
