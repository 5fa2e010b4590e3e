"""Artifact stores: where registered model directories live, checked by their digest.

The interface is a handful of calls, so an S3-compatible store or a registry server's REST
client can slot in beside the local one.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Protocol

from mlreg.errors import AlreadyExists, ArtifactNotFound, DigestMismatch
from mlreg.models.files import copy_model_files, model_files
from mlreg.registry.entities import ModelVersion
from mlreg.store.files import FileInfo, Stream, list_local, open_local
from mlreg.store.validation import safe_relpath

TMP_PREFIX = ".tmp-"
_CHUNK = 1 << 20
#: The directories the local store makes below ``models/<name>/``: a version's stored copy,
#: and the temporary copy it is renamed from. gc looks at these names only, at that depth.
STORED_DIR = re.compile(r"v(?P<version>\d+)-[0-9a-f]{8}")
TEMP_DIR = re.compile(r"\.tmp-v(?P<version>\d+)-[0-9a-f]{8}")


@dataclass(frozen=True)
class Leftover:
    """Files a store holds that ``mlreg gc`` weighs: a stored or temporary copy of a version
    (``name`` and ``version`` say which; gc keeps it while that version's row needs it), or
    something unattributed (an unfinished upload) that gc removes once ``modified`` is old."""

    location: str
    modified: datetime
    name: str | None = None
    version: int | None = None


@dataclass(frozen=True)
class StoredFiles:
    """Where a version's files were put and their digest (sha256 over paths and contents)."""

    location: str | None
    digest: str


class ArtifactStore(Protocol):
    def put_version(self, source: Path, name: str, version: int) -> StoredFiles:
        """Store the files of directory ``source`` as version ``version`` of ``name``, whole or
        not at all; OSError (or a store error) if the copy fails. A store that decides the
        location itself when the version is finished (a registry server) returns None."""

    def get_version(self, version: ModelVersion) -> Path:
        """A local directory holding the READY version's files, checked against its digest;
        DigestMismatch if they differ or are missing."""

    def list_files(self, version: ModelVersion) -> list[FileInfo]:
        """Every file of the version (paths relative to its root, with sizes), sorted."""

    def open_file(
        self, version: ModelVersion, path: str, start: int = 0, end: int | None = None
    ) -> Stream:
        """Stream bytes ``start``..``end`` of one file of the version; ArtifactNotFound."""

    def delete(self, location: str) -> None:
        """Remove the files at ``location`` (no error if they are already gone)."""

    def leftovers(self) -> list[Leftover]:
        """What ``mlreg gc`` weighs: every copy the store made for a version (stored and
        temporary, each with its model name and version) and unfinished uploads."""

    def discard(self, leftover: Leftover) -> None:
        """Remove one leftover (no error if it is already gone)."""


def dir_digest(root: Path) -> str:
    """SHA-256 over every file's relative path and content, in a stable order."""
    hashes = {}
    for rel, path in model_files(root):
        inner = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                inner.update(chunk)
        hashes[rel] = inner.digest()
    return files_digest(hashes)


def files_digest(hashes: Mapping[str, bytes]) -> str:
    """The digest of a version from each file's own SHA-256 (by relative POSIX path).

    Stores that hash files as they move them (S3 uploads and downloads) combine the hashes
    here, so every store agrees with :func:`dir_digest` without reading a file twice. Paths
    sort as paths (by segment, as ``pathlib`` does), not as strings.
    """
    outer = hashlib.sha256()
    for path in sorted(hashes, key=PurePosixPath):
        outer.update(path.encode())
        outer.update(b"\0")
        outer.update(hashes[path])
    return outer.hexdigest()


def fingerprint(root: Path) -> str:
    """Cheap change detector for a verified directory: every file's path, inode, size,
    modification and change time. A same-size edit with its mtime put back still changes
    the ctime (which no one can set back), so it is caught and the files are re-hashed."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        fields = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)
        h.update(f"{path.relative_to(root).as_posix()}\0{fields}\n".encode())
    return h.hexdigest()


class LocalArtifactStore:
    """Artifacts as directories below one root on the local filesystem."""

    def __init__(self, root: str | os.PathLike[str], max_bytes: int | None = None) -> None:
        self.root = Path(root).absolute()
        #: Largest version accepted (MLREG_MAX_UPLOAD_BYTES); None: no cap.
        self.max_bytes = max_bytes
        self._verified: dict[tuple[Path, str], str] = {}
        self._lock = threading.Lock()

    def path(self, key: str) -> Path:
        target = (self.root / safe_relpath(key)).resolve()
        if not target.is_relative_to(self.root.resolve()):
            raise DigestMismatch(f"artifact key {key!r} leads outside the artifact root")
        return target

    def put_version(self, source: Path, name: str, version: int) -> StoredFiles:
        """Copy ``source`` into ``models/<name>/.tmp-v<N>-<hex>``, hash it, rename it to
        ``models/<name>/v<N>-<hex>``: readers never see a half copy, and gc can tell whose
        copy any directory there is."""
        tag = f"v{version}-{uuid.uuid4().hex[:8]}"
        key = f"models/{name}/{tag}"
        target = self.path(key)
        if target.exists():
            raise AlreadyExists(f"artifacts already exist at {key!r}; refusing to overwrite")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f"{TMP_PREFIX}{tag}"
        try:
            # The copy gets fresh timestamps: nothing about it looks older than it is.
            copy_model_files(source, tmp, self.max_bytes)
            digest = dir_digest(tmp)
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return StoredFiles(key, digest)

    def list_files(self, version: ModelVersion) -> list[FileInfo]:
        root = self._stored(version)
        return list_local(root, root, recursive=True)

    def open_file(
        self, version: ModelVersion, path: str, start: int = 0, end: int | None = None
    ) -> Stream:
        root = self._stored(version)
        return open_local(root / safe_relpath(path), start, end, f"{path!r} in {version.uri}")

    def _stored(self, version: ModelVersion) -> Path:
        if version.storage_location is None:
            raise ArtifactNotFound(f"{version.uri} has no stored files ({version.status.value})")
        return self.path(version.storage_location)

    def get_version(self, version: ModelVersion) -> Path:
        if version.storage_location is None or version.digest is None:
            raise DigestMismatch(
                f"{version.uri} has no stored files (status {version.status.value})"
            )
        return self.get_dir(version.storage_location, version.digest)

    def get_dir(self, key: str, digest: str) -> Path:
        """The directory at ``key``, checked against ``digest`` (re-hashed when it changed)."""
        target = self.path(key)
        if not target.is_dir():
            raise DigestMismatch(f"the artifacts of this version are missing (expected {target})")
        seen = fingerprint(target)
        with self._lock:
            if self._verified.get((target, digest)) == seen:
                return target
        actual = dir_digest(target)
        if actual != digest:
            raise DigestMismatch(
                f"the artifacts at {target} do not match their recorded digest "
                f"(expected sha256 {digest[:12]}…, found {actual[:12]}…): they were changed or "
                "truncated after registration; refusing to load them"
            )
        with self._lock:
            self._verified[(target, digest)] = seen
        return target

    def delete(self, location: str) -> None:
        shutil.rmtree(self.path(location), ignore_errors=True)

    def leftovers(self) -> list[Leftover]:
        models = self.root / "models"
        if not models.is_dir():
            return []
        found = []
        for model_dir in sorted(models.iterdir()):
            if not model_dir.is_dir() or model_dir.is_symlink():
                continue
            for entry in sorted(model_dir.iterdir()):
                match = STORED_DIR.fullmatch(entry.name) or TEMP_DIR.fullmatch(entry.name)
                if match is None or not entry.is_dir() or entry.is_symlink():
                    continue  # not a copy the registry made: never gc's to remove
                modified = datetime.fromtimestamp(entry.stat().st_mtime, timezone.utc)
                location = entry.relative_to(self.root).as_posix()
                found.append(Leftover(location, modified, model_dir.name, int(match["version"])))
        return found

    def discard(self, leftover: Leftover) -> None:
        name = PurePosixPath(leftover.location).name
        if STORED_DIR.fullmatch(name) or TEMP_DIR.fullmatch(name):
            shutil.rmtree(self.path(leftover.location), ignore_errors=True)
