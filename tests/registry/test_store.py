"""Concurrent version allocation on real SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mlreg.registry import MlregClient, VersionStatus
from mlreg.registry.sql_store import SqlRegistryStore
from mlreg.server.access.store import AccessStore
from mlreg.store import StoreSettings
from mlreg.store.journal import Actor
from mlreg.store.tables import AuditRow, ModelGrantRow, RegisteredModelRow
from tests.conftest import make_model_dir


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


def test_racing_first_registrations_create_the_model_once(backend):
    """Eight writers register the first versions of new models at once: each model is created
    (audited, granted to its creator's groups) exactly once and its numbers have no gaps. On
    PostgreSQL the losers of the create race used to grant again and fail with a 500."""
    first = SqlRegistryStore(backend)
    everyone = AccessStore(first.db).everyone_id()
    stores = [SqlRegistryStore(backend, Actor("w", None, None, ((everyone, 1),))) for _ in range(8)]

    def register(store: SqlRegistryStore, name: str) -> int:
        return store.create_model_version(name, "/src", None, None, {}, None).version

    names = [f"new-{i}" for i in range(5)]
    with ThreadPoolExecutor(8) as pool:
        for name in names:
            numbers = sorted(pool.map(register, stores, [name] * 8))
            assert numbers == list(range(1, 9)), name
    with first.db.transaction() as session:
        created = session.scalar(
            select(func.count()).where(AuditRow.action == "registered_model.created")
        )
        grants = session.execute(
            select(RegisteredModelRow.name, func.count())
            .join(ModelGrantRow, ModelGrantRow.model_id == RegisteredModelRow.id)
            .group_by(RegisteredModelRow.name)
        ).all()
    assert created == len(names)
    assert sorted(grants) == [(name, 1) for name in names]
    for store in [first, *stores]:
        store.close()
