"""Run artifacts in S3-compatible object storage (runs whose artifact URI is ``s3://``).

A run's files are objects below its artifact URI (``s3://bucket/prefix/runs/<id>/artifacts``).
``local_path`` mirrors what is asked for into ``MLREG_HOME/cache/runs/<run id>/`` the way
``aws s3 sync`` does: an object is downloaded again only when its size or time changed (each
file replaced atomically), and local files whose objects are gone are removed. A run's
artifacts can still change while it lives, so this cache is by path, not by digest.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

from mlreg.errors import ArtifactNotFound, InvalidInput, StoreError
from mlreg.models.files import model_files
from mlreg.store.files import FileInfo, Stream
from mlreg.store.s3 import ObjectInfo, S3Config, S3Path, S3Storage, relative_key
from mlreg.store.validation import safe_relpath
from mlreg.tracking.entities import RunInfo

RUNS = "runs"
_TMP = ".tmp-"
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class S3RunArtifacts:
    """The files of runs whose artifacts live in S3 (a RunArtifacts implementation)."""

    def __init__(self, cache_dir: str | os.PathLike[str], config: S3Config | None = None) -> None:
        self.cache = Path(cache_dir).absolute() / RUNS
        self.s3 = S3Storage(config)

    def close(self) -> None:
        self.s3.close()

    def root(self, run: RunInfo) -> S3Path:
        return S3Path.parse(run.artifact_uri)

    def _target(self, run: RunInfo, path: str | None) -> S3Path:
        root = self.root(run)
        return root.join(safe_relpath(path)) if path else root

    @staticmethod
    def _missing(path: str | None) -> ArtifactNotFound:
        return ArtifactNotFound(
            f"no artifact {path!r} in this run" if path else "the run has no artifacts yet"
        )

    # --- writing -------------------------------------------------------------------------

    def log_file(self, run: RunInfo, local_file: Path, artifact_path: str | None) -> None:
        self.s3.upload([(local_file, self._target(run, artifact_path).join(local_file.name))])

    def log_dir(self, run: RunInfo, local_dir: Path, artifact_path: str | None) -> None:
        target = self._target(run, artifact_path)
        self.s3.upload((path, target.join(rel)) for rel, path in model_files(local_dir))

    def delete(self, run: RunInfo, path: str) -> None:
        target = self._target(run, path)
        self.s3.delete(target)
        self.s3.delete_prefix(target)

    # --- reading -------------------------------------------------------------------------

    def list(self, run: RunInfo, path: str | None = None) -> list[FileInfo]:
        root = self.root(run)
        target = self._target(run, path)
        files, dirs = self.s3.list_dir(target)
        if not files and not dirs:
            if path and (info := self.s3.exists(target)):
                return [FileInfo(path, False, info.size)]
            raise self._missing(path)
        entries = [FileInfo(relative_key(root, o.key, StoreError), False, o.size) for o in files]
        entries += [
            FileInfo(relative_key(root, target.join(d).key, StoreError), True) for d in dirs
        ]
        return sorted(entries, key=lambda f: f.path)

    def open(self, run: RunInfo, path: str, start: int = 0, end: int | None = None) -> Stream:
        return self.s3.open(self._target(run, path), start, end, f"artifact {path!r}")

    def local_path(self, run: RunInfo, path: str | None = None) -> Path:
        if not _RUN_ID.fullmatch(run.run_id):
            raise InvalidInput(f"invalid run id {run.run_id!r}")
        target = self._target(run, path)
        dest = self.cache / run.run_id / safe_relpath(path) if path else self.cache / run.run_id
        objects = list(self.s3.list(target))
        if not objects:
            info = self.s3.exists(target) if path else None
            if info is None:
                raise self._missing(path)
            if dest.is_dir():
                shutil.rmtree(dest)
            self._sync_file(target, info, dest)
            return dest
        if dest.is_file() or dest.is_symlink():
            dest.unlink()
        wanted = set()
        for obj in objects:
            rel = relative_key(target, obj.key, StoreError)
            wanted.add(rel)
            self._sync_file(S3Path(target.bucket, obj.key), obj, dest / rel)
        for rel, stale in model_files(dest):
            if rel not in wanted and not stale.name.startswith(_TMP):  # not another's download
                stale.unlink(missing_ok=True)
        return dest

    def _sync_file(self, path: S3Path, info: ObjectInfo, dest: Path) -> None:
        """Download one object to ``dest`` unless the file there is already that object."""
        if _same_file(dest, info):
            return
        if dest.is_dir():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f"{_TMP}{dest.name}-{uuid.uuid4().hex}")
        try:
            self.s3.download(path, tmp)
            t = info.modified.timestamp()
            os.utime(tmp, (t, t))
            os.replace(tmp, dest)  # readers in other processes see the old file or the new
        finally:
            tmp.unlink(missing_ok=True)


def _same_file(dest: Path, info: ObjectInfo) -> bool:
    """Whether ``dest`` holds ``info``'s object: same size, mtime set to its LastModified."""
    try:
        st = dest.stat()
    except OSError:
        return False
    return dest.is_file() and st.st_size == info.size and st.st_mtime == info.modified.timestamp()
