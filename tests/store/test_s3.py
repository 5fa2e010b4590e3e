"""mlreg.store.s3 against a real S3 endpoint (moto's server: HTTP, SigV4, multipart)."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from mlreg.errors import ArtifactNotFound, InvalidInput, StoreError
from mlreg.store.s3 import MB, S3Config, S3Path, S3Storage
from tests.s3 import free_port


@pytest.fixture
def s3(s3_root, moto_s3):
    storage = S3Storage(S3Config(endpoint_url=moto_s3.endpoint))
    yield storage
    storage.close()


@pytest.fixture
def root(s3_root) -> S3Path:
    return S3Path.parse(s3_root)


@pytest.fixture
def raw(moto_s3):
    client = moto_s3.client()
    yield client
    client.close()


def count_requests(storage: S3Storage, operation: str = "*") -> list[str]:
    """Names of the S3 operations ``storage`` sends from now on."""
    seen: list[str] = []
    storage.client.meta.events.register(
        f"before-call.s3.{operation}", lambda model, **_: seen.append(model.name)
    )
    return seen


# --- URIs ---------------------------------------------------------------------------------

BUCKET_RULE = (
    "use 3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or "
    "digit (not an IP address, no '..')"
)


@pytest.mark.parametrize(
    ("uri", "bucket", "key"),
    [
        ("s3://my-bucket", "my-bucket", ""),
        ("s3://my-bucket/", "my-bucket", ""),
        ("s3://my.bucket.1/team/models", "my.bucket.1", "team/models"),
        ("s3://abc/prefix/", "abc", "prefix"),
    ],
    ids=["bucket", "trailing-slash", "nested-prefix", "prefix-trailing-slash"],
)
def test_s3_uris_parse(uri, bucket, key):
    path = S3Path.parse(uri)
    assert (path.bucket, path.key) == (bucket, key)
    assert str(path) == uri.rstrip("/")


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("/data/artifacts", "invalid S3 URI '/data/artifacts': expected s3://bucket/prefix"),
        ("s3:/bucket", "invalid S3 URI 's3:/bucket': expected s3://bucket/prefix"),
        ("s3://", f"invalid S3 bucket name '' in 's3://': {BUCKET_RULE}"),
        ("s3://ab/x", f"invalid S3 bucket name 'ab' in 's3://ab/x': {BUCKET_RULE}"),
        (
            "s3://My-Bucket",
            f"invalid S3 bucket name 'My-Bucket' in 's3://My-Bucket': {BUCKET_RULE}",
        ),
        ("s3://a..b", f"invalid S3 bucket name 'a..b' in 's3://a..b': {BUCKET_RULE}"),
        ("s3://-abc", f"invalid S3 bucket name '-abc' in 's3://-abc': {BUCKET_RULE}"),
        ("s3://abc-", f"invalid S3 bucket name 'abc-' in 's3://abc-': {BUCKET_RULE}"),
        ("s3://a_b_c", f"invalid S3 bucket name 'a_b_c' in 's3://a_b_c': {BUCKET_RULE}"),
        (
            "s3://192.168.1.10/x",
            f"invalid S3 bucket name '192.168.1.10' in 's3://192.168.1.10/x': {BUCKET_RULE}",
        ),
        ("s3://xn--abc", f"invalid S3 bucket name 'xn--abc' in 's3://xn--abc': {BUCKET_RULE}"),
        (
            "s3://" + "a" * 64,
            f"invalid S3 bucket name '{'a' * 64}' in 's3://{'a' * 64}': {BUCKET_RULE}",
        ),
        (
            "s3://bucket/a/../b",
            "invalid S3 prefix 'a/../b' in 's3://bucket/a/../b': use '/'-separated names, "
            "without empty, '.', '..' or URL-encoded segments",
        ),
        (
            "s3://bucket//a",
            "invalid S3 prefix '/a' in 's3://bucket//a': use '/'-separated names, without "
            "empty, '.', '..' or URL-encoded segments",
        ),
        (
            "s3://bucket/a%2f..",
            "invalid S3 prefix 'a%2f..' in 's3://bucket/a%2f..': use '/'-separated names, "
            "without empty, '.', '..' or URL-encoded segments",
        ),
    ],
    ids=[
        "local-path",
        "one-slash",
        "no-bucket",
        "too-short",
        "uppercase",
        "double-dot",
        "leading-dash",
        "trailing-dash",
        "underscore",
        "ip-address",
        "reserved-prefix",
        "too-long",
        "dotdot-prefix",
        "empty-segment",
        "encoded-prefix",
    ],
)
def test_bad_s3_uris_are_refused_with_the_rule(uri, message):
    with pytest.raises(InvalidInput) as e:
        S3Path.parse(uri)
    assert e.value.message == message


def test_join_refuses_escaping_parts():
    root = S3Path.parse("s3://bucket/p")
    assert root.join("models", "m", "v1").key == "p/models/m/v1"
    for part in ("..", "../x", "/abs", "a/./b", "%2e%2e"):
        with pytest.raises(InvalidInput, match="unsafe path"):
            root.join(part)


# --- reading ------------------------------------------------------------------------------


def test_open_streams_ranges_with_one_get_each(s3, root, raw):
    data = bytes(range(256)) * 40  # 10,240 bytes
    raw.put_object(Bucket=root.bucket, Key=root.join("blob").key, Body=data)
    for start, end in [(0, 10), (100, 5000), (10_000, None), (0, None), (10_230, 99_999)]:
        seen = count_requests(s3, "GetObject")
        stream = s3.open(root.join("blob"), start, end)
        stop = len(data) if end is None else min(end, len(data))
        assert (stream.size, stream.start, stream.end) == (len(data), start, stop)
        assert b"".join(stream.chunks) == data[start:stop]
        assert seen == ["GetObject"]


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (11, None, "byte range 11-11 is outside the file of 11 bytes"),
        (50, 60, "byte range 50-11 is outside the file of 11 bytes"),
        (-1, 5, "byte range -1-5 is outside the file of 11 bytes"),
        (6, 2, "byte range 6-2 is outside the file of 11 bytes"),
    ],
    ids=["start-at-end", "past-the-end", "negative", "reversed"],
)
def test_invalid_ranges_are_refused_before_any_get(s3, root, raw, start, end, message):
    raw.put_object(Bucket=root.bucket, Key=root.join("f").key, Body=b"hello world")
    seen = count_requests(s3, "GetObject")
    with pytest.raises(InvalidInput) as e:
        s3.open(root.join("f"), start, end)
    assert e.value.message == message
    assert seen == []


def test_an_object_replaced_while_streaming_is_an_error_not_a_mix(s3, root, raw):
    key = root.join("f").key
    raw.put_object(Bucket=root.bucket, Key=key, Body=b"old contents")
    stream = s3.open(root.join("f"))
    raw.put_object(Bucket=root.bucket, Key=key, Body=b"new contents")
    with pytest.raises(StoreError) as e:
        b"".join(stream.chunks)
    assert e.value.message == f"the object changed while reading {root}/f; try again"


def test_missing_objects_are_artifact_not_found(s3, root, tmp_path):
    with pytest.raises(ArtifactNotFound) as e:
        s3.open(root.join("nope"), label="'nope' in models:/m/1")
    assert e.value.message == "no file 'nope' in models:/m/1"
    with pytest.raises(ArtifactNotFound) as e:
        s3.download(root.join("gone"), tmp_path / "gone")
    assert e.value.message == f"no object {root}/gone"
    assert s3.exists(root.join("nope")) is None
    assert list(s3.list(root.join("nothing"))) == []


def test_listing_pages_through_every_object(s3, root, raw):
    keys = [f"d/{i:02}" for i in range(7)] + ["d/sub/x", "dx"]
    for k in keys:
        raw.put_object(Bucket=root.bucket, Key=root.join(k).key, Body=k.encode())
    seen = count_requests(s3, "ListObjectsV2")
    listed = [root.relative(o.key) for o in s3.list(root.join("d"), page_size=3)]
    assert listed == [k for k in keys if k.startswith("d/")]
    assert len(seen) == 3  # 8 objects, 3 a page
    files, dirs = s3.list_dir(root.join("d"))
    assert [root.relative(f.key) for f in files] == [f"d/{i:02}" for i in range(7)]
    assert dirs == ["sub"]


# --- writing ------------------------------------------------------------------------------


def test_upload_hashes_what_it_sends_and_goes_multipart_above_the_threshold(
    moto_s3, s3_root, root, raw, tmp_path
):
    storage = S3Storage(
        S3Config(
            endpoint_url=moto_s3.endpoint, multipart_threshold=5 * MB, multipart_chunksize=5 * MB
        )
    )
    big = tmp_path / "big.bin"
    big.write_bytes(hashlib.sha256(b"seed").digest() * (12 * MB // 32 + 5))  # 3 parts
    small = tmp_path / "small.txt"
    small.write_bytes(b"small")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    seen = count_requests(storage)
    hashes = storage.upload(
        [(big, root.join("big.bin")), (small, root.join("small.txt")), (empty, root.join("e"))]
    )
    storage.close()
    for path, name in [(big, "big.bin"), (small, "small.txt"), (empty, "e")]:
        assert hashes[root.join(name)] == hashlib.sha256(path.read_bytes()).digest()
        body = raw.get_object(Bucket=root.bucket, Key=root.join(name).key)["Body"].read()
        assert body == path.read_bytes()
    assert raw.head_object(Bucket=root.bucket, Key=root.join("big.bin").key)["ETag"].endswith('-3"')
    assert seen.count("UploadPart") == 3
    assert seen.count("CompleteMultipartUpload") == 1
    assert seen.count("PutObject") == 2


def test_a_failed_upload_raises_and_leaves_no_object(s3, root, tmp_path):
    with pytest.raises(FileNotFoundError):
        s3.upload([(tmp_path / "missing", root.join("x"))])
    assert list(s3.list(root)) == []


def test_delete_prefix_batches_and_spares_neighbours(s3, root, raw):
    for k in ["v/a", "v/b", "v/c/d", "v/e", "v/f", "vx/keep", "v-keep"]:
        raw.put_object(Bucket=root.bucket, Key=root.join(k).key, Body=b"x")
    seen = count_requests(s3, "DeleteObjects")
    assert s3.delete_prefix(root.join("v"), batch=2) == 5
    assert len(seen) == 3
    assert sorted(root.relative(o.key) for o in s3.list(root)) == ["v-keep", "vx/keep"]
    assert s3.delete_prefix(root.join("v")) == 0
    s3.delete(root.join("v-keep"))
    s3.delete(root.join("v-keep"))  # already gone: no error


def test_unfinished_multipart_uploads_are_listed_and_aborted(s3, root, raw):
    key = root.join("m/part").key
    upload = raw.create_multipart_upload(Bucket=root.bucket, Key=key)["UploadId"]
    raw.upload_part(Bucket=root.bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"x" * 10)
    [(path, upload_id, _)] = s3.multipart_uploads(root)
    assert (path.key, upload_id) == (key, upload)
    s3.abort_upload(path, upload_id)
    s3.abort_upload(path, upload_id)  # already aborted: no error
    assert s3.multipart_uploads(root) == []


# --- errors: one line, bucket and endpoint named, never a credential -----------------------


def assert_clean(message: str, moto_s3) -> None:
    assert "\n" not in message
    for key, secret in moto_s3.keys.values():
        assert secret not in message
        assert key not in message


def test_an_unreachable_endpoint_is_a_store_error(s3_root, moto_s3, root):
    endpoint = f"http://127.0.0.1:{free_port()}"
    storage = S3Storage(S3Config(endpoint_url=endpoint, max_attempts=1, connect_timeout=2))
    with pytest.raises(StoreError) as e:
        storage.head(root.join("x"))
    storage.close()
    assert e.value.message == (
        f"cannot reach S3 at {endpoint} for bucket 'mlreg-test' while reading "
        f"{root}/x (EndpointConnectionError)"
    )
    assert_clean(e.value.message, moto_s3)


def test_a_wrong_secret_is_refused_without_naming_it(s3_root, moto_s3, root, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-123")
    storage = S3Storage(S3Config(endpoint_url=moto_s3.endpoint))
    with pytest.raises(StoreError) as e:
        list(storage.list(root))
    storage.close()
    assert e.value.message == (
        f"S3 refused access to bucket 'mlreg-test' at {moto_s3.endpoint} while listing {root} "
        "(SignatureDoesNotMatch): check the credentials (AWS_ACCESS_KEY_ID/"
        "AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws) and the bucket's policy"
    )
    assert "not-the-secret-123" not in e.value.message
    assert_clean(e.value.message, moto_s3)


def test_a_read_only_user_cannot_write(s3_root, moto_s3, root, monkeypatch):
    for var, value in moto_s3.env("reader").items():
        monkeypatch.setenv(var, value)
    storage = S3Storage(S3Config(endpoint_url=moto_s3.endpoint))
    assert list(storage.list(root)) == []  # reading is allowed
    with pytest.raises(
        StoreError, match=r"refused access .* while writing .*\(AccessDenied\)"
    ) as e:
        storage.put_bytes(root.join("x"), b"x")
    storage.close()
    assert_clean(e.value.message, moto_s3)


def test_missing_credentials_are_named_as_such(s3_root, moto_s3, root, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    storage = S3Storage(S3Config(endpoint_url=moto_s3.endpoint))
    with pytest.raises(StoreError) as e:
        storage.head(root.join("x"))
    storage.close()
    assert e.value.message == (
        f"no usable AWS credentials for bucket 'mlreg-test' at {moto_s3.endpoint} (while "
        f"reading {root}/x): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or "
        "~/.aws/credentials"
    )


def test_a_missing_bucket_is_named(s3, moto_s3):
    with pytest.raises(StoreError) as e:
        list(s3.list(S3Path.parse("s3://no-such-bucket/p")))
    assert e.value.message == (
        f"S3 bucket 'no-such-bucket' at {moto_s3.endpoint} does not exist (while listing "
        "s3://no-such-bucket/p)"
    )


def test_the_s3_module_is_the_only_one_that_imports_boto3():
    from tests.test_architecture import module_files

    importers = [
        name
        for name, path in module_files().items()
        if any(
            line.lstrip().startswith(
                ("import boto", "from boto", "from s3transfer", "import s3transfer")
            )
            for line in path.read_text().splitlines()
        )
    ]
    assert importers == ["mlreg.store.s3"]


@pytest.mark.process  # a fresh interpreter
def test_local_use_never_imports_boto3(tmp_path, model_dir):
    """Registering, resolving and logging run artifacts on a local root load no boto3."""
    code = (
        "import sys\n"
        "from mlreg.registry import MlregClient\n"
        "from mlreg.store import StoreSettings\n"
        "from mlreg.tracking import TrackingClient\n"
        "s = StoreSettings.for_home(sys.argv[1])\n"
        "with MlregClient(s) as c, TrackingClient(s) as t:\n"
        "    c.register_model(sys.argv[2], 'm')\n"
        "    c.resolve('models:/m/1')\n"
        "    run = t.create_run()\n"
        "    t.log_artifacts(run.info.run_id, sys.argv[2], 'model')\n"
        "    t.artifact_path(run.info.run_id, 'model')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))\n"
    )
    argv = [sys.executable, "-c", code, str(tmp_path / "home"), str(model_dir)]
    assert subprocess.check_output(argv, text=True).strip() == "[]"
