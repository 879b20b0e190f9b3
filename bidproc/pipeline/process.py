"""Carry one bid through its stages, exactly once, whatever the redeliveries and crashes.

Idempotency: a stage's completion is a ``stage_runs`` row keyed (bid, stage), written in the same
transaction as its results; a redelivered message skips completed stages and documents that already
have a verdict. The final status and its journal entry are written once, under the bid's row lock.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from bidproc.archive.store import bid_prefix
from bidproc.domain import BidStatus, Stage, Verdict
from bidproc.encryption import stage as sealing
from bidproc.errors import RETRY_CODES, RETRY_POLICY, BidprocError, Code, Retry
from bidproc.intake.limits import IntakeLimits
from bidproc.journal.chain import append
from bidproc.metadata.models import BidRow, DocumentRow, ReceiptRow, StageRunRow, TenderRow
from bidproc.pipeline import lease, stages
from bidproc.pipeline.sandbox import IntakeSandbox, SandboxLimits
from bidproc.runtime import Runtime

log = logging.getLogger(__name__)

NOT_READ: dict[str, Any] = {
    "verdict": Verdict.QUARANTINED.value,
    "code": Code.BID_QUARANTINED.value,
    "detail": {"report": {}, "malware": [], "message": "not read: another file of this bid carries malware"},
}


@dataclass(frozen=True)
class Outcome:
    bid_id: str
    status: str
    ran: tuple[str, ...] = ()
    note: str = ""


def _needed(key: bytes | None) -> bytes:
    if key is None:  # stages run in order: only a stage after the encryption stage runs without the key
        raise BidprocError(Code.INTERNAL_ERROR, "the bid is sealed: its data key is destroyed")
    return key


class BidWaits(BidprocError):
    """A stage could not run for now (``errors.RETRY_POLICY``); ``waits``: how many times in a row."""

    def __init__(self, cause: BidprocError, waits: int) -> None:
        super().__init__(cause.code, cause.message)
        self.waits = waits


class BidProcessor:
    def __init__(self, rt: Runtime, worker_id: str) -> None:
        self.rt = rt
        self.worker_id = worker_id

    def process(self, bid_id: str) -> Outcome:
        # A fresh owner per delivery: two deliveries of one bid in two threads of one process must not
        # both believe they hold it.
        owner = f"{self.worker_id}:{uuid.uuid4().hex[:8]}"
        with lease.held(self.rt, bid_id, owner, self.rt.settings.queue.lease_seconds) as mine:
            if not mine:
                return Outcome(bid_id, "held", note="another worker holds this bid")
            try:
                outcome = self._process(bid_id)
            except BidprocError as exc:
                if exc.code in RETRY_CODES:
                    try:
                        waits = self._waiting(bid_id, exc)
                    except BidprocError as down:  # the database is down too: the status says so once it is back
                        if down.code is not Code.DATABASE_UNAVAILABLE:
                            raise
                        waits = 1
                    raise BidWaits(exc, waits) from exc
                raise
            return outcome

    def _waiting(self, bid_id: str, exc: BidprocError) -> int:
        """Say on the bid why it waits (e.g. clamd down), so the platform sees it in the status; returns
        how many times it has waited in a row (for the backoff).

        An outage of the environment (``Retry.WAIT``) gives the delivery back: it is not the bid's doing,
        so however long clamd or the storage is down, the bid never runs out of attempts for it.
        """
        with self.rt.db.session() as s:
            bid = s.get(BidRow, bid_id)
            if bid is None or BidStatus(bid.status).final:
                return 0
            waits = int((bid.outcome or {}).get("waits", 0)) + 1
            bid.outcome = {**(bid.outcome or {}), "waiting": exc.code.value, "message": exc.message, "waits": waits}
            if RETRY_POLICY[exc.code] is Retry.WAIT:
                bid.attempts = max(0, bid.attempts - 1)
            return waits

    def _seal_late(self, bid_id: str) -> bool:
        """A late bid is never processed, but it is sealed like any other (the service keeps no key to it)
        and archived: its evidence package proves what came in, and when."""
        with self.rt.db.session() as s:
            bid = s.get(BidRow, bid_id)
            receipt = s.get(ReceiptRow, bid_id)
            if bid is None or bid.status != BidStatus.LATE.value or receipt is None:
                return False
            key = self.rt.service_key.unwrap(bid.wrapped_key) if bid.wrapped_key is not None else None
            prefix, content_hash = bid_prefix(bid.tender_id, bid.id), hashlib.sha256(receipt.body).hexdigest()
            done = {r.stage for r in s.execute(select(StageRunRow).where(StageRunRow.bid_id == bid_id)).scalars()}
        if key is not None:
            sealing.run(self.rt, self.worker_id, bid_id, key, content_hash, prefix)
        if Stage.ARCHIVE.value not in done:
            late = {"late": "not processed: the deposit ended after the deadline"}
            result = stages.archive_manifest(self.rt, self._documents(bid_id), receipt, prefix, late)
            self._complete(bid_id, Stage.ARCHIVE, content_hash, result)
        return True

    def _process(self, bid_id: str) -> Outcome:
        rt = self.rt
        if self._seal_late(bid_id):
            return Outcome(bid_id, BidStatus.LATE.value, (Stage.ENCRYPTION.value, Stage.ARCHIVE.value),
                           "late: sealed and archived, not processed")
        with rt.db.session() as s:
            bid = s.get(BidRow, bid_id)
            if bid is None:
                return Outcome(bid_id, "missing", note="no such bid")
            if BidStatus(bid.status).final or bid.status == BidStatus.DRAFT.value:
                return Outcome(bid_id, bid.status, note="nothing to do")
            if bid.status == BidStatus.SUBMITTED.value:
                bid.status = BidStatus.PROCESSING.value
                bid.updated_at = rt.clock()
            bid.attempts += 1
            if bid.attempts > rt.settings.queue.max_attempts:
                # A poison bid (it crashes or kills its workers) stops here, kept for a human to look at.
                bid.status, bid.updated_at = BidStatus.FAILED.value, rt.clock()
                bid.outcome = {**(bid.outcome or {}), "error": Code.PIPELINE_ATTEMPTS_EXHAUSTED.value,
                               "message": f"gave up after {rt.settings.queue.max_attempts} attempts"}
                append(s, actor=self.worker_id, action="bid.failed", subject=bid_id, now=rt.clock(),
                       detail=bid.outcome)
                return Outcome(bid_id, bid.status, note="attempts exhausted")
            # None once the encryption stage has sealed the bid and destroyed its data key
            key = rt.service_key.unwrap(bid.wrapped_key) if bid.wrapped_key is not None else None
            prefix = bid_prefix(bid.tender_id, bid.id)
            tender = s.get(TenderRow, bid.tender_id)
            assert tender is not None
            limits = IntakeLimits.from_mapping(tender.intake_policy or {})
            receipt = s.get(ReceiptRow, bid_id)
            assert receipt is not None, "a submitted bid always has its receipt"
            content_hash = hashlib.sha256(receipt.body).hexdigest()
            done = {r.stage for r in s.execute(select(StageRunRow).where(StageRunRow.bid_id == bid_id)).scalars()}
        ran: list[str] = []

        if Stage.INTAKE.value not in done:
            infected = False
            box = SandboxLimits(rt.settings.intake.sandbox_memory_bytes, rt.settings.intake.sandbox_seconds)
            with IntakeSandbox(rt.settings, _needed(key), limits, box) as sandbox:
                for doc in self._documents(bid_id):
                    if doc.verdict == Verdict.QUARANTINED.value:
                        infected = True
                    if doc.verdict != Verdict.PENDING.value:
                        continue  # decided by an earlier delivery
                    if infected:
                        # French rule: a bid in which malware was found is not read any further.
                        self._record_verdict(bid_id, doc.id, NOT_READ)
                        continue
                    result = sandbox.inspect(doc_id=doc.id, name=doc.name, object_key=doc.object_key,
                                             sha256=doc.sha256, size=doc.size, prefix=prefix)
                    self._record_verdict(bid_id, doc.id, result)
                    infected = infected or result["verdict"] == Verdict.QUARANTINED.value
            self._complete(bid_id, Stage.INTAKE, content_hash, {})
            ran.append(Stage.INTAKE.value)

        docs = self._documents(bid_id)
        quarantined = any(d.verdict == Verdict.QUARANTINED.value for d in docs)
        summaries: dict[str, Any] = {}
        if Stage.SIGNATURE.value not in done:
            # French rule: a bid in which malware was found is not read any further.
            summary = (
                {"skipped": "malware.detected"}
                if quarantined
                else stages.signature_reports(rt, _needed(key), docs, receipt, prefix)
            )
            self._complete(bid_id, Stage.SIGNATURE, content_hash, summary)
            ran.append(Stage.SIGNATURE.value)
        if Stage.ENCRYPTION.value not in done:
            if sealing.run(rt, self.worker_id, bid_id, key, content_hash, prefix):
                ran.append(Stage.ENCRYPTION.value)
            docs = self._documents(bid_id)  # they now point at the sealed objects
        else:
            sealing.remove_leftovers(rt, bid_id, prefix)  # a crash between the commit and the deletion
        with rt.db.session() as s:
            summaries = {
                r.stage: r.result for r in s.execute(select(StageRunRow).where(StageRunRow.bid_id == bid_id)).scalars()
            }
        if Stage.ARCHIVE.value not in done:
            result = stages.archive_manifest(rt, docs, receipt, prefix, summaries)
            self._complete(bid_id, Stage.ARCHIVE, content_hash, result)
            ran.append(Stage.ARCHIVE.value)
        return self._finish(bid_id, docs, quarantined, tuple(ran))

    def _record_verdict(self, bid_id: str, doc_id: str, result: dict[str, Any]) -> None:
        with self.rt.db.session() as s:
            row = s.get(DocumentRow, doc_id)
            assert row is not None
            row.verdict, row.code, row.detail = result["verdict"], result["code"], result["detail"]
            if result["detail"]["malware"]:
                append(s, actor=self.worker_id, action="malware.detected", subject=bid_id, now=self.rt.clock(),
                       detail={"document": doc_id, "malware": result["detail"]["malware"]})

    def _documents(self, bid_id: str) -> list[DocumentRow]:
        with self.rt.db.session() as s:
            return list(
                s.execute(select(DocumentRow).where(DocumentRow.bid_id == bid_id).order_by(DocumentRow.name)).scalars()
            )

    def _complete(self, bid_id: str, stage: Stage, content_hash: str, result: dict[str, Any]) -> None:
        now = self.rt.clock()
        with self.rt.db.session() as s:
            if s.get(StageRunRow, (bid_id, stage.value)) is not None:
                return
            s.add(
                StageRunRow(
                    bid_id=bid_id, stage=stage.value, content_hash=content_hash, completed_at=now, result=result
                )
            )
            bid = s.get(BidRow, bid_id)
            if bid is not None:
                bid.updated_at = now
            append(s, actor=self.worker_id, action=f"stage.{stage.value}.done", subject=bid_id, now=now)

    def _finish(self, bid_id: str, docs: list[DocumentRow], quarantined: bool, ran: tuple[str, ...]) -> Outcome:
        now = self.rt.clock()
        status = BidStatus.QUARANTINED if quarantined else BidStatus.PROCESSED
        with self.rt.db.session() as s:
            bid = s.execute(select(BidRow).where(BidRow.id == bid_id).with_for_update()).scalar_one()
            if BidStatus(bid.status).final:
                return Outcome(bid_id, bid.status, ran, "already final")
            bid.status, bid.updated_at = status.value, now
            bid.outcome = {
                "verdicts": {d.name: {"verdict": d.verdict, "code": d.code} for d in docs},
                "malware": [m for d in docs for m in (d.detail or {}).get("malware", [])],
            }
            append(
                s,
                actor=self.worker_id,
                action="bid.processed",
                subject=bid_id,
                now=now,
                detail={"status": status.value, "attempts": bid.attempts},
            )
        return Outcome(bid_id, status.value, ran)
