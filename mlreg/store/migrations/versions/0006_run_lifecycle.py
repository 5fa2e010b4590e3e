"""Runs have a lifecycle stage, as in MLflow: ``active``, or ``deleted`` (kept, restorable, left
out of searches). Every existing run is active.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(
            sa.Column(
                "lifecycle_stage", sa.String(length=32), nullable=False, server_default="active"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("lifecycle_stage")
