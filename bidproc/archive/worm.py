"""The archive store: write once, keep until a retention date, never delete, never overwrite.

Two adapters behind one interface:
- :class:`S3Archive`: a bucket created with versioning and Object Lock (minio SDK); every object is
  written with COMPLIANCE retention until its date, which the store reads back and checks. Only the
  storage system's own rules make this WORM: not even the bucket's owner can delete a locked version.
- :class:`LocalArchive`: the embedded default, a directory with the same layout. Files are made
  read-only and this code refuses overwrites and shortened retention, but anyone with the account can
  still delete them: it is **not WORM**, and says so (``worm = False``).

Neither adapter has a delete method: bidproc has no code path that removes an archived object.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import io
import json
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol, cast

from bidproc.config import Settings
from bidproc.errors import BidprocError, Code

SINGLE_PUT_MAX = 16 << 20  # up to this size an object is sent in one PUT (retention set atomically with it)


@dataclass(frozen=True)
class Lock:
    mode: str | None  # "COMPLIANCE" on S3; None when the store has no retention (local)
    retain_until: datetime | None
    legal_hold: bool


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


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in {"", ".", ".."} or p.startswith(".") for p in parts):
        raise BidprocError(Code.REQUEST_INVALID, f"invalid archive key {key!r}")
    return key


def _refuse_shorter(key: str, current: datetime | None, wanted: datetime) -> None:
    # The contract (real S3 and MinIO in COMPLIANCE mode) refuses this; moto_server does not, so the
    # refusal lives here too and is tested against this code, not against the server.
    if current is not None and wanted < current:
        raise BidprocError(Code.STORAGE_IMMUTABLE, f"{key}: retention cannot be shortened "
                                                   f"from {current.isoformat()} to {wanted.isoformat()}")


class LocalArchive:
    """A directory; read-only files and refusals in code. Not WORM: the file system lets root delete."""

    worm = False
    description = "local directory (NOT WORM: read-only files, refusals in code only)"

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / ".locks").mkdir(exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def _lock_path(self, key: str) -> Path:
        return self.root / ".locks" / (hashlib.sha256(key.encode()).hexdigest() + ".json")

    def _lock_record(self, key: str) -> dict[str, str | bool]:
        path = self._lock_path(key)
        return cast(dict[str, str | bool], json.loads(path.read_text())) if path.exists() else {}

    def _write_lock(self, key: str, record: dict[str, str | bool]) -> None:
        path, temp = self._lock_path(key), self._lock_path(key).with_suffix(".tmp")
        temp.write_text(json.dumps(record, sort_keys=True))
        os.replace(temp, path)

    def put(self, key: str, chunks: Iterable[bytes], size: int, retain_until: datetime, *,
            listed_absent: bool = False) -> str:
        final = self._path(key)  # checked whatever the caller listed: a file system keeps no versions
        if final.exists():
            return _same_or_refuse(key, self.sha256(key), chunks)
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.with_name(f".{final.name}.part")
        digest, written = hashlib.sha256(), 0
        with temp.open("wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
                digest.update(chunk)
                written += len(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        sha256 = digest.hexdigest()
        if written != size:
            temp.unlink()
            raise BidprocError(Code.STORAGE_INTEGRITY, f"{key}: {written} bytes written, {size} announced")
        temp.chmod(stat.S_IRUSR | stat.S_IRGRP)
        self._write_lock(key, {"sha256": sha256, "retain_until": retain_until.isoformat(), "legal_hold": False})
        os.link(temp, final)  # fails if another writer got there first: never replaces a file
        temp.unlink()
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


class S3Archive:
    """A versioned, Object Lock bucket; COMPLIANCE retention on every object, checked after writing."""

    worm = True

    def __init__(self, endpoint: str, access_key: str, secret_key: str, bucket: str, *, region: str = "us-east-1",
                 secure: bool = False) -> None:
        from minio import Minio

        self.bucket = bucket
        self.description = f"S3 bucket {bucket} at {endpoint} (versioning, Object Lock COMPLIANCE)"
        self._client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region)
        with self._errors("create bucket"):
            if not self._client.bucket_exists(bucket):
                self._client.make_bucket(bucket, object_lock=True)  # Object Lock implies versioning
            if self._client.get_object_lock_config(bucket) is None:
                raise BidprocError(Code.CONFIG_INVALID, f"bucket {bucket} has no Object Lock: not an archive")

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        from minio.error import S3Error
        from urllib3.exceptions import HTTPError

        try:
            yield
        except S3Error as exc:
            if exc.code in {"NoSuchKey", "NoSuchObject", "NoSuchVersion"}:
                raise BidprocError(Code.STORAGE_NOT_FOUND, f"{what}: {exc.message}") from exc
            if exc.code == "ObjectLockConfigurationNotFoundError":
                raise BidprocError(Code.CONFIG_INVALID, f"{what}: bucket has no Object Lock") from exc
            raise BidprocError(Code.STORAGE_UNAVAILABLE, f"{what}: {exc.code} {exc.message}") from exc
        except (HTTPError, OSError) as exc:
            raise BidprocError(Code.STORAGE_UNAVAILABLE, f"{what}: {exc}") from exc

    def put(self, key: str, chunks: Iterable[bytes], size: int, retain_until: datetime, *,
            listed_absent: bool = False) -> str:
        from minio.commonconfig import COMPLIANCE
        from minio.retention import Retention

        # Skipping the check cannot destroy anything: versioning keeps any earlier version, locked.
        meta = None if listed_absent else self._try_stat(key)
        if meta is not None:
            sha256 = _same_or_refuse(key, meta.get("x-amz-meta-sha256") or self._rehash(key), chunks)
            self._ensure_retention(key, retain_until)  # a crash may have come between PUT and retention
            return sha256
        retention = Retention(COMPLIANCE, retain_until.astimezone(UTC))
        with self._errors(f"put {key}"):
            if size <= SINGLE_PUT_MAX:
                # Object Lock uploads need a checksum header (moto_server and AWS insist); the digest
                # also travels as user metadata, read back by stat_object.
                data = b"".join(chunks)
                sha256 = hashlib.sha256(data).hexdigest()
                headers: dict[str, str | list[str] | tuple[str]] = {
                    "x-amz-meta-sha256": sha256, "x-amz-sdk-checksum-algorithm": "SHA256",
                    "x-amz-checksum-sha256": base64.b64encode(bytes.fromhex(sha256)).decode()}
                self._client.put_object(self.bucket, _check_key(key), io.BytesIO(data), len(data),
                                        metadata=headers, retention=retention)
            else:
                # Streamed in one pass: the digest is known only at the end, so it is not in the
                # metadata; a later comparison reads the object back (:meth:`_rehash`).
                reader = _ChunkReader(chunks)
                self._client.put_object(self.bucket, _check_key(key), cast(BinaryIO, reader), size,
                                        retention=retention, part_size=SINGLE_PUT_MAX, num_parallel_uploads=1)
                sha256 = reader.digest.hexdigest()
        # Multipart uploads may not carry the retention header through (moto_server drops it): set it
        # on the version now and read it back either way.
        self._ensure_retention(key, retain_until)
        return sha256

    def _try_stat(self, key: str) -> dict[str, str] | None:
        try:
            return self._stat_meta(key)
        except BidprocError as exc:
            if exc.code is Code.STORAGE_NOT_FOUND:
                return None
            raise

    def _rehash(self, key: str) -> str:
        digest = hashlib.sha256()
        with self.open(key) as fh:
            while piece := fh.read(SINGLE_PUT_MAX):
                digest.update(piece)
        return digest.hexdigest()

    def _ensure_retention(self, key: str, retain_until: datetime) -> None:
        from minio.commonconfig import COMPLIANCE
        from minio.retention import Retention

        current = self.lock(key)
        if current.mode == "COMPLIANCE" and current.retain_until is not None and current.retain_until >= retain_until:
            return
        _refuse_shorter(key, current.retain_until, retain_until)
        with self._errors(f"retention {key}"):
            version = self._client.stat_object(self.bucket, _check_key(key)).version_id
            self._client.set_object_retention(self.bucket, key, Retention(COMPLIANCE, retain_until.astimezone(UTC)),
                                              version_id=version)
        after = self.lock(key)
        if after.mode != "COMPLIANCE" or after.retain_until is None or after.retain_until < retain_until:
            raise BidprocError(Code.STORAGE_UNAVAILABLE, f"{key}: the store did not apply COMPLIANCE retention")

    def _stat_meta(self, key: str) -> dict[str, str]:
        with self._errors(f"stat {key}"):
            st = self._client.stat_object(self.bucket, _check_key(key))
        return {k.lower(): str(v) for k, v in (st.metadata or {}).items()}

    def exists(self, key: str) -> bool:
        return self._try_stat(key) is not None

    def sha256(self, key: str) -> str | None:
        meta = self._try_stat(key)
        return None if meta is None else meta.get("x-amz-meta-sha256") or self._rehash(key)

    @contextlib.contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        with self._errors(f"get {key}"):
            response = self._client.get_object(self.bucket, _check_key(key))
        try:
            yield cast(BinaryIO, response)
        finally:
            response.close()
            response.release_conn()

    def keys(self, prefix: str) -> Iterator[str]:
        with self._errors(f"list {prefix}"):
            for obj in self._client.list_objects(self.bucket, prefix=prefix, recursive=True):
                yield str(obj.object_name)

    def lock(self, key: str) -> Lock:
        # get_object_retention is broken on moto_server; the lock headers of HEAD are the same facts.
        meta = self._stat_meta(key)
        until = meta.get("x-amz-object-lock-retain-until-date")
        return Lock(meta.get("x-amz-object-lock-mode"),
                    datetime.fromisoformat(until.replace("Z", "+00:00")) if until else None,
                    meta.get("x-amz-object-lock-legal-hold") == "ON")

    def extend_retention(self, key: str, retain_until: datetime) -> None:
        _refuse_shorter(key, self.lock(key).retain_until, retain_until)
        self._ensure_retention(key, retain_until)

    def set_legal_hold(self, key: str, on: bool) -> None:
        with self._errors(f"legal hold {key}"):
            version = self._client.stat_object(self.bucket, _check_key(key)).version_id
            if on:
                self._client.enable_object_legal_hold(self.bucket, key, version_id=version)
            else:
                self._client.disable_object_legal_hold(self.bucket, key, version_id=version)


def _same_or_refuse(key: str, archived: str | None, chunks: Iterable[bytes]) -> str:
    """An object is already under ``key``: the same bytes again are fine, other bytes are refused."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    if digest.hexdigest() != archived:
        raise BidprocError(Code.STORAGE_IMMUTABLE, f"{key} is archived with other content")
    return archived


class _ChunkReader:
    """read() over an iterator of chunks, hashing what it hands out (minio pulls parts from it)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            piece = next(self._chunks, None)
            if piece is None:
                break
            self._buffer += piece
        size = len(self._buffer) if size < 0 else size
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        self.digest.update(out)
        return out


@functools.lru_cache(maxsize=4)
def open_archive(settings: Settings) -> ArchiveStore:
    s = settings.storage
    if s.backend == "local":
        return LocalArchive(Path(s.archive_dir).resolve() if s.archive_dir else settings.data_path / "archive")
    if s.backend == "s3":
        return S3Archive(s.s3_endpoint, s.s3_access_key, s.s3_secret_key, s.archive_bucket, region=s.s3_region,
                         secure=s.s3_secure)
    raise BidprocError(Code.CONFIG_INVALID, f"storage.backend must be 'local' or 's3', not {s.backend!r}")
