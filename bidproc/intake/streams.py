"""Small stream wrappers so every pass over a file is one pass: hash while scanning, stop at a limit.

Files can be 2 GB and arrive decrypted chunk by chunk, so nothing here reads a whole stream into
memory; each wrapper forwards ``read`` and looks at the bytes on the way.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import IO, BinaryIO

Opener = Callable[[], BinaryIO]


class LimitExceeded(Exception):
    """A stream produced more bytes than it was allowed to (an inflating member, whatever it claimed)."""

    def __init__(self, limit: int, what: str) -> None:
        super().__init__(f"{what} exceeds {limit} bytes")
        self.limit = limit
        self.what = what


class HashingReader(io.RawIOBase):
    """Forwards reads and keeps the SHA-256 and byte count of everything read."""

    def __init__(self, inner: IO[bytes], watch: tuple[bytes, ...] = ()) -> None:
        self._inner = inner
        self._hash = hashlib.sha256()
        self.count = 0
        # byte patterns to look for on the way (e.g. a macro storage name in an OLE2 file), so that
        # spotting them costs no extra pass; ``_carry`` keeps a pattern split across two reads findable
        self._watch = watch
        self._carry = b""
        self.seen: set[bytes] = set()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        if data:
            self._hash.update(data)
            self.count += len(data)
            if self._watch:
                window = self._carry + data
                self.seen.update(p for p in self._watch if p not in self.seen and p in window)
                self._carry = window[-max(len(p) for p in self._watch) :]
        return data

    def drain(self, chunk: int = 1 << 20) -> None:
        """Read what is left (clamd may stop reading early; the hash must still cover everything)."""
        while self.read(chunk):
            pass

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


class BoundedReader(io.RawIOBase):
    """Forwards reads and raises :class:`LimitExceeded` as soon as more than ``limit`` bytes came out.

    This is what stops an inflating archive member whatever its headers claim.
    """

    def __init__(self, inner: IO[bytes], limit: int, what: str) -> None:
        self._inner = inner
        self._limit = limit
        self._what = what
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        # never ask for more than one byte past the limit, so a bomb costs at most limit + 1 bytes
        room = self._limit - self.count + 1
        data = self._inner.read(room if size is None or size < 0 else min(size, room))
        self.count += len(data)
        if self.count > self._limit:
            raise LimitExceeded(self._limit, self._what)
        return data


def stream_size(stream: IO[bytes]) -> int:
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    return size


def read_head(opener: Opener, size: int) -> bytes:
    with opener() as stream:
        return stream.read(size)


def read_tail(opener: Opener, size: int) -> bytes:
    with opener() as stream:
        end = stream.seek(0, io.SEEK_END)
        stream.seek(max(0, end - size))
        return stream.read(size)


def read_bounded(opener: Opener, limit: int, what: str) -> bytes:
    """The whole stream, for the few things that must be in memory (a PDF to normalise, small XML)."""
    with opener() as stream:
        out = io.BytesIO()
        reader = BoundedReader(stream, limit, what)
        while chunk := reader.read(1 << 20):
            out.write(chunk)
        return out.getvalue()


def bytes_opener(data: bytes) -> Opener:
    return lambda: io.BytesIO(data)
