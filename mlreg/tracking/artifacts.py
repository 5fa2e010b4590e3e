"""Run artifacts: files a run logs, kept under the artifact URI its store recorded.

Every call takes the run (its ``RunInfo``): a local store uses ``artifact_uri``, a tracking
server's REST client the run id, so both implement the same calls.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from mlreg.errors import AlreadyExists, ArtifactNotFound, InvalidInput
from mlreg.models.files import copy_model_files
from mlreg.store.files import FileInfo, Stream, list_local, open_local
from mlreg.store.validation import safe_relpath
from mlreg.tracking.entities import RunInfo


class RunArtifacts(Protocol):
    def log_file(self, run: RunInfo, local_file: Path, artifact_path: str | None) -> None:
        """Copy one file into the run's artifacts (under ``artifact_path``, if given)."""

    def log_dir(self, run: RunInfo, local_dir: Path, artifact_path: str | None) -> None:
        """Copy a directory's contents into the run's artifacts (under ``artifact_path``)."""

    def list(self, run: RunInfo, path: str | None = None) -> list[FileInfo]:
        """The entries directly under ``path``; ArtifactNotFound if it does not exist."""

    def local_path(self, run: RunInfo, path: str | None = None) -> Path:
        """A local file or directory holding the artifact at ``path``; ArtifactNotFound."""

    def open(self, run: RunInfo, path: str, start: int = 0, end: int | None = None) -> Stream:
        """Stream bytes ``start``..``end`` of one artifact file; ArtifactNotFound."""

    def delete(self, run: RunInfo, path: str) -> None:
        """Remove one artifact file or directory (no error if it is already gone)."""


class LocalRunArtifacts:
    """Run artifacts as directories on the local file system (the embedded default)."""

    def root(self, run: RunInfo) -> Path:
        """The run's artifact directory (its URI is a plain path or a ``file://`` URI)."""
        uri = run.artifact_uri
        if uri.startswith("file:"):
            parsed = urlparse(uri)
            if parsed.netloc not in ("", "localhost"):
                raise InvalidInput(f"artifact URI {uri!r} of run {run.run_id} names a remote host")
            return Path(unquote(parsed.path))
        return Path(uri)

    def _target(self, run: RunInfo, path: str | None) -> Path:
        root = self.root(run)
        return root / safe_relpath(path) if path else root

    def log_file(self, run: RunInfo, local_file: Path, artifact_path: str | None) -> None:
        dest = self._target(run, artifact_path)
        _check_room(
            self.root(run),
            f"{artifact_path}/{local_file.name}" if artifact_path else local_file.name,
        )
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local_file, dest / local_file.name)

    def log_dir(self, run: RunInfo, local_dir: Path, artifact_path: str | None) -> None:
        copy_model_files(local_dir, self._target(run, artifact_path))

    def list(self, run: RunInfo, path: str | None = None) -> list[FileInfo]:
        return list_local(self.root(run), self.local_path(run, path), recursive=False)

    def open(self, run: RunInfo, path: str, start: int = 0, end: int | None = None) -> Stream:
        return open_local(self._target(run, path), start, end, f"artifact {path!r}")

    def delete(self, run: RunInfo, path: str) -> None:
        target = self._target(run, path)
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)

    def local_path(self, run: RunInfo, path: str | None = None) -> Path:
        target = self._target(run, path)
        if not target.exists():
            raise ArtifactNotFound(
                f"no artifact {path!r} in this run" if path else "the run has no artifacts yet"
            )
        return target


def _check_room(root: Path, relpath: str) -> None:
    """AlreadyExists when a file cannot be written at ``relpath`` below ``root``: a directory is
    there, or one of its parents is a file (copying would put it somewhere else, or fail)."""
    parts = relpath.split("/")
    for i in range(1, len(parts)):
        parent = "/".join(parts[:i])
        if (root / parent).is_file():
            raise AlreadyExists(f"artifact {parent!r} is a file; it cannot hold {relpath!r}")
    if (root / relpath).is_dir():
        raise AlreadyExists(f"artifact {relpath!r} is a directory; a file cannot replace it")
