"""Model versions in S3-compatible object storage, downloaded once per machine by digest.

Layout below the root ``s3://bucket/prefix``:

- ``models/<name>/v<version>-<8 hex>/<files>``: a version's files. Its location (recorded on
  the version) is the full ``s3://`` URI, so it stays loadable if the root later moves.
- ``.pending/models/<name>/v<version>-<8 hex>``: an empty marker written before the first byte
  of a version is uploaded and removed once the last one is. S3 has no rename, so a version
  is uploaded where it will stay; a marker still there names an upload that never finished
  (its process died), and ``leftovers`` reports it (the marker's time is when it started).
  Multipart uploads that were never completed are reported too: their parts are invisible to
  listings but stored (and billed) until aborted.

Loads go through ``MLREG_HOME/cache/models/<digest>/``: downloaded into a temporary directory
beside it, hashed while written, compared with the version's digest and only then renamed into
place, so a tampered or truncated object is refused (DigestMismatch) and never cached. A load
from the cache re-checks the copy against the digest: the first load in a process re-hashes
every file; later loads in the same process compare a fingerprint (each file's inode, size,
mtime and ctime) and re-hash when it changed, as the local store does. A cached copy that no
longer matches is dropped and fetched again (the bucket, not the cache, is the source of
truth).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path

from mlreg.errors import ArtifactNotFound, DigestMismatch, StoreError
from mlreg.models.files import model_files
from mlreg.registry.artifacts import (
    STORED_DIR,
    TMP_PREFIX,
    Leftover,
    StoredFiles,
    dir_digest,
    files_digest,
    fingerprint,
)
from mlreg.registry.entities import ModelVersion
from mlreg.store.files import FileInfo, Stream
from mlreg.store.s3 import S3Config, S3Path, S3Storage, relative_key
from mlreg.store.settings import S3_SCHEME
from mlreg.store.validation import safe_relpath

log = logging.getLogger(__name__)

MODELS = "models"
PENDING = ".pending"
UPLOAD_ID = "?uploadId="
_DIGEST = re.compile(r"[0-9a-f]{64}")


class S3ArtifactStore:
    """Registered model versions under ``s3://bucket/prefix``, with a local cache by digest."""

    def __init__(
        self,
        root: str,
        cache_dir: str | os.PathLike[str],
        config: S3Config | None = None,
        max_bytes: int | None = None,
    ):
        self.root = S3Path.parse(root)
        #: Largest version accepted (MLREG_MAX_UPLOAD_BYTES); None: no cap.
        self.max_bytes = max_bytes
        self.cache = Path(cache_dir).absolute() / MODELS
        self.s3 = S3Storage(config)
        self._verified: dict[Path, str] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self.s3.close()

    # --- writing -------------------------------------------------------------------------

    def put_version(self, source: Path, name: str, version: int) -> StoredFiles:
        location = self.root.join(MODELS, name, f"v{version}-{uuid.uuid4().hex[:8]}")
        files = model_files(source, self.max_bytes)
        marker = self._marker(location)
        self.s3.put_bytes(marker, b"")
        try:
            hashes = self.s3.upload((path, location.join(rel)) for rel, path in files)
        except BaseException:
            self._remove_quietly(location, marker)
            raise
        self.s3.delete(marker)
        digest = files_digest({rel: hashes[location.join(rel)] for rel, _ in files})
        return StoredFiles(str(location), digest)

    def _marker(self, location: S3Path) -> S3Path:
        return self.root.join(PENDING, self.root.relative(location.key))

    def _remove_quietly(self, location: S3Path, marker: S3Path) -> None:
        """Undo a failed upload; if that fails too, the marker stays for ``mlreg gc``."""
        try:
            self._discard_upload(location)
            self.s3.delete(marker)
        except Exception as e:  # the upload's own error is the one to report
            log.warning("could not remove the unfinished upload %s: %s", location, e)

    def _discard_upload(self, location: S3Path) -> None:
        for path, upload_id, _ in self.s3.multipart_uploads(location):
            self.s3.abort_upload(path, upload_id)
        self.s3.delete_prefix(location)

    def delete(self, location: str) -> None:
        if not location.startswith(S3_SCHEME):
            # Registered under a local root before the root moved to S3: not ours to remove.
            log.warning("not deleting %s: it is not in S3 (artifact root %s)", location, self.root)
            return
        self._discard_upload(S3Path.parse(location))

    # --- reading -------------------------------------------------------------------------

    def _location(self, version: ModelVersion) -> S3Path:
        location = version.storage_location
        if location is None:
            raise ArtifactNotFound(f"{version.uri} has no stored files ({version.status.value})")
        if not location.startswith(S3_SCHEME):
            raise StoreError(
                f"{version.uri} was stored under a local artifact root ({location!r}); this "
                f"registry's artifact root is {self.root}"
            )
        return S3Path.parse(location)

    def list_files(self, version: ModelVersion) -> list[FileInfo]:
        location = self._location(version)
        files = [
            FileInfo(relative_key(location, o.key, StoreError), False, o.size)
            for o in self.s3.list(location)
        ]
        return sorted(files, key=lambda f: f.path)

    def open_file(
        self, version: ModelVersion, path: str, start: int = 0, end: int | None = None
    ) -> Stream:
        location = self._location(version)
        return self.s3.open(
            location.join(safe_relpath(path)), start, end, f"{path!r} in {version.uri}"
        )

    def get_version(self, version: ModelVersion) -> Path:
        if version.storage_location is None or version.digest is None:
            raise DigestMismatch(
                f"{version.uri} has no stored files (status {version.status.value})"
            )
        location = self._location(version)
        digest = version.digest
        if not _DIGEST.fullmatch(digest):
            raise DigestMismatch(f"{version.uri} has a malformed digest {digest!r}")
        target = self.cache / digest
        if target.is_dir():
            if self._cached_copy_matches(target, digest):
                return target
            log.warning(
                "the cached copy %s of %s was changed; fetching it again", target, version.uri
            )
            self._evict(target)
        return self._download(version, location, digest, target)

    def _cached_copy_matches(self, target: Path, digest: str) -> bool:
        now = fingerprint(target)
        with self._lock:
            if self._verified.get(target) == now:
                return True
        if dir_digest(target) != digest:
            return False
        with self._lock:
            self._verified[target] = now
        return True

    def _evict(self, target: Path) -> None:
        trash = target.with_name(f"{TMP_PREFIX}evicted-{uuid.uuid4().hex}")
        try:
            os.rename(target, trash)
        except FileNotFoundError:
            return  # another process evicted it first
        shutil.rmtree(trash, ignore_errors=True)

    def _download(self, version: ModelVersion, location: S3Path, digest: str, target: Path) -> Path:
        self.cache.mkdir(parents=True, exist_ok=True)
        tmp = self.cache / f"{TMP_PREFIX}{digest[:16]}-{uuid.uuid4().hex}"
        try:
            objects = list(self.s3.list(location))
            if not objects:
                raise DigestMismatch(
                    f"the artifacts of {version.uri} are missing (expected objects under "
                    f"{location})"
                )
            hashes = {}
            for obj in objects:
                rel = relative_key(location, obj.key, DigestMismatch)
                dest = tmp / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                hashes[rel] = self.s3.download(S3Path(location.bucket, obj.key), dest)
            actual = files_digest(hashes)
            if actual != digest:
                raise DigestMismatch(
                    f"the artifacts at {location} do not match their recorded digest "
                    f"(expected sha256 {digest[:12]}…, found {actual[:12]}…): they were changed "
                    "or truncated after registration; refusing to load them"
                )
            try:
                os.rename(tmp, target)
            except OSError:
                if not target.is_dir():
                    raise
                # Another process finished the same download first; use (and check) theirs.
                if not self._cached_copy_matches(target, digest):
                    raise DigestMismatch(
                        f"the cached copy {target} of {version.uri} does not match its digest"
                    ) from None
                return target
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        with self._lock:
            self._verified[target] = fingerprint(target)
        return target

    # --- unfinished uploads --------------------------------------------------------------

    def leftovers(self) -> list[Leftover]:
        found = []
        pending = self.root.join(PENDING)
        marked = []
        for obj in self.s3.list(pending):
            relative = pending.relative(obj.key)
            location = self.root.join(relative)
            marked.append(location)
            name, version = _attributed(relative)
            found.append(Leftover(str(location), obj.modified, name, version))
        for path, upload_id, started in self.s3.multipart_uploads(self.root):
            if not any(m.contains(path) for m in marked):
                found.append(Leftover(f"{path}{UPLOAD_ID}{upload_id}", started))
        if self.cache.is_dir():
            found += [
                Leftover(str(p), datetime.fromtimestamp(p.stat().st_mtime, timezone.utc))
                for p in self.cache.glob(f"{TMP_PREFIX}*")
                if p.is_dir()
            ]
        return found

    def discard(self, leftover: Leftover) -> None:
        where = leftover.location
        if not where.startswith(S3_SCHEME):
            path = Path(where)
            if path.parent == self.cache and path.name.startswith(TMP_PREFIX):
                shutil.rmtree(path, ignore_errors=True)
            return
        uri, _, upload_id = where.partition(UPLOAD_ID)
        path = S3Path.parse(uri)
        if not self.root.contains(path):
            return
        if upload_id:
            self.s3.abort_upload(path, upload_id)
            return
        self._discard_upload(path)
        self.s3.delete(self._marker(path))


def _attributed(relative: str) -> tuple[str | None, int | None]:
    """(model name, version) of ``models/<name>/v<N>-<hex>``, or (None, None)."""
    parts = relative.split("/")
    if len(parts) == 3 and parts[0] == "models":
        match = STORED_DIR.fullmatch(parts[2])
        if match is not None:
            return parts[1], int(match["version"])
    return None, None
