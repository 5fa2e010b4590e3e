"""An alias points at a version that exists: a foreign key from alias to version.

Without it, ``set_alias(v)`` racing ``delete_model_version(v)`` on PostgreSQL could leave an
alias pointing at nothing. Aliases that already point at a missing version are removed first
(they could not be resolved anyway).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 17:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

FK = "fk_registered_model_aliases_version"


def upgrade() -> None:
    op.execute(
        "DELETE FROM registered_model_aliases WHERE NOT EXISTS (SELECT 1 FROM model_versions v "
        "WHERE v.model_id = registered_model_aliases.model_id "
        "AND v.version = registered_model_aliases.version)"
    )
    with op.batch_alter_table("registered_model_aliases") as batch:
        batch.create_foreign_key(
            FK,
            "model_versions",
            ["model_id", "version"],
            ["model_id", "version"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("registered_model_aliases") as batch:
        batch.drop_constraint(FK, type_="foreignkey")
