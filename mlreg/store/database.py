"""One engine per database URI per process, its transactions, and database errors as ours.

The registry's and tracking's SQL stores both open the database through
:func:`open_database`; a second open of the same URI shares the first one's engine (and so
its connection pool) until the last user closes it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.orm import Session, sessionmaker

from mlreg.credentials import redact
from mlreg.errors import StoreError
from mlreg.store import migrate
from mlreg.store.tables import AppliedRequestRow

SQLITE_BUSY_TIMEOUT_S = 60


def make_engine(uri: str) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and write-locking transactions.

    StoreError (one line) for a URL SQLAlchemy cannot use, a driver that is not installed, or
    a SQLite file whose directory cannot be made.
    """
    if uri.startswith("sqlite"):
        path = uri.split("///", 1)[-1]
        if path and path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(
                    f"cannot create the registry database at {path}: {e.strerror}; point "
                    "MLREG_HOME (or MLREG_TRACKING_URI) at a writable place"
                ) from None
        engine = _create_engine(uri, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, open transactions (see "begin" below).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # Take the write lock up front: a deferred transaction that later writes can
            # fail with "database is locked" instead of waiting its turn.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return _create_engine(uri, pool_pre_ping=True)


def _create_engine(uri: str, **kwargs: Any) -> Engine:
    try:
        return create_engine(uri, **kwargs)
    except (NoSuchModuleError, ImportError) as e:
        raise StoreError(
            f"{redact(uri)!r} needs a database driver that is not installed ({e}); install it "
            "(for PostgreSQL: pip install 'psycopg[binary]')"
        ) from None
    except (ArgumentError, ValueError) as e:
        raise StoreError(f"{redact(uri)!r} is not a database URL SQLAlchemy can use: {e}") from None


def sqlite_path(uri: str) -> Path | None:
    """The file of a SQLite URI (None for other databases and in-memory SQLite)."""
    if not uri.startswith("sqlite"):
        return None
    path = uri.split("///", 1)[-1]
    return Path(path) if path and path != ":memory:" and "///" in uri else None


def database_exists(uri: str) -> bool:
    """Whether mlreg's database at ``uri`` has been created, found without creating anything:
    a SQLite file that exists, or a database that has mlreg's schema table. StoreError when
    the database cannot be reached."""
    path = sqlite_path(uri)
    if uri.startswith("sqlite"):
        return path is not None and path.is_file()
    engine = make_engine(uri)
    try:
        return inspect(engine).has_table("alembic_version")
    except (OperationalError, InterfaceError) as e:
        raise StoreError(
            f"cannot open the registry database {describe(engine)}: {_first_line(e)}"
        ) from None
    finally:
        engine.dispose()


def describe(engine: Engine) -> str:
    """The database's URL with the password hidden (for messages)."""
    return engine.url.render_as_string(hide_password=True)


class Database:
    """An engine on a database at the current schema, shared by every store that opens it."""

    def __init__(self, uri: str, engine: Engine) -> None:
        self.uri = uri
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._users = 0

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def insert(self) -> Any:
        """The dialect's ``insert`` construct (it has ``on_conflict_do_*``)."""
        return postgresql.insert if self.dialect == "postgresql" else sqlite.insert

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error.

        A database that fails underneath (unreachable, restarted, locked for too long) is a
        StoreError naming it (HTTP 503, exit 7), not a driver traceback.
        """
        try:
            with self._sessions.begin() as session:
                yield session
        except (OperationalError, InterfaceError) as e:
            raise StoreError(
                f"the registry database {describe(self.engine)} failed: {_first_line(e)}"
            ) from e

    def close(self) -> None:
        """Release this user's share; the last one disposes of the engine's connections."""
        with _lock:
            self._users -= 1
            if self._users > 0:
                return
            if _open.get(self.uri) is self:
                del _open[self.uri]
        self.engine.dispose()


def _first_line(e: DBAPIError) -> str:
    return str(e.orig).strip().splitlines()[0] if str(e.orig).strip() else type(e.orig).__name__


_lock = threading.Lock()
_open: dict[str, Database] = {}


def open_database(uri: str, *, check_schema: bool = True) -> Database:
    """The process's Database for ``uri`` (created, and its schema made current if empty).

    Raises StoreError naming the database when it cannot be reached or its schema is old.
    """
    with _lock:
        db = _open.get(uri)
        if db is None:
            engine = make_engine(uri)
            try:
                if check_schema:
                    migrate.ensure_schema(engine)
            except OperationalError as e:
                engine.dispose()
                raise StoreError(
                    f"cannot open the registry database {describe(engine)}: {_first_line(e)}"
                ) from None
            except BaseException:
                engine.dispose()
                raise
            db = _open[uri] = Database(uri, engine)
        db._users += 1
        return db


def _after_fork_in_child() -> None:
    # Pooled connections belong to the parent; a forked worker (gunicorn) must open its own
    # and must not close the parent's sockets (close=False).
    for db in list(_open.values()):
        db.engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork_in_child)


def applied_result(session: Session, request_id: str | None) -> str | None:
    """What the write with ``request_id`` returned when it was applied, or None if it was not.

    Call it first in the write's transaction; :func:`record_applied` at the end of it.
    """
    if request_id is None:
        return None
    row = session.get(AppliedRequestRow, request_id)
    return None if row is None else (row.result or "")


def record_applied(session: Session, request_id: str | None, result: str = "") -> None:
    """Remember that ``request_id`` was applied (in the caller's transaction)."""
    if request_id is not None:
        session.add(AppliedRequestRow(request_id=request_id, result=result))
