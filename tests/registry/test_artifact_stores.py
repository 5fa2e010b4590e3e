"""The ArtifactStore protocol's behaviour, written once, run on the local and the S3 store.

The S3 store runs against moto's server (real HTTP, SigV4, multipart); what only S3 has (the
download cache, multipart, unfinished uploads, an unreachable endpoint) follows below.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from mlreg.errors import (
    ArtifactNotFound,
    DigestMismatch,
    InvalidInput,
    RegistrationFailed,
    StoreError,
)
from mlreg.models.model import Model
from mlreg.registry import MlregClient, VersionStatus
from mlreg.registry.artifacts import (
    ArtifactStore,
    Leftover,
    LocalArtifactStore,
    StoredFiles,
    dir_digest,
)
from mlreg.registry.entities import ModelVersion, Stage
from mlreg.registry.s3_artifacts import S3ArtifactStore
from mlreg.store import StoreSettings
from mlreg.store.files import FileInfo
from mlreg.store.s3 import MB, S3Config, S3Path
from tests.conftest import make_model_dir
from tests.s3 import free_port


def version_of(stored: StoredFiles, name: str = "m", number: int = 1) -> ModelVersion:
    now = datetime.now(timezone.utc)
    return ModelVersion(
        name, number, Stage.NONE, VersionStatus.READY, "src", None, None, {}, [], None,
        stored.digest, stored.location, None, now, now,
    )  # fmt: skip


@dataclass
class Backend:
    """A store and a way behind its back to its bytes (to tamper with them, as an attacker)."""

    store: ArtifactStore
    write: Any  # (location, relpath, bytes | None) -> None; None removes
    files: Any  # () -> every stored file's path below the root, sorted


def local_backend(tmp_path: Path) -> Backend:
    store = LocalArtifactStore(tmp_path / "artifacts")

    def write(location: str, rel: str, data: bytes | None) -> None:
        target = store.path(location) / rel
        if data is None:
            target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    def files() -> list[str]:
        root = store.root
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    return Backend(store, write, files)


def s3_backend(root: str, cache: Path, moto_s3, **config: Any) -> Backend:
    store = S3ArtifactStore(root, cache, S3Config(endpoint_url=moto_s3.endpoint, **config))
    raw = moto_s3.client()
    base = S3Path.parse(root)

    def write(location: str, rel: str, data: bytes | None) -> None:
        key = S3Path.parse(location).key + "/" + rel
        if data is None:
            raw.delete_object(Bucket=base.bucket, Key=key)
        else:
            raw.put_object(Bucket=base.bucket, Key=key, Body=data)

    def files() -> list[str]:
        pages = raw.get_paginator("list_objects_v2").paginate(Bucket=base.bucket, Prefix=base.key)
        return sorted(base.relative(o["Key"]) for p in pages for o in p.get("Contents", []))

    return Backend(store, write, files)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.process)])  # moto: a process
def backend(request, tmp_path):
    if request.param == "local":
        yield local_backend(tmp_path)
        return
    root = request.getfixturevalue("s3_root")
    b = s3_backend(root, tmp_path / "cache", request.getfixturevalue("moto_s3"))
    yield b
    b.store.close()


@pytest.fixture
def source(tmp_path) -> Path:
    """A model directory with nesting, an empty file and names that sort differently as paths."""
    src = make_model_dir(tmp_path / "src", payload=os.urandom(3000))
    (src / "data" / "sub").mkdir()
    (src / "data" / "sub" / "deep.txt").write_text("deep")
    (src / "data-notes.txt").write_text("notes")
    (src / "empty").write_bytes(b"")
    (src / "ünïcode name.txt").write_text("ü")
    return src


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# --- the protocol, on both stores ---------------------------------------------------------


def test_put_and_get_round_trip_with_the_digest(backend, source):
    stored = backend.store.put_version(source, "m", 1)
    assert stored.digest == dir_digest(source)
    assert stored.location is not None and "models/m/v1-" in stored.location
    path = backend.store.get_version(version_of(stored))
    assert tree(path) == tree(source)
    assert backend.store.get_version(version_of(stored)) == path
    # What gc weighs (the local store lists its stored copies too) is attributed to the
    # version, so gc keeps it while version 1 is READY there.
    for leftover in backend.store.leftovers():
        assert (leftover.location, leftover.name, leftover.version) == (stored.location, "m", 1)


def test_two_versions_get_their_own_locations(backend, source):
    a = backend.store.put_version(source, "m", 1)
    (source / "MLmodel").write_text((source / "MLmodel").read_text() + "\n")
    b = backend.store.put_version(source, "m", 2)
    assert a.location != b.location and a.digest != b.digest
    assert backend.store.get_version(version_of(a)) != backend.store.get_version(version_of(b, 2))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("data/weights.bin", b"evil!!!"), "do not match their recorded digest"),
        (("data/weights.bin", b""), "changed or truncated"),
        (("data/weights.bin", None), "do not match their recorded digest"),
        (("extra.py", b"print('hi')"), "do not match their recorded digest"),
    ],
    ids=["changed", "truncated", "removed", "added"],
)
def test_files_changed_behind_the_stores_back_are_refused(backend, source, change, message):
    stored = backend.store.put_version(source, "m", 1)
    backend.write(stored.location, *change)
    with pytest.raises(DigestMismatch, match=message):
        backend.store.get_version(version_of(stored))


def test_a_version_whose_files_are_all_gone_is_refused(backend, source):
    stored = backend.store.put_version(source, "m", 1)
    backend.store.delete(stored.location)
    with pytest.raises(DigestMismatch, match="are missing"):
        backend.store.get_version(version_of(stored))


def test_a_version_without_files_is_refused(backend):
    pending = replace(version_of(StoredFiles("x", "0" * 64)), storage_location=None, digest=None)
    pending = replace(pending, status=VersionStatus.PENDING_REGISTRATION)
    with pytest.raises(DigestMismatch, match="has no stored files"):
        backend.store.get_version(pending)
    with pytest.raises(ArtifactNotFound, match="has no stored files"):
        backend.store.list_files(pending)


def test_list_files_gives_every_file_with_its_size(backend, source):
    stored = backend.store.put_version(source, "m", 1)
    expected = [FileInfo(rel, False, len(data)) for rel, data in sorted(tree(source).items())]
    assert backend.store.list_files(version_of(stored)) == expected


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 16), (1000, 1100), (2990, None), (0, None), (2999, 5000)],
    ids=["first-bytes", "middle", "last-bytes", "whole", "end-past-size"],
)
def test_open_file_streams_byte_ranges(backend, source, start, end):
    stored = backend.store.put_version(source, "m", 1)
    data = (source / "data" / "weights.bin").read_bytes()
    stream = backend.store.open_file(version_of(stored), "data/weights.bin", start, end)
    stop = len(data) if end is None else min(end, len(data))
    assert (stream.size, stream.start, stream.end) == (3000, start, stop)
    assert b"".join(stream.chunks) == data[start:stop]


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (3000, None, "byte range 3000-3000 is outside the file of 3000 bytes"),
        (-5, None, "byte range -5-3000 is outside the file of 3000 bytes"),
        (20, 10, "byte range 20-10 is outside the file of 3000 bytes"),
    ],
    ids=["start-at-size", "negative", "reversed"],
)
def test_invalid_ranges_are_invalid_input(backend, source, start, end, message):
    stored = backend.store.put_version(source, "m", 1)
    with pytest.raises(InvalidInput) as e:
        backend.store.open_file(version_of(stored), "data/weights.bin", start, end)
    assert e.value.message == message


def test_an_empty_file_streams_nothing(backend, source):
    stored = backend.store.put_version(source, "m", 1)
    stream = backend.store.open_file(version_of(stored), "empty")
    assert (stream.size, stream.start, stream.end, b"".join(stream.chunks)) == (0, 0, 0, b"")


def test_missing_files_are_artifact_not_found(backend, source):
    stored = backend.store.put_version(source, "m", 1)
    for path in ("nope", "data", "data/sub/nope"):
        with pytest.raises(ArtifactNotFound) as e:
            backend.store.open_file(version_of(stored), path)
        assert e.value.message == f"no file {path!r} in models:/m/1"


@pytest.mark.parametrize(
    "path",
    ["../outside", "data/../../x", "/etc/passwd", "%2e%2e/x", "data%2f..%2f..%2fx", "a\\..\\b", ""],
    ids=["dotdot", "nested-dotdot", "absolute", "encoded", "encoded-slash", "backslash", "empty"],
)
def test_paths_that_try_to_escape_are_refused(backend, source, path):
    stored = backend.store.put_version(source, "m", 1)
    with pytest.raises(InvalidInput, match="unsafe path"):
        backend.store.open_file(version_of(stored), path)


def test_delete_removes_the_version_and_only_it(backend, source):
    a = backend.store.put_version(source, "m", 1)
    b = backend.store.put_version(source, "m", 2)
    backend.store.delete(a.location)
    backend.store.delete(a.location)  # already gone: no error
    assert backend.store.list_files(version_of(a)) == []
    with pytest.raises(ArtifactNotFound):
        backend.store.open_file(version_of(a), "MLmodel")
    assert len(backend.files()) == len(tree(source))
    assert all("/v2-" in f for f in backend.files())
    assert tree(backend.store.get_version(version_of(b, number=2))) == tree(source)


def test_a_file_that_cannot_be_read_fails_the_put_and_leaves_nothing(backend, source, tmp_path):
    (source / "data" / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(InvalidInput, match=r"data/dangling .* is a symbolic link to .*nowhere"):
        backend.store.put_version(source, "m", 1)
    assert backend.files() == []
    assert backend.store.leftovers() == []


# --- S3 only: multipart, the cache, unfinished uploads, faults ---------------------------


@pytest.fixture
def s3_backend_(s3_root, moto_s3, tmp_path):
    b = s3_backend(s3_root, tmp_path / "cache", moto_s3)
    yield b
    b.store.close()


def gets(store: S3ArtifactStore) -> list[str]:
    seen: list[str] = []
    store.s3.client.meta.events.register(
        "before-call.s3.GetObject", lambda model, **_: seen.append(model.name)
    )
    return seen


def test_a_big_file_goes_up_in_parts_and_comes_back_whole(s3_root, moto_s3, tmp_path, source):
    b = s3_backend(s3_root, tmp_path / "cache", moto_s3, multipart_threshold=5 * MB,
                   multipart_chunksize=5 * MB)  # fmt: skip
    (source / "data" / "big.bin").write_bytes(os.urandom(5 * MB) * 2 + b"tail")  # 3 parts
    stored = b.store.put_version(source, "m", 1)
    raw = moto_s3.client()
    head = raw.head_object(
        Bucket=moto_s3.bucket, Key=S3Path.parse(stored.location).join("data/big.bin").key
    )
    raw.close()
    assert head["ETag"].endswith('-3"')  # a multipart object of 3 parts
    assert stored.digest == dir_digest(source)
    assert tree(b.store.get_version(version_of(stored))) == tree(source)
    b.store.close()


def test_a_second_load_downloads_nothing_and_still_checks(s3_backend_, source, tmp_path, moto_s3):
    stored = s3_backend_.store.put_version(source, "m", 1)
    path = s3_backend_.store.get_version(version_of(stored))
    assert path == tmp_path / "cache" / "models" / stored.digest
    # a second process on the same machine: a new store, the same cache
    again = S3ArtifactStore(s3_backend_.store.root.__str__(), tmp_path / "cache",
                            S3Config(endpoint_url=moto_s3.endpoint))  # fmt: skip
    seen = gets(again)
    assert again.get_version(version_of(stored)) == path
    assert seen == []
    # it re-hashed the copy: a changed cached file is noticed, dropped and fetched again
    weights = path / "data" / "weights.bin"
    stat = weights.stat()
    weights.write_bytes(b"x" * stat.st_size)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same time
    third = S3ArtifactStore(str(again.root), tmp_path / "cache",
                            S3Config(endpoint_url=moto_s3.endpoint))  # fmt: skip
    seen = gets(third)
    assert third.get_version(version_of(stored)) == path
    assert len(seen) == len(tree(source))
    assert tree(path) == tree(source)
    again.close()
    third.close()


def test_a_changed_cached_copy_is_noticed_within_a_process(s3_backend_, source):
    stored = s3_backend_.store.put_version(source, "m", 1)
    path = s3_backend_.store.get_version(version_of(stored))
    (path / "data" / "weights.bin").write_bytes(b"changed")
    seen = gets(s3_backend_.store)
    assert tree(s3_backend_.store.get_version(version_of(stored))) == tree(source)
    assert len(seen) == len(tree(source))


def test_a_tampered_object_never_reaches_the_cache(s3_backend_, source, tmp_path):
    stored = s3_backend_.store.put_version(source, "m", 1)
    s3_backend_.write(stored.location, "MLmodel", b"flavors: {evil: {}}\n")
    for _ in range(2):
        with pytest.raises(DigestMismatch, match="do not match their recorded digest"):
            s3_backend_.store.get_version(version_of(stored))
    assert [p.name for p in (tmp_path / "cache" / "models").iterdir()] == []


def test_an_unsafe_key_below_a_version_is_refused(s3_backend_, source, tmp_path):
    stored = s3_backend_.store.put_version(source, "m", 1)
    s3_backend_.write(stored.location, "data//escape", b"x")
    with pytest.raises(DigestMismatch, match="has an unsafe path 'data//escape'"):
        s3_backend_.store.get_version(version_of(stored))
    assert not list((tmp_path / "cache" / "models").iterdir())


def test_a_malformed_digest_is_refused_before_any_path_is_made(s3_backend_, source):
    stored = s3_backend_.store.put_version(source, "m", 1)
    with pytest.raises(DigestMismatch, match=re.escape("malformed digest '../x'")):
        s3_backend_.store.get_version(version_of(StoredFiles(stored.location, "../x")))


def test_unfinished_uploads_and_downloads_are_leftovers_until_discarded(
    s3_backend_, moto_s3, tmp_path
):
    store = s3_backend_.store
    raw = moto_s3.client()
    # a registration whose process died: its marker and some of its files
    location = store.root.join("models", "m", "v1-deadbeef")
    raw.put_object(
        Bucket=moto_s3.bucket, Key=store.root.join(".pending/models/m/v1-deadbeef").key, Body=b""
    )
    raw.put_object(Bucket=moto_s3.bucket, Key=location.join("MLmodel").key, Body=b"half")
    # a multipart upload nobody completed, and a download that never finished
    key = store.root.join("runs", "r1", "artifacts", "big").key
    upload = raw.create_multipart_upload(Bucket=moto_s3.bucket, Key=key)["UploadId"]
    tmp = tmp_path / "cache" / "models" / ".tmp-0123-abc"
    tmp.mkdir(parents=True)
    found = {lo.location: lo for lo in store.leftovers()}
    assert set(found) == {str(location), f"s3://{moto_s3.bucket}/{key}?uploadId={upload}", str(tmp)}
    for leftover in found.values():
        store.discard(leftover)
        store.discard(leftover)  # already gone: no error
    assert store.leftovers() == []
    assert s3_backend_.files() == []
    assert not tmp.exists()
    raw.close()


def test_discard_leaves_what_is_not_its_own(s3_backend_, tmp_path):
    outside = tmp_path / "precious"
    outside.mkdir()
    now = datetime.now(timezone.utc)
    s3_backend_.store.discard(Leftover(str(outside), now))
    s3_backend_.store.discard(Leftover("s3://other-bucket/models/x", now))
    assert outside.is_dir()


def test_an_unreachable_endpoint_is_one_line_without_credentials(
    s3_root, moto_s3, source, tmp_path
):
    endpoint = f"http://127.0.0.1:{free_port()}"
    store = S3ArtifactStore(
        s3_root, tmp_path / "cache", S3Config(endpoint_url=endpoint, max_attempts=1)
    )
    with pytest.raises(StoreError) as e:
        store.put_version(source, "m", 1)
    store.close()
    message = e.value.message
    assert message.startswith(
        f"cannot reach S3 at {endpoint} for bucket 'mlreg-test' while writing"
    )
    assert "\n" not in message
    for key, secret in moto_s3.keys.values():
        assert key not in message and secret not in message


# --- the registry on an S3 root ----------------------------------------------------------


def test_register_resolve_load_and_delete_through_an_s3_root(s3_settings, moto_s3, tmp_path):
    src = make_model_dir(tmp_path / "model", payload=b"weights v1")
    with MlregClient(s3_settings) as client:
        assert isinstance(client.artifacts, S3ArtifactStore)
        v = client.register_model(str(src), "mnist", tags={"team": "cv"})
        assert v.status is VersionStatus.READY
        assert v.storage_location.startswith(f"{s3_settings.artifact_root}/models/mnist/v1-")
        assert v.digest == dir_digest(src)
        client.transition_model_version_stage("mnist", 1, "Production")
        resolved = client.resolve("models:/mnist/Production")
        assert resolved.path == s3_settings.home / "cache" / "models" / v.digest
        assert resolved.digest == v.digest
        assert (resolved.path / "data" / "weights.bin").read_bytes() == b"weights v1"
        assert Model.load(resolved.path).signature == Model.load(src).signature
        # a model registered from a models:/ URI of the same registry
        v2 = client.register_model("models:/mnist/1", "mnist-copy")
        assert v2.digest == v.digest and v2.storage_location != v.storage_location
        client.delete_registered_model("mnist")
    raw = moto_s3.client()
    keys = [
        o["Key"]
        for o in raw.list_objects_v2(
            Bucket=moto_s3.bucket, Prefix=S3Path.parse(s3_settings.artifact_root).key
        ).get("Contents", [])
    ]
    raw.close()
    assert keys and all("/models/mnist-copy/" in k for k in keys)


def test_a_registration_to_an_unreachable_s3_fails_cleanly(s3_settings, tmp_path, model_dir):
    settings = replace(s3_settings, s3_endpoint_url=f"http://127.0.0.1:{free_port()}")
    with MlregClient(settings) as client:
        client.artifacts.s3.config = replace(client.artifacts.s3.config, max_attempts=1)
        with pytest.raises(
            RegistrationFailed, match=re.escape("cannot reach S3 at http://127.0.0.1:")
        ):
            client.register_model(str(model_dir), "m")
        v = client.get_model_version("m", 1)
        assert v.status is VersionStatus.FAILED_REGISTRATION
        assert "StoreError: cannot reach S3" in v.status_message


# A registration in a real process, killed with SIGKILL once the second file has gone up: the
# version is left PENDING, its objects half there, its marker in .pending/.
CRASHING_UPLOAD = """
import os, signal, sys
from pathlib import Path
from mlreg.registry import MlregClient
from mlreg.store import StoreSettings
from mlreg.store import s3

real_upload = s3.S3Storage.upload
done = []

def upload_then_die(self, files):
    for item in files:
        real_upload(self, [item])
        done.append(item)
        if len(done) == 2:
            os.kill(os.getpid(), signal.SIGKILL)

s3.S3Storage.upload = upload_then_die
settings = StoreSettings(sys.argv[1], sys.argv[2], "crash", Path(sys.argv[3]), sys.argv[4])
MlregClient(settings).register_model(sys.argv[5], "m")
"""


@pytest.mark.slow  # kills a real process
def test_a_process_killed_mid_upload_leaves_what_gc_removes(s3_settings, source):
    proc = subprocess.run(
        [sys.executable, "-c", CRASHING_UPLOAD, s3_settings.uri, s3_settings.artifact_root,
         str(s3_settings.home), s3_settings.s3_endpoint_url, str(source)],
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL
    with MlregClient(s3_settings) as client:
        assert client.get_model_version("m", 1).status is VersionStatus.PENDING_REGISTRATION
        [leftover] = client.artifacts.leftovers()
        assert leftover.location.startswith(f"{s3_settings.artifact_root}/models/m/v1-")
        assert len(list(client.artifacts.s3.list(S3Path.parse(leftover.location)))) == 2
        assert client.gc().versions == []  # younger than the grace period: maybe still running
        report = client.gc(older_than=timedelta(0))
        assert report.versions == ["m/1 (PENDING_REGISTRATION)"]
        assert report.temp_dirs == [leftover.location]
        assert client.artifacts.leftovers() == []
        assert list(client.artifacts.s3.list(client.artifacts.root)) == []


def test_versions_stored_locally_stay_local_records(s3_settings, model_dir, tmp_path):
    """A version registered under a local root, read after the root moved to S3, says so."""
    settings = dataclasses.replace(s3_settings, artifact_root=str(tmp_path / "artifacts"))
    with MlregClient(settings) as local:
        local.register_model(str(model_dir), "m")
    with MlregClient(s3_settings) as client:
        with pytest.raises(StoreError, match="was stored under a local artifact root"):
            client.resolve("models:/m/1")
        client.delete_model_version("m", 1)  # its local files are not the S3 store's to remove


def test_settings_pick_the_store(tmp_path, s3_root):
    from mlreg.registry.storage import artifact_store

    local = artifact_store(StoreSettings.for_home(tmp_path))
    assert isinstance(local, LocalArtifactStore)
    s3 = artifact_store(StoreSettings("sqlite://", s3_root, "u", tmp_path, "http://h:1"))
    assert isinstance(s3, S3ArtifactStore)
    assert (str(s3.root), s3.cache, s3.s3.config.endpoint_url) == (
        s3_root,
        tmp_path / "cache" / "models",
        "http://h:1",
    )
    with pytest.raises(InvalidInput, match="invalid S3 bucket name 'Bad_Bucket'"):
        artifact_store(StoreSettings("sqlite://", "s3://Bad_Bucket/x", "u", tmp_path))
