"""The buyer's side of the desk: opening dates, the opening ceremony, and reading what was opened.

Every refusal here (too early, a bad quorum, a deadline already passed) is journalled before it is
answered, and every read of opened content is journalled each time (Annex IV (g)).

Opening a bid: its sealed objects are unsealed (streamed) with the tender's private key, rebuilt in
memory from k shares, and re-encrypted at once under a fresh per-bid data key wrapped by the service
key (``opened/``), so the opened documents stay readable by buyer keys only (Annex IV (f)) and no
plaintext touches storage. Late and quarantined bids are listed apart and not opened.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, BinaryIO, NoReturn, cast

from sqlalchemy import select

from bidproc.archive.store import StoredObject, bid_prefix
from bidproc.desk.deposit import Desk, journals_denials
from bidproc.desk.tenants import Caller
from bidproc.domain import BidStatus, Stage, clean_file_name, utc
from bidproc.encryption import tender_keys
from bidproc.encryption.committee import combine
from bidproc.encryption.envelope import unseal
from bidproc.encryption.recipients import PrivateKey
from bidproc.encryption.stage import SEALED_SUFFIX, SOURCE_SUFFIX, sealed_key
from bidproc.encryption.stream import DecryptingReader, Encryptor
from bidproc.errors import BidprocError, Code
from bidproc.journal.anchor import anchor
from bidproc.journal.chain import append
from bidproc.metadata.models import BidRow, DocumentRow, StageRunRow, TenderRow
from bidproc.pipeline.stages import report_key

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


def read_sealed(rt: Any, key: str) -> BinaryIO:
    return cast(BinaryIO, io.BufferedReader(ObjectReader(StoredObject(rt.store, key)), READ_STEP))


class _EncryptingSink:
    def __init__(self, encryptor: Encryptor) -> None:
        self._encryptor = encryptor

    def write(self, data: bytes | memoryview) -> None:
        self._encryptor.write(bytes(data))


class OpeningDesk(Desk):
    def _refuse(self, caller: Caller, action: str, subject: str, code: Code, message: str,
                **detail: Any) -> NoReturn:
        with self.rt.db.session() as s:
            append(s, actor=caller.tenant, action=action, subject=subject, now=self.rt.clock(),
                   detail={"code": code.value, "reason": message, "key_id": caller.key_id, **detail})
        raise BidprocError(code, message)

    # -- opening dates ---------------------------------------------------------------------------
    @journals_denials
    def change_deadline(self, caller: Caller, tender_id: str, deadline: datetime) -> TenderRow:
        now, deadline = self.rt.clock(), utc(deadline)
        with self.rt.db.session() as s:
            tender = self._tender(s, caller.tenant, tender_id)
            old = tender.deadline
        if now > old:
            self._refuse(caller, "tender.deadline.refused", tender_id, Code.DEADLINE_PASSED,
                         "the deadline has passed: it can no longer be changed",
                         old=old.isoformat(), new=deadline.isoformat())
        if deadline <= now:
            raise BidprocError(Code.DEADLINE_INVALID, "the new deadline must be in the future")
        with self.rt.db.session() as s:
            tender = s.execute(select(TenderRow).where(TenderRow.id == tender_id).with_for_update()).scalar_one()
            if self.rt.clock() > tender.deadline:  # passed while we were checking
                raise BidprocError(Code.DEADLINE_PASSED, "the deadline has passed: it can no longer be changed")
            old, tender.deadline = tender.deadline, deadline
            append(s, actor=caller.tenant, action="tender.deadline.changed", subject=tender_id, now=now,
                   detail={"old": old.isoformat(), "new": deadline.isoformat(), "key_id": caller.key_id,
                           "role": caller.role.value})
            return tender

    # -- the opening -----------------------------------------------------------------------------
    @journals_denials
    def open(self, caller: Caller, tender_id: str, shares: Sequence[str]) -> dict[str, Any]:
        now = self.rt.clock()
        with self.rt.db.session() as s:
            tender = self._tender(s, caller.tenant, tender_id)
            deadline, opening = tender.deadline, tender.opening
            bids = list(s.execute(select(BidRow).where(BidRow.tender_id == tender_id)
                                  .order_by(BidRow.created_at)).scalars())
            sealed = {r.bid_id for r in s.execute(select(StageRunRow).where(
                StageRunRow.bid_id.in_([b.id for b in bids]), StageRunRow.stage == Stage.ENCRYPTION.value)).scalars()}
        if now <= deadline:
            self._refuse(caller, "opening.refused", tender_id, Code.OPENING_TOO_EARLY,
                         f"the tender opens after its deadline ({deadline.isoformat()})", shares=len(shares))
        if opening is None:
            self._refuse(caller, "opening.refused", tender_id, Code.OPENING_OFFLINE,
                         "this tender has no opening key (created before sealing)")
        try:
            private = combine(tender_keys.committee_key(opening), shares)
        except BidprocError as exc:
            # the message names the faulty share by position, never its words
            self._refuse(caller, "opening.refused", tender_id, exc.code, exc.message, shares=len(shares))
        cert = tender_keys.certificates(opening)[0]
        answer: dict[str, list[Any]] = {"opened": [], "late": [], "quarantined": [], "pending": [], "failed": []}
        try:
            for bid in bids:
                if bid.status == BidStatus.DRAFT.value:
                    continue
                if bid.late or bid.status == BidStatus.LATE.value:
                    answer["late"].append(bid.id)
                elif bid.status == BidStatus.QUARANTINED.value:
                    answer["quarantined"].append(bid.id)  # French rule: a bid with malware is not read
                elif bid.opened_at is not None:
                    answer["opened"].append(bid.id)
                elif bid.status == BidStatus.FAILED.value:
                    answer["failed"].append({"bid": bid.id, "code": (bid.outcome or {}).get("error", "internal.error"),
                                             "message": "the pipeline failed: sealed as a trace, not opened"})
                elif bid.id not in sealed or bid.wrapped_key is not None:
                    answer["pending"].append(bid.id)  # still in the pipeline: open again once it is sealed
                else:
                    try:
                        self._open_bid(caller, bid, private, cert)
                        answer["opened"].append(bid.id)
                    except BidprocError as exc:
                        answer["failed"].append({"bid": bid.id, "code": exc.code.value, "message": exc.message})
                        with self.rt.db.session() as s:
                            append(s, actor=caller.tenant, action="bid.open_failed", subject=bid.id,
                                   now=self.rt.clock(), detail={"code": exc.code.value, "reason": exc.message})
        finally:
            del private  # Python cannot wipe it; no reference outlives this frame
        with self.rt.db.session() as s:
            row = s.execute(select(TenderRow).where(TenderRow.id == tender_id).with_for_update()).scalar_one()
            row.opened_at = row.opened_at or now
            append(s, actor=caller.tenant, action="tender.opened", subject=tender_id, now=now,
                   detail={**answer, "key_id": caller.key_id, "shares": len(shares)})
        try:  # the chain head at every opening, timestamped
            answer_anchor: int | None = anchor(self.rt.db.session, self.rt.tsa, self.rt.clock(),
                                               actor=caller.tenant)
        except BidprocError:
            answer_anchor = None
        return {**answer, "journal_anchored_seq": answer_anchor}

    def _open_bid(self, caller: Caller, bid: BidRow, private: PrivateKey, cert: Any) -> None:
        prefix = bid_prefix(bid.tender_id, bid.id)
        with self.rt.db.session() as s:
            hashes = {d.object_key: d.sha256 for d in s.execute(
                select(DocumentRow).where(DocumentRow.bid_id == bid.id)).scalars()}
        data_key, wrapped = self.rt.service_key.new_data_key()
        count = 0
        for sealed in sorted(k for k in self.rt.store.keys(f"{prefix}/sealed/") if k.endswith(SEALED_SUFFIX)):
            target = opened_key(prefix, sealed, wrapped)
            with self.rt.store.open_writer(target) as writer:
                encryptor = Encryptor(data_key, writer.write, context=target.encode())
                unseal(read_sealed(self.rt, sealed), cast(BinaryIO, _EncryptingSink(encryptor)), private, cert,
                       digest=False)
                digest = encryptor.finish()
                expected = hashes.get(sealed)
                if expected is not None and digest != expected:  # raised inside: the object never appears
                    raise BidprocError(Code.STORAGE_INTEGRITY, f"{sealed} does not open to the received file")
            count += 1
        with self.rt.db.session() as s:
            row = s.execute(select(BidRow).where(BidRow.id == bid.id).with_for_update()).scalar_one()
            if row.opened_at is not None:
                return  # another opening of this bid committed first; ours are orphans nobody can decrypt
            row.wrapped_key, row.opened_at = wrapped, self.rt.clock()
            append(s, actor=caller.tenant, action="bid.opened", subject=bid.id, now=self.rt.clock(),
                   detail={"objects": count, "key_id": caller.key_id})

    # -- reading ---------------------------------------------------------------------------------
    def _document(self, caller: Caller, bid_id: str, name: str) -> tuple[BidRow, TenderRow, DocumentRow]:
        name = clean_file_name(name)
        with self.rt.db.session() as s:
            bid, tender = self._bid(s, caller.tenant, bid_id)
            doc = s.execute(select(DocumentRow).where(DocumentRow.bid_id == bid_id,
                                                      DocumentRow.name == name)).scalar_one_or_none()
        if self.rt.clock() <= tender.deadline:
            self._refuse(caller, "document.read.refused", bid_id, Code.OPENING_TOO_EARLY,
                         f"nothing of a bid is readable before the deadline ({tender.deadline.isoformat()})",
                         name=name)
        if doc is None:
            raise BidprocError(Code.FILE_NOT_FOUND, f"no file {name!r} in this bid")
        return bid, tender, doc

    @journals_denials
    def opened_document(self, caller: Caller, bid_id: str, name: str) -> tuple[int, Iterator[bytes]]:
        """The original bytes, streamed; only once the bid is opened."""
        bid, _, doc = self._document(caller, bid_id, name)
        return self._opened(caller, bid, doc.object_key, {"document": doc.id, "key_id": caller.key_id}, name)

    @journals_denials
    def opened_report(self, caller: Caller, bid_id: str, name: str, fmt: str) -> tuple[int, Iterator[bytes]]:
        """A document's signature report in one form (json, xml, html, pdf), once the bid is opened: it
        was sealed with the bid (who signed an offer says whose offer it is)."""
        bid, _, doc = self._document(caller, bid_id, name)
        prefix = bid_prefix(bid.tender_id, bid.id)
        sealed = sealed_key(prefix, report_key(prefix, doc.id, fmt))
        if not self.rt.store.exists(sealed):
            raise BidprocError(Code.FILE_NOT_FOUND, f"no {fmt} report for {name!r}: it carries no signature")
        detail = {"document": doc.id, "report": fmt, "key_id": caller.key_id}
        return self._opened(caller, bid, sealed, detail, name)

    def _opened(self, caller: Caller, bid: BidRow, sealed: str, detail: dict[str, Any],
                name: str) -> tuple[int, Iterator[bytes]]:
        if bid.opened_at is None or bid.wrapped_key is None:
            self._refuse(caller, "document.read.refused", bid.id, Code.OPENING_TOO_EARLY,
                         "this bid is not opened (late and quarantined bids never are)", name=name)
        source = opened_key(bid_prefix(bid.tender_id, bid.id), sealed, bid.wrapped_key)
        reader = DecryptingReader(self.rt.service_key.unwrap(bid.wrapped_key), StoredObject(self.rt.store, source),
                                  context=source.encode())
        with self.rt.db.session() as s:
            append(s, actor=caller.tenant, action="document.read", subject=bid.id, now=self.rt.clock(),
                   detail=detail)
        return reader.length, _chunks(reader)

    @journals_denials
    def sealed_document(self, caller: Caller, bid_id: str, name: str) -> tuple[int, Iterator[bytes]]:
        """The CMS envelope (DER), for opening offline; refused before the deadline."""
        _, _, doc = self._document(caller, bid_id, name)
        if not doc.object_key.endswith(SEALED_SUFFIX):
            raise BidprocError(Code.OPENING_TOO_EARLY, "this bid is not sealed (late, or still in the pipeline)")
        source = StoredObject(self.rt.store, doc.object_key)
        with self.rt.db.session() as s:
            append(s, actor=caller.tenant, action="document.sealed.read", subject=bid_id, now=self.rt.clock(),
                   detail={"document": doc.id, "key_id": caller.key_id})
        return source.size, _chunks(ObjectReader(source))


def _chunks(reader: io.RawIOBase) -> Iterator[bytes]:
    while True:
        buffer = bytearray(READ_STEP)
        n = reader.readinto(buffer)
        if not n:
            return
        yield bytes(buffer[:n])
