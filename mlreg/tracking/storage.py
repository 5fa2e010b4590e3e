"""Run artifacts where each run's artifact URI says: in S3 for ``s3://``, else on local disk.

A run keeps the URI it was given when it started, so a run recorded under a local root stays
readable (and writable) locally after the root moves to S3, and the other way round.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from mlreg.store.files import FileInfo, Stream
from mlreg.store.settings import S3_SCHEME, StoreSettings
from mlreg.tracking.artifacts import ArtifactOwner, LocalRunArtifacts, RunArtifacts

if TYPE_CHECKING:
    from mlreg.tracking.s3_artifacts import S3RunArtifacts


def run_artifacts(settings: StoreSettings) -> RunArtifacts:
    """The run-artifact store for ``settings`` (it picks local or S3 run by run)."""
    return RunArtifactsByUri(settings)


class RunArtifactsByUri:
    """RunArtifacts that hands each call to the local or the S3 implementation by URI."""

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings
        self.local = LocalRunArtifacts()
        self._s3: S3RunArtifacts | None = None
        self._lock = threading.Lock()

    def _s3_artifacts(self) -> S3RunArtifacts:
        with self._lock:
            if self._s3 is None:
                # Imported on the first run in S3, so local use never loads boto3.
                from mlreg.store.s3 import S3Config
                from mlreg.tracking.s3_artifacts import S3RunArtifacts

                self._s3 = S3RunArtifacts(
                    self.settings.cache_dir, S3Config(endpoint_url=self.settings.s3_endpoint_url)
                )
            return self._s3

    def of(self, run: ArtifactOwner) -> RunArtifacts:
        """The implementation that holds ``run``'s artifacts."""
        return self._s3_artifacts() if run.artifact_uri.startswith(S3_SCHEME) else self.local

    def close(self) -> None:
        with self._lock:
            if self._s3 is not None:
                self._s3.close()
                self._s3 = None

    def log_file(self, run: ArtifactOwner, local_file: Path, artifact_path: str | None) -> None:
        self.of(run).log_file(run, local_file, artifact_path)

    def log_dir(self, run: ArtifactOwner, local_dir: Path, artifact_path: str | None) -> None:
        self.of(run).log_dir(run, local_dir, artifact_path)

    def list(self, run: ArtifactOwner, path: str | None = None) -> list[FileInfo]:
        return self.of(run).list(run, path)

    def local_path(self, run: ArtifactOwner, path: str | None = None) -> Path:
        return self.of(run).local_path(run, path)

    def open(self, run: ArtifactOwner, path: str, start: int = 0, end: int | None = None) -> Stream:
        return self.of(run).open(run, path, start, end)

    def delete(self, run: ArtifactOwner, path: str) -> None:
        self.of(run).delete(run, path)
