"""Alembic environment: runs on the connection mlreg hands over (see mlreg/store/migrate.py)."""

from __future__ import annotations

from alembic import context

from mlreg.store.tables import Base

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
