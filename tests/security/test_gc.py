"""``mlreg gc`` and user data, gc and running registrations (issue 21, items 4 and 5).

Before: gc removed any ``.tmp-*`` path anywhere in the store (a model's own ``.tmp-assets/``
folder included, breaking its digest), judged staleness by file times that the copy took from
the source, and could delete the copy of a registration still running. Now gc weighs only the
directories the store names as its own, by the registry's own timestamps, and a registration
it races with never ends READY over missing files.
"""

from __future__ import annotations

import shutil
import threading
import time
from datetime import timedelta

import pytest

from mlreg.errors import RegistrationFailed
from mlreg.registry import VersionStatus
from tests.conftest import make_model_dir


@pytest.fixture
def settings(local_settings):  # these tests look at the store's directories themselves
    return local_settings


def test_a_models_own_tmp_folder_survives_gc(client, tmp_path):
    model = make_model_dir(tmp_path / "model")
    (model / ".tmp-assets").mkdir()
    (model / ".tmp-assets" / "vocab.txt").write_text("a b c")
    version = client.register_model(str(model), "m")
    report = client.gc(older_than=timedelta(0))
    assert report.temp_dirs == [] and report.versions == []
    assert client.resolve("models:/m/1").digest == version.digest  # still whole


def test_only_the_stores_own_names_at_their_depth_are_weighed(client, tmp_path):
    client.register_model(str(make_model_dir(tmp_path / "model")), "m")
    root = client.artifacts.root
    for stray in ("models/.tmp-x", "models/m/.tmp-notours", "other/.tmp-v1-0123abcd"):
        (root / stray).mkdir(parents=True)
    weighed = {leftover.location for leftover in client.artifacts.leftovers()}
    assert weighed == {client.get_model_version("m", 1).storage_location}
    client.gc(older_than=timedelta(0))
    assert all((root / stray).is_dir() for stray in ("models/.tmp-x", "models/m/.tmp-notours"))


class SlowCopy:
    """Make each file copy wait until released, so a registration stays mid-copy."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        real = shutil.copyfile

        def copyfile(src, dst, *args, **kwargs):
            self.started.set()
            self.release.wait(30)
            return real(src, dst, *args, **kwargs)

        monkeypatch.setattr(shutil, "copyfile", copyfile)


def _register_in_background(client, model, outcome):
    def run():
        try:
            outcome["version"] = client.register_model(str(model), "m")
        except Exception as e:
            outcome["error"] = e

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_gc_with_a_grace_period_leaves_a_running_registration_alone(client, tmp_path, monkeypatch):
    model = make_model_dir(tmp_path / "model")
    old = time.time() - 7 * 24 * 3600
    for path in model.rglob("*"):  # a source last touched a week ago
        __import__("os").utime(path, (old, old))
    slow, outcome = SlowCopy(monkeypatch), {}
    thread = _register_in_background(client, model, outcome)
    assert slow.started.wait(30)
    report = client.gc()  # the default grace period: one hour
    slow.release.set()
    thread.join(30)
    assert report.versions == [] and report.temp_dirs == []
    assert outcome["version"].status is VersionStatus.READY
    assert client.resolve("models:/m/1").digest == outcome["version"].digest


def test_gc_that_removes_a_running_registration_never_leaves_it_ready(
    client, tmp_path, monkeypatch
):
    model = make_model_dir(tmp_path / "model")
    (model / "data" / "more.bin").write_bytes(b"more")
    slow, outcome = SlowCopy(monkeypatch), {}
    thread = _register_in_background(client, model, outcome)
    assert slow.started.wait(30)
    report = client.gc(older_than=timedelta(0))  # everything PENDING counts as stale
    slow.release.set()
    thread.join(30)
    assert report.versions == ["m/1 (PENDING_REGISTRATION)"]
    assert isinstance(outcome.get("error"), RegistrationFailed)
    # No READY version, and what the failed registration left is gone after the next gc.
    assert [v for v in client.search_model_versions().items if v.status.value == "READY"] == []
    client.gc(older_than=timedelta(0))
    assert client.artifacts.leftovers() == []
    assert client.search_model_versions().items == []
