"""Index tags by key and value, for searching models and versions by tag.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 13:25:00
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_registered_model_tags_key_value", "registered_model_tags", ["key", "value"])
    op.create_index("ix_model_version_tags_key_value", "model_version_tags", ["key", "value"])


def downgrade() -> None:
    op.drop_index("ix_model_version_tags_key_value", table_name="model_version_tags")
    op.drop_index("ix_registered_model_tags_key_value", table_name="registered_model_tags")
