"""Opening a strict bid (``process_at: opening``): opened *before* it is processed.

A strict bid's files were sealed to the tender's certificate as they arrived (:mod:`bidproc.desk.upload`)
and the bid was parked (``sealed``): no worker could read it. At the opening, with the tender's private
key rebuilt from the committee's shares, each file is unsealed and re-encrypted under a fresh data key
wrapped by the service key (as the normal path stores uploads), checked against the SHA-256 in the
receipt on the way (a file that does not match never appears); then, in one transaction, the bid gets
that key, its documents point at the opened objects, it is marked opened and handed back to the
pipeline (``submitted``): intake, signature verification and the archive run on it as on any bid,
and the encryption stage leaves it as it is (it is legitimately readable by authorised people now).

The sealed objects stay where they are (what was received, as received), like a normal bid's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, BinaryIO, cast

from sqlalchemy import select

from bidproc.archive.store import bid_prefix
from bidproc.desk.unsealing import opened_key, read_sealed
from bidproc.domain import BidStatus
from bidproc.encryption.envelope import unseal
from bidproc.encryption.recipients import PrivateKey
from bidproc.encryption.stage import SEALED_SUFFIX
from bidproc.encryption.stream import Encryptor
from bidproc.errors import BidprocError, Code
from bidproc.journal.chain import append
from bidproc.metadata.models import BidRow, DocumentRow
from bidproc.runtime import Runtime


class _EncryptingSink:
    def __init__(self, encryptor: Encryptor) -> None:
        self._encryptor = encryptor

    def write(self, data: bytes | memoryview) -> None:
        self._encryptor.write(bytes(data))


def open_strict_bid(
    rt: Runtime,
    actor: str,
    key_id: str,
    bid: BidRow,
    private: PrivateKey,
    cert: Any,
    heartbeat: Callable[[], None] = lambda: None,
) -> bool:
    """Unseal a parked strict bid and hand it to the pipeline; False if another opening committed first
    (the caller enqueues the bid when True)."""
    prefix = bid_prefix(bid.tender_id, bid.id)
    with rt.db.session() as s:
        docs = [
            (d.id, d.object_key, d.sha256)
            for d in s.execute(
                select(DocumentRow).where(DocumentRow.bid_id == bid.id).order_by(DocumentRow.name)
            ).scalars()
        ]
    data_key, wrapped = rt.service_key.new_data_key()
    moved: dict[str, str] = {}
    for doc_id, sealed, expected in docs:
        if not sealed.endswith(SEALED_SUFFIX):
            raise BidprocError(Code.INTERNAL_ERROR, f"document {doc_id} of a strict bid is not sealed")
        target = opened_key(prefix, sealed, wrapped)
        with rt.store.open_writer(target) as writer:
            encryptor = Encryptor(data_key, writer.write, context=target.encode())
            unseal(read_sealed(rt, sealed), cast(BinaryIO, _EncryptingSink(encryptor)), private, cert, digest=False)
            if encryptor.finish() != expected:  # raised inside the writer: the object never appears
                raise BidprocError(Code.STORAGE_INTEGRITY, f"{sealed} does not open to the received file")
        moved[doc_id] = target
        heartbeat()
    del data_key  # Python cannot wipe it; its lasting form is the wrapped one
    now = rt.clock()
    with rt.db.session() as s:
        row = s.execute(select(BidRow).where(BidRow.id == bid.id).with_for_update()).scalar_one()
        if row.opened_at is not None or row.status != BidStatus.SEALED.value:
            return False  # another opening of this bid committed first; ours are orphans nobody can decrypt
        for doc in s.execute(select(DocumentRow).where(DocumentRow.bid_id == bid.id)).scalars():
            doc.object_key = moved[doc.id]
        row.wrapped_key, row.opened_at = wrapped, now
        row.status, row.updated_at = BidStatus.SUBMITTED.value, now
        append(
            s,
            actor=actor,
            action="bid.opened",
            subject=bid.id,
            now=now,
            detail={"objects": len(moved), "key_id": key_id, "strict": True},
        )
    return True
