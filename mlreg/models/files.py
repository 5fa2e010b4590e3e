"""The files of a model (or artifact) directory, walked safely: the one walker every copy uses.

A directory a user hands to mlreg may hold symlinks and special files. Copying through them
would store (and later hand out, or bake into an image) files from outside the directory
(``passwd -> /etc/passwd``), read forever (``w -> /dev/zero``) or loop (``a -> .``). So:

- a symlink to a regular file *inside* the directory is taken as that file;
- a symlink that leaves the directory, a symlink to a directory, and anything that is not a
  regular file or a directory (device, FIFO, socket) are refused with one line naming them;
- the total size can be capped.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from mlreg.errors import InvalidInput, PayloadTooLarge


def model_files(root: Path, limit: int | None = None) -> list[tuple[str, Path]]:
    """Every file below ``root`` as (relative POSIX path, path to read), sorted as paths.

    InvalidInput names the first symlink or special file that cannot be taken;
    PayloadTooLarge when the files add up to more than ``limit`` bytes.
    """
    root = Path(root)
    real_root = root.resolve()
    out: list[tuple[str, Path]] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted([*dirnames, *filenames]):
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                target = path.resolve()
                if not target.is_relative_to(real_root):
                    raise InvalidInput(
                        f"{rel} in {root} is a symbolic link to {os.readlink(path)}, outside the "
                        "directory; copy the file in instead"
                    )
                if not target.is_file():
                    raise InvalidInput(
                        f"{rel} in {root} is a symbolic link to a directory or a special file; "
                        "only links to files inside the directory are followed"
                    )
                mode = target.stat().st_mode
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                raise InvalidInput(
                    f"{rel} in {root} is not a regular file (a device, FIFO or socket)"
                )
            total += path.stat().st_size
            if limit is not None and total > limit:
                raise PayloadTooLarge(
                    f"{root} holds more than the limit of {limit} bytes (MLREG_MAX_UPLOAD_BYTES)"
                )
            out.append((rel, path))
    # Ordered as paths, segment by segment ("a/b" before "a.b"): the digest depends on it.
    return sorted(out, key=lambda item: item[0].split("/"))


def copy_model_files(root: Path, dest: Path, limit: int | None = None) -> None:
    """Copy the files :func:`model_files` allows into ``dest`` (created; may exist)."""
    files = model_files(root, limit)
    dest.mkdir(parents=True, exist_ok=True)
    for rel, path in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def check_model_tree(root: Path) -> None:
    """Refuse a directory whose files :func:`model_files` would not take (before loading it:
    a model must not read files from outside its directory through a symlink)."""
    model_files(root)
