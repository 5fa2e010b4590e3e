"""What the artifact stores hand out: file listings and byte streams (with ranges).

Shared by the registry's version files and the runs' artifacts, whatever holds the bytes
(a local directory, S3, a registry server). Streams are chunked: no whole file in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mlreg.errors import ArtifactNotFound, InvalidInput

CHUNK = 1 << 20


@dataclass(frozen=True)
class FileInfo:
    """One entry of a listing: its path relative to the root it was listed from."""

    path: str
    is_dir: bool
    size: int | None = None


@dataclass
class Stream:
    """Bytes ``start`` to ``end`` (exclusive) of a file of ``size`` bytes, in chunks."""

    size: int
    start: int
    end: int
    chunks: Iterator[bytes]


def check_range(size: int, start: int, end: int | None) -> int:
    """The exclusive end of a valid range ``[start, end)`` of a ``size``-byte file."""
    end = size if end is None else min(end, size)
    if start < 0 or start > end or (start >= size and size > 0):
        raise InvalidInput(f"byte range {start}-{end} is outside the file of {size} bytes")
    return end


def open_local(path: Path, start: int = 0, end: int | None = None, label: str = "") -> Stream:
    """Stream a local file (ArtifactNotFound if it is not a regular file)."""
    if not path.is_file():
        raise ArtifactNotFound(f"no file {label or path}")
    size = path.stat().st_size
    stop = check_range(size, start, end)

    def chunks() -> Iterator[bytes]:
        with path.open("rb") as f:
            f.seek(start)
            left = stop - start
            while left > 0:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk

    return Stream(size, start, stop, chunks())


def list_local(root: Path, path: Path, recursive: bool) -> list[FileInfo]:
    """Entries under the local directory ``path``, relative to ``root``, sorted.

    ``recursive``: every file below (no directories); else the direct entries.
    """
    if path.is_file():
        return [FileInfo(path.relative_to(root).as_posix(), False, path.stat().st_size)]
    if not path.is_dir():
        return []
    found = path.rglob("*") if recursive else path.iterdir()
    out = []
    for p in found:
        is_dir = p.is_dir()
        if recursive and is_dir:
            continue
        out.append(
            FileInfo(p.relative_to(root).as_posix(), is_dir, None if is_dir else p.stat().st_size)
        )
    return sorted(out, key=lambda f: f.path)
