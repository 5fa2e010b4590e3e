"""Schema migrations and concurrent version allocation on real SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from mlreg.errors import StoreError
from mlreg.registry import MlregClient, VersionStatus
from mlreg.registry.sql_store import SqlRegistryStore
from mlreg.store import StoreSettings, migrate
from mlreg.store.database import make_engine
from tests.conftest import make_model_dir

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
    "alembic_version",
}


def test_empty_database_is_migrated_to_head(backend):
    store = SqlRegistryStore(backend)
    try:
        assert set(inspect(store.db.engine).get_table_names()) == TABLES
        assert migrate.current_revision(store.db.engine) == migrate.head_revision() == "0003"
    finally:
        store.close()


def test_old_schema_says_to_upgrade_and_db_upgrade_fixes_it(backend):
    engine = make_engine(backend)
    migrate.upgrade(engine, "0001")
    engine.dispose()
    with pytest.raises(StoreError) as e:
        SqlRegistryStore(backend)
    assert e.value.message == (
        "the registry database is at schema revision 0001 but this mlreg needs 0003; "
        "run `mlreg db upgrade`"
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


def _register_many(uri: str, root: str, src: str, count: int) -> list[int]:
    with MlregClient(StoreSettings(uri, Path(root), "worker")) as client:
        return [client.register_model(src, "mnist").version for _ in range(count)]


@pytest.mark.slow
def test_eight_processes_register_two_hundred_versions_without_gaps(backend, tmp_path):
    src = str(make_model_dir(tmp_path / "src"))
    root = str(tmp_path / "artifacts")
    SqlRegistryStore(backend).close()  # schema first, as `mlreg db upgrade` would
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(8) as pool:
        results = pool.starmap(_register_many, [(backend, root, src, 25)] * 8)
    numbers = sorted(n for chunk in results for n in chunk)
    assert numbers == list(range(1, 201))
    with MlregClient(StoreSettings(backend, Path(root), "check")) as client:
        versions = []
        offset = 0
        while offset is not None:
            page = client.search_model_versions(name="mnist", max_results=100, offset=offset)
            versions += page.items
            offset = page.next_offset
        assert sorted(v.version for v in versions) == list(range(1, 201))
        assert all(v.status is VersionStatus.READY for v in versions)
        assert len({v.storage_location for v in versions}) == 200
