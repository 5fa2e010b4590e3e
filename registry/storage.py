"""The artifact store the settings ask for: S3 for an ``s3://`` root, else the local one."""

from __future__ import annotations

from mlreg.registry.artifacts import ArtifactStore, LocalArtifactStore
from mlreg.store.settings import S3_SCHEME, StoreSettings


def artifact_store(settings: StoreSettings) -> ArtifactStore:
    """The store for new versions and their files, from ``settings.artifact_root``."""
    if settings.artifact_root.startswith(S3_SCHEME):
        # Imported here so that boto3 is loaded only by those who store in S3.
        from mlreg.registry.s3_artifacts import S3ArtifactStore
        from mlreg.store.s3 import S3Config

        return S3ArtifactStore(
            settings.artifact_root,
            settings.cache_dir,
            S3Config(endpoint_url=settings.s3_endpoint_url),
            settings.max_upload_bytes,
        )
    return LocalArtifactStore(settings.artifact_root, settings.max_upload_bytes)
