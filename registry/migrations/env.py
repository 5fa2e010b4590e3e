"""Alembic environment: runs on the connection mlreg hands over (see registry/migrate.py)."""

from __future__ import annotations

from alembic import context

from mlreg.registry.schema import Base
from mlreg.tracking import schema as _tracking_schema  # noqa: F401  (its tables join Base)

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
