"""Ship a model directory to workers as one archive named by its digest, and check it there.

The driver packs the resolved model directory once per digest; each worker unpacks it once
into a cache keyed by the digest, recomputes the digest of what it unpacked, and refuses to
load anything else. No worker needs the registry, the run store or the artifact store.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import uuid
from pathlib import Path

from mlreg.errors import DigestMismatch
from mlreg.registry.artifacts import dir_digest

PREFIX = "mlreg-model-"


def archive_name(digest: str) -> str:
    return f"{PREFIX}{digest}.tar"


def pack(model_dir: Path, digest: str, dest_dir: Path) -> Path:
    """Write ``model_dir`` as ``dest_dir/mlreg-model-<digest>.tar`` (once; reused after)."""
    target = dest_dir / archive_name(digest)
    if target.is_file():
        return target
    tmp = dest_dir / f".{target.name}.{uuid.uuid4().hex}"
    with tarfile.open(tmp, "w") as tar:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(model_dir).as_posix(), recursive=False)
    os.replace(tmp, target)
    return target


def unpack(archive: Path, digest: str, cache: Path) -> Path:
    """The model directory for ``digest``, unpacked from ``archive`` into ``cache`` and checked.

    Safe for several worker processes at once: each unpacks into its own temporary directory
    and the first rename wins.
    """
    target = cache / digest
    if (target / "MLmodel").is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".tmp-{digest[:16]}-{uuid.uuid4().hex}"
    try:
        with tarfile.open(archive, "r") as tar:
            for member in tar.getmembers():
                # Only plain files and directories inside the archive: no links, no escapes.
                name = Path(member.name)
                plain = member.isfile() or member.isdir()
                if not plain or name.is_absolute() or ".." in name.parts:
                    raise DigestMismatch(
                        f"model archive {archive.name} holds {member.name!r}, which is not a "
                        "plain file inside the model directory; refusing to unpack it"
                    )
            tar.extractall(tmp)  # noqa: S202  (every member checked above)
        actual = dir_digest(tmp)
        if actual != digest:
            raise DigestMismatch(
                f"model archive {archive.name} does not match its digest (expected sha256 "
                f"{digest[:12]}…, found {actual[:12]}…): it was changed or truncated in transit; "
                "refusing to load it"
            )
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "MLmodel").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


__all__ = ["PREFIX", "archive_name", "pack", "unpack"]
