"""The RunArtifacts protocol's behaviour, written once, run on local disk and on S3 (moto)."""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from mlreg.errors import ArtifactNotFound, InvalidInput
from mlreg.store import StoreSettings
from mlreg.store.files import FileInfo
from mlreg.store.s3 import S3Config
from mlreg.tracking import TrackingClient
from mlreg.tracking.artifacts import LocalRunArtifacts, RunArtifacts
from mlreg.tracking.entities import RunInfo, RunStatus
from mlreg.tracking.s3_artifacts import S3RunArtifacts
from mlreg.tracking.storage import RunArtifactsByUri, run_artifacts
from tests.conftest import make_model_dir


def run_at(uri: str) -> RunInfo:
    return RunInfo(uuid.uuid4().hex, "0", "r", RunStatus.RUNNING, 0, None, uri)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.process)])  # moto: a process
def kind(request) -> str:
    return request.param


@pytest.fixture
def store(kind, request, tmp_path) -> RunArtifacts:
    if kind == "local":
        yield LocalRunArtifacts()
        return
    moto_s3 = request.getfixturevalue("moto_s3")
    request.getfixturevalue("s3_root")
    s3 = S3RunArtifacts(tmp_path / "cache", S3Config(endpoint_url=moto_s3.endpoint))
    yield s3
    s3.close()


@pytest.fixture
def run(kind, request, tmp_path) -> RunInfo:
    if kind == "local":
        return run_at(str(tmp_path / "runs" / "r1" / "artifacts"))
    return run_at(request.getfixturevalue("s3_root") + "/runs/r1/artifacts")


@pytest.fixture
def logged(store, run, tmp_path) -> dict[str, bytes]:
    """A run with a file at the top, a model directory and a nested file; what it holds."""
    (tmp_path / "notes.txt").write_text("hello run")
    store.log_file(run, tmp_path / "notes.txt", None)
    store.log_dir(run, make_model_dir(tmp_path / "m", payload=os.urandom(2048)), "model")
    (tmp_path / "loss.csv").write_text("step,loss\n1,0.5\n")
    store.log_file(run, tmp_path / "loss.csv", "plots/epoch 1")
    found = {"notes.txt": b"hello run", "plots/epoch 1/loss.csv": b"step,loss\n1,0.5\n"}
    for p in (tmp_path / "m").rglob("*"):
        if p.is_file():
            found[f"model/{p.relative_to(tmp_path / 'm').as_posix()}"] = p.read_bytes()
    return found


def test_list_gives_the_entries_directly_under_a_path(store, run, logged):
    assert store.list(run) == [
        FileInfo("model", True),
        FileInfo("notes.txt", False, 9),
        FileInfo("plots", True),
    ]
    assert store.list(run, "model") == [
        FileInfo("model/MLmodel", False, len(logged["model/MLmodel"])),
        FileInfo("model/data", True),
    ]
    assert store.list(run, "plots/epoch 1") == [FileInfo("plots/epoch 1/loss.csv", False, 16)]
    assert store.list(run, "notes.txt") == [FileInfo("notes.txt", False, 9)]


def test_local_path_holds_the_files(store, run, logged):
    root = store.local_path(run)
    assert {
        p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()
    } == logged
    assert store.local_path(run, "notes.txt").read_bytes() == b"hello run"
    model = store.local_path(run, "model")
    assert (model / "data" / "weights.bin").read_bytes() == logged["model/data/weights.bin"]


@pytest.mark.parametrize(("start", "end"), [(0, 10), (500, 600), (2040, None), (0, None)], ids=str)
def test_open_streams_byte_ranges(store, run, logged, start, end):
    data = logged["model/data/weights.bin"]
    stream = store.open(run, "model/data/weights.bin", start, end)
    assert (stream.size, stream.end) == (2048, len(data) if end is None else end)
    assert b"".join(stream.chunks) == data[start:end]


def test_invalid_ranges_are_invalid_input(store, run, logged):
    with pytest.raises(InvalidInput) as e:
        store.open(run, "notes.txt", 9)
    assert e.value.message == "byte range 9-9 is outside the file of 9 bytes"


def test_missing_artifacts_are_not_found(store, run, tmp_path):
    for call in (lambda: store.list(run), lambda: store.local_path(run)):
        with pytest.raises(ArtifactNotFound) as e:
            call()
        assert e.value.message == "the run has no artifacts yet"
    (tmp_path / "a.txt").write_text("a")
    store.log_file(run, tmp_path / "a.txt", None)
    for call in (lambda: store.list(run, "nope"), lambda: store.local_path(run, "nope")):
        with pytest.raises(ArtifactNotFound) as e:
            call()
        assert e.value.message == "no artifact 'nope' in this run"
    with pytest.raises(ArtifactNotFound) as e:
        store.open(run, "nope")
    assert e.value.message == "no file artifact 'nope'"


def test_delete_removes_a_file_or_a_directory(store, run, logged):
    store.delete(run, "notes.txt")
    store.delete(run, "model")
    store.delete(run, "model")  # already gone: no error
    store.delete(run, "never-there")
    assert store.list(run) == [FileInfo("plots", True)]
    with pytest.raises(ArtifactNotFound):
        store.open(run, "model/MLmodel")


@pytest.mark.parametrize(
    "path",
    ["../escape", "a/../../escape", "/etc", "%2e%2e/x", "a\\..\\b"],
    ids=["dotdot", "nested", "absolute", "encoded", "backslash"],
)
def test_paths_that_try_to_escape_are_refused(store, run, tmp_path, path):
    (tmp_path / "f.txt").write_text("f")
    calls = [
        lambda: store.log_file(run, tmp_path / "f.txt", path),
        lambda: store.log_dir(run, tmp_path, path),
        lambda: store.list(run, path),
        lambda: store.local_path(run, path),
        lambda: store.open(run, path),
        lambda: store.delete(run, path),
    ]
    for call in calls:
        with pytest.raises(InvalidInput, match="unsafe path"):
            call()


# --- S3 only: the local mirror ------------------------------------------------------------


@pytest.fixture
def s3_store(s3_root, moto_s3, tmp_path):
    s3 = S3RunArtifacts(tmp_path / "cache", S3Config(endpoint_url=moto_s3.endpoint))
    yield s3
    s3.close()


def test_local_path_downloads_only_what_changed(s3_store, s3_root, tmp_path):
    run = run_at(s3_root + "/runs/r2/artifacts")
    s3_store.log_dir(run, make_model_dir(tmp_path / "m"), "model")
    first = s3_store.local_path(run, "model")
    assert first == tmp_path / "cache" / "runs" / run.run_id / "model"
    seen: list[str] = []
    s3_store.s3.client.meta.events.register(
        "before-call.s3.GetObject", lambda model, **_: seen.append(model.name)
    )
    assert s3_store.local_path(run, "model") == first
    assert seen == []
    # an artifact replaced, one added and one deleted since: the mirror follows
    (tmp_path / "weights.bin").write_bytes(b"new weights, longer")
    s3_store.log_file(run, tmp_path / "weights.bin", "model/data")
    s3_store.log_file(run, tmp_path / "weights.bin", "model/extra")
    s3_store.delete(run, "model/MLmodel")
    s3_store.local_path(run, "model")
    assert seen == ["GetObject", "GetObject"]
    assert sorted(p.relative_to(first).as_posix() for p in first.rglob("*") if p.is_file()) == [
        "data/weights.bin",
        "extra/weights.bin",
    ]
    assert (first / "data" / "weights.bin").read_bytes() == b"new weights, longer"


def test_an_unsafe_run_id_never_becomes_a_cache_path(s3_store, s3_root, tmp_path):
    run = replace(run_at(s3_root + "/runs/x/artifacts"), run_id="../../etc")
    with pytest.raises(InvalidInput, match="invalid run id"):
        s3_store.local_path(run)


# --- runs through the tracking client -----------------------------------------------------


def test_runs_in_s3_through_the_tracking_client(s3_settings, tmp_path):
    with TrackingClient(s3_settings) as client:
        run = client.create_run(run_name="s3")
        assert run.info.artifact_uri == (
            f"{s3_settings.artifact_root}/runs/{run.info.run_id}/artifacts"
        )
        client.log_artifacts(run.info.run_id, make_model_dir(tmp_path / "m"), "model")
        client.log_text(run.info.run_id, "hello", "notes/readme.txt")
        assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["model", "notes"]
        resolved = client.resolve(f"runs:/{run.info.run_id}/model")
        assert resolved.path.is_relative_to(s3_settings.home / "cache" / "runs")
        assert (resolved.path / "MLmodel").is_file()
        assert client.artifact_path(run.info.run_id, "notes/readme.txt").read_text() == "hello"


def test_a_run_keeps_the_storage_it_started_with(s3_settings, tmp_path):
    """Runs recorded under a local root stay local after the root moves to S3."""
    local_settings = replace(s3_settings, artifact_root=str(tmp_path / "artifacts"))
    (tmp_path / "f.txt").write_text("local")
    with TrackingClient(local_settings) as before:
        exp = before.create_experiment("old")
        old = before.create_run(exp)
        before.log_artifact(old.info.run_id, tmp_path / "f.txt")
    with TrackingClient(s3_settings) as after:
        assert isinstance(after.artifacts, RunArtifactsByUri)
        assert after.list_artifacts(old.info.run_id) == [FileInfo("f.txt", False, 5)]
        assert after.artifact_path(old.info.run_id, "f.txt") == Path(old.info.artifact_uri, "f.txt")
        new = after.create_run(after.create_experiment("new"))
        assert new.info.artifact_uri.startswith("s3://")
        after.log_artifact(new.info.run_id, tmp_path / "f.txt")
        assert after.list_artifacts(new.info.run_id) == [FileInfo("f.txt", False, 5)]
        # the old experiment's new runs keep its local location too
        assert not after.create_run(exp).info.artifact_uri.startswith("s3://")


def test_local_runs_make_no_s3_store(tmp_path):
    router = run_artifacts(StoreSettings.for_home(tmp_path))
    (tmp_path / "f.txt").write_text("x")
    router.log_file(run_at(str(tmp_path / "run")), tmp_path / "f.txt", None)
    assert router._s3 is None
