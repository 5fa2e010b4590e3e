"""Schema migrations with Alembic, driven from code (``mlreg db upgrade``).

One chain for the whole database (registry and tracking tables alike).
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine, inspect

from mlreg.errors import StoreError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@functools.cache
def head_revision() -> str:
    """The newest revision of the migration scripts (read once: they do not change)."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database schema to ``revision`` (the newest by default)."""
    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def _known(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(_config()).get_revision(revision) is not None
    except CommandError:
        return False


def ensure_schema(engine: Engine) -> None:
    """Create the schema in an empty database; refuse to run on an old or foreign one."""
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None:
        tables = set(inspect(engine).get_table_names())
        if tables - {"alembic_version"}:
            raise StoreError(
                f"the database at {engine.url.render_as_string(hide_password=True)} has tables "
                "but no mlreg schema version; point MLREG_TRACKING_URI at an mlreg database"
            )
        upgrade(engine)
        return
    if not _known(current):
        raise StoreError(
            f"the registry database is at schema revision {current}, which this mlreg does not "
            "know (it was written by a newer mlreg); upgrade mlreg"
        )
    raise StoreError(
        f"the registry database is at schema revision {current} but this mlreg needs {head}; "
        "run `mlreg db upgrade`"
    )
