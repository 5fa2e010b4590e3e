"""Alias races and database failures during a registration (issue 21, items 7 and 8).

Before: on PostgreSQL, ``set_alias(v)`` racing ``delete_model_version(v)`` left a dangling
alias in 35 of 40 rounds, and four concurrent ``alias set`` gave raw IntegrityErrors; a
database failure after the copy printed a 60-line traceback, left the version PENDING and,
after gc removed the row, the copy on disk forever.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy.exc import OperationalError

from mlreg.errors import ModelNotFound, RegistrationFailed
from mlreg.registry import VersionStatus
from mlreg.registry.sql_store import SqlRegistryStore
from tests.conftest import make_model_dir


@pytest.fixture
def settings(local_settings):  # races in the database itself
    return local_settings


def _together(*calls):
    """Run ``calls`` at once (a barrier releases them together); return what each raised."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException | None] = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            call()
        except BaseException as e:
            errors[i] = e

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def test_set_alias_racing_delete_version_never_leaves_a_dangling_alias(client, tmp_path):
    model = make_model_dir(tmp_path / "model")
    for round_ in range(20):
        version = client.register_model(str(model), "m").version
        errors = _together(
            lambda v=version: client.set_alias("m", "champion", v),
            lambda v=version: client.delete_model_version("m", v),
        )
        assert all(e is None or isinstance(e, ModelNotFound) for e in errors), (round_, errors)
        aliases = client.get_registered_model("m").aliases
        if "champion" in aliases:  # it must point at a version that exists
            client.get_model_version("m", aliases["champion"])


def test_concurrent_alias_sets_end_with_one_winner_and_no_error(client, tmp_path):
    model = make_model_dir(tmp_path / "model")
    versions = [client.register_model(str(model), "m").version for _ in range(4)]
    for _ in range(10):
        errors = _together(*[lambda v=v: client.set_alias("m", "best", v) for v in versions])
        assert errors == [None] * 4
        assert client.get_registered_model("m").aliases["best"] in versions


def test_a_database_failure_after_the_copy_is_one_line_and_leaves_nothing(
    client, tmp_path, monkeypatch
):
    model = make_model_dir(tmp_path / "model")

    def broken_finish(self, *args, **kwargs):
        with self._session():  # the store's own transaction turns it into a StoreError
            raise OperationalError("UPDATE model_versions", {}, Exception("server closed"))

    monkeypatch.setattr(SqlRegistryStore, "finish_model_version", broken_finish)
    with pytest.raises(RegistrationFailed) as e:
        client.register_model(str(model), "m")
    assert "\n" not in e.value.message
    assert "the registry database" in e.value.message and "server closed" in e.value.message
    monkeypatch.undo()
    # The copy is gone already; the row stays PENDING (the database could not take more) ...
    assert client.get_model_version("m", 1).status is VersionStatus.PENDING_REGISTRATION
    assert not any(p.is_file() for p in client.artifacts.root.rglob("*"))
    # ... and gc removes it.
    assert client.gc(older_than=timedelta(0)).versions == ["m/1 (PENDING_REGISTRATION)"]
    assert client.search_model_versions().items == []
