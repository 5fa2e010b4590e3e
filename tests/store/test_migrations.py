"""The one schema of registry and tracking: creation, migrations, upgrades that keep rows,
and a shared engine per database URI, on real SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect, text

from mlreg.cli import main
from mlreg.errors import NotFound, StoreError
from mlreg.registry import MlregClient
from mlreg.registry.sql_store import SqlRegistryStore
from mlreg.store import StoreSettings, migrate
from mlreg.store.database import make_engine, open_database
from mlreg.tracking import Lifecycle, TrackingClient
from mlreg.tracking.sql_store import SqlTrackingStore

# Creating the schema is what this module tests: no template copies here.
pytestmark = pytest.mark.usefixtures("real_migrations")

TABLES = {
    "registered_models",
    "registered_model_tags",
    "registered_model_aliases",
    "model_versions",
    "model_version_tags",
    "stage_transitions",
    "experiments",
    "experiment_tags",
    "runs",
    "params",
    "metrics",
    "latest_metrics",
    "run_tags",
    "applied_requests",
    "datasets",
    "run_datasets",
    "logged_models",
    "logged_model_tags",
    "logged_model_params",
    "run_models",
    "principals",
    "group_members",
    "api_tokens",
    "model_grants",
    "experiment_grants",
    "login_failures",
    "audit_events",
    "webhooks",
    "webhook_deliveries",
    "webhook_attempts",
    "alembic_version",
}


def test_empty_database_is_migrated_to_head(backend):
    store = SqlRegistryStore(backend)
    try:
        assert set(inspect(store.db.engine).get_table_names()) == TABLES
        assert migrate.current_revision(store.db.engine) == migrate.head_revision() == "0008"
    finally:
        store.close()


def test_old_schema_says_to_upgrade_and_db_upgrade_fixes_it(backend):
    engine = make_engine(backend)
    migrate.upgrade(engine, "0001")
    engine.dispose()
    with pytest.raises(StoreError) as e:
        SqlRegistryStore(backend)
    assert e.value.message == (
        "the registry database is at schema revision 0001 but this mlreg needs "
        f"{migrate.head_revision()}; run `mlreg db upgrade`"
    )
    engine = make_engine(backend)
    migrate.upgrade(engine)
    engine.dispose()
    SqlRegistryStore(backend).close()


def test_newer_schema_says_to_upgrade_mlreg(backend):
    SqlRegistryStore(backend).close()
    engine = create_engine(backend)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreError, match="revision 9999, which this mlreg does not know"):
        SqlRegistryStore(backend)


def test_foreign_database_is_not_touched(backend):
    engine = create_engine(backend)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE somebody_elses (id INTEGER)"))
    engine.dispose()
    with pytest.raises(StoreError, match="has tables but no mlreg schema version"):
        SqlRegistryStore(backend)


def test_unreachable_database_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match="cannot open the registry database"):
        SqlRegistryStore("postgresql+psycopg://nobody:x@127.0.0.1:1/none")


#: Rows as the schema of revision 0003 (the first release with tracking) holds them, written
#: with plain SQL so the test keeps describing that schema whatever the tables become later.
ROWS_AT_0003 = [
    "INSERT INTO registered_models (id, name, description, last_version, created_at, updated_at)"
    " VALUES (1, 'mnist', 'digits', 2, '2026-11-01 10:00:00+00', '2026-11-02 10:00:00+00')",
    "INSERT INTO registered_model_tags (model_id, key, value) VALUES (1, 'team', 'vision')",
    "INSERT INTO model_versions (id, model_id, version, stage, status, source, run_id, digest,"
    " storage_location, created_at, updated_at) VALUES"
    " (1, 1, 1, 'Archived', 'READY', '/src/a', NULL, 'aa', 'models/mnist/v1-x',"
    " '2026-11-01 10:00:00+00', '2026-11-01 10:00:00+00'),"
    " (2, 1, 2, 'Production', 'READY', '/src/b', 'r1', 'bb', 'models/mnist/v2-y',"
    " '2026-11-02 10:00:00+00', '2026-11-02 10:00:00+00')",
    "INSERT INTO model_version_tags (version_id, key, value) VALUES (2, 'data', 'v2')",
    "INSERT INTO registered_model_aliases (model_id, alias, version) VALUES (1, 'champion', 2)",
    "INSERT INTO stage_transitions (model_id, version, from_stage, to_stage, user, timestamp)"
    " VALUES (1, 2, 'None', 'Production', 'alice', '2026-11-02 11:00:00+00')",
    "INSERT INTO experiments (id, name, artifact_location, creation_time)"
    " VALUES (1, 'Default', '/art/runs', 1700000000000)",
    "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (1, 'owner', 'bob')",
    "INSERT INTO runs (run_id, experiment_id, run_name, status, start_time, end_time,"
    " parent_run_id, artifact_uri) VALUES"
    " ('r1', 1, 'cnn', 'FINISHED', 1700000000000, 1700000060000, NULL, '/art/runs/r1/artifacts')",
    "INSERT INTO params (run_id, key, value) VALUES ('r1', 'opt', 'adam')",
    "INSERT INTO metrics (run_id, key, value, timestamp, step) VALUES"
    " ('r1', 'loss', 0.5, 1700000001000, 0), ('r1', 'loss', 0.25, 1700000002000, 1)",
    "INSERT INTO latest_metrics (run_id, key, value, timestamp, step)"
    " VALUES ('r1', 'loss', 0.25, 1700000002000, 1)",
    "INSERT INTO run_tags (run_id, key, value) VALUES ('r1', 'mlreg.user', 'alice')",
]


def test_a_database_of_revision_0003_upgrades_and_keeps_its_rows(backend, tmp_path):
    engine = make_engine(backend)
    migrate.upgrade(engine, "0003")
    with engine.begin() as conn:
        for statement in ROWS_AT_0003:
            # "user" is a keyword in PostgreSQL; quoting it works in both dialects.
            conn.execute(text(statement.replace(" user,", ' "user",')))
        if engine.dialect.name == "postgresql":
            # Explicit ids do not move PostgreSQL's sequences; mlreg's own inserts would have.
            for table in ("registered_models", "model_versions", "experiments"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 10)"))
    engine.dispose()

    env = {"MLREG_REGISTRY_URI": backend, "MLREG_HOME": str(tmp_path / "home")}
    result = CliRunner().invoke(main, ["db", "upgrade"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Schema at {migrate.head_revision()}")

    settings = StoreSettings(backend, tmp_path / "artifacts", "carol")
    with MlregClient(settings) as registry:
        model = registry.get_registered_model("mnist")
        assert (model.description, model.tags, model.aliases) == (
            "digits",
            {"team": "vision"},
            {"champion": 2},
        )
        production = registry.get_version_for_uri("models:/mnist/Production")
        assert (production.version, production.digest, production.run_id) == (2, "bb", "r1")
        assert production.tags == {"data": "v2"}
        assert registry.get_version_for_uri("models:/mnist@champion").version == 2
        [move] = registry.get_stage_history("mnist")
        assert (move.version, move.to_stage.value, move.user) == (2, "Production", "alice")
        # Numbers are never reused: the counter survived.
        assert registry.create_registered_model("other").name == "other"
    with TrackingClient(settings) as tracking:
        run = tracking.get_run("r1")
        assert (run.info.run_name, run.info.status.value) == ("cnn", "FINISHED")
        assert run.data.params == {"opt": "adam"} and run.data.metrics == {"loss": 0.25}
        assert [m.value for m in tracking.get_metric_history("r1", "loss")] == [0.5, 0.25]
        # Revision 0007 gave the Default experiment id 0 (what MLflow's clients use).
        assert tracking.get_experiment("0").tags == {"owner": "bob"}
        assert run.info.experiment_id == "0"
        assert [r.info.run_id for r in tracking.search_runs(["0"], "metrics.loss < 0.3")] == ["r1"]
        # 0006: runs that existed are active; they can be deleted and restored.
        assert run.info.lifecycle_stage is Lifecycle.ACTIVE
        tracking.delete_run("r1")
        assert tracking.search_runs(["0"]) == []
        assert tracking.get_run("r1").info.lifecycle_stage is Lifecycle.DELETED
        tracking.restore_run("r1")
        assert [r.info.run_id for r in tracking.search_runs(["0"])] == ["r1"]


#: Rows as the schema of revision 0006 holds them: two experiments (Default is not the first),
#: runs (one deleted, as 0006 allows), a tag of each and a metric history.
ROWS_AT_0006 = [
    "INSERT INTO experiments (id, name, artifact_location, creation_time) VALUES"
    " (1, 'mnist', '/art/runs', 1700000000000), (2, 'Default', '/art/runs', 1700000001000)",
    "INSERT INTO experiment_tags (experiment_id, key, value) VALUES"
    " (1, 'team', 'cv'), (2, 'owner', 'bob')",
    "INSERT INTO runs (run_id, experiment_id, run_name, status, start_time, end_time,"
    " parent_run_id, artifact_uri) VALUES"
    " ('r1', 1, 'cnn', 'FINISHED', 1700000000000, 1700000060000, NULL, '/art/runs/r1/artifacts'),"
    " ('r2', 2, 'quick', 'RUNNING', 1700000002000, NULL, NULL, '/art/runs/r2/artifacts')",
    "INSERT INTO runs (run_id, experiment_id, run_name, status, start_time, end_time,"
    " parent_run_id, artifact_uri, lifecycle_stage) VALUES"
    " ('r3', 2, 'gone', 'FAILED', 1700000005000, 1700000006000, NULL, '/art/runs/r3/artifacts',"
    " 'deleted')",
    "INSERT INTO run_tags (run_id, key, value) VALUES ('r2', 'mlreg.user', 'alice')",
    "INSERT INTO metrics (run_id, key, value, timestamp, step) VALUES"
    " ('r2', 'loss', 0.5, 1700000003000, 0), ('r2', 'loss', 0.25, 1700000004000, 1)",
    "INSERT INTO latest_metrics (run_id, key, value, timestamp, step)"
    " VALUES ('r2', 'loss', 0.25, 1700000004000, 1)",
]


def test_revision_0007_moves_default_to_id_0_and_keeps_every_row(backend, tmp_path):
    engine = make_engine(backend)
    migrate.upgrade(engine, "0006")
    with engine.begin() as conn:
        for statement in ROWS_AT_0006:
            conn.execute(text(statement))
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT setval(pg_get_serial_sequence('experiments', 'id'), 2)"))
    migrate.upgrade(engine)
    engine.dispose()

    with TrackingClient(StoreSettings(backend, tmp_path / "artifacts", "carol")) as tracking:
        default = tracking.get_experiment("0")
        assert (default.name, default.tags, default.lifecycle_stage.value) == (
            "Default",
            {"owner": "bob"},
            "active",
        )
        assert default.last_update_time == default.creation_time == 1700000001000
        assert tracking.default_experiment_id() == "0"
        assert tracking.get_experiment_by_name("mnist").experiment_id == "1"
        with pytest.raises(NotFound, match="experiment 2 does not exist"):
            tracking.get_experiment("2")
        quick = tracking.get_run("r2")
        assert (quick.info.experiment_id, quick.info.lifecycle_stage.value) == ("0", "active")
        assert quick.data.metrics == {"loss": 0.25} and quick.data.tags == {"mlreg.user": "alice"}
        assert [m.value for m in tracking.get_metric_history("r2", "loss")] == [0.5, 0.25]
        assert [m.model_id for m in tracking.get_metric_history("r2", "loss")] == [None, None]
        assert [r.info.run_id for r in tracking.search_runs(["0", "1"])] == ["r2", "r1"]
        gone = tracking.get_run("r3")  # moved with its experiment, still deleted
        assert (gone.info.experiment_id, gone.info.lifecycle_stage.value) == ("0", "deleted")
        assert [r.info.run_id for r in tracking.search_runs(["0"], view="DELETED_ONLY")] == ["r3"]
        # New experiments are numbered as before (never 0, never a taken id).
        assert tracking.create_experiment("next") not in ("0", "1")


def test_registry_and_tracking_share_one_engine_per_database(migrated_backend):
    registry = SqlRegistryStore(migrated_backend)
    tracking = SqlTrackingStore(migrated_backend)
    try:
        assert registry.db is tracking.db
        assert open_database(migrated_backend) is registry.db
        registry.db.close()  # the extra share taken just above
    finally:
        registry.close()
    # Tracking still holds its share: the engine stays usable until the last user closes.
    assert tracking.get_experiment_by_name("nope") is None
    tracking.close()
    again = SqlRegistryStore(migrated_backend)
    assert again.db is not registry.db
    again.close()


def test_the_migrations_make_exactly_the_tables_the_code_declares(migrated_backend):
    """Alembic's autogenerate finds nothing to add or change: tables.py and the migration
    chain describe the same schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from mlreg.store.tables import Base

    SqlRegistryStore(migrated_backend).close()
    engine = create_engine(migrated_backend)
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        engine.dispose()


def test_a_database_of_revision_0006_upgrades_to_teams_keeping_its_rows(backend, tmp_path):
    """0007 and 0008 (MLflow's logged models, then teams) from 0006; 0008 adds users, grants,
    the audit trail and webhooks: the registry and tracking rows
    stay, and the first writes after the upgrade are audited (the new tables work)."""
    engine = make_engine(backend)
    migrate.upgrade(engine, "0006")
    with engine.begin() as conn:
        for statement in ROWS_AT_0003:
            conn.execute(text(statement.replace(" user,", ' "user",')))
        conn.execute(
            text(
                "INSERT INTO applied_requests (request_id, result, created_at)"
                " VALUES ('req-1', '2', '2026-11-02 10:00:00+00')"
            )
        )
        if engine.dialect.name == "postgresql":
            for table in ("registered_models", "model_versions", "experiments"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 10)"))
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == "0008"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT result FROM applied_requests")).scalar() == "2"
        assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar() == 0
    engine.dispose()

    settings = StoreSettings(backend, tmp_path / "artifacts", "carol")
    with MlregClient(settings) as registry:
        assert registry.get_version_for_uri("models:/mnist/Production").version == 2
        registry.set_alias("mnist", "champion", 1)
        # The state at a moment before any audit row: the stage history still answers it.
        from datetime import datetime, timezone

        state = registry.get_model_state("mnist", datetime(2026, 11, 2, 12, tzinfo=timezone.utc))
        assert (state.versions, state.stages) == ([1, 2], {"Production": [2]})
    engine = make_engine(backend)
    with engine.connect() as conn:
        rows = conn.execute(
            text('SELECT "user", action, old_value, new_value FROM audit_events')
        ).all()
    engine.dispose()
    assert rows == [
        (
            "carol",
            "model_alias.set",
            '{"alias": "champion", "version": 2}',
            '{"alias": "champion", "version": 1}',
        )
    ]
