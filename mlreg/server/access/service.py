"""The rules of access, free of HTTP: signing in (passwords, tokens, the rate limit), levels on
resources, and managing users, groups, tokens and grants.

Failed sign-ins are counted in the database per user name and per client address, so the limit
holds across gunicorn workers and across the replicas of a deployment (a per-process count would
give an attacker workers x replicas times the attempts). A password verified once is
remembered in this process for a few minutes under an HMAC of (user, stored hash, password) with
a per-process key, so Basic authentication does not pay argon2's deliberate cost on every
request; changing the password changes the stored hash, so a remembered entry stops matching at
once, in every process.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from mlreg.errors import AlreadyExists, InvalidInput, RateLimited, Unauthenticated
from mlreg.server.access.credentials import (
    SHOWN,
    TOKEN_PREFIX,
    Passwords,
    check_password,
    new_token,
    token_digest,
)
from mlreg.server.access.entities import EVERYONE, Caller, Grant, Group, Token, User
from mlreg.server.access.store import GROUP, USER, AccessStore, Account, token_expiry
from mlreg.server.metrics import ServerMetrics
from mlreg.server.permissions import Level, Resource
from mlreg.store.journal import MANAGE, Actor

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
#: How often a token's ``last_used_at`` is written at most (a write per request would be a
#: write lock per request on SQLite).
TOUCH_EVERY = timedelta(minutes=1)
assert MANAGE == Level.MANAGE


def validate_principal_name(kind: str, name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"{kind} name {name!r}: expected 1-64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class LoginPolicy:
    """How many failed sign-ins a user name and a client address get per window."""

    max_failures_per_user: int = 10
    max_failures_per_address: int = 100
    window_seconds: int = 300
    #: Lifetime of a new token unless the request says otherwise (None: no expiry).
    token_days: float | None = 90.0
    #: Seconds a verified password is remembered in this process.
    remember_seconds: float = 300.0


class AccessService:
    def __init__(
        self,
        store: AccessStore,
        passwords: Passwords | None = None,
        policy: LoginPolicy | None = None,
        default_level: Level = Level.READ,
    ) -> None:
        self.store = store
        self.passwords = passwords or Passwords()
        self.policy = policy or LoginPolicy()
        self.default_level = default_level
        #: Counts sign-ins on /metrics (set by the app factory).
        self.metrics: ServerMetrics | None = None
        self._key = secrets.token_bytes(32)
        self._verified: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()

    # --- who a request acts as -------------------------------------------------------------

    def actor_for(self, caller: Caller | None, user: str, address: str | None) -> Actor:
        """The actor a request's writes are recorded as: what it may see, and the grants on
        what it creates (its own MANAGE, and everyone's default)."""
        grants: list[tuple[int, int]] = []
        if self.default_level > Level.NONE:
            grants.append((self.store.everyone_id(), int(self.default_level)))
        if caller is None:  # no authentication: everything is visible
            return Actor(user, address, None, tuple(grants))
        grants.insert(0, (caller.id, int(Level.MANAGE)))
        readers = None if caller.is_admin else caller.principals
        visible = self.default_level >= Level.READ
        return Actor(caller.name, address, readers, tuple(grants), visible)

    def level(self, caller: Caller, resource: Resource, key: str) -> Level | None:
        """The caller's level on a resource; None when there is no such resource."""
        if caller.is_admin:
            return Level.ADMIN
        if resource is Resource.USER:
            return Level.MANAGE if key == caller.name else Level.NONE
        exists, best, count = self.store.level_on(resource, key, caller.principals)
        if not exists:
            return None
        if not count and resource is not Resource.WEBHOOK:
            # No grant at all: made before grants existed (or straight on the database).
            return self.default_level
        return best if best is not None else Level.NONE

    def can(
        self,
        caller: Caller | None,
        level: Level,
        resource: Resource = Resource.SERVER,
        key: str | None = None,
    ) -> bool:
        """Whether ``caller`` holds ``level`` on a resource: the one rule the guard enforces
        before every route, as a plain function a page can call to decide what to show.

        ``caller`` None is a server without --auth (everyone may do everything); a resource
        that does not exist (yet) needs only a signed-in caller, as its route would (creating
        it, or answering 404); ``Resource.SERVER`` below ADMIN is any signed-in user.
        """
        if caller is None or level is Level.NONE or caller.is_admin:
            return True
        if level is Level.ADMIN:
            return False
        if resource is Resource.SERVER or key is None:
            return True
        have = self.level(caller, resource, key)
        return have is None or have >= level

    # --- signing in ------------------------------------------------------------------------

    def _since(self) -> datetime:
        return datetime.now(timezone.utc) - timedelta(seconds=self.policy.window_seconds)

    def _check_rate(
        self,
        keys: dict[str, int],
        what: dict[str, str],
        counts: dict[str, tuple[int, datetime]] | None = None,
    ) -> None:
        """RateLimited when a key is at its limit in the current window."""
        if counts is None:
            counts = self.store.failures(list(keys), self._since())
        for key, limit in keys.items():
            count, start = counts.get(key, (0, None))
            if count >= limit and start is not None:
                retry = start + timedelta(seconds=self.policy.window_seconds)
                wait = max(1, int((retry - datetime.now(timezone.utc)).total_seconds()) + 1)
                raise RateLimited(
                    f"too many failed sign-ins {what[key]}; try again in {wait} s", wait
                )

    def _count(self, method: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.sign_ins.labels(method, outcome).inc()

    def authenticate_password(self, name: str, password: str, address: str | None) -> Caller:
        """The user ``name`` if ``password`` is theirs; Unauthenticated (one message for an
        unknown user and a wrong password) or RateLimited."""
        return _caller(self._counted_password(name, password, address))

    def start_session(self, name: str, password: str, address: str | None) -> tuple[Caller, str]:
        """Check the password as :meth:`authenticate_password` does, for a browser's sign-in:
        the user and what their session carries besides their name, a digest of their stored
        password hash, so a new password (or the user deleted and made again) ends every
        session at once."""
        account = self._counted_password(name, password, address)
        assert account.password_hash is not None  # it was just checked
        return _caller(account), _stamp(account.password_hash)

    def _counted_password(self, name: str, password: str, address: str | None) -> Account:
        try:
            account = self._password(name, password, address)
        except RateLimited:
            self._count("password", "rate_limited")
            raise
        except Unauthenticated:
            self._count("password", "refused")
            raise
        self._count("password", "ok")
        return account

    def authenticate_token(self, token: str, address: str | None) -> Caller:
        """The owner of ``token`` if it is valid; Unauthenticated (saying whether it is
        unknown, revoked or expired) or RateLimited."""
        try:
            caller = self._token(token, address)
        except RateLimited:
            self._count("token", "rate_limited")
            raise
        except Unauthenticated:
            self._count("token", "refused")
            raise
        self._count("token", "ok")
        return caller

    def _password(self, name: str, password: str, address: str | None) -> Account:
        user_key, addr_key = f"user:{name.lower()[:256]}", f"addr:{address or '-'}"
        limits = {
            user_key: self.policy.max_failures_per_user,
            addr_key: self.policy.max_failures_per_address,
        }
        # Checked before the password, even a remembered one: a correct guess must not get
        # through a lockout.
        account, counts = self.store.account(name, list(limits), self._since())
        what = {user_key: f"for user {name!r}", addr_key: f"from {address}"}
        self._check_rate(limits, what, counts)
        stored = account.password_hash if account is not None else None
        if account and stored and self._remembered(account.id, stored, password):
            return account
        if not self.passwords.verify(stored, password):
            self.store.add_failure(list(limits), self._since())
            raise Unauthenticated("wrong user name or password")
        assert account is not None and stored is not None
        self._remember(account.id, stored, password)
        self.store.clear_failures(user_key)
        return account

    def _token(self, token: str, address: str | None) -> Caller:
        found = (
            self.store.token_account(token_digest(token))
            if token.startswith(TOKEN_PREFIX)
            else None
        )
        if found is None:
            # Nobody guesses 256 random bits; the limit keeps a flood of bad tokens from one
            # address off the database, so it is counted (and checked) only when they fail.
            addr_key = f"addr:{address or '-'}"
            limits = {addr_key: self.policy.max_failures_per_address}
            self._check_rate(limits, {addr_key: f"from {address}"})
            self.store.add_failure(list(limits), self._since())
            raise Unauthenticated("invalid token")
        user, info = found
        if info.state == "revoked":
            raise Unauthenticated(f"token {info.name!r} ({info.prefix}…) was revoked")
        if info.state == "expired":
            assert info.expires_at is not None
            raise Unauthenticated(
                f"token {info.name!r} ({info.prefix}…) expired on "
                f"{info.expires_at.strftime('%Y-%m-%d %H:%M UTC')}; create a new one"
            )
        now = datetime.now(timezone.utc)
        if info.last_used_at is None or now - info.last_used_at > TOUCH_EVERY:
            self.store.touch_token(info.id, now)
        return _caller(user)

    def _fingerprint(self, user_id: int, stored: str, password: str) -> bytes:
        message = f"{user_id}\0{stored}\0{password}".encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def _remembered(self, user_id: int, stored: str, password: str) -> bool:
        key = self._fingerprint(user_id, stored, password)
        with self._lock:
            until = self._verified.get(key)
            return until is not None and until > time.monotonic()

    def _remember(self, user_id: int, stored: str, password: str) -> None:
        key = self._fingerprint(user_id, stored, password)
        with self._lock:
            self._verified[key] = time.monotonic() + self.policy.remember_seconds
            self._verified.move_to_end(key)
            while len(self._verified) > 4096:
                self._verified.popitem(last=False)

    # --- browser sessions ------------------------------------------------------------------

    def session_caller(self, name: str, stamp: str) -> Caller | None:
        """The user a browser session names, if the session is still theirs (same password
        as when it began); None when it is not."""
        account, _ = self.store.account(name)
        if account is None or account.password_hash is None:
            return None
        if not hmac.compare_digest(stamp, _stamp(account.password_hash)):
            self._count("session", "refused")
            return None
        self._count("session", "ok")
        return _caller(account)

    # --- users -----------------------------------------------------------------------------

    def bootstrap_admin(self, name: str, password: str | None) -> User | None:
        """Create the first admin from ``MLREG_ADMIN_USER``/``MLREG_ADMIN_PASSWORD`` when there
        is no admin yet (never touching an existing one); None when nothing was done."""
        if not password or self.store.count_admins():
            return None
        if self.store.account(name)[0] is not None:
            return None  # a user of that name exists and is not an admin: leave it be
        try:
            return self.create_user(Actor("mlreg-server"), name, password, admin=True)
        except AlreadyExists:  # another replica created it at the same moment
            return None

    def create_user(
        self, actor: Actor, name: str, password: str | None, admin: bool = False
    ) -> User:
        validate_principal_name("user", name)
        hashed = self.passwords.hash(check_password(password)) if password is not None else None
        return self.store.create_user(actor, name, hashed, admin)

    def set_password(self, actor: Actor, name: str, password: str) -> None:
        self.store.set_password(actor, name, self.passwords.hash(check_password(password)))

    def set_admin(self, actor: Actor, name: str, admin: bool) -> User:
        if not admin and self.store.get_user(name).is_admin and self.store.count_admins() == 1:
            raise InvalidInput(f"{name!r} is the last admin; make another admin first")
        return self.store.set_admin(actor, name, admin)

    def delete_user(self, actor: Actor, name: str) -> None:
        self.store.delete_principal(actor, name, USER)

    def get_user(self, name: str) -> User:
        return self.store.get_user(name)

    def list_users(self) -> list[User]:
        return self.store.list_users()

    # --- groups ----------------------------------------------------------------------------

    def create_group(self, actor: Actor, name: str) -> Group:
        return self.store.create_group(actor, validate_principal_name("group", name))

    def delete_group(self, actor: Actor, name: str) -> None:
        if name == EVERYONE:
            raise InvalidInput(f"{EVERYONE!r} is built in (every user is in it)")
        self.store.delete_principal(actor, name, GROUP)

    def list_groups(self) -> list[Group]:
        return self.store.list_groups()

    def set_member(self, actor: Actor, group: str, user: str, member: bool) -> Group:
        if group == EVERYONE:
            raise InvalidInput(f"every user is in {EVERYONE!r}; it has no members to change")
        return self.store.set_member(actor, group, user, member)

    # --- tokens ----------------------------------------------------------------------------

    def create_token(
        self,
        actor: Actor,
        user: str,
        name: str,
        days: float | None = None,
        *,
        never_expires: bool = False,
    ) -> tuple[Token, str]:
        """A new token for ``user`` and the token itself (shown once; only its digest is
        kept), living ``days`` (default: the policy's) or forever with ``never_expires``."""
        if not name or len(name) > 64 or not name.isprintable():
            raise InvalidInput("token name: expected 1-64 printable characters")
        if days is not None and not 0 < days <= 3650:
            raise InvalidInput(f"token lifetime: expected 0-3650 days, got {days}")
        lifetime = None if never_expires else days or self.policy.token_days
        secret = new_token()
        token = self.store.create_token(
            actor, user, name, token_digest(secret), secret[:SHOWN], token_expiry(lifetime)
        )
        return token, secret

    def list_tokens(self, user: str | None) -> list[Token]:
        return self.store.list_tokens(user)

    def revoke_token(self, actor: Actor, user: str, token_id: int) -> Token:
        return self.store.revoke_token(actor, user, token_id)

    # --- grants ----------------------------------------------------------------------------

    def grant(
        self, actor: Actor, resource: Resource, key: str, principal: str, level: Level
    ) -> list[Grant]:
        if not Level.READ <= level <= Level.MANAGE:
            raise InvalidInput(
                f"permission: expected READ, EDIT, PROMOTE or MANAGE, got {level.name} (admin is "
                "a property of a user: mlreg server users create --admin)"
            )
        return self.store.set_grant(actor, resource, key, principal, level)

    def revoke(self, actor: Actor, resource: Resource, key: str, principal: str) -> list[Grant]:
        return self.store.set_grant(actor, resource, key, principal, None)

    def grants(self, resource: Resource, key: str) -> list[Grant]:
        return self.store.grants(resource, key)


def _caller(account: Account) -> Caller:
    return Caller(account.id, account.name, account.is_admin, account.principals)


def _stamp(password_hash: str) -> str:
    # The cookie is signed, not encrypted: this is all of the hash it shows, and the salted
    # argon2 hash behind it cannot be recovered from it.
    return hashlib.sha256(b"mlreg-session\0" + password_hash.encode()).hexdigest()[:32]
