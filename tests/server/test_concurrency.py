"""Many clients at once against real gunicorn, on SQLite and PostgreSQL: version numbers with
no gaps or duplicates, every metric point stored exactly once, and retried writes (after an
answer lost on the way back) applied once."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from mlreg.registry import MlregClient
from mlreg.registry.entities import VersionStatus
from mlreg.store import StoreSettings
from mlreg.store.tables import MetricRow, ModelVersionRow, RunRow
from mlreg.tracking.client import TrackingClient
from tests.conftest import make_model_dir
from tests.server.process import ServerProcess
from tests.server.proxy import DroppingProxy

SPAWN = multiprocessing.get_context("spawn")  # a fresh interpreter: no sockets shared by fork


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def target(request) -> ServerProcess:
    return request.getfixturevalue("server" if request.param == "sqlite" else "pg_server")


def settings_for(url: str, home: Path, user: str = "worker") -> StoreSettings:
    return StoreSettings(url, home / "unused", user, home=home)


# --- worker processes (module level, so a spawned interpreter can import them) --------------


def register_many(url: str, home: str, model_dir: str, name: str, count: int) -> list[int]:
    with MlregClient(settings_for(url, Path(home))) as client:
        return [client.register_model(model_dir, name).version for _ in range(count)]


def log_many(url: str, home: str, experiment_id: str, runs: int, points: int) -> list[str]:
    """``runs`` runs, each with ``points`` points of metric ``m`` logged 100 at a time."""
    run_ids = []
    with TrackingClient(settings_for(url, Path(home))) as tracking:
        for _ in range(runs):
            run_id = tracking.create_run(experiment_id).info.run_id
            for start in range(0, points, 100):
                batch = [("m", float(step), step, None) for step in range(start, start + 100)]
                tracking.log_batch(run_id, batch)
            run_ids.append(run_id)
    return run_ids


# --- load ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_8_processes_x_25_registrations_number_versions_1_to_200(target, tmp_path):
    model_dir = make_model_dir(tmp_path / "model")
    name = f"concurrent-{tmp_path.name[-8:]}"
    with ProcessPoolExecutor(8, mp_context=SPAWN) as pool:
        futures = [
            pool.submit(
                register_many, target.url, str(tmp_path / f"c{i}"), str(model_dir), name, 25
            )
            for i in range(8)
        ]
        returned = sorted(v for f in futures for v in f.result(timeout=600))
    assert returned == list(range(1, 201))  # each client got its own numbers
    with target.engine().connect() as conn:
        rows = conn.execute(
            select(ModelVersionRow.version, ModelVersionRow.status)
            .join(ModelVersionRow.model)
            .where(ModelVersionRow.model.has(name=name))
        ).all()
    assert sorted(v for v, _ in rows) == list(range(1, 201))  # no gaps, no duplicates
    assert {s for _, s in rows} == {VersionStatus.READY.value}


@pytest.mark.slow
def test_16_clients_x_50_runs_x_200_points_stored_exactly_once(target, tmp_path):
    with TrackingClient(settings_for(target.url, tmp_path / "setup")) as tracking:
        experiment_id = tracking.create_experiment(f"load-{tmp_path.name[-8:]}")
    with ProcessPoolExecutor(16, mp_context=SPAWN) as pool:
        futures = [
            pool.submit(log_many, target.url, str(tmp_path / f"c{i}"), experiment_id, 50, 200)
            for i in range(16)
        ]
        run_ids = [r for f in futures for r in f.result(timeout=900)]
    assert len(set(run_ids)) == 800
    with target.engine().connect() as conn:
        runs = conn.scalar(
            select(func.count())
            .select_from(RunRow)
            .where(RunRow.experiment_id == int(experiment_id))
        )
        per_run = conn.execute(
            select(MetricRow.run_id, func.count(), func.count(func.distinct(MetricRow.step)))
            .where(MetricRow.run_id.in_(run_ids))
            .group_by(MetricRow.run_id)
        ).all()
    assert runs == 800
    assert len(per_run) == 800
    assert {(count, distinct) for _, count, distinct in per_run} == {(200, 200)}


# --- a lost answer, then a retry ---------------------------------------------------------------


@pytest.fixture
def proxy(target) -> Iterator[DroppingProxy]:
    where = urlsplit(target.url)
    running = DroppingProxy((where.hostname, where.port))
    yield running
    running.close()


@pytest.mark.process  # a real `mlreg server` behind a proxy
def test_retried_version_create_after_a_lost_answer_makes_one_version(target, proxy, tmp_path):
    model_dir = make_model_dir(tmp_path / "model")
    name = f"lost-{tmp_path.name[-8:]}"
    proxy.arm(f"POST /api/v1/models/{name}/versions ".encode())
    with MlregClient(settings_for(proxy.url, tmp_path / "client")) as client:
        version = client.register_model(str(model_dir), name)
    assert proxy.dropped == [f"POST /api/v1/models/{name}/versions HTTP/1.1".encode()]
    assert (version.version, version.status) == (1, VersionStatus.READY)
    with target.engine().connect() as conn:
        numbers = conn.scalars(
            select(ModelVersionRow.version).where(ModelVersionRow.model.has(name=name))
        ).all()
    assert numbers == [1]  # the retry was answered with the version the first try made


@pytest.mark.process  # a real `mlreg server` behind a proxy
def test_retried_log_batch_after_a_lost_answer_stores_each_point_once(target, proxy, tmp_path):
    with TrackingClient(settings_for(proxy.url, tmp_path / "client")) as tracking:
        run_id = tracking.create_run(None).info.run_id
        proxy.arm(f"POST /api/v1/runs/{run_id}/batch ".encode())
        tracking.log_batch(run_id, [("m", float(i), i, None) for i in range(100)], {"p": "1"})
        assert len(proxy.dropped) == 1
        history = tracking.get_metric_history(run_id, "m")
    assert [m.step for m in history] == list(range(100))
    with target.engine().connect() as conn:
        stored = conn.scalar(
            select(func.count()).select_from(MetricRow).where(MetricRow.run_id == run_id)
        )
    assert stored == 100


@pytest.mark.process  # a real `mlreg server` behind a proxy
def test_without_an_idempotency_key_a_lost_answer_is_not_retried(target, proxy, tmp_path):
    """A rename carries no key (a second try could fail or rename twice): the lost answer
    surfaces as an error instead of a silent second attempt."""
    name = f"rename-{tmp_path.name[-8:]}"
    with MlregClient(settings_for(proxy.url, tmp_path / "client")) as client:
        client.create_registered_model(name)
        proxy.arm(f"POST /api/v1/models/{name}/rename ".encode())
        with pytest.raises(Exception, match="unreachable"):
            client.rename_registered_model(name, name + "-new")
    assert len(proxy.dropped) == 1
    answer = target.send("GET", f"/api/v1/models/{name}-new")
    assert answer.status == 200  # applied once, by the one attempt
