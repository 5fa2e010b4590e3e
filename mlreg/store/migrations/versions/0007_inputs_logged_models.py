"""What MLflow's clients record beyond runs: experiments are deleted and restored and renamed
(lifecycle stage, last update time; runs got theirs in 0006), datasets a run used, logged
models with their params and tags, metrics logged against a model, the logged model a
version came from; the Default experiment becomes id 0.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

DEFAULT_EXPERIMENT = "Default"


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("last_update_time", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column(
                "lifecycle_stage", sa.String(length=32), nullable=False, server_default="active"
            )
        )
    with op.batch_alter_table("metrics") as batch:
        batch.add_column(sa.Column("model_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("dataset_name", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("dataset_digest", sa.String(length=64), nullable=True))
        batch.create_index("ix_metrics_model_id", ["model_id"], unique=False)
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("logged_model_id", sa.String(length=64), nullable=True))

    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("source_type", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("schema", sa.Text(), nullable=True),
        sa.Column("profile", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["experiment_id"], ["experiments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("experiment_id", "name", "digest", name="uq_datasets_name_digest"),
    )
    op.create_table(
        "run_datasets",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "dataset_id"),
    )
    op.create_table(
        "logged_models",
        sa.Column("model_id", sa.String(length=64), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("source_run_id", sa.String(length=32), nullable=True),
        sa.Column("model_type", sa.String(length=500), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("artifact_location", sa.Text(), nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.Column("last_update_time", sa.BigInteger(), nullable=False),
        sa.Column("lifecycle_stage", sa.String(length=32), nullable=False, server_default="active"),
        sa.ForeignKeyConstraint(["experiment_id"], ["experiments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("model_id"),
    )
    with op.batch_alter_table("logged_models") as batch:
        batch.create_index(
            "ix_logged_models_experiment", ["experiment_id", "creation_time"], unique=False
        )
        batch.create_index(
            batch.f("ix_logged_models_source_run_id"), ["source_run_id"], unique=False
        )
    for table in ("logged_model_tags", "logged_model_params"):
        op.create_table(
            table,
            sa.Column("model_id", sa.String(length=64), nullable=False),
            sa.Column("key", sa.String(length=250), nullable=False),
            sa.Column("value", sa.Text(), nullable=False),
            sa.ForeignKeyConstraint(["model_id"], ["logged_models.model_id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("model_id", "key"),
        )
    op.create_table(
        "run_models",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["logged_models.model_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "model_id", "direction"),
    )
    _default_experiment_becomes_zero()


def _default_experiment_becomes_zero() -> None:
    """Give the Default experiment id 0, as MLflow's clients expect of the default experiment.

    A copy is made at id 0 under a temporary name, the runs and tags move to it, then the old
    row goes (foreign keys stay satisfied at every step, on SQLite and PostgreSQL alike).
    """
    conn = op.get_bind()
    experiments = sa.table(
        "experiments",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("artifact_location", sa.Text),
        sa.column("creation_time", sa.BigInteger),
        sa.column("last_update_time", sa.BigInteger),
    )
    old = conn.execute(
        sa.select(experiments.c.id).where(experiments.c.name == DEFAULT_EXPERIMENT)
    ).scalar()
    taken = conn.execute(sa.select(experiments.c.id).where(experiments.c.id == 0)).scalar()
    if old is None or old == 0 or taken is not None:
        return
    conn.execute(
        experiments.insert().from_select(
            ["id", "name", "artifact_location", "creation_time", "last_update_time"],
            sa.select(
                sa.literal(0),
                sa.literal(f"{DEFAULT_EXPERIMENT} (moving to id 0)"),
                experiments.c.artifact_location,
                experiments.c.creation_time,
                experiments.c.last_update_time,
            ).where(experiments.c.id == old),
        )
    )
    for table in ("runs", "experiment_tags"):
        child = sa.table(table, sa.column("experiment_id", sa.Integer))
        conn.execute(child.update().where(child.c.experiment_id == old).values(experiment_id=0))
    conn.execute(experiments.delete().where(experiments.c.id == old))
    conn.execute(experiments.update().where(experiments.c.id == 0).values(name=DEFAULT_EXPERIMENT))


def downgrade() -> None:
    op.drop_table("run_models")
    op.drop_table("logged_model_params")
    op.drop_table("logged_model_tags")
    with op.batch_alter_table("logged_models") as batch:
        batch.drop_index(batch.f("ix_logged_models_source_run_id"))
        batch.drop_index("ix_logged_models_experiment")
    op.drop_table("logged_models")
    op.drop_table("run_datasets")
    op.drop_table("datasets")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("logged_model_id")
    with op.batch_alter_table("metrics") as batch:
        batch.drop_index("ix_metrics_model_id")
        batch.drop_column("dataset_digest")
        batch.drop_column("dataset_name")
        batch.drop_column("model_id")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("lifecycle_stage")
        batch.drop_column("last_update_time")
