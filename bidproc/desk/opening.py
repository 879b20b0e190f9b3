"""The buyer's side of the desk: opening dates, the opening ceremony, and reading what was opened.

Every refusal here (too early, a bad quorum, a deadline already passed) is journalled before it is
answered, and every read of opened content is journalled each time (Annex IV (g)).

The opening: the request checks the deadline and the shares, then a queued job
(:mod:`bidproc.desk.opening_job`) unseals every on-time bid (:mod:`bidproc.desk.unsealing`). Late,
quarantined and failed bids are listed apart and not opened.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, NoReturn

from sqlalchemy import select

from bidproc.archive.store import StoredObject, bid_prefix
from bidproc.desk.deposit import Desk, journals_denials
from bidproc.desk.opening_job import OpeningJobs, run_view
from bidproc.desk.tenants import Caller
from bidproc.desk.unsealing import READ_STEP, ObjectReader, opened_key
from bidproc.domain import BidStatus, Tender, clean_file_name, utc
from bidproc.encryption import tender_keys
from bidproc.encryption.committee import combine
from bidproc.encryption.stage import SEALED_SUFFIX, SOURCE_SUFFIX, sealed_key
from bidproc.encryption.stream import DecryptingReader
from bidproc.errors import BidprocError, Code
from bidproc.journal.chain import append
from bidproc.metadata.models import BidRow, DocumentRow, OpeningRunRow, TenderRow
from bidproc.pipeline.stages import report_key
from bidproc.runtime import Runtime


class OpeningDesk(Desk):
    def __init__(self, runtime: Runtime, jobs: OpeningJobs) -> None:
        super().__init__(runtime)
        self.jobs = jobs

    def _refuse(self, caller: Caller, action: str, subject: str, code: Code, message: str,
                **detail: Any) -> NoReturn:
        with self.rt.db.session() as s:
            append(s, actor=caller.tenant, action=action, subject=subject, now=self.rt.clock(),
                   detail={"code": code.value, "reason": message, "key_id": caller.key_id, **detail})
        raise BidprocError(code, message)

    # -- opening dates ---------------------------------------------------------------------------
    @journals_denials
    def change_deadline(self, caller: Caller, tender_id: str, deadline: datetime) -> Tender:
        deadline = utc(deadline)
        with self.rt.db.session() as s:
            old = self._tender(s, caller.tenant, tender_id).deadline
        refusal = _deadline_refusal(old, deadline, self.rt.clock())
        if refusal is None:
            with self.rt.db.session() as s:
                tender = s.execute(select(TenderRow).where(TenderRow.id == tender_id).with_for_update()).scalar_one()
                # Judged again once the row is ours, by the clock of now: waiting for the lock may have taken
                # the old deadline or the new one into the past, and a deadline never takes effect passed.
                now, old = self.rt.clock(), tender.deadline
                refusal = _deadline_refusal(old, deadline, now)
                if refusal is None:
                    tender.deadline = deadline
                    append(s, actor=caller.tenant, action="tender.deadline.changed", subject=tender_id, now=now,
                           detail={"old": old.isoformat(), "new": deadline.isoformat(), "key_id": caller.key_id,
                                   "role": caller.role.value})
                    return tender.value()
        # refused outside the transaction: the refusal's journal entry is a write of its own
        assert refusal is not None  # every path that accepted the change returned above
        self._refuse(caller, "tender.deadline.refused", tender_id, *refusal, old=old.isoformat(),
                     new=deadline.isoformat())

    # -- the opening -----------------------------------------------------------------------------
    @journals_denials
    def open(self, caller: Caller, tender_id: str, shares: Sequence[str]) -> dict[str, Any]:
        """Check the deadline and the quorum now; the decryption runs as a job (:mod:`.opening_job`)."""
        now = self.rt.clock()
        with self.rt.db.session() as s:
            tender = self._tender(s, caller.tenant, tender_id)
            deadline, opening = tender.deadline, tender.opening
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
        try:
            return self.jobs.start(caller, tender_id, private, now)
        finally:
            del private  # Python cannot wipe it; no reference outlives this frame

    @journals_denials
    def opening_status(self, caller: Caller, tender_id: str) -> dict[str, Any]:
        """The latest opening run of the tender: its state and progress (``state: none`` before any)."""
        with self.rt.db.session() as s:
            self._tender(s, caller.tenant, tender_id)
            run = s.execute(select(OpeningRunRow).where(OpeningRunRow.tender_id == tender_id)
                            .order_by(OpeningRunRow.requested_at.desc()).limit(1)).scalar_one_or_none()
            return run_view(run) if run is not None else {"tender": tender_id, "state": "none"}

    # -- reading ---------------------------------------------------------------------------------
    def _document(self, caller: Caller, bid_id: str, name: str) -> tuple[BidRow, TenderRow, DocumentRow]:
        name = clean_file_name(name, receiving=False)
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
    def opened_files(self, caller: Caller, bid_id: str) -> dict[str, Any]:
        """The bid's files (name, size, SHA-256, role, intake verdict), once the bid is opened.

        Refused before (``409 opening.too_early``): a file's name may tell its content ("offre-prix-
        1234EUR.pdf"), and Annex IV (c)/(d) allow no access to a bid's data before the deadline.
        Late and quarantined bids are never opened, so never listed here.
        """
        with self.rt.db.session() as s:
            bid, tender = self._bid(s, caller.tenant, bid_id)
            docs = list(s.execute(select(DocumentRow).where(DocumentRow.bid_id == bid_id)
                                  .order_by(DocumentRow.name)).scalars())
        if self.rt.clock() <= tender.deadline or bid.opened_at is None or bid.status == BidStatus.QUARANTINED.value:
            self._refuse(caller, "document.list.refused", bid_id, Code.OPENING_TOO_EARLY,
                         "a bid's file names are shown once it is opened (late and quarantined bids never are)")
        with self.rt.db.session() as s:
            append(s, actor=caller.tenant, action="document.listed", subject=bid_id, now=self.rt.clock(),
                   detail={"key_id": caller.key_id, "files": len(docs)})
        return {"bid": bid_id, "opened_at": bid.opened_at.isoformat() if bid.opened_at else None,
                "files": [{"name": d.name, "size": d.size, "sha256": d.sha256, "role": "offer",
                           "verdict": d.verdict, "code": d.code} for d in docs]}

    @journals_denials
    def opened_document(self, caller: Caller, bid_id: str, name: str) -> tuple[int, Iterator[bytes]]:
        """The original bytes, streamed; only once the bid is opened."""
        bid, _, doc = self._document(caller, bid_id, name)
        return self._opened(caller, bid, doc.object_key, {"document": doc.id, "key_id": caller.key_id}, name)

    @journals_denials
    def opened_report(self, caller: Caller, bid_id: str, name: str, fmt: str) -> tuple[int, Iterator[bytes]]:
        """A document's signature report in one form (json, xml, html, pdf), once the bid is opened: it
        was sealed with the bid (who signed an offer says whose offer it is)."""
        bid, tender, doc = self._document(caller, bid_id, name)
        prefix = bid_prefix(bid.tender_id, bid.id)
        # strict: the report was made after the opening and never sealed (see desk.strict_opening)
        sealed = report_key(prefix, doc.id, fmt)
        if not tender_keys.is_strict(tender.opening):
            sealed = sealed_key(prefix, sealed)
        if not self.rt.store.exists(sealed):
            raise BidprocError(Code.FILE_NOT_FOUND, f"no {fmt} report for {name!r}: it carries no signature")
        detail = {"document": doc.id, "report": fmt, "key_id": caller.key_id}
        return self._opened(caller, bid, sealed, detail, name)

    def _opened(self, caller: Caller, bid: BidRow, sealed: str, detail: dict[str, Any],
                name: str) -> tuple[int, Iterator[bytes]]:
        if bid.opened_at is None or bid.wrapped_key is None:
            self._refuse(caller, "document.read.refused", bid.id, Code.OPENING_TOO_EARLY,
                         "this bid is not opened (late and quarantined bids never are)", name=name)
        if sealed.endswith(SOURCE_SUFFIX):  # strict: opened before it was processed (desk.strict_opening)
            if bid.status != BidStatus.PROCESSED.value:  # malware is looked for after the opening
                self._refuse(caller, "document.read.refused", bid.id, Code.OPENING_TOO_EARLY,
                             f"this bid is {bid.status}: it is readable once processed (quarantined: never)",
                             name=name)
            source = sealed
        else:
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
        bid, tender, doc = self._document(caller, bid_id, name)
        key = doc.object_key
        if tender_keys.is_strict(tender.opening):  # opened since: its envelope as received is still there
            key = f"{bid_prefix(bid.tender_id, bid.id)}/sealed/files/{doc.id}{SEALED_SUFFIX}"
        if not key.endswith(SEALED_SUFFIX):
            raise BidprocError(Code.OPENING_TOO_EARLY, "this bid is not sealed (late, or still in the pipeline)")
        source = StoredObject(self.rt.store, key)
        with self.rt.db.session() as s:
            append(s, actor=caller.tenant, action="document.sealed.read", subject=bid_id, now=self.rt.clock(),
                   detail={"document": doc.id, "key_id": caller.key_id})
        return source.size, _chunks(ObjectReader(source))


def _deadline_refusal(old: datetime, new: datetime, now: datetime) -> tuple[Code, str] | None:
    """Why a deadline may not change from ``old`` to ``new`` at ``now`` (None: it may)."""
    if now > old:
        return Code.DEADLINE_PASSED, "the deadline has passed: it can no longer be changed"
    if new <= now:
        return Code.DEADLINE_INVALID, "the new deadline must be in the future"
    return None


def _chunks(reader: io.RawIOBase) -> Iterator[bytes]:
    while True:
        buffer = bytearray(READ_STEP)
        n = reader.readinto(buffer)
        if not n:
            return
        yield bytes(buffer[:n])
