"""Concurrent version allocation on real SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from mlreg.registry import MlregClient, VersionStatus
from mlreg.registry.sql_store import SqlRegistryStore
from mlreg.store import StoreSettings
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
