"""S3-compatible object storage (AWS, MinIO, Ceph) through boto3: the one module that talks to it.

The artifact stores of the registry and of tracking build on these calls. Only they import
this module, and only when an artifact root or a run's artifact URI is ``s3://``, so
``import mlreg``, ``mlreg --help`` and local use never load boto3.

Credentials come from boto3's standard chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE`` and ``~/.aws``, instance and container roles). No message of ours names them:
errors say which bucket, which endpoint and what S3 answered (its code), nothing more.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mlreg.errors import ArtifactNotFound, InvalidInput, MlregError, StoreError

try:
    import boto3
    from boto3.s3.transfer import TransferConfig, create_transfer_manager
    from botocore.config import Config
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        HTTPClientError,
        NoCredentialsError,
        PartialCredentialsError,
    )
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from s3transfer.subscribers import BaseSubscriber
except ModuleNotFoundError as e:  # an optional dependency: say how to get it
    raise StoreError(
        f"S3 artifact storage needs boto3 ({e.name} is not installed): pip install 'mlreg[s3]'"
    ) from e
from mlreg.store.files import CHUNK, Stream, check_range
from mlreg.store.settings import S3_SCHEME as SCHEME
from mlreg.store.validation import safe_relpath

MB = 1 << 20
#: DeleteObjects takes at most this many keys a call.
DELETE_BATCH = 1000

# AWS's rules for general purpose buckets (MinIO and Ceph follow them): 3-63 characters of
# lowercase letters, digits, '.' and '-', starting and ending with a letter or digit.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_BUCKET_RESERVED = (("xn--", "sthree-"), ("-s3alias", "--ol-s3", "--x-s3"))
_NOT_FOUND = {"NoSuchKey", "NoSuchUpload", "404", "NotFound"}
_DENIED = {
    "AccessDenied",
    "403",
    "Forbidden",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AllAccessDisabled",
    "AccountProblem",
}


@dataclass(frozen=True)
class S3Path:
    """An object or a prefix: a bucket and a key (no leading or trailing '/'; '' is the root)."""

    bucket: str
    key: str = ""

    @classmethod
    def parse(cls, uri: str) -> S3Path:
        """``s3://bucket[/prefix]``; InvalidInput for a bad bucket name or an unsafe prefix."""
        if not isinstance(uri, str) or not uri.startswith(SCHEME):
            raise InvalidInput(f"invalid S3 URI {uri!r}: expected s3://bucket/prefix")
        bucket, _, key = uri[len(SCHEME) :].partition("/")
        if not _valid_bucket(bucket):
            raise InvalidInput(
                f"invalid S3 bucket name {bucket!r} in {uri!r}: use 3-63 lowercase letters, "
                "digits, '.' and '-', starting and ending with a letter or digit (not an IP "
                "address, no '..')"
            )
        key = key.rstrip("/")
        if key:
            try:
                safe_relpath(key)
            except InvalidInput:
                raise InvalidInput(
                    f"invalid S3 prefix {key!r} in {uri!r}: use '/'-separated names, without "
                    "empty, '.', '..' or URL-encoded segments"
                ) from None
        return cls(bucket, key)

    def join(self, *parts: str) -> S3Path:
        """This prefix with relative ``parts`` appended (each checked by ``safe_relpath``)."""
        rel = "/".join(safe_relpath(p) for p in parts if p)
        return S3Path(self.bucket, "/".join(k for k in (self.key, rel) if k))

    @property
    def children(self) -> str:
        """The key prefix of everything below this path (``key/``; '' at the bucket root)."""
        return f"{self.key}/" if self.key else ""

    def relative(self, key: str) -> str:
        """``key`` relative to this prefix (it must lie below it)."""
        return key[len(self.children) :]

    def contains(self, other: S3Path) -> bool:
        return other.bucket == self.bucket and (
            other.key == self.key or other.key.startswith(self.children)
        )

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}" if self.key else f"{SCHEME}{self.bucket}"


def _valid_bucket(name: str) -> bool:
    if not _BUCKET.fullmatch(name) or ".." in name:
        return False
    if name.startswith(_BUCKET_RESERVED[0]) or name.endswith(_BUCKET_RESERVED[1]):
        return False
    with suppress(ValueError):
        ipaddress.IPv4Address(name)
        return False
    return True


@dataclass(frozen=True)
class S3Config:
    """How to reach the service and how to move bytes (tests shrink the multipart sizes).

    Uploads buffer at most ``max_concurrency + 1`` parts of ``multipart_chunksize`` in memory;
    files from ``multipart_threshold`` up go in parts (S3's minimum part is 5 MiB).
    """

    endpoint_url: str | None = None
    multipart_threshold: int = 8 * MB
    multipart_chunksize: int = 8 * MB
    max_concurrency: int = 4
    #: Attempts per request (botocore's "standard" retries: throttling, 5xx, broken connections).
    max_attempts: int = 3
    connect_timeout: float = 5.0
    read_timeout: float = 60.0


@dataclass(frozen=True)
class ObjectInfo:
    """One object of a listing (or a HEAD)."""

    key: str
    size: int
    modified: datetime
    etag: str


class S3Storage:
    """One boto3 S3 client (made on first use, shared by threads) and the calls mlreg needs."""

    def __init__(self, config: S3Config | None = None) -> None:
        self.config = config or S3Config()
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = boto3.session.Session().client(
                    "s3",
                    endpoint_url=self.config.endpoint_url,
                    config=Config(
                        connect_timeout=self.config.connect_timeout,
                        read_timeout=self.config.read_timeout,
                        retries={"max_attempts": self.config.max_attempts, "mode": "standard"},
                        # MinIO, Ceph and moto serve buckets as paths, not as host names.
                        s3={"addressing_style": "path"} if self.config.endpoint_url else {},
                        max_pool_connections=max(10, self.config.max_concurrency * 2),
                    ),
                )
            return self._client

    @property
    def endpoint(self) -> str:
        """The service's address for messages (never any credential)."""
        return self.config.endpoint_url or "AWS S3"

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # --- errors --------------------------------------------------------------------------

    @contextmanager
    def errors(self, path: S3Path, doing: str, missing: str | None = None) -> Iterator[None]:
        """Turn botocore's errors into mlreg's, naming the bucket and the endpoint.

        ``missing``: what to call the object in ArtifactNotFound (a 404 on it).
        """
        try:
            yield
        except MlregError:
            raise
        except (ClientError, BotoCoreError) as e:
            raise self._error(e, path, doing, missing) from e

    def _error(
        self, e: ClientError | BotoCoreError, path: S3Path, doing: str, missing: str | None
    ) -> MlregError:
        where = f"bucket {path.bucket!r} at {self.endpoint}"
        if isinstance(e, ClientError):
            err = e.response.get("Error", {})
            code = str(err.get("Code", "Unknown"))
            if code in _NOT_FOUND:
                return ArtifactNotFound(f"no {missing or f'object {path}'}")
            if code == "NoSuchBucket":
                return StoreError(f"S3 {where} does not exist (while {doing})")
            if code in _DENIED:
                return StoreError(
                    f"S3 refused access to {where} while {doing} ({code}): check the "
                    "credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or "
                    "~/.aws) and the bucket's policy"
                )
            if code == "InvalidRange":
                return InvalidInput(f"byte range outside {missing or path} ({doing})")
            if code in ("PreconditionFailed", "412"):
                return StoreError(f"the object changed while {doing}; try again")
            message = _one_line(str(err.get("Message", "")))
            return StoreError(
                f"S3 {where} failed {doing}: {code}" + (f" ({message})" if message else "")
            )
        if isinstance(e, NoCredentialsError | PartialCredentialsError):
            return StoreError(
                f"no usable AWS credentials for {where} (while {doing}): set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or ~/.aws/credentials"
            )
        if isinstance(e, BotoConnectionError | HTTPClientError):
            return StoreError(
                f"cannot reach S3 at {self.endpoint} for bucket {path.bucket!r} while {doing} "
                f"({type(e).__name__})"
            )
        return StoreError(f"S3 {where} failed {doing} ({type(e).__name__})")

    # --- reading -------------------------------------------------------------------------

    def head(self, path: S3Path, missing: str | None = None) -> ObjectInfo:
        """Size, time and ETag of one object; ArtifactNotFound if there is none."""
        with self.errors(path, f"reading {path}", missing):
            r = self.client.head_object(Bucket=path.bucket, Key=path.key)
        return ObjectInfo(path.key, r["ContentLength"], r["LastModified"], r["ETag"])

    def exists(self, path: S3Path) -> ObjectInfo | None:
        try:
            return self.head(path)
        except ArtifactNotFound:
            return None

    def open(self, path: S3Path, start: int = 0, end: int | None = None, label: str = "") -> Stream:
        """Stream bytes ``start``..``end`` of one object (a HEAD now, a ranged GET when read).

        The GET is pinned to the ETag the HEAD saw, so a file replaced in between is an error,
        not a mix of two versions; nothing is read into memory beyond one chunk.
        """
        info = self.head(path, f"file {label}" if label else None)
        stop = check_range(info.size, start, end)
        return Stream(info.size, start, stop, self._chunks(path, start, stop, info.etag))

    def _chunks(self, path: S3Path, start: int, stop: int, etag: str) -> Iterator[bytes]:
        if stop <= start:
            return
        with self.errors(path, f"reading {path}"):
            r = self.client.get_object(
                Bucket=path.bucket, Key=path.key, Range=f"bytes={start}-{stop - 1}", IfMatch=etag
            )
            body = r["Body"]
            try:
                yield from body.iter_chunks(CHUNK)
            finally:
                body.close()

    def download(self, path: S3Path, dest: Path) -> bytes:
        """Write one object to the local file ``dest`` (streamed); return its SHA-256."""
        sha = hashlib.sha256()
        with self.errors(path, f"downloading {path}"):
            r = self.client.get_object(Bucket=path.bucket, Key=path.key)
            body = r["Body"]
            try:
                with dest.open("wb") as f:
                    for chunk in body.iter_chunks(CHUNK):
                        sha.update(chunk)
                        f.write(chunk)
            finally:
                body.close()
        return sha.digest()

    def list(self, prefix: S3Path, page_size: int = 1000) -> Iterator[ObjectInfo]:
        """Every object below ``prefix`` (not ``prefix`` itself), page by page, in key order."""
        with self.errors(prefix, f"listing {prefix}"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=prefix.bucket,
                Prefix=prefix.children,
                PaginationConfig={"PageSize": page_size},
            )
            for page in pages:
                for o in page.get("Contents", []):
                    yield ObjectInfo(o["Key"], o["Size"], o["LastModified"], o["ETag"])

    def list_dir(self, prefix: S3Path) -> tuple[list[ObjectInfo], list[str]]:
        """The objects directly below ``prefix`` and the names of its "directories"."""
        files: list[ObjectInfo] = []
        dirs: list[str] = []
        with self.errors(prefix, f"listing {prefix}"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=prefix.bucket, Prefix=prefix.children, Delimiter="/"
            )
            for page in pages:
                files += [
                    ObjectInfo(o["Key"], o["Size"], o["LastModified"], o["ETag"])
                    for o in page.get("Contents", [])
                ]
                dirs += [
                    prefix.relative(p["Prefix"]).rstrip("/") for p in page.get("CommonPrefixes", [])
                ]
        return files, dirs

    # --- writing -------------------------------------------------------------------------

    def upload(self, files: Iterable[tuple[Path, S3Path]]) -> dict[S3Path, bytes]:
        """Upload local files (several at a time, big ones in parts); each one's SHA-256.

        Each file is read once, front to back, and hashed on the way: what is hashed is
        exactly what was sent. A failure cancels the rest and raises (parts already sent by
        an unfinished multipart upload are aborted by s3transfer).
        """
        jobs = [(target, _HashingReader(source), source.stat().st_size) for source, target in files]
        config = TransferConfig(
            multipart_threshold=self.config.multipart_threshold,
            multipart_chunksize=self.config.multipart_chunksize,
            max_concurrency=self.config.max_concurrency,
            preferred_transfer_client="classic",
        )
        # The readers do not seek, so s3transfer buffers the parts it sends (and re-sends a
        # buffer on a retry instead of re-reading the file); this bounds those buffers.
        config.max_in_memory_upload_chunks = self.config.max_concurrency + 1
        try:
            with create_transfer_manager(self.client, config) as manager:
                futures = [
                    (t, manager.upload(reader, t.bucket, t.key, subscribers=[_KnownSize(size)]))
                    for t, reader, size in jobs
                ]
                # A failure leaves the ``with``: the manager cancels the other transfers.
                for t, future in futures:
                    with self.errors(t, f"uploading to {t}"):
                        future.result()
        finally:
            for _, reader, _ in jobs:
                reader.close()
        return {t: reader.digest() for t, reader, _ in jobs}

    def put_bytes(self, path: S3Path, data: bytes) -> None:
        with self.errors(path, f"writing {path}"):
            self.client.put_object(Bucket=path.bucket, Key=path.key, Body=data)

    def delete(self, path: S3Path) -> None:
        """Remove one object (no error if it is gone)."""
        with self.errors(path, f"deleting {path}"):
            self.client.delete_object(Bucket=path.bucket, Key=path.key)

    def delete_prefix(self, prefix: S3Path, batch: int = DELETE_BATCH) -> int:
        """Remove every object below ``prefix`` in batched DeleteObjects calls; how many."""
        keys = [o.key for o in self.list(prefix)]
        for i in range(0, len(keys), batch):
            part = keys[i : i + batch]
            with self.errors(prefix, f"deleting {prefix}"):
                r = self.client.delete_objects(
                    Bucket=prefix.bucket,
                    Delete={"Objects": [{"Key": k} for k in part], "Quiet": True},
                )
            if failed := r.get("Errors"):
                first = failed[0]
                raise StoreError(
                    f"S3 bucket {prefix.bucket!r} at {self.endpoint} kept {len(failed)} of the "
                    f"objects under {prefix}: {first.get('Code')} for {first.get('Key')!r}"
                )
        return len(keys)

    # --- unfinished multipart uploads ----------------------------------------------------

    def multipart_uploads(self, prefix: S3Path) -> list[tuple[S3Path, str, datetime]]:
        """Multipart uploads below ``prefix`` that were never completed nor aborted."""
        found = []
        with self.errors(prefix, f"listing unfinished uploads under {prefix}"):
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=prefix.bucket, Prefix=prefix.children
            )
            for page in pages:
                for u in page.get("Uploads", []):
                    found.append((S3Path(prefix.bucket, u["Key"]), u["UploadId"], u["Initiated"]))
        return found

    def abort_upload(self, path: S3Path, upload_id: str) -> None:
        try:
            with self.errors(path, f"aborting an upload to {path}"):
                self.client.abort_multipart_upload(
                    Bucket=path.bucket, Key=path.key, UploadId=upload_id
                )
        except ArtifactNotFound:
            pass  # NoSuchUpload: already completed or aborted


class _KnownSize(BaseSubscriber):
    """Tells s3transfer a stream's size, so it can choose (and size) the parts up front."""

    def __init__(self, size: int) -> None:
        self.size = size

    def on_queued(self, future: Any, **kwargs: Any) -> None:
        future.meta.provide_transfer_size(self.size)


class _HashingReader:
    """A local file read once, front to back, hashing what it hands out.

    It is deliberately not seekable: s3transfer then never re-reads it (a retry re-sends the
    part it buffered), so the hash is over each byte exactly once. Opened on the first read
    and closed at the end of the file, so many small files do not hold many descriptors.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sha = hashlib.sha256()
        self._file: Any = None
        self._done = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        if self._done:
            return b""
        if self._file is None:
            self._file = self.path.open("rb")
        data = self._file.read(size)
        self._sha.update(data)
        if size is None or size < 0 or len(data) < size:
            self.close()
        return data

    def close(self) -> None:
        self._done = True
        if self._file is not None:
            self._file.close()
            self._file = None

    def digest(self) -> bytes:
        return self._sha.digest()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def relative_key(prefix: S3Path, key: str, refuse: Callable[[str], MlregError]) -> str:
    """``key`` as a path below ``prefix``, or ``refuse(message)`` raised if it is not a safe
    local path: S3 keys may hold '..' or '//', and a download must not follow them."""
    rel = prefix.relative(key)
    try:
        return safe_relpath(rel)
    except InvalidInput:
        raise refuse(
            f"object {key!r} of bucket {prefix.bucket!r} has an unsafe path {rel!r} below "
            f"{prefix}; refusing to download it"
        ) from None
