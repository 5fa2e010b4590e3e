"""Run artifacts: files a run logs, kept under the artifact URI its store recorded.

Every call takes the run (its ``RunInfo``): a local store uses ``artifact_uri``, a tracking
server's REST client the run id, so both implement the same calls.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from mlreg.errors import ArtifactNotFound, InvalidInput
from mlreg.store.validation import safe_relpath
from mlreg.tracking.entities import RunInfo


@dataclass(frozen=True)
class FileInfo:
    """One entry of an artifact listing: its path relative to the run's root."""

    path: str
    is_dir: bool
    size: int | None


class RunArtifacts(Protocol):
    def log_file(self, run: RunInfo, local_file: Path, artifact_path: str | None) -> None:
        """Copy one file into the run's artifacts (under ``artifact_path``, if given)."""

    def log_dir(self, run: RunInfo, local_dir: Path, artifact_path: str | None) -> None:
        """Copy a directory's contents into the run's artifacts (under ``artifact_path``)."""

    def list(self, run: RunInfo, path: str | None = None) -> list[FileInfo]:
        """The entries directly under ``path``; ArtifactNotFound if it does not exist."""

    def local_path(self, run: RunInfo, path: str | None = None) -> Path:
        """A local file or directory holding the artifact at ``path``; ArtifactNotFound."""


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
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(local_file, dest / local_file.name)

    def log_dir(self, run: RunInfo, local_dir: Path, artifact_path: str | None) -> None:
        shutil.copytree(local_dir, self._target(run, artifact_path), dirs_exist_ok=True)

    def list(self, run: RunInfo, path: str | None = None) -> list[FileInfo]:
        root = self.root(run)
        target = self.local_path(run, path)
        if not target.is_dir():
            return [FileInfo(target.relative_to(root).as_posix(), False, target.stat().st_size)]
        return [
            FileInfo(
                p.relative_to(root).as_posix(),
                p.is_dir(),
                None if p.is_dir() else p.stat().st_size,
            )
            for p in sorted(target.iterdir())
        ]

    def local_path(self, run: RunInfo, path: str | None = None) -> Path:
        target = self._target(run, path)
        if not target.exists():
            raise ArtifactNotFound(
                f"no artifact {path!r} in this run" if path else "the run has no artifacts yet"
            )
        return target
