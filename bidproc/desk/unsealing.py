"""Unsealing one bid at the opening: each sealed object is streamed out of its CMS envelope with the
tender's private key and re-encrypted at once under a fresh per-bid data key wrapped by the service
key (``opened/``), so the opened documents stay readable by buyer keys only (Annex IV (f)) and no
plaintext touches storage.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import Any, BinaryIO, cast

from sqlalchemy import select

from bidproc.archive.store import StoredObject, bid_prefix
from bidproc.encryption.envelope import unseal
from bidproc.encryption.recipients import PrivateKey
from bidproc.encryption.stage import SEALED_SUFFIX, SOURCE_SUFFIX
from bidproc.encryption.stream import Encryptor
from bidproc.errors import BidprocError, Code
from bidproc.journal.chain import append
from bidproc.metadata.models import BidRow, DocumentRow
from bidproc.runtime import Runtime

READ_STEP = 1 << 20


def opened_key(prefix: str, sealed: str, wrapped: bytes) -> str:
    """``<prefix>/sealed/files/<doc>.p7m`` -> ``<prefix>/opened/<k>/files/<doc>.enc``.

    ``<k>`` names the data key (a digest of its wrapped form), so two openings racing on one bid write
    apart: whichever commits its key, the objects under that key's name are its own.
    """
    relative = sealed[len(prefix) + len("/sealed/") :]
    key_name = hashlib.sha256(wrapped).hexdigest()[:16]
    return f"{prefix}/opened/{key_name}/{relative[: -len(SEALED_SUFFIX)]}{SOURCE_SUFFIX}"


class ObjectReader(io.RawIOBase):
    """A stored object read front to back in ranges (the envelope parser reads sequentially)."""

    def __init__(self, source: StoredObject) -> None:
        super().__init__()
        self._source, self._pos = source, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._pos >= self._source.size or not len(buffer):
            return 0  # S3 refuses an empty range
        piece = self._source.read_at(self._pos, min(len(buffer), self._source.size - self._pos))
        buffer[: len(piece)] = piece
        self._pos += len(piece)
        return len(piece)


def read_sealed(rt: Runtime, key: str) -> BinaryIO:
    return cast(BinaryIO, io.BufferedReader(ObjectReader(StoredObject(rt.store, key)), READ_STEP))


class _EncryptingSink:
    def __init__(self, encryptor: Encryptor) -> None:
        self._encryptor = encryptor

    def write(self, data: bytes | memoryview) -> None:
        self._encryptor.write(bytes(data))


def open_bid(rt: Runtime, actor: str, key_id: str, bid: BidRow, private: PrivateKey, cert: Any,
             heartbeat: Callable[[], None] = lambda: None) -> bool:
    """Unseal every sealed object of ``bid``; False if another opening of it committed first.

    ``heartbeat`` is called after each object (the opening job says it is alive).
    """
    prefix = bid_prefix(bid.tender_id, bid.id)
    with rt.db.session() as s:
        hashes = {d.object_key: d.sha256 for d in s.execute(
            select(DocumentRow).where(DocumentRow.bid_id == bid.id)).scalars()}
    data_key, wrapped = rt.service_key.new_data_key()
    count = 0
    for sealed in sorted(k for k in rt.store.keys(f"{prefix}/sealed/") if k.endswith(SEALED_SUFFIX)):
        target = opened_key(prefix, sealed, wrapped)
        with rt.store.open_writer(target) as writer:
            encryptor = Encryptor(data_key, writer.write, context=target.encode())
            unseal(read_sealed(rt, sealed), cast(BinaryIO, _EncryptingSink(encryptor)), private, cert,
                   digest=False)
            digest = encryptor.finish()
            expected = hashes.get(sealed)
            if expected is not None and digest != expected:  # raised inside: the object never appears
                raise BidprocError(Code.STORAGE_INTEGRITY, f"{sealed} does not open to the received file")
        count += 1
        heartbeat()
    with rt.db.session() as s:
        row = s.execute(select(BidRow).where(BidRow.id == bid.id).with_for_update()).scalar_one()
        if row.opened_at is not None:
            return False  # another opening of this bid committed first; ours are orphans nobody can decrypt
        row.wrapped_key, row.opened_at = wrapped, rt.clock()
        append(s, actor=actor, action="bid.opened", subject=bid.id, now=rt.clock(),
               detail={"objects": count, "key_id": key_id})
    return True
