"""A directory of files as one streamed tar, and its safe extraction: how model versions travel
between a client and a registry server in one request.

Only regular files and directories travel: a symlink, device, FIFO or socket in the source is
refused (it could smuggle files from outside the model), and so is any such member, any
absolute or ``..`` name and anything past the size limit on the receiving side. Nothing is
held in memory beyond one chunk.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from mlreg.errors import InvalidInput, PayloadTooLarge
from mlreg.models.files import model_files
from mlreg.store.files import CHUNK
from mlreg.store.validation import safe_relpath

BLOCK = tarfile.BLOCKSIZE
MEDIA_TYPE = "application/x-tar"


def iter_tar(root: Path) -> Iterator[bytes]:
    """The regular files below ``root`` as a POSIX (pax) tar stream, in chunks."""
    for rel, path in model_files(root):
        info = tarfile.TarInfo(rel)
        st = path.stat()
        info.size = st.st_size
        info.mtime = int(st.st_mtime)
        info.mode = 0o644
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        sent = 0
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                sent += len(chunk)
                yield chunk
        if sent != info.size:
            raise InvalidInput(f"{rel} changed size while it was being sent")
        if info.size % BLOCK:
            yield b"\0" * (BLOCK - info.size % BLOCK)
    yield b"\0" * (2 * BLOCK)


def extract_tar(stream: BinaryIO, dest: Path, limit: int, setting: str) -> dict[str, str]:
    """Unpack a tar stream into ``dest`` (files and directories only); return each file's
    sha256. InvalidInput on a bad member, PayloadTooLarge past ``limit`` bytes of content."""
    dest.mkdir(parents=True, exist_ok=True)
    total = 0
    digests: dict[str, str] = {}
    dirs: set[str] = set()
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                name = safe_relpath(member.name.rstrip("/"))
                if not (member.isdir() or member.isfile()):
                    raise InvalidInput(f"{name} in the upload is not a regular file")
                _check_place(name, member.isdir(), digests, dirs)
                if member.isdir():
                    (dest / name).mkdir(parents=True, exist_ok=True)
                    continue
                total += member.size
                if total > limit:
                    raise PayloadTooLarge(
                        f"the upload is larger than the limit of {limit} bytes ({setting})"
                    )
                source = tar.extractfile(member)
                assert source is not None  # a regular file always has content
                target = dest / name
                target.parent.mkdir(parents=True, exist_ok=True)
                sha = hashlib.sha256()
                with target.open("xb") as out:
                    while chunk := source.read(CHUNK):
                        sha.update(chunk)
                        out.write(chunk)
                digests[name] = sha.hexdigest()
    except tarfile.TarError as e:
        raise InvalidInput(f"the upload is not a valid tar stream: {e}") from None
    return digests


def _check_place(name: str, is_dir: bool, files: dict[str, str], dirs: set[str]) -> None:
    """InvalidInput when ``name`` was sent before, or is both a file and a directory (a file
    where an earlier member needs a directory, or the other way round)."""
    parents = [name.rsplit("/", i)[0] for i in range(name.count("/"), 0, -1)]
    clash = next((p for p in parents if p in files), None)
    if clash is None and ((is_dir and name in files) or (not is_dir and name in dirs)):
        clash = name
    if clash is not None:
        raise InvalidInput(f"the upload holds {clash} both as a file and as a directory")
    if not is_dir and name in files:
        raise InvalidInput(f"the upload holds {name} twice")
    dirs.update(parents)
    if is_dir:
        dirs.add(name)
