"""Writes a client may retry are applied once per request id, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from mlreg.registry.sql_store import SqlRegistryStore
from mlreg.tracking.entities import Metric
from mlreg.tracking.sql_store import SqlTrackingStore


@pytest.fixture
def registry(migrated_backend):
    store = SqlRegistryStore(migrated_backend)
    yield store
    store.close()


@pytest.fixture
def tracking(migrated_backend):
    store = SqlTrackingStore(migrated_backend)
    yield store
    store.close()


def test_a_retried_version_create_returns_the_first_version(registry):
    args = ("m", "/src", None, None, {"k": "v"}, None)
    first = registry.create_model_version(*args, request_id="req-1")
    again = registry.create_model_version(*args, request_id="req-1")
    other = registry.create_model_version(*args, request_id="req-2")
    plain = registry.create_model_version(*args)
    assert (first.version, again.version, other.version, plain.version) == (1, 1, 2, 3)
    assert again.tags == {"k": "v"}


def test_a_retried_log_batch_writes_its_metrics_once(tracking):
    exp = tracking.create_experiment("e", "/art", 0)
    run = tracking.create_run(exp.experiment_id, "r", 0, {}, None, "/art")
    batch = [Metric("loss", 0.5, 1, 0), Metric("loss", 0.25, 2, 1)]
    for _ in range(3):
        tracking.log_batch(run.info.run_id, batch, {"opt": "adam"}, request_id="b-1")
    tracking.log_batch(run.info.run_id, batch[:1], request_id="b-2")
    history = tracking.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (0, 0.5), (1, 0.25)]


def test_a_failed_write_does_not_record_its_request_id(tracking):
    exp = tracking.create_experiment("e", "/art", 0)
    run = tracking.create_run(exp.experiment_id, "r", 0, {}, None, "/art")
    tracking.log_batch(run.info.run_id, [], {"opt": "adam"})
    with pytest.raises(Exception, match="cannot change"):
        tracking.log_batch(run.info.run_id, [], {"opt": "sgd"}, request_id="b-3")
    # Not remembered as applied: the same id with a valid batch is written.
    tracking.log_batch(run.info.run_id, [Metric("acc", 0.9, 1, 0)], request_id="b-3")
    assert tracking.get_run(run.info.run_id).data.metrics == {"acc": 0.9}
