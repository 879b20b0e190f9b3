"""The deposit desk: tenders are opened, bids are drafted, files stream in, bids are submitted.

This is the service's front office; the HTTP API is a thin layer over it. Every access to bid data is
journalled in the same transaction as what it records.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, NoReturn, TypeVar, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from bidproc.desk.receipt import DepositReceipt, ReceivedFile, issue_receipt, receipt_body
from bidproc.desk.upload import Upload, begin_upload
from bidproc.domain import Bid, BidStatus, Receipt, Tender, utc
from bidproc.encryption import tender_keys
from bidproc.errors import BidprocError, Code
from bidproc.intake.limits import IntakeLimits
from bidproc.journal.chain import append
from bidproc.metadata.models import BackupFileRow, BidRow, DocumentRow, JournalRow, ReceiptRow, StageRunRow, TenderRow
from bidproc.pipeline.outcomes import SignatureOutcome
from bidproc.runtime import Runtime
from bidproc.timestamps.tsa import LocalTSA, TimestampAuthority

log = logging.getLogger(__name__)
READ_JOURNAL_PERIOD = timedelta(hours=1)
SUBMIT_TRIES = 3  # receipts made again when the deadline moves during a submission, before giving up


class AccessDenied(BidprocError):
    """Another tenant's (or no) object: answered as not found, journalled as an attempt."""

    def __init__(self, code: Code, message: str, *, tenant: str, subject: str, what: str) -> None:
        super().__init__(code, message)
        self.tenant, self.subject, self.what = tenant, subject, what


class _DeadlineMoved(Exception):
    """The tender's deadline changed while a receipt was being made: it is made again, for ``tender``."""

    def __init__(self, tender: Tender) -> None:
        super().__init__(tender.id)
        self.tender = tender


F = TypeVar("F", bound=Callable[..., Any])


def journals_denials(method: F) -> F:
    @functools.wraps(method)
    def wrapper(self: Desk, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except AccessDenied as denied:
            self.journal_denial(denied)
            raise

    return cast(F, wrapper)


def check_intake_policy(policy: dict[str, Any]) -> IntakeLimits:
    """A tender may choose its file kinds, but may only *tighten* resource limits: the workers are shared,
    so no tenant can switch off bomb, size or parser bounds for everyone."""
    service = IntakeLimits()
    try:
        limits = IntakeLimits.from_mapping(policy, base=service)
    except BidprocError as exc:
        raise BidprocError(Code.REQUEST_INVALID, f"intake policy: {exc.message}") from exc
    for name in policy:
        mine, theirs = getattr(limits, name), getattr(service, name)
        if isinstance(mine, int | float) and not isinstance(mine, bool) and not mine <= theirs:
            raise BidprocError(Code.REQUEST_INVALID, f"intake policy: {name} may not exceed the service's {theirs}")
    return limits


def _is_our_id(object_id: str) -> bool:
    """Ids are the UUIDs we issued. Anything else is nobody's object and never reaches a query
    (PostgreSQL refuses NUL bytes with an error of its own); the attempt is journalled all the same."""
    try:
        return str(uuid.UUID(object_id)) == object_id
    except ValueError:
        return False


def _journal_safe(text: str) -> str:
    """A caller's text as a journal subject: escaped (no NUL, no control characters), bounded."""
    return text.encode("unicode_escape").decode("ascii")[:200]


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
        *,
        tender_id: str | None = None,
        opening: dict[str, Any] | None = None,
    ) -> Tender:
        """``opening``: what :func:`bidproc.encryption.tender_keys.setup` made for ``tender_id``; a tender
        without one is not sealed (its bids stay under the service key: only for tenders made before 0004)."""
        now = self.rt.clock()
        deadline = utc(deadline)
        if intake_policy:
            check_intake_policy(intake_policy)
        if deadline <= now:
            raise BidprocError(Code.DEADLINE_INVALID, "the deadline must be in the future")
        with self.rt.db.session() as s:
            taken = s.execute(
                select(TenderRow).where(TenderRow.tenant_id == tenant, TenderRow.reference == reference)
            ).scalar_one_or_none()
            if taken is not None:
                raise BidprocError(Code.TENDER_DUPLICATE, f"tender {reference!r} already exists")
            row = TenderRow(
                id=tender_id or str(uuid.uuid4()),
                tenant_id=tenant,
                reference=reference,
                title=title,
                buyer=buyer,
                deadline=deadline,
                created_at=now,
                intake_policy=intake_policy or None,
                opening=opening,
            )
            s.add(row)
            append(
                s,
                actor=tenant,
                action="tender.created",
                subject=row.id,
                now=now,
                detail={"reference": reference, "deadline": deadline.isoformat(),
                        "opening": (opening or {}).get("mode"),
                        "process_at": "opening" if tender_keys.is_strict(opening) else "receipt"},
            )
            return row.value()

    @journals_denials
    def tender(self, tenant: str, tender_id: str) -> Tender:
        with self.rt.db.session() as s:
            return self._tender(s, tenant, tender_id).value()

    def _tender(self, s: Session, tenant: str, tender_id: str) -> TenderRow:
        if not _is_our_id(tender_id):
            self._denied(s, tenant, _journal_safe(tender_id), "tender")
        row = s.get(TenderRow, tender_id)
        if row is None or row.tenant_id != tenant:
            self._denied(s, tenant, tender_id, "tender")
        return row

    def _bid(self, s: Session, tenant: str, bid_id: str, *, lock: bool = False) -> tuple[BidRow, TenderRow]:
        if not _is_our_id(bid_id):
            self._denied(s, tenant, _journal_safe(bid_id), "bid")
        query = select(BidRow).where(BidRow.id == bid_id)
        bid = s.execute(query.with_for_update() if lock else query).scalar_one_or_none()
        tender = s.get(TenderRow, bid.tender_id) if bid is not None else None
        if bid is None or tender is None or tender.tenant_id != tenant:
            self._denied(s, tenant, bid_id, "bid")
        return bid, tender

    def _denied(self, s: Session, tenant: str, subject: str, what: str) -> NoReturn:
        # Another tenant's object answers "not found" (no existence leak); the attempt is journalled by
        # @journals_denials once the caller's transaction is over (SQLite allows one writer at a time).
        raise AccessDenied(
            Code.TENDER_NOT_FOUND if what == "tender" else Code.BID_NOT_FOUND,
            f"no {what} {subject}",
            tenant=tenant,
            subject=subject,
            what=what,
        )

    def journal_denial(self, denied: AccessDenied) -> None:
        with self.rt.db.session() as s:
            append(
                s,
                actor=denied.tenant,
                action="access.denied",
                subject=denied.subject,
                now=self.rt.clock(),
                detail={"what": denied.what, "reason": "not found for this tenant"},
            )

    # -- bids ----------------------------------------------------------------------------------
    @journals_denials
    def create_bid(self, tenant: str, tender_id: str, bidder: str) -> Bid:
        now = self.rt.clock()
        if not bidder.strip():
            raise BidprocError(Code.REQUEST_INVALID, "bidder is empty")
        wrapped: bytes | None
        _, wrapped = self.rt.service_key.new_data_key()
        with self.rt.db.session() as s:
            tender = self._tender(s, tenant, tender_id)
            if now > tender.deadline:
                raise BidprocError(Code.DEADLINE_PASSED, "the deadline of this tender has passed")
            if tender_keys.is_strict(tender.opening):
                wrapped = None  # strict: its files are sealed as they arrive; the opening gives it a key
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
            return row.value()

    @journals_denials
    def begin_upload(self, tenant: str, bid_id: str, name: str, *, backup: bool = False) -> Upload:
        """A file of the bid (or, ``backup``, of its backup copy) about to stream in."""
        return begin_upload(self, tenant, bid_id, name, backup=backup)

    @journals_denials
    def submit(self, tenant: str, bid_id: str) -> tuple[Bid, DepositReceipt]:
        """Close the bid and issue its receipt. Late bids get a receipt marked late, then ``deadline.passed``.

        The time of this request ends the upload and decides lateness (French rule). The TSA is called
        outside any database transaction (a remote TSA may take seconds; SQLite has one writer), and if
        the configured TSA is down the embedded one stamps the receipt, which says so: an outage never
        turns an on-time bid into a late one.
        """
        with self.rt.db.reading() as s:  # a first look; the writing transaction below checks it all again
            bid, tender_row = self._bid(s, tenant, bid_id)
            if bid.status != BidStatus.DRAFT.value:
                raise BidprocError(Code.BID_ALREADY_SUBMITTED, f"bid is already {bid.status}")
            docs = s.execute(select(DocumentRow).where(DocumentRow.bid_id == bid_id)).scalars().all()
            backups = s.execute(select(BackupFileRow).where(BackupFileRow.bid_id == bid_id)).scalars().all()
            if not docs:
                raise BidprocError(Code.BID_EMPTY, "a bid needs at least one file")
            received_at = self.rt.clock()
            tender, bidder = tender_row.value(), bid.bidder
        files = [ReceivedFile(d.name, d.size, d.sha256) for d in docs]
        backup = [ReceivedFile(b.name, b.size, b.sha256, b.uploaded_at) for b in backups]
        expected = {"files": [d.id for d in docs], "backup_files": [b.id for b in backups]}
        for _ in range(SUBMIT_TRIES):
            receipt = self._receipt(tender, bid_id, bidder, files, received_at, backup)
            try:
                return self._record_submission(tenant, bid_id, tender, receipt, received_at, expected), receipt
            except _DeadlineMoved as moved:  # the same time of receipt, judged by the deadline that now stands
                tender = moved.tender
        raise BidprocError(Code.BID_CHANGED, "the tender's deadline kept changing during the submission: submit again")

    def _record_submission(self, tenant: str, bid_id: str, tender: Tender, receipt: DepositReceipt,
                           received_at: datetime, expected: dict[str, list[str]]) -> Bid:
        """Close the bid with ``receipt``, unless its files (``expected``: ids of its documents and backup
        files) or its tender's deadline changed since the receipt was made."""
        with self.rt.db.session() as s:
            bid, _ = self._bid(s, tenant, bid_id, lock=True)
            if bid.status != BidStatus.DRAFT.value:
                raise BidprocError(Code.BID_ALREADY_SUBMITTED, f"bid is already {bid.status}")
            # The tender's row, shared: a change of deadline committed before this point is seen here, and
            # one that comes later waits for this submission (and may not set a deadline already passed).
            # populate_existing: _bid() put the row in this session already, as it was then; without it the
            # ORM hands back that object and the locked read's fresh deadline is lost.
            tender_row = s.execute(select(TenderRow).where(TenderRow.id == tender.id).with_for_update(read=True)
                                   .execution_options(populate_existing=True)).scalar_one()
            if tender_row.value().deadline != tender.deadline:  # both in UTC (Tender's own)
                raise _DeadlineMoved(tender_row.value())
            now_docs = list(s.execute(select(DocumentRow.id).where(DocumentRow.bid_id == bid_id)).scalars())
            now_docs += s.execute(select(BackupFileRow.id).where(BackupFileRow.bid_id == bid_id)).scalars()
            if sorted(now_docs) != sorted(expected["files"] + expected["backup_files"]):
                raise BidprocError(Code.BID_CHANGED, "a file was added while the bid was being submitted: submit again")
            late = tender.is_late(received_at)
            # strict: parked, sealed, until the opening (bidproc.desk.strict_opening) hands it to the pipeline
            waiting = BidStatus.SEALED if tender_keys.is_strict(tender_row.opening) else BidStatus.SUBMITTED
            bid.status = (BidStatus.LATE if late else waiting).value
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
                detail={
                    "receipt_sha256": receipt.sha256,
                    "files": len(expected["files"]),
                    "backup_files": len(expected["backup_files"]),
                    "tender": tender.id,
                    "tsa": receipt.timestamp.tsa,
                },
            )
            return bid.value()

    def _receipt(
        self, tender: Tender, bid_id: str, bidder: str, files: list[ReceivedFile], received_at: datetime,
        backup: list[ReceivedFile],
    ) -> DepositReceipt:
        def issue(tsa: TimestampAuthority, name: str) -> DepositReceipt:
            body = receipt_body(
                tender=tender,
                bid_id=bid_id,
                bidder=bidder,
                received_at=received_at,
                files=files,
                tsa_name=name,
                tsa_qualified=False,
                backup=backup,
            )
            return issue_receipt(body, tsa, self.rt.sealer, received_at)

        try:
            return issue(self.rt.tsa, self.rt.tsa.name)
        except BidprocError as exc:
            if isinstance(self.rt.tsa, LocalTSA) or exc.code not in {
                Code.TIMESTAMP_UNAVAILABLE,
                Code.TIMESTAMP_INVALID,
            }:
                raise
            log.warning("TSA %s failed (%s): the receipt is stamped by the embedded TSA", self.rt.tsa.name, exc)
            local = LocalTSA(self.rt.local_pki)
            return issue(local, f"{local.name}; fallback because {self.rt.tsa.name} failed: {exc.code.value}")

    # -- reading -------------------------------------------------------------------------------
    @journals_denials
    def status(self, tenant: str, bid_id: str) -> dict[str, Any]:
        with self.rt.db.session() as s:
            bid, tender = self._bid(s, tenant, bid_id)
            docs = s.execute(
                select(DocumentRow).where(DocumentRow.bid_id == bid_id).order_by(DocumentRow.name)
            ).scalars()
            self._journal_read(s, tenant, bid_id, "bid.status.read")
            runs = {r.stage: r.result or {} for r in s.execute(
                select(StageRunRow).where(StageRunRow.bid_id == bid_id)).scalars()}
            signed = SignatureOutcome.from_json(runs.get("signature", {})).reports
            signatures = {name: {"bottom_line": r.bottom_line, "indications": list(r.indications)}
                          for name, r in signed.items()}
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
                "stages": sorted(runs),
                "signatures": signatures,  # per signed file; the full reports are stored encrypted
                "outcome": bid.outcome or {},
            }

    @journals_denials
    def tender_of_bid(self, tenant: str, bid_id: str) -> str:
        """The tender of one of ``tenant``'s bids (another tenant's answers not found, journalled)."""
        with self.rt.db.session() as s:
            return self._bid(s, tenant, bid_id)[1].id

    @journals_denials
    def receipt(self, tenant: str, bid_id: str) -> Receipt:
        with self.rt.db.session() as s:
            self._bid(s, tenant, bid_id)
            row = s.get(ReceiptRow, bid_id)
            if row is None:
                raise BidprocError(Code.BID_NOT_SUBMITTED, "this bid has no receipt yet: submit it first")
            self._journal_read(s, tenant, bid_id, "bid.receipt.read")
            return row.value()

    def _journal_read(self, s: Session, tenant: str, bid_id: str, action: str) -> None:
        """Journal a read of a bid's metadata once per platform, bid and hour (READ_JOURNAL_PERIOD).

        Platforms poll status every few seconds: one entry per poll would grow the journal without
        bound and serialise every poll on the journal head. Who read what, and from when, stays in the
        journal; reads of bid *content* (after the opening) are journalled every time.
        """
        now = self.rt.clock()
        recent = s.execute(
            select(JournalRow.seq).where(
                JournalRow.subject == bid_id,
                JournalRow.action == action,
                JournalRow.actor == tenant,
                JournalRow.at > now - READ_JOURNAL_PERIOD,
            ).limit(1)
        ).first()
        if recent is None:
            append(s, actor=tenant, action=action, subject=bid_id, now=now)
