"""The S3 adapter of the archive store: a versioned Object Lock bucket through the minio SDK.

moto_server, which the tests run against, differs from S3 and MinIO in three ways that shape this
code: PUTs with retention need a checksum header, ``get_object_retention`` is broken (the lock is
read from ``stat_object``'s headers), and it lets COMPLIANCE retention be shortened (refused here).

Every read, lock and retention call names the *first* version of its key: COMPLIANCE protects versions,
not names, so anyone allowed to PUT can add a newer version over an archived key, and a DELETE without a
version id adds a delete marker; a plain GET or listing would then show the newcomer (a replayed older
package, an altered file, a hidden one) and retention would be extended on it instead of on the archive.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import BinaryIO, cast

from bidproc.archive.worm_rules import Lock, _check_key, _refuse_shorter, _same_or_refuse
from bidproc.errors import BidprocError, Code

SINGLE_PUT_MAX = 16 << 20  # up to this size an object is sent in one PUT (retention set atomically with it)
# Parts of a large object in flight at once (minio's default): hashing the next part overlaps with
# sending the previous ones; memory stays bounded at about this many parts.
PARALLEL_PARTS = 3
KNOWN_VERSIONS = 1 << 16  # first-version ids remembered (a locked version never goes away): bounded memory


class S3Archive:
    """A versioned, Object Lock bucket; COMPLIANCE retention on every object, checked after writing."""

    worm = True

    def __init__(self, endpoint: str, access_key: str, secret_key: str, bucket: str, *, region: str = "us-east-1",
                 secure: bool = False) -> None:
        from minio import Minio

        self.bucket = bucket
        self.description = f"S3 bucket {bucket} at {endpoint} (versioning, Object Lock COMPLIANCE)"
        self._client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region)
        self._first: dict[str, str] = {}  # key -> the version bidproc wrote (its oldest)
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
                result = self._client.put_object(self.bucket, _check_key(key), io.BytesIO(data), len(data),
                                                 metadata=headers, retention=retention)
            else:
                # Streamed in one pass: the digest is known only at the end, so it is not in the
                # metadata; a later comparison reads the object back (:meth:`_rehash`).
                reader = _ChunkReader(chunks)
                result = self._client.put_object(self.bucket, _check_key(key), cast(BinaryIO, reader), size,
                                                 retention=retention, part_size=SINGLE_PUT_MAX,
                                                 num_parallel_uploads=PARALLEL_PARTS)
                sha256 = reader.digest.hexdigest()
        if result.version_id and key not in self._first:  # absent a moment ago: ours is the first version
            self._remember(key, result.version_id)
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
            version = self._version(key)
            self._client.set_object_retention(self.bucket, key, Retention(COMPLIANCE, retain_until.astimezone(UTC)),
                                              version_id=version)
        after = self.lock(key)
        if after.mode != "COMPLIANCE" or after.retain_until is None or after.retain_until < retain_until:
            raise BidprocError(Code.STORAGE_UNAVAILABLE, f"{key}: the store did not apply COMPLIANCE retention")

    def _versions(self, prefix: str) -> dict[str, str]:
        """Each key under ``prefix`` with a version that is not a delete marker -> its oldest such version
        (S3 lists a key's versions newest first, so the last one listed is the first written)."""
        first: dict[str, str] = {}
        with self._errors(f"list {prefix}"):
            for obj in self._client.list_objects(self.bucket, prefix=prefix, recursive=True, include_version=True):
                if not obj.is_delete_marker and obj.version_id:
                    first[str(obj.object_name)] = str(obj.version_id)
        return first

    def _remember(self, key: str, version: str) -> None:
        if len(self._first) >= KNOWN_VERSIONS:
            self._first.clear()
        self._first[key] = version

    def _version(self, key: str) -> str:
        """The version of ``key`` bidproc wrote and locked (``storage.not_found`` if there is none)."""
        found = self._first.get(key) or self._versions(_check_key(key)).get(key)
        if found is None:
            raise BidprocError(Code.STORAGE_NOT_FOUND, f"{key}: no such object in the archive")
        self._remember(key, found)
        return found

    def _stat_meta(self, key: str) -> dict[str, str]:
        with self._errors(f"stat {key}"):
            st = self._client.stat_object(self.bucket, _check_key(key), version_id=self._version(key))
        return {k.lower(): str(v) for k, v in (st.metadata or {}).items()}

    def exists(self, key: str) -> bool:
        return self._try_stat(key) is not None

    def sha256(self, key: str) -> str | None:
        meta = self._try_stat(key)
        return None if meta is None else meta.get("x-amz-meta-sha256") or self._rehash(key)

    @contextlib.contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        with self._errors(f"get {key}"):
            response = self._client.get_object(self.bucket, _check_key(key), version_id=self._version(key))
        try:
            yield cast(BinaryIO, response)
        finally:
            response.close()
            response.release_conn()

    def keys(self, prefix: str) -> Iterator[str]:
        for key, version in sorted(self._versions(prefix).items()):
            self._remember(key, version)
            yield key

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
            version = self._version(key)
            if on:
                self._client.enable_object_legal_hold(self.bucket, key, version_id=version)
            else:
                self._client.disable_object_legal_hold(self.bucket, key, version_id=version)


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
