"""Chunked AES-256-GCM: bid files are encrypted as they stream in and decrypted chunk by chunk.

A recipe in the spirit of cryptography's ``fernet.py``: a simple format over a hidden layer.
Written by hand because no maintained library offers *streaming, seekable* AEAD over files of
several GB (cryptography's AESGCM is one-shot). The construction follows the STREAM scheme
(Hoang, Reyhanitabar, Rogaway, Vizár 2015): a per-file key derived with HKDF from the bid's data key
and a random salt; each chunk sealed under nonce = chunk counter, with a "final" flag in the associated
data, so chunks cannot be reordered, dropped, duplicated or the file truncated undetected.

Layout::

    header  = b"BIDPENC1" || u32 chunk_size || salt(16)          (28 bytes)
    chunk_i = AES-256-GCM(file_key, nonce=u96(i), aad=header || final_flag)   (plaintext <= chunk_size, + 16 tag)

The last chunk is the only one with final_flag = 1; an empty file is one empty final chunk.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from collections import deque
from collections.abc import Callable
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bidproc.errors import BidprocError, Code

MAGIC = b"BIDPENC1"
HEADER_LEN = len(MAGIC) + 4 + 16
TAG_LEN = 16
DEFAULT_CHUNK = 1 << 20


def _file_key(data_key: bytes, salt: bytes, context: bytes) -> AESGCM:
    if len(data_key) != 32:
        raise ValueError("data keys are 32 bytes (AES-256)")
    # The context (the object's key in the store) is bound into the file key: an object moved or
    # swapped to another key of the same bid no longer decrypts.
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"bidproc file v1\0" + context).derive(data_key)
    return AESGCM(key)


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


class Encryptor:
    """Encrypts a stream written to it in pieces, and hashes the plaintext on the way.

    ``sink`` receives ciphertext; nothing else sees the plaintext. Call :meth:`finish` once.
    """

    def __init__(self, data_key: bytes, sink: Callable[[bytes], object], chunk_size: int = DEFAULT_CHUNK,
                 *, context: bytes = b"") -> None:
        if not 4096 <= chunk_size <= 64 << 20:
            raise ValueError("chunk_size must be between 4 KiB and 64 MiB")
        salt = os.urandom(16)
        self._header = MAGIC + struct.pack(">I", chunk_size) + salt
        self._aead = _file_key(data_key, salt, context)
        self._chunk = chunk_size
        self._sink = sink
        # Plaintext not yet sealed, as the pieces written (no copy): a piece of exactly one chunk, as the
        # API hands over, is sealed straight from the caller's bytes; others are joined once per chunk.
        self._pending: deque[bytes | memoryview] = deque()
        self._pending_len = 0
        self._index = 0
        self._sha = hashlib.sha256()
        self.size = 0
        self._finished = False
        sink(self._header)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._finished:
            raise ValueError("encryptor already finished")
        if not data:
            return
        if not isinstance(data, bytes):
            data = bytes(data)  # kept until sealed: the caller may reuse a mutable buffer
        self._sha.update(data)
        self.size += len(data)
        self._pending.append(data)
        self._pending_len += len(data)
        # Keep at least one byte back: the final chunk must be sealed with the final flag.
        while self._pending_len > self._chunk:
            self._seal(self._take(self._chunk), final=False)

    def _take(self, n: int) -> bytes | memoryview:
        """The first ``n`` pending bytes: a view when one piece holds them, else one join."""
        parts: list[bytes | memoryview] = []
        need = n
        while need:
            piece = self._pending.popleft()
            if len(piece) > need:
                view = memoryview(piece)
                piece, rest = view[:need], view[need:]
                self._pending.appendleft(rest)
            parts.append(piece)
            need -= len(piece)
        self._pending_len -= n
        return parts[0] if len(parts) == 1 else b"".join(parts)  # b"" for the empty final chunk

    def finish(self) -> str:
        """Seal the last chunk; returns the plaintext's SHA-256 (hex)."""
        if not self._finished:
            self._seal(self._take(self._pending_len), final=True)
            self._finished = True
        return self._sha.hexdigest()

    def _seal(self, plain: bytes | memoryview, final: bool) -> None:
        aad = self._header + (b"\x01" if final else b"\x00")
        self._sink(self._aead.encrypt(_nonce(self._index), plain, aad))
        self._index += 1


def encrypt_bytes(data_key: bytes, data: bytes, chunk_size: int = DEFAULT_CHUNK, *, context: bytes = b"") -> bytes:
    out = io.BytesIO()
    enc = Encryptor(data_key, out.write, chunk_size, context=context)
    enc.write(data)
    enc.finish()
    return out.getvalue()


class RangeSource(Protocol):
    """Random access to ciphertext: an object in the store, or bytes in memory."""

    size: int

    def read_at(self, offset: int, length: int) -> bytes: ...


class BytesSource:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self.size = len(data)

    def read_at(self, offset: int, length: int) -> bytes:
        return self._data[offset : offset + length]


class DecryptingReader(io.RawIOBase):
    """A seekable, read-only plaintext view of an encrypted object; authenticates every chunk it reads.

    Memory stays at one chunk whatever the file size, so zipfile, clamd and pikepdf can read bids of
    several GB. Any tampering raises ``storage.integrity``.
    """

    def __init__(self, data_key: bytes, source: RangeSource, *, context: bytes = b"") -> None:
        super().__init__()
        if source.size < HEADER_LEN + TAG_LEN:
            raise BidprocError(Code.STORAGE_INTEGRITY, "encrypted object is truncated")
        header = source.read_at(0, HEADER_LEN)
        if header[: len(MAGIC)] != MAGIC:
            raise BidprocError(Code.STORAGE_INTEGRITY, "not a bidproc encrypted object")
        (self._chunk,) = struct.unpack(">I", header[len(MAGIC) : len(MAGIC) + 4])
        if not 4096 <= self._chunk <= 64 << 20:  # read before it is authenticated: bound it
            raise BidprocError(Code.STORAGE_INTEGRITY, "encrypted object has an impossible chunk size")
        self._header = header
        self._aead = _file_key(data_key, header[len(MAGIC) + 4 :], context)
        self._source = source
        body = source.size - HEADER_LEN
        stride = self._chunk + TAG_LEN
        self._count = max(1, -(-body // stride))
        last = body - (self._count - 1) * stride
        if last < TAG_LEN:
            raise BidprocError(Code.STORAGE_INTEGRITY, "encrypted object is truncated")
        self.length = (self._count - 1) * self._chunk + last - TAG_LEN
        self._pos = 0
        self._cached: tuple[int, bytes] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.length}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def _plain_chunk(self, index: int) -> bytes:
        if self._cached and self._cached[0] == index:
            return self._cached[1]
        stride = self._chunk + TAG_LEN
        ciphertext = self._source.read_at(HEADER_LEN + index * stride, stride)
        final = index == self._count - 1
        try:
            plain = self._aead.decrypt(_nonce(index), ciphertext, self._header + (b"\x01" if final else b"\x00"))
        except InvalidTag as exc:
            raise BidprocError(Code.STORAGE_INTEGRITY, f"chunk {index} failed authentication") from exc
        self._cached = (index, plain)
        return plain

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._pos >= self.length:
            return 0
        index, within = divmod(self._pos, self._chunk)
        piece = self._plain_chunk(index)[within : within + len(buffer)]
        buffer[: len(piece)] = piece
        self._pos += len(piece)
        return len(piece)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self.length - self._pos
        parts = []
        while size > 0:
            buf = bytearray(min(size, self._chunk))
            n = self.readinto(buf)
            if not n:
                break
            parts.append(bytes(buf[:n]))
            size -= n
        return b"".join(parts)


def decrypt_bytes(data_key: bytes, blob: bytes, *, context: bytes = b"") -> bytes:
    return DecryptingReader(data_key, BytesSource(blob), context=context).read()
