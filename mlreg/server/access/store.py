"""Users, groups, tokens, grants and failed sign-ins in the database (SQLAlchemy).

Every write is one transaction that also records itself in the audit trail (as the actor the
caller passes). The per-request reads (a token's owner, a caller's groups, a level on a
resource) are one indexed query each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import DateTime, Integer, case, delete, func, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mlreg.errors import (
    AlreadyExists,
    ExperimentNotFound,
    InvalidInput,
    ModelNotFound,
    NotFound,
    PrincipalNotFound,
)
from mlreg.server.access.entities import EVERYONE, Grant, Group, Token, User
from mlreg.server.permissions import Level, Resource
from mlreg.store.database import Database
from mlreg.store.journal import Actor, Change, record
from mlreg.store.tables import (
    ExperimentGrantRow,
    ExperimentRow,
    LoggedModelRow,
    LoginFailureRow,
    MembershipRow,
    ModelGrantRow,
    PrincipalRow,
    RegisteredModelRow,
    RunRow,
    TokenRow,
    WebhookRow,
)

USER, GROUP = "user", "group"


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Account:
    """A user as sign-in needs them: the stored hash, and their principal ids (their own,
    their groups', everyone's)."""

    id: int
    name: str
    is_admin: bool
    password_hash: str | None
    principals: tuple[int, ...]


class AccessStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._session = db.transaction
        self._everyone: int | None = None

    # --- principals ----------------------------------------------------------------------

    def everyone_id(self) -> int:
        """The id of the built-in group every user belongs to (created on first use)."""
        if self._everyone is None:
            with self._session() as session:
                session.execute(
                    self.db.insert()(PrincipalRow)
                    .values(name=EVERYONE, kind=GROUP, is_admin=False, created_at=_now())
                    .on_conflict_do_nothing(index_elements=["name"])
                )
                self._everyone = session.scalar(
                    select(PrincipalRow.id).where(PrincipalRow.name == EVERYONE)
                )
        assert self._everyone is not None
        return self._everyone

    def _principal(self, session: Session, name: str, kind: str | None = None) -> PrincipalRow:
        row = session.scalars(select(PrincipalRow).where(PrincipalRow.name == name)).one_or_none()
        if row is None or (kind is not None and row.kind != kind):
            what = kind or "user or group"
            raise PrincipalNotFound(f"{what} {name!r} does not exist")
        return row

    def _record(
        self, session: Session, actor: Actor, action: str, kind: str, name: str, **values: Any
    ) -> None:
        record(session, actor, Change(action, kind, None, name, **values))

    def create_user(
        self, actor: Actor, name: str, password_hash: str | None, is_admin: bool
    ) -> User:
        try:
            with self._session() as session:
                row = PrincipalRow(
                    name=name,
                    kind=USER,
                    password_hash=password_hash,
                    is_admin=is_admin,
                    created_at=_now(),
                )
                session.add(row)
                session.flush()
                self._record(session, actor, "user.created", USER, name, new={"is_admin": is_admin})
                return self._user(session, row)
        except IntegrityError:
            raise AlreadyExists(f"a user or group named {name!r} already exists") from None

    def _user(self, session: Session, row: PrincipalRow) -> User:
        groups = session.scalars(
            select(PrincipalRow.name)
            .join(MembershipRow, MembershipRow.group_id == PrincipalRow.id)
            .where(MembershipRow.user_id == row.id)
            .order_by(PrincipalRow.name)
        ).all()
        return User(
            row.name,
            row.is_admin,
            row.password_hash is not None,
            list(groups),
            _utc(row.created_at),
        )

    def get_user(self, name: str) -> User:
        with self._session() as session:
            return self._user(session, self._principal(session, name, USER))

    def _account(self, rows: Sequence[Any]) -> Account:
        """An Account from the rows of an ``_ACCOUNT`` query: one per group of the user."""
        row = rows[0]
        groups = [r.group_id for r in rows if r.group_id is not None]
        principals = (row.id, *groups, self.everyone_id())
        return Account(row.id, row.name, row.is_admin, row.password_hash, principals)

    #: A user and their groups in one statement (one row per group).
    _ACCOUNT = (
        PrincipalRow.id,
        PrincipalRow.name,
        PrincipalRow.is_admin,
        PrincipalRow.password_hash,
        MembershipRow.group_id,
    )

    def account(
        self, name: str, failure_keys: Sequence[str] = (), since: datetime | None = None
    ) -> tuple[Account | None, dict[str, tuple[int, datetime]]]:
        """The user ``name`` with their hash and principals (None: no such user), and the failed
        sign-ins of ``failure_keys`` since ``since``, in one transaction."""
        self.everyone_id()
        with self._session() as session:
            failures = self._failures(session, failure_keys, since) if failure_keys else {}
            rows = session.execute(
                select(*self._ACCOUNT)
                .outerjoin(MembershipRow, MembershipRow.user_id == PrincipalRow.id)
                .where(PrincipalRow.name == name, PrincipalRow.kind == USER)
            ).all()
            return (self._account(rows) if rows else None), failures

    def list_users(self) -> list[User]:
        with self._session() as session:
            rows = session.scalars(
                select(PrincipalRow).where(PrincipalRow.kind == USER).order_by(PrincipalRow.name)
            ).all()
            return [self._user(session, r) for r in rows]

    def count_admins(self) -> int:
        with self._session() as session:
            return (
                session.scalar(
                    select(func.count()).where(PrincipalRow.kind == USER, PrincipalRow.is_admin)
                )
                or 0
            )

    def delete_principal(self, actor: Actor, name: str, kind: str) -> None:
        with self._session() as session:
            row = self._principal(session, name, kind)
            if kind == USER and row.is_admin:
                admins = session.scalar(
                    select(func.count()).where(PrincipalRow.kind == USER, PrincipalRow.is_admin)
                )
                if admins == 1:
                    raise InvalidInput(
                        f"{name!r} is the last admin; create another admin before deleting it"
                    )
            self._record(session, actor, f"{kind}.deleted", kind, name)
            session.delete(row)

    def set_password(self, actor: Actor, name: str, password_hash: str | None) -> None:
        with self._session() as session:
            row = self._principal(session, name, USER)
            row.password_hash = password_hash
            # The new value of a password is never recorded, only that it changed.
            self._record(session, actor, "user.password_set", USER, name)

    def set_admin(self, actor: Actor, name: str, is_admin: bool) -> User:
        with self._session() as session:
            row = self._principal(session, name, USER)
            self._record(
                session,
                actor,
                "user.updated",
                USER,
                name,
                old={"is_admin": row.is_admin},
                new={"is_admin": is_admin},
            )
            row.is_admin = is_admin
            return self._user(session, row)

    # --- groups --------------------------------------------------------------------------

    def create_group(self, actor: Actor, name: str) -> Group:
        try:
            with self._session() as session:
                row = PrincipalRow(name=name, kind=GROUP, is_admin=False, created_at=_now())
                session.add(row)
                session.flush()
                self._record(session, actor, "group.created", GROUP, name)
                return Group(name, [], _utc(row.created_at))
        except IntegrityError:
            raise AlreadyExists(f"a user or group named {name!r} already exists") from None

    def _group(self, session: Session, row: PrincipalRow) -> Group:
        members = session.scalars(
            select(PrincipalRow.name)
            .join(MembershipRow, MembershipRow.user_id == PrincipalRow.id)
            .where(MembershipRow.group_id == row.id)
            .order_by(PrincipalRow.name)
        ).all()
        return Group(row.name, list(members), _utc(row.created_at))

    def list_groups(self) -> list[Group]:
        with self._session() as session:
            rows = session.scalars(
                select(PrincipalRow)
                .where(PrincipalRow.kind == GROUP, PrincipalRow.name != EVERYONE)
                .order_by(PrincipalRow.name)
            ).all()
            return [self._group(session, r) for r in rows]

    def get_group(self, name: str) -> Group:
        with self._session() as session:
            return self._group(session, self._principal(session, name, GROUP))

    def set_member(self, actor: Actor, group: str, user: str, member: bool) -> Group:
        with self._session() as session:
            group_row = self._principal(session, group, GROUP)
            user_row = self._principal(session, user, USER)
            present = session.get(MembershipRow, (group_row.id, user_row.id)) is not None
            if member and not present:
                session.add(MembershipRow(group_id=group_row.id, user_id=user_row.id))
            elif not member and present:
                session.execute(
                    delete(MembershipRow).where(
                        MembershipRow.group_id == group_row.id,
                        MembershipRow.user_id == user_row.id,
                    )
                )
            if member != present:
                action = "group.member_added" if member else "group.member_removed"
                self._record(session, actor, action, GROUP, group, new={"user": user})
            session.flush()
            return self._group(session, group_row)

    # --- tokens --------------------------------------------------------------------------

    def _token(self, row: TokenRow, user: str) -> Token:
        created = _utc(row.created_at)
        assert created is not None
        return Token(
            row.id,
            user,
            row.name,
            row.prefix,
            created,
            _utc(row.expires_at),
            _utc(row.revoked_at),
            _utc(row.last_used_at),
        )

    def create_token(
        self,
        actor: Actor,
        user: str,
        name: str,
        digest: str,
        prefix: str,
        expires_at: datetime | None,
    ) -> Token:
        with self._session() as session:
            owner = self._principal(session, user, USER)
            row = TokenRow(
                user_id=owner.id,
                name=name,
                token_hash=digest,
                prefix=prefix,
                created_at=_now(),
                expires_at=expires_at,
            )
            session.add(row)
            session.flush()
            self._record(
                session,
                actor,
                "token.created",
                USER,
                user,
                new={"token_id": row.id, "name": name, "expires_at": expires_at},
            )
            return self._token(row, user)

    def token_account(self, digest: str) -> tuple[Account, Token] | None:
        """The user a token belongs to and the token (whatever its state), in one
        transaction; None for a token nobody has."""
        self.everyone_id()
        with self._session() as session:
            rows = session.execute(
                select(TokenRow, *self._ACCOUNT)
                .join(PrincipalRow, PrincipalRow.id == TokenRow.user_id)
                .outerjoin(MembershipRow, MembershipRow.user_id == PrincipalRow.id)
                .where(TokenRow.token_hash == digest)
            ).all()
            if not rows:
                return None
            return self._account(rows), self._token(rows[0][0], rows[0].name)

    def touch_token(self, token_id: int, when: datetime) -> None:
        with self._session() as session:
            session.execute(
                update(TokenRow).where(TokenRow.id == token_id).values(last_used_at=when)
            )

    def list_tokens(self, user: str | None) -> list[Token]:
        with self._session() as session:
            query = select(TokenRow, PrincipalRow.name).join(
                PrincipalRow, PrincipalRow.id == TokenRow.user_id
            )
            if user is not None:
                owner = self._principal(session, user, USER)
                query = query.where(TokenRow.user_id == owner.id)
            rows = session.execute(query.order_by(TokenRow.id)).all()
            return [self._token(row, name) for row, name in rows]

    def revoke_token(self, actor: Actor, user: str, token_id: int) -> Token:
        with self._session() as session:
            owner = self._principal(session, user, USER)
            row = session.get(TokenRow, token_id)
            if row is None or row.user_id != owner.id:
                raise NotFound(f"user {user!r} has no token {token_id}")
            if row.revoked_at is None:
                row.revoked_at = _now()
                self._record(
                    session,
                    actor,
                    "token.revoked",
                    USER,
                    user,
                    old={"token_id": token_id, "name": row.name},
                )
            return self._token(row, user)

    # --- grants --------------------------------------------------------------------------

    def _target(self, session: Session, resource: Resource, key: str) -> tuple[Any, Any, int, str]:
        """(grant table, its resource column, the resource's id, its name) of a model (by
        name) or an experiment (by id)."""
        if resource is Resource.MODEL:
            model = session.scalars(
                select(RegisteredModelRow).where(RegisteredModelRow.name == key)
            ).one_or_none()
            if model is None:
                raise ModelNotFound(f"registered model {key!r} does not exist")
            return ModelGrantRow, ModelGrantRow.model_id, model.id, model.name
        experiment = session.get(ExperimentRow, _int(key))
        if experiment is None:
            raise ExperimentNotFound(f"experiment {key} does not exist")
        return ExperimentGrantRow, ExperimentGrantRow.experiment_id, experiment.id, experiment.name

    def grants(self, resource: Resource, key: str) -> list[Grant]:
        with self._session() as session:
            table, column, rid, _ = self._target(session, resource, key)
            rows = session.execute(
                select(PrincipalRow.name, PrincipalRow.kind, table.level)
                .join(table, table.principal_id == PrincipalRow.id)
                .where(column == rid)
                .order_by(PrincipalRow.kind.desc(), PrincipalRow.name)
            ).all()
            return [Grant(name, kind, Level(level)) for name, kind, level in rows]

    def set_grant(
        self, actor: Actor, resource: Resource, key: str, principal: str, level: Level | None
    ) -> list[Grant]:
        """Give ``principal`` ``level`` (None: take its grant away) on a model or experiment.

        Taking away the last grant leaves everyone at NONE rather than no grant at all (which
        would mean "made before grants existed": the server's default permission)."""
        # Before the transaction: made on first use in a transaction of its own, which on
        # SQLite would wait for this one's write lock until it timed out.
        everyone = self.everyone_id()
        with self._session() as session:
            table, column, rid, name = self._target(session, resource, key)
            who = self._principal(session, principal)
            current = session.scalars(
                select(table).where(column == rid, table.principal_id == who.id)
            ).one_or_none()
            old = None if current is None else Level(current.level).name
            if level is None:
                if current is None:
                    raise NotFound(f"{principal!r} has no grant on {resource.value} {name!r}")
                session.delete(current)
                session.flush()
                left = session.scalar(select(func.count()).where(column == rid))
                if not left:
                    session.add(table(**{column.key: rid}, principal_id=everyone, level=0))
            elif current is None:
                session.add(table(**{column.key: rid}, principal_id=who.id, level=int(level)))
            else:
                current.level = int(level)
            record(
                session,
                actor,
                Change(
                    "grant.set" if level is not None else "grant.removed",
                    resource.value,
                    rid,
                    name,
                    old={"principal": principal, "level": old},
                    new={"principal": principal, "level": level.name if level else None},
                ),
            )
        return self.grants(resource, key)

    def level_on(
        self, resource: Resource, key: str, principals: Sequence[int]
    ) -> tuple[bool, Level | None, int | None]:
        """Whether the resource exists, the best level ``principals`` hold on it (None: no
        grant of theirs), and how many grants it has at all (None: it does not exist)."""
        if resource is Resource.ARTIFACT_PATH:
            # MLflow's proxy paths: registry/<model>/<version>/... or <experiment id>/...
            head, _, rest = key.strip("/").partition("/")
            if head == "registry":
                resource, key = Resource.MODEL, rest.partition("/")[0]
            else:
                resource, key = Resource.EXPERIMENT, head
        with self._session() as session:
            if resource is Resource.MODEL:
                owner = select(RegisteredModelRow.id).where(RegisteredModelRow.name == key)
                return self._level(
                    session, ModelGrantRow, ModelGrantRow.model_id, owner, principals
                )
            if resource is Resource.EXPERIMENT_NAME:
                owner = select(ExperimentRow.id).where(ExperimentRow.name == key)
            elif resource is Resource.EXPERIMENT:
                try:
                    owner = select(ExperimentRow.id).where(ExperimentRow.id == int(key))
                except ValueError:
                    return False, None, None  # not an id: the handler says so
            elif resource is Resource.RUN:
                owner = select(RunRow.experiment_id).where(RunRow.run_id == key)
            elif resource is Resource.LOGGED_MODEL:
                owner = select(LoggedModelRow.experiment_id).where(LoggedModelRow.model_id == key)
            elif resource is Resource.WEBHOOK:
                try:
                    hook = session.get(WebhookRow, int(key))
                except ValueError:
                    hook = None
                if hook is None:
                    return False, None, None
                if hook.model_id is None:
                    return True, None, 1  # a server-wide webhook: admins only
                owner = select(RegisteredModelRow.id).where(RegisteredModelRow.id == hook.model_id)
                return self._level(
                    session, ModelGrantRow, ModelGrantRow.model_id, owner, principals
                )
            else:
                raise ValueError(f"no levels on a {resource.value}")
            return self._level(
                session, ExperimentGrantRow, ExperimentGrantRow.experiment_id, owner, principals
            )

    @staticmethod
    def _level(
        session: Session, table: Any, column: Any, owner: Any, principals: Sequence[int]
    ) -> tuple[bool, Level | None, int | None]:
        # One statement: the resource's id, the best grant of the principals, all its grants.
        rid = owner.scalar_subquery()
        mine = func.max(table.level).filter(table.principal_id.in_(principals))
        found, best, count = session.execute(
            select(rid, mine, func.count(column)).select_from(table).where(column == rid)
        ).one()
        if found is None:
            return False, None, None
        return True, None if best is None else Level(best), count

    # --- failed sign-ins -----------------------------------------------------------------

    def failures(self, keys: Sequence[str], since: datetime) -> dict[str, tuple[int, datetime]]:
        """Failures in the current window per key: (count, window start)."""
        with self._session() as session:
            return self._failures(session, keys, since)

    @staticmethod
    def _failures(
        session: Session, keys: Sequence[str], since: datetime | None
    ) -> dict[str, tuple[int, datetime]]:
        rows = session.execute(
            select(LoginFailureRow.key, LoginFailureRow.count, LoginFailureRow.window_start).where(
                LoginFailureRow.key.in_(list(keys))
            )
        ).all()
        out = {}
        for key, count, start in rows:
            start = _utc(start)
            assert start is not None
            if since is None or start > since:
                out[key] = (count, start)
        return out

    def add_failure(self, keys: Sequence[str], since: datetime) -> None:
        """Count one failure for each key (a window older than ``since`` starts again)."""
        now = _now()
        table = LoginFailureRow.__table__
        with self._session() as session:
            for key in keys:
                session.execute(
                    self.db.insert()(table)
                    .values(key=key, window_start=now, count=1)
                    .on_conflict_do_update(
                        index_elements=["key"],
                        # Within the window one more; past it a new window with one.
                        set_={
                            "count": case(
                                (table.c.window_start > since, table.c.count + 1),
                                else_=literal(1, Integer),
                            ),
                            "window_start": case(
                                (table.c.window_start > since, table.c.window_start),
                                else_=literal(now, DateTime(timezone=True)),
                            ),
                        },
                    )
                )

    def clear_failures(self, key: str) -> None:
        with self._session() as session:
            session.execute(delete(LoginFailureRow).where(LoginFailureRow.key == key))


def _int(key: str) -> int:
    try:
        return int(key)
    except ValueError:
        raise InvalidInput(f"invalid experiment id {key!r}") from None


def token_expiry(days: float | None) -> datetime | None:
    return None if days is None else _now() + timedelta(days=days)
