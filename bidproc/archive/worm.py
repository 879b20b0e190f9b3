"""The archive store: write once, keep until a retention date, never delete, never overwrite.

Two adapters behind one interface:
- :class:`~bidproc.archive.worm_s3.S3Archive`: a bucket created with versioning and Object Lock
  (minio SDK); every object is written with COMPLIANCE retention until its date, which the store reads
  back and checks. Only the storage system's own rules make this WORM: not even the bucket's owner can
  delete a locked version.
- :class:`LocalArchive`: the embedded default, a directory with the same layout. Files are made
  read-only and this code refuses overwrites and shortened retention, but anyone with the account can
  still delete them: it is **not WORM**, and says so (``worm = False``).

Neither adapter has a delete method: bidproc has no code path that removes an archived object.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol, cast

from bidproc.archive import durable
from bidproc.archive.worm_rules import Lock, _check_key, _refuse_shorter, _same_or_refuse
from bidproc.config import Settings
from bidproc.errors import BidprocError, Code


class ArchiveStore(Protocol):
    worm: bool  # True only when the storage system itself refuses deletion and overwrite
    description: str

    def put(self, key: str, chunks: Iterable[bytes], size: int, retain_until: datetime, *,
            listed_absent: bool = False) -> str:
        """Write an object once, locked until ``retain_until``; return its SHA-256 (hex).

        The chunks are read once, hashed on the way. If ``key`` already holds an object, they are hashed
        and compared: the same bytes are a no-op, other bytes raise ``storage.immutable``.
        ``listed_absent``: the caller just listed the prefix and the key was not there (saves a request
        where the store itself keeps every version, as a versioned S3 bucket does).
        """
        ...

    def exists(self, key: str) -> bool: ...

    def sha256(self, key: str) -> str | None:
        """The object's SHA-256 (hex), as recorded when written or recomputed (None: absent)."""
        ...

    def open(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]: ...

    def keys(self, prefix: str) -> Iterator[str]: ...

    def lock(self, key: str) -> Lock: ...

    def extend_retention(self, key: str, retain_until: datetime) -> None:
        """Move the retention date later; an earlier date is refused (``storage.immutable``)."""
        ...

    def set_legal_hold(self, key: str, on: bool) -> None: ...


class LocalArchive:
    """A directory; read-only files and refusals in code. Not WORM: the file system lets root delete."""

    worm = False
    description = "local directory (NOT WORM: read-only files, refusals in code only)"

    def __init__(self, root: Path) -> None:
        self.root = root
        durable.make_dirs(root / ".locks")

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def _lock_path(self, key: str) -> Path:
        return self.root / ".locks" / (hashlib.sha256(key.encode()).hexdigest() + ".json")

    def _lock_record(self, key: str) -> dict[str, str | bool]:
        path = self._lock_path(key)
        return cast(dict[str, str | bool], json.loads(path.read_text())) if path.exists() else {}

    def _write_lock(self, key: str, record: dict[str, str | bool]) -> None:
        with _outage(f"retention record of {key}"):
            durable.write_file(self._lock_path(key), json.dumps(record, sort_keys=True).encode())

    def put(self, key: str, chunks: Iterable[bytes], size: int, retain_until: datetime, *,
            listed_absent: bool = False) -> str:
        final = self._path(key)  # checked whatever the caller listed: a file system keeps no versions
        if final.exists():
            return _same_or_refuse(key, self.sha256(key), chunks)
        temp = final.with_name(f".{final.name}.part")
        try:
            with _outage(f"writing {key}"):
                durable.make_dirs(final.parent)
                sha256 = _write_synced(temp, chunks, key, size)
                temp.chmod(stat.S_IRUSR | stat.S_IRGRP)
                self._write_lock(key, {"sha256": sha256, "retain_until": retain_until.isoformat(),
                                       "legal_hold": False})
                durable.link(temp, final)  # fails if another writer got there first: never replaces a file
        finally:
            temp.unlink(missing_ok=True)  # whatever failed (a full disk, a lie on the size), no partial object
        return sha256

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def sha256(self, key: str) -> str | None:
        if not self.exists(key):
            return None
        return str(self._lock_record(key).get("sha256") or "") or None

    @contextlib.contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        try:
            with self._path(key).open("rb") as fh:
                yield fh
        except FileNotFoundError as exc:
            raise BidprocError(Code.STORAGE_NOT_FOUND, f"no archived object {key}") from exc

    def keys(self, prefix: str) -> Iterator[str]:
        start = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        for path in sorted(start.rglob("*")) if start.is_dir() else []:
            rel = path.relative_to(self.root).as_posix()
            if path.is_file() and rel.startswith(prefix) and not any(p.startswith(".") for p in rel.split("/")):
                yield rel

    def lock(self, key: str) -> Lock:
        record = self._lock_record(key)
        until = record.get("retain_until")
        return Lock(None, datetime.fromisoformat(str(until)) if until else None, bool(record.get("legal_hold")))

    def extend_retention(self, key: str, retain_until: datetime) -> None:
        record = self._lock_record(key)
        current = self.lock(key).retain_until
        _refuse_shorter(key, current, retain_until)
        self._write_lock(key, {**record, "retain_until": retain_until.isoformat()})

    def set_legal_hold(self, key: str, on: bool) -> None:
        self._write_lock(key, {**self._lock_record(key), "legal_hold": on})


def _write_synced(temp: Path, chunks: Iterable[bytes], key: str, size: int) -> str:
    digest, written = hashlib.sha256(), 0
    with temp.open("wb") as fh:
        for chunk in chunks:
            fh.write(chunk)
            digest.update(chunk)
            written += len(chunk)
        fh.flush()
        os.fsync(fh.fileno())
    if written != size:
        raise BidprocError(Code.STORAGE_INTEGRITY, f"{key}: {written} bytes written, {size} announced")
    return digest.hexdigest()


@contextlib.contextmanager
def _outage(what: str) -> Iterator[None]:
    """A full or failing disk (ENOSPC, EDQUOT, EIO on a write, an fsync, a link) is an outage of the
    archive: ``storage.unavailable``, waited out by the pipeline, never an unexpected error."""
    try:
        yield
    except OSError as exc:
        raise BidprocError(Code.STORAGE_UNAVAILABLE, f"{what}: {exc}") from exc


@functools.lru_cache(maxsize=4)
def open_archive(settings: Settings) -> ArchiveStore:
    s = settings.storage
    if s.backend == "local":
        return LocalArchive(Path(s.archive_dir).resolve() if s.archive_dir else settings.data_path / "archive")
    if s.backend == "s3":
        from bidproc.archive.worm_s3 import S3Archive

        return S3Archive(s.s3_endpoint, s.s3_access_key, s.s3_secret_key, s.archive_bucket, region=s.s3_region,
                         secure=s.s3_secure)
    raise BidprocError(Code.CONFIG_INVALID, f"storage.backend must be 'local' or 's3', not {s.backend!r}")
