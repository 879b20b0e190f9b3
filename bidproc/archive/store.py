"""Object storage: one interface, two adapters (a local directory, any S3 endpoint through minio).

Keys look like ``tenders/<tender>/bids/<bid>/files/<document>.enc``. Writes are atomic: an object
exists whole or not at all, so a crash mid-upload leaves nothing half-written under its final key.
Vendor errors become ``storage.unavailable`` / ``storage.not_found``.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol, cast

from bidproc.archive import durable
from bidproc.config import Settings
from bidproc.errors import BidprocError, Code


class ObjectWriter(Protocol):
    def write(self, data: bytes, /) -> object: ...


class ObjectStore(Protocol):
    def open_writer(self, key: str) -> contextlib.AbstractContextManager[ObjectWriter]:
        """Stream an object in; it appears under ``key`` only when the block exits without error."""
        ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def size(self, key: str) -> int: ...

    def read_at(self, key: str, offset: int, length: int) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def keys(self, prefix: str = "") -> Iterator[str]: ...

    def delete(self, key: str) -> None:
        """Remove an object (only for uploads that never became part of a bid); absent is fine."""
        ...


def bid_prefix(tender_id: str, bid_id: str) -> str:
    """Where a bid's objects live: the one object-key scheme, shared by the desk, the worker and the archive."""
    return f"tenders/{tender_id}/bids/{bid_id}"


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in {"", ".", ".."} for p in parts):
        raise BidprocError(Code.REQUEST_INVALID, f"invalid object key {key!r}")
    return key


class LocalStore:
    """The embedded default: objects as files under one directory (written to a temp name, then renamed)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        durable.make_dirs(root / ".incoming")

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    @contextlib.contextmanager
    def open_writer(self, key: str) -> Iterator[ObjectWriter]:
        final = self._path(key)
        temp = self.root / ".incoming" / uuid.uuid4().hex
        try:
            try:
                with temp.open("wb") as fh:
                    writer = _BackgroundFile(fh)
                    try:
                        yield writer
                    finally:
                        writer.close()
                durable.make_dirs(final.parent)
                durable.replace(temp, final)  # with its directory's fsync: the name survives a power loss
            except OSError as exc:
                # A full or failing disk (the last buffered flush, the close, the directory) is an outage of
                # the store: refused before any receipt (503), or waited out by the pipeline.
                raise BidprocError(Code.STORAGE_UNAVAILABLE, f"writing {key}: {exc}") from exc
        finally:
            temp.unlink(missing_ok=True)

    def put_bytes(self, key: str, data: bytes) -> None:
        with self.open_writer(key) as w:
            w.write(data)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise BidprocError(Code.STORAGE_NOT_FOUND, f"no object {key}") from exc

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as exc:
            raise BidprocError(Code.STORAGE_NOT_FOUND, f"no object {key}") from exc

    def read_at(self, key: str, offset: int, length: int) -> bytes:
        try:
            with self._path(key).open("rb") as fh:
                fh.seek(offset)
                return fh.read(length)
        except FileNotFoundError as exc:
            raise BidprocError(Code.STORAGE_NOT_FOUND, f"no object {key}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def keys(self, prefix: str = "") -> Iterator[str]:
        # Walk only the directory the prefix names, not the whole store.
        start = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        for path in sorted(start.rglob("*")) if start.is_dir() else []:
            rel = path.relative_to(self.root).as_posix()
            if path.is_file() and not rel.startswith(".incoming/") and rel.startswith(prefix):
                yield rel


_ABORT = b"\x00abort"  # a distinct object, compared by identity: the writer gave up mid-stream


class _UploadAborted(Exception):
    pass


class _BackgroundFile:
    """Writes to a file from a thread of its own once the object is large, starting the disk's work early.

    The caller (who also encrypts) hands over ciphertext and goes on; the disk's work overlaps with
    receiving and encrypting instead of following them, so the final fsync has little left to wait
    for. The queue is bounded, so memory stays flat when the disk is slow. A small object (most files
    of a bid) is written in the caller's thread: starting a thread costs more than its writes.
    """

    def __init__(self, fh: BinaryIO, inline_bytes: int = 1 << 20, writeback_every: int = 8 << 20) -> None:
        self._fh, self._inline, self._every = fh, inline_bytes, writeback_every
        self._pieces: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._error: list[BaseException] = []
        self._thread: threading.Thread | None = None
        self._written = self._started = 0  # bytes handed to the OS; bytes whose writeback was started

    def write(self, data: bytes, /) -> object:
        if self._error:
            raise BidprocError(Code.STORAGE_UNAVAILABLE, f"writing failed: {self._error[0]}")
        if self._thread is None and self._written + len(data) <= self._inline:
            try:
                self._put(bytes(data))
            except OSError as exc:
                raise BidprocError(Code.STORAGE_UNAVAILABLE, f"writing failed: {exc}") from exc
            return len(data)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="store-write", daemon=True)
            self._thread.start()
        self._pieces.put(bytes(data))
        return len(data)

    def _put(self, piece: bytes) -> None:
        self._fh.write(piece)
        self._written += len(piece)
        if self._written - self._started >= self._every:
            # Start writing this range to disk without waiting for it (on Linux, DONTNEED starts the
            # writeback of dirty pages and cannot drop them before they are clean; mm/fadvise.c). A
            # blocking fdatasync here stalled the whole upload behind the disk every 64 MB, and with
            # no hint the kernel would start only ~30 s later: the final fsync then wrote everything.
            self._fh.flush()
            with contextlib.suppress(OSError):  # only a hint: a file system without it still gets the fsync
                os.posix_fadvise(self._fh.fileno(), self._started, self._written - self._started,
                                 os.POSIX_FADV_DONTNEED)
            self._started = self._written

    def _run(self) -> None:
        while (piece := self._pieces.get()) is not None:
            if self._error:
                continue
            try:
                self._put(piece)
            except OSError as exc:
                self._error.append(exc)

    def close(self) -> None:
        """Wait for every piece to be written and synced; raise what the writing thread met."""
        if self._thread is not None:
            self._pieces.put(None)
            self._thread.join()
        if self._error:
            raise BidprocError(Code.STORAGE_UNAVAILABLE, f"writing failed: {self._error[0]}")
        self._fh.flush()
        os.fsync(self._fh.fileno())


class _QueueReader:
    """The read() side of a bounded pipe: minio's uploader pulls what the API pushes, in step."""

    def __init__(self, chunks: queue.Queue[bytes | None]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._eof = False

    def read(self, size: int = -1) -> bytes:
        while not self._eof and (size < 0 or len(self._buffer) < size):
            item = self._chunks.get()
            if item is _ABORT:
                raise _UploadAborted("writer aborted the upload")
            if item is None:
                self._eof = True
            else:
                self._buffer += item
        if size < 0:
            size = len(self._buffer)
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


class _S3Writer:
    def __init__(self, chunks: queue.Queue[bytes | None], failed: threading.Event) -> None:
        self._chunks = chunks
        self._failed = failed

    def write(self, data: bytes) -> None:
        if self._failed.is_set():
            raise BidprocError(Code.STORAGE_UNAVAILABLE, "object store upload failed")
        while True:
            try:
                self._chunks.put(bytes(data), timeout=1)
                return
            except queue.Full:
                if self._failed.is_set():
                    raise BidprocError(Code.STORAGE_UNAVAILABLE, "object store upload failed") from None


class S3Store:
    """Any S3 endpoint (MinIO in production, moto_server in tests) through the minio SDK."""

    PART_SIZE = 16 << 20  # multipart parts: bounded memory whatever the object size

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        region: str = "us-east-1",
        secure: bool = False,
    ) -> None:
        from minio import Minio

        self.bucket = bucket
        self._client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region)
        with self._errors("create bucket"):
            if not self._client.bucket_exists(bucket):
                self._client.make_bucket(bucket)

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        from minio.error import S3Error
        from urllib3.exceptions import HTTPError

        try:
            yield
        except S3Error as exc:
            if exc.code in {"NoSuchKey", "NoSuchObject"}:
                raise BidprocError(Code.STORAGE_NOT_FOUND, f"{what}: {exc.message}") from exc
            raise BidprocError(Code.STORAGE_UNAVAILABLE, f"{what}: {exc.code} {exc.message}") from exc
        except (HTTPError, OSError) as exc:
            raise BidprocError(Code.STORAGE_UNAVAILABLE, f"{what}: {exc}") from exc

    @contextlib.contextmanager
    def open_writer(self, key: str) -> Iterator[ObjectWriter]:
        chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        failed = threading.Event()
        error: list[BaseException] = []

        def upload() -> None:
            try:
                with self._errors(f"put {key}"):
                    self._client.put_object(
                        self.bucket,
                        _check_key(key),
                        cast(BinaryIO, _QueueReader(chunks)),
                        length=-1,
                        part_size=self.PART_SIZE,
                        num_parallel_uploads=1,
                    )
            except _UploadAborted:
                pass
            except BaseException as exc:  # handed to the writer's thread below
                error.append(exc)
                failed.set()
                with contextlib.suppress(queue.Empty):  # unblock a writer waiting on a full queue
                    while True:
                        chunks.get_nowait()

        thread = threading.Thread(target=upload, name=f"s3-put-{key}", daemon=True)
        thread.start()
        try:
            yield _S3Writer(chunks, failed)
        except BaseException:
            # Abort: the uploader sees an error mid-stream and the multipart upload is not completed.
            failed.set()
            chunks.put(_ABORT)
            raise
        finally:
            if not failed.is_set():
                chunks.put(None)
            thread.join()
        if error:
            raise error[0]

    def put_bytes(self, key: str, data: bytes) -> None:
        import io

        with self._errors(f"put {key}"):
            self._client.put_object(self.bucket, _check_key(key), io.BytesIO(data), len(data))

    def get_bytes(self, key: str) -> bytes:
        with self._errors(f"get {key}"):
            response = self._client.get_object(self.bucket, _check_key(key))
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

    def size(self, key: str) -> int:
        with self._errors(f"stat {key}"):
            return int(self._client.stat_object(self.bucket, _check_key(key)).size or 0)

    def read_at(self, key: str, offset: int, length: int) -> bytes:
        with self._errors(f"get {key}"):
            response = self._client.get_object(self.bucket, _check_key(key), offset=offset, length=length)
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
            return True
        except BidprocError as exc:
            if exc.code is Code.STORAGE_NOT_FOUND:
                return False
            raise

    def delete(self, key: str) -> None:
        with self._errors(f"delete {key}"):
            self._client.remove_object(self.bucket, _check_key(key))

    def keys(self, prefix: str = "") -> Iterator[str]:
        with self._errors(f"list {prefix}"):
            for obj in self._client.list_objects(self.bucket, prefix=prefix, recursive=True):
                yield str(obj.object_name)


class StoredObject:
    """A :class:`~bidproc.encryption.stream.RangeSource` over one object, for seekable decryption."""

    def __init__(self, store: ObjectStore, key: str) -> None:
        self._store = store
        self._key = key
        self.size = store.size(key)

    def read_at(self, offset: int, length: int) -> bytes:
        return self._store.read_at(self._key, offset, length)


def open_store(settings: Settings) -> ObjectStore:
    s = settings.storage
    if s.backend == "local":
        return LocalStore(settings.local_store_path)
    if s.backend == "s3":
        return S3Store(
            s.s3_endpoint, s.s3_access_key, s.s3_secret_key, s.s3_bucket, region=s.s3_region, secure=s.s3_secure
        )
    raise BidprocError(Code.CONFIG_INVALID, f"storage.backend must be 'local' or 's3', not {s.backend!r}")
