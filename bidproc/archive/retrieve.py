"""Get a bid's evidence package out of the archive store: as a directory or as a ZIP of the same layout."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

from bidproc.archive.package import _check_path, version_prefix, versions
from bidproc.archive.renewal import latest_record, records_prefix
from bidproc.archive.verify import RECORD, RECORD_PREFIX
from bidproc.archive.worm import ArchiveStore
from bidproc.archive.worm_rules import _check_key
from bidproc.errors import BidprocError, Code

COPY_STEP = 1 << 20


def latest_version(archive: ArchiveStore, bid_prefix: str) -> int:
    complete = [v for v, done in versions(archive, bid_prefix).items() if done]
    if not complete:
        raise BidprocError(Code.STORAGE_NOT_FOUND, f"no complete evidence package under {bid_prefix}")
    return max(complete)


def package_files(archive: ArchiveStore, bid_prefix: str, version: int | None = None) -> dict[str, str]:
    """The package's files (name in the package -> archive key), with its newest evidence record if any."""
    version = version or latest_version(archive, bid_prefix)
    prefix = version_prefix(bid_prefix, version)
    keys = {key[len(prefix):]: key for key in archive.keys(prefix)}
    for name, key in keys.items():
        # Object Lock stops overwrites, not new keys: one whose name is no package path (``..``, a dot
        # or empty part) would be written outside the output or break the copy half-way. Refused before
        # anything is written; a well-formed stranger is copied, and `evidence verify` names it.
        try:
            _check_path(name)
            _check_key(key)  # what the stores will open (no part starting with a dot)
        except BidprocError:
            raise BidprocError(Code.STORAGE_INTEGRITY, f"{key}: not a package path bidproc writes (someone "
                                                       f"added it to the archive); the package is not copied") from None
    if not keys:
        raise BidprocError(Code.STORAGE_NOT_FOUND, f"no evidence package version {version} under {bid_prefix}")
    record = latest_record(archive, prefix)
    if record is not None:  # the newest RFC 4998 record, a proof beside SHA256SUMS's
        keys[RECORD] = record[0]
        # The new-algorithm file lists its later chains cover (one per algorithm: never re-hashed twice).
        for key in sorted(archive.keys(records_prefix(prefix))):
            if key.endswith("SUMS") and key <= record[0]:
                keys[RECORD_PREFIX + key.rsplit(".", 1)[1]] = key
    return dict(sorted(keys.items()))


def fetch(archive: ArchiveStore, bid_prefix: str, out: Path, version: int | None = None,
          progress: Callable[[str, int], None] | None = None) -> list[str]:
    """Write the package's files under ``out`` (a directory, or a ``.zip`` file); return their names."""
    keys = package_files(archive, bid_prefix, version)
    names = list(keys)
    as_zip = out.suffix.lower() == ".zip"
    if as_zip:
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "x", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name in names:
                with archive.open(keys[name]) as src, zf.open(name, "w", force_zip64=True) as dst:
                    _copy(src.read, dst.write, name, progress)
        return names
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise BidprocError(Code.REQUEST_INVALID, f"{out} is not empty")
    for name in names:
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(keys[name]) as src, target.open("xb") as dst:
            _copy(src.read, dst.write, name, progress)
    return names


def _copy(read: Callable[[int], bytes], write: Callable[[bytes], object], name: str,
          progress: Callable[[str, int], None] | None) -> None:
    while piece := read(COPY_STEP):
        write(piece)
        if progress:
            progress(name, len(piece))


def zip_directory(directory: Path, out: Path) -> None:
    """The ZIP form of a package directory (stored, not compressed: the objects are ciphertext)."""
    with zipfile.ZipFile(out, "x", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            with path.open("rb") as src, zf.open(path.relative_to(directory).as_posix(), "w",
                                                  force_zip64=True) as dst:
                shutil.copyfileobj(src, dst, COPY_STEP)
