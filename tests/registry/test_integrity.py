"""Failed and interrupted registrations, tampered artifacts, paths that try to escape."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from datetime import timedelta

import pytest

from mlreg.errors import DigestMismatch, InvalidInput, RegistrationFailed
from mlreg.registry import VersionStatus
from mlreg.registry.artifacts import LocalArtifactStore
from mlreg.store.validation import safe_relpath
from tests.conftest import make_model_dir


# These tests look at (and tamper with) the stored files themselves: local stores only.
@pytest.fixture
def settings(local_settings):
    return local_settings


def test_failed_copy_leaves_a_failed_version_and_no_files(client, tmp_path):
    src = make_model_dir(tmp_path / "src")
    (src / "data" / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(RegistrationFailed) as e:
        client.register_model(str(src), "m")
    assert "copying the artifacts failed" in e.value.message
    v = client.get_model_version("m", 1)
    assert v.status is VersionStatus.FAILED_REGISTRATION
    assert "copying the artifacts failed" in v.status_message
    assert v.storage_location is None and v.digest is None
    assert not any(p.is_file() for p in client.artifacts.root.rglob("*"))
    report = client.gc()
    assert report.versions == ["m/1 (FAILED_REGISTRATION)"]
    assert client.search_model_versions(name="m").items == []
    # the number stays taken
    assert client.register_model(str(make_model_dir(tmp_path / "ok")), "m").version == 2


# A real registration in a real process, killed with SIGKILL right after the second file
# of the model has been copied: the copy is half-made on disk, the version row PENDING.
CRASHING_REGISTRATION = """
import os, shutil, signal, sys
from pathlib import Path
from mlreg.registry import MlregClient
from mlreg.store import StoreSettings

copied = []
real_copyfile = shutil.copyfile

def copy_then_die(src, dst, *args, **kwargs):
    real_copyfile(src, dst, *args, **kwargs)
    copied.append(dst)
    if len(copied) == 2:
        os.kill(os.getpid(), signal.SIGKILL)

shutil.copyfile = copy_then_die
settings = StoreSettings(sys.argv[1], Path(sys.argv[2]), "crash")
MlregClient(settings).register_model(sys.argv[3], "m")
"""


def test_process_killed_mid_copy_leaves_pending_version_that_gc_removes(settings, client, tmp_path):
    src = make_model_dir(tmp_path / "src")
    (src / "data" / "more.bin").write_bytes(b"more")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            CRASHING_REGISTRATION,
            settings.uri,
            str(settings.artifact_root),
            str(src),
        ],
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL
    assert len(client.artifacts.leftovers()) == 1

    v = client.get_model_version("m", 1)
    assert v.status is VersionStatus.PENDING_REGISTRATION
    with pytest.raises(Exception, match="PENDING_REGISTRATION"):
        client.resolve("models:/m/1")
    assert client.gc().versions == []  # younger than the grace period: maybe still running
    report = client.gc(older_than=timedelta(0))
    assert report.versions == ["m/1 (PENDING_REGISTRATION)"]
    assert len(report.temp_dirs) == 1
    assert client.artifacts.leftovers() == []


def test_tampered_artifacts_are_refused(client, model_dir):
    v = client.register_model(str(model_dir), "m")
    assert client.resolve("models:/m/1").digest == v.digest
    stored = client.artifacts.path(v.storage_location)
    (stored / "data" / "weights.bin").write_bytes(b"evil!!!")
    with pytest.raises(DigestMismatch, match="do not match their recorded digest"):
        client.resolve("models:/m/1")


def test_truncated_and_missing_artifacts_are_refused(client, model_dir):
    v = client.register_model(str(model_dir), "m")
    stored = client.artifacts.path(v.storage_location)
    (stored / "data" / "weights.bin").write_bytes(b"")
    with pytest.raises(DigestMismatch, match="changed or truncated"):
        client.resolve("models:/m/1")
    (stored / "data" / "weights.bin").unlink()
    (stored / "MLmodel").unlink()
    with pytest.raises(DigestMismatch):
        client.resolve("models:/m/1")
    shutil.rmtree(stored)
    with pytest.raises(DigestMismatch, match="artifacts of this version are missing"):
        client.resolve("models:/m/1")


def test_an_added_file_changes_the_digest(client, model_dir):
    v = client.register_model(str(model_dir), "m")
    (client.artifacts.path(v.storage_location) / "extra.py").write_text("print('hi')")
    with pytest.raises(DigestMismatch):
        client.resolve("models:/m/1")


@pytest.mark.parametrize(
    "path",
    [
        "../outside",
        "a/../../outside",
        "/etc/passwd",
        "%2e%2e/outside",
        "%252e%252e/outside",
        "a%2f..%2f..%2foutside",
        "..\\outside",
        "a\\..\\..\\outside",
        "C:/windows",
        "~/x",
        "./a",
        "a/./b",
        "",
        "a\x00b",
    ],
    ids=[
        "dotdot",
        "nested-dotdot",
        "absolute",
        "url-encoded",
        "double-encoded",
        "encoded-slash",
        "backslash",
        "nested-backslash",
        "drive",
        "home",
        "dot",
        "inner-dot",
        "empty",
        "nul",
    ],
)
def test_artifact_paths_cannot_escape_the_root(tmp_path, path):
    store = LocalArtifactStore(tmp_path / "root")
    with pytest.raises(InvalidInput, match="unsafe path"):
        store.path(path)
    with pytest.raises(InvalidInput):
        safe_relpath(path)


def test_plain_relative_paths_are_fine(tmp_path):
    store = LocalArtifactStore(tmp_path / "root")
    assert store.path("models/m/v1-abc") == (tmp_path / "root" / "models/m/v1-abc").resolve()


def test_symlink_inside_the_root_pointing_out_is_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(DigestMismatch, match="leads outside the artifact root"):
        LocalArtifactStore(root).path("link/secret")
