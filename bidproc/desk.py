"""The deposit desk: tenders are opened, bids are drafted, files stream in, bids are submitted.

This is the service's front office; the HTTP API is a thin layer over it. Every access to bid data is
journalled in the same transaction as what it records.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bidproc.domain import BidStatus, Tender, clean_file_name, utc
from bidproc.encryption.stream import Encryptor
from bidproc.errors import BidprocError, Code
from bidproc.intake.limits import IntakeLimits
from bidproc.intake.receive import DepositReceipt, ReceivedFile, issue_receipt, receipt_body
from bidproc.journal.chain import append
from bidproc.metadata.models import BidRow, DocumentRow, ReceiptRow, TenderRow
from bidproc.runtime import Runtime


def bid_prefix(tender_id: str, bid_id: str) -> str:
    return f"tenders/{tender_id}/bids/{bid_id}"


def tender_of(row: TenderRow) -> Tender:
    return Tender(row.id, row.tenant_id, row.reference, row.title, row.buyer, row.deadline)


class Desk:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    # -- tenders -------------------------------------------------------------------------------
    def create_tender(
        self,
        tenant: str,
        reference: str,
        title: str,
        buyer: str,
        deadline: datetime,
        intake_policy: dict[str, Any] | None = None,
    ) -> TenderRow:
        now = self.rt.clock()
        deadline = utc(deadline)
        if intake_policy:
            try:
                IntakeLimits.from_mapping(intake_policy)  # refuse a policy the pipeline could not apply
            except BidprocError as exc:
                raise BidprocError(Code.REQUEST_INVALID, f"intake policy: {exc.message}") from exc
        if deadline <= now:
            raise BidprocError(Code.DEADLINE_INVALID, "the deadline must be in the future")
        with self.rt.db.session() as s:
            taken = s.execute(
                select(TenderRow).where(TenderRow.tenant_id == tenant, TenderRow.reference == reference)
            ).scalar_one_or_none()
            if taken is not None:
                raise BidprocError(Code.TENDER_DUPLICATE, f"tender {reference!r} already exists")
            row = TenderRow(
                id=str(uuid.uuid4()),
                tenant_id=tenant,
                reference=reference,
                title=title,
                buyer=buyer,
                deadline=deadline,
                created_at=now,
                intake_policy=intake_policy or None,
            )
            s.add(row)
            append(
                s,
                actor=tenant,
                action="tender.created",
                subject=row.id,
                now=now,
                detail={"reference": reference, "deadline": deadline.isoformat()},
            )
            return row

    def tender(self, tenant: str, tender_id: str) -> TenderRow:
        with self.rt.db.session() as s:
            return self._tender(s, tenant, tender_id)

    def _tender(self, s: Session, tenant: str, tender_id: str) -> TenderRow:
        row = s.get(TenderRow, tender_id)
        if row is None or row.tenant_id != tenant:
            self._denied(s, tenant, tender_id, "tender")
            raise BidprocError(Code.TENDER_NOT_FOUND, f"no tender {tender_id}")
        return row

    def _bid(self, s: Session, tenant: str, bid_id: str, *, lock: bool = False) -> tuple[BidRow, TenderRow]:
        query = select(BidRow).where(BidRow.id == bid_id)
        bid = s.execute(query.with_for_update() if lock else query).scalar_one_or_none()
        tender = s.get(TenderRow, bid.tender_id) if bid is not None else None
        if bid is None or tender is None or tender.tenant_id != tenant:
            self._denied(s, tenant, bid_id, "bid")
            raise BidprocError(Code.BID_NOT_FOUND, f"no bid {bid_id}")
        return bid, tender

    def _denied(self, s: Session, tenant: str, subject: str, what: str) -> None:
        # Another tenant's object answers "not found" (no existence leak), but the attempt is journalled
        # in its own transaction so that the caller's rollback does not erase it.
        with self.rt.db.session() as js:
            append(
                js,
                actor=tenant,
                action="access.denied",
                subject=subject,
                now=self.rt.clock(),
                detail={"what": what, "reason": "not found for this tenant"},
            )

    # -- bids ----------------------------------------------------------------------------------
    def create_bid(self, tenant: str, tender_id: str, bidder: str) -> BidRow:
        now = self.rt.clock()
        if not bidder.strip():
            raise BidprocError(Code.REQUEST_INVALID, "bidder is empty")
        _, wrapped = self.rt.service_key.new_data_key()
        with self.rt.db.session() as s:
            tender = self._tender(s, tenant, tender_id)
            if now > tender.deadline:
                raise BidprocError(Code.DEADLINE_PASSED, "the deadline of this tender has passed")
            row = BidRow(
                id=str(uuid.uuid4()),
                tender_id=tender.id,
                bidder=bidder,
                status=BidStatus.DRAFT.value,
                wrapped_key=wrapped,
                created_at=now,
                updated_at=now,
                late=False,
                attempts=0,
            )
            s.add(row)
            append(s, actor=tenant, action="bid.created", subject=row.id, now=now, detail={"tender": tender.id})
            return row

    def begin_upload(self, tenant: str, bid_id: str, name: str) -> Upload:
        name = clean_file_name(name)
        with self.rt.db.session() as s:
            bid, tender = self._bid(s, tenant, bid_id)
            if bid.status != BidStatus.DRAFT.value:
                raise BidprocError(Code.BID_ALREADY_SUBMITTED, "files can only be added to a bid not yet submitted")
            exists = s.execute(
                select(DocumentRow.id).where(DocumentRow.bid_id == bid_id, DocumentRow.name == name)
            ).first()
            if exists:
                raise BidprocError(Code.FILE_DUPLICATE, f"file {name!r} is already in this bid")
            count = s.execute(
                select(func.count()).select_from(DocumentRow).where(DocumentRow.bid_id == bid_id)
            ).scalar()
            if (count or 0) >= self.rt.settings.api.max_files_per_bid:
                raise BidprocError(Code.SIZE_TOO_LARGE, "too many files in this bid")
            key = self.rt.service_key.unwrap(bid.wrapped_key)
            doc_id = str(uuid.uuid4())
            object_key = f"{bid_prefix(tender.id, bid.id)}/files/{doc_id}.enc"
        return Upload(self, tenant, bid_id, doc_id, name, object_key, key)

    def submit(self, tenant: str, bid_id: str) -> tuple[BidRow, DepositReceipt]:
        """Close the bid and issue its receipt. Late bids get a receipt marked late, then ``deadline.passed``."""
        with self.rt.db.session() as s:
            bid, tender_row = self._bid(s, tenant, bid_id, lock=True)
            if bid.status != BidStatus.DRAFT.value:
                raise BidprocError(Code.BID_ALREADY_SUBMITTED, f"bid is already {bid.status}")
            docs = s.execute(select(DocumentRow).where(DocumentRow.bid_id == bid_id)).scalars().all()
            if not docs:
                raise BidprocError(Code.BID_EMPTY, "a bid needs at least one file")
            # The upload ends with this request: its time decides lateness (French rule).
            received_at = self.rt.clock()
            tender = tender_of(tender_row)
            body = receipt_body(
                tender=tender,
                bid_id=bid.id,
                bidder=bid.bidder,
                received_at=received_at,
                files=[ReceivedFile(d.name, d.size, d.sha256) for d in docs],
                tsa_name=self.rt.tsa.name,
                tsa_qualified=False,
            )
            receipt = issue_receipt(body, self.rt.tsa, self.rt.sealer, received_at)
            late = tender.is_late(received_at)
            bid.status = (BidStatus.LATE if late else BidStatus.SUBMITTED).value
            bid.late, bid.upload_ended_at, bid.updated_at = late, received_at, received_at
            s.add(
                ReceiptRow(
                    bid_id=bid.id,
                    body=receipt.body,
                    timestamp_token=receipt.timestamp.response_der,
                    seal=receipt.seal,
                    created_at=received_at,
                )
            )
            append(
                s,
                actor=tenant,
                action="bid.late" if late else "bid.submitted",
                subject=bid.id,
                now=received_at,
                detail={"receipt_sha256": receipt.sha256, "files": len(docs), "tender": tender.id},
            )
        return bid, receipt

    # -- reading -------------------------------------------------------------------------------
    def status(self, tenant: str, bid_id: str) -> dict[str, Any]:
        with self.rt.db.session() as s:
            bid, tender = self._bid(s, tenant, bid_id)
            docs = s.execute(
                select(DocumentRow).where(DocumentRow.bid_id == bid_id).order_by(DocumentRow.name)
            ).scalars()
            append(s, actor=tenant, action="bid.status.read", subject=bid_id, now=self.rt.clock())
            return {
                "id": bid.id,
                "tender": tender.id,
                "bidder": bid.bidder,
                "status": bid.status,
                "late": bid.late,
                "received_at": bid.upload_ended_at.isoformat() if bid.upload_ended_at else None,
                "files": [
                    {
                        "name": d.name,
                        "size": d.size,
                        "sha256": d.sha256,
                        "verdict": d.verdict,
                        "code": d.code,
                        "detail": d.detail or {},
                    }
                    for d in docs
                ],
                "outcome": bid.outcome or {},
            }

    def receipt(self, tenant: str, bid_id: str) -> ReceiptRow:
        with self.rt.db.session() as s:
            self._bid(s, tenant, bid_id)
            row = s.get(ReceiptRow, bid_id)
            if row is None:
                raise BidprocError(Code.BID_NOT_FOUND, "this bid has no receipt yet: submit it first")
            append(s, actor=tenant, action="bid.receipt.read", subject=bid_id, now=self.rt.clock())
            return row


@dataclass
class Upload:
    """One file streaming in: encrypted chunk by chunk on its way to the object store."""

    desk: Desk
    tenant: str
    bid_id: str
    doc_id: str
    name: str
    object_key: str
    data_key: bytes

    def __post_init__(self) -> None:
        self._stack = contextlib.ExitStack()
        writer = self._stack.enter_context(self.desk.rt.store.open_writer(self.object_key))
        self._encryptor = Encryptor(self.data_key, writer.write)
        self._limit = self.desk.rt.settings.api.max_file_bytes

    def write(self, data: bytes) -> None:
        if self._encryptor.size + len(data) > self._limit:
            raise BidprocError(Code.SIZE_TOO_LARGE, f"file larger than {self._limit} bytes")
        self._encryptor.write(data)

    def abort(self, exc: BaseException) -> None:
        self._stack.__exit__(type(exc), exc, exc.__traceback__)

    def commit(self) -> DocumentRow:
        sha = self._encryptor.finish()
        self._stack.close()  # the object is now complete under its final key
        rt = self.desk.rt
        now = rt.clock()
        with rt.db.session() as s:
            bid, _ = self.desk._bid(s, self.tenant, self.bid_id, lock=True)
            if bid.status != BidStatus.DRAFT.value:
                raise BidprocError(Code.BID_ALREADY_SUBMITTED, "the bid was submitted during this upload")
            row = DocumentRow(
                id=self.doc_id,
                bid_id=self.bid_id,
                name=self.name,
                size=self._encryptor.size,
                sha256=sha,
                object_key=self.object_key,
                uploaded_at=now,
                verdict="pending",
            )
            s.add(row)
            bid.updated_at = now
            append(
                s,
                actor=self.tenant,
                action="file.received",
                subject=self.bid_id,
                now=now,
                detail={"document": self.doc_id, "size": row.size, "sha256": sha},
            )
        return row
