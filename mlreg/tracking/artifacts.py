"""Run artifacts: files a run logs, kept under the run's artifact URI.

Keyed by the artifact URI the tracking store recorded for the run (as MLflow's artifact
repositories are), so a tracking server's REST client can implement the same calls.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from mlreg.errors import ArtifactNotFound, InvalidInput
from mlreg.store.validation import safe_relpath


@dataclass(frozen=True)
class FileInfo:
    """One entry of an artifact listing: its path relative to the run's root."""

    path: str
    is_dir: bool
    size: int | None


class RunArtifacts(Protocol):
    def log_file(self, artifact_uri: str, local_file: Path, artifact_path: str | None) -> None:
        """Copy one file into the run's artifacts (under ``artifact_path``, if given)."""

    def log_dir(self, artifact_uri: str, local_dir: Path, artifact_path: str | None) -> None:
        """Copy a directory's contents into the run's artifacts (under ``artifact_path``)."""

    def list(self, artifact_uri: str, path: str | None = None) -> list[FileInfo]:
        """The entries directly under ``path``; ArtifactNotFound if it does not exist."""

    def local_path(self, artifact_uri: str, path: str | None = None) -> Path:
        """A local file or directory holding the artifact at ``path``; ArtifactNotFound."""


class LocalRunArtifacts:
    """Run artifacts as directories on the local file system (the embedded default)."""

    def root(self, artifact_uri: str) -> Path:
        """The run's artifact directory (a plain path or a ``file://`` URI)."""
        if artifact_uri.startswith("file:"):
            parsed = urlparse(artifact_uri)
            if parsed.netloc not in ("", "localhost"):
                raise InvalidInput(f"artifact URI {artifact_uri!r} names a remote host")
            return Path(unquote(parsed.path))
        return Path(artifact_uri)

    def _target(self, artifact_uri: str, path: str | None) -> Path:
        root = self.root(artifact_uri)
        return root / safe_relpath(path) if path else root

    def log_file(self, artifact_uri: str, local_file: Path, artifact_path: str | None) -> None:
        dest = self._target(artifact_uri, artifact_path)
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(local_file, dest / local_file.name)

    def log_dir(self, artifact_uri: str, local_dir: Path, artifact_path: str | None) -> None:
        shutil.copytree(local_dir, self._target(artifact_uri, artifact_path), dirs_exist_ok=True)

    def list(self, artifact_uri: str, path: str | None = None) -> list[FileInfo]:
        root = self.root(artifact_uri)
        target = self.local_path(artifact_uri, path)
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

    def local_path(self, artifact_uri: str, path: str | None = None) -> Path:
        target = self._target(artifact_uri, path)
        if not target.exists():
            raise ArtifactNotFound(
                f"no artifact {path!r} in this run" if path else "the run has no artifacts yet"
            )
        return target
