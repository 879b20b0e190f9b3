"""Renames and new directories that survive a power loss.

``fsync`` on a file makes its bytes durable, not its name: the directory entry a rename, a link or a
mkdir creates lives in the parent directory, which must be fsynced too (POSIX leaves it to the
application; ext4 and XFS lose such an entry after a crash otherwise). The standard library has no
helper for this, hence these few lines.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make the entries of directory ``path`` (names renamed, linked or created in it) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(directory: Path) -> None:
    """``mkdir -p directory``, fsyncing the directory that holds each new one."""
    missing: list[Path] = []
    while not directory.is_dir():
        missing.append(directory)
        directory = directory.parent
    for new in reversed(missing):
        new.mkdir(exist_ok=True)  # another writer may have made it: its entry is synced again, harmless
        fsync_dir(new.parent)


def replace(temp: Path, final: Path) -> None:
    """``os.replace`` then the fsync of ``final``'s directory: the new name survives a power loss."""
    os.replace(temp, final)
    fsync_dir(final.parent)


def link(temp: Path, final: Path) -> None:
    """``os.link`` (fails if ``final`` exists: never replaces) then the fsync of ``final``'s directory."""
    os.link(temp, final)
    fsync_dir(final.parent)


def write_file(path: Path, data: bytes) -> None:
    """Replace ``path``'s content atomically and durably; the temp file never outlives a failure."""
    temp = path.with_name(f".{path.name}.tmp")
    try:
        with temp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
