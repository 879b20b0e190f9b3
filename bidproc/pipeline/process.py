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
from bidproc.domain import BidStatus, Document, Stage, Verdict
from bidproc.encryption import stage as sealing
from bidproc.errors import RETRY_CODES, RETRY_POLICY, BidprocError, Code, Retry
from bidproc.intake.limits import IntakeLimits
from bidproc.journal.chain import append
from bidproc.metadata.models import BidRow, DocumentRow, ReceiptRow, StageRunRow, TenderRow
from bidproc.pipeline import lease, stages
from bidproc.pipeline.outcomes import DocumentOutcome, SignatureOutcome
from bidproc.runtime import Runtime
from bidproc.sandbox import SandboxFailure
from bidproc.sandbox.document import DocumentLimits, DocumentSandbox

log = logging.getLogger(__name__)
# What the document sandbox runs for each document (named, not imported: it is imported in the child).
INTAKE_TASK = "bidproc.pipeline.stages:intake_in_sandbox"

# Bids sealed as they are stored, never processed (again): see _seal_trace.
TRACES = frozenset({BidStatus.LATE.value, BidStatus.FAILED.value})


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


def inspect_in(sandbox: DocumentSandbox, doc: Document, prefix: str) -> DocumentOutcome:
    """One document's intake in the bid's document sandbox (started with :data:`INTAKE_TASK`)."""
    try:
        outcome: DocumentOutcome = sandbox.run((doc, prefix), doc.size)
    except SandboxFailure as failure:
        if not failure.on_input:
            raise  # the sandbox never got to the document: retried, never a verdict
        return DocumentOutcome.refused(failure.code, failure.message)
    return outcome


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

    def _seal_trace(self, bid_id: str) -> str | None:
        """A late or failed bid is never processed (again), but it is sealed like any other, as it is
        stored (the service keeps no key to it), and archived: its evidence package proves what came in,
        and when. Returns its status when it was such a bid."""
        with self.rt.db.session() as s:
            bid = s.get(BidRow, bid_id)
            if bid is None or bid.status not in TRACES or bid.opened_at is not None:
                return None
            key = self.rt.service_key.unwrap(bid.wrapped_key) if bid.wrapped_key is not None else None
            status, prefix = bid.status, bid_prefix(bid.tender_id, bid.id)
            receipt = s.get(ReceiptRow, bid_id)
            content_hash = hashlib.sha256(receipt.body if receipt else b"").hexdigest()
        if key is not None:
            try:
                sealing.run(self.rt, self.worker_id, bid_id, key, content_hash, prefix, trace=True)
            except Exception as exc:
                self._trace_failed(bid_id, exc)
                raise
        self._archive_trace(bid_id, status, prefix, content_hash)
        return status

    def _archive_trace(self, bid_id: str, status: str, prefix: str, content_hash: str) -> None:
        with self.rt.db.session() as s:
            receipt = s.get(ReceiptRow, bid_id)
            done = {r.stage for r in s.execute(select(StageRunRow).where(StageRunRow.bid_id == bid_id)).scalars()}
            body = receipt.value() if receipt is not None else None
        if body is None or Stage.ARCHIVE.value in done:
            return
        note = ({"late": "not processed: the deposit ended after the deadline"} if status == BidStatus.LATE.value
                else {"failed": "not processed further: the pipeline gave up on this bid"})
        result = stages.archive_manifest(self.rt, self._documents(bid_id), body, prefix, note)
        self._complete(bid_id, Stage.ARCHIVE, content_hash, result.to_json())

    def _trace_failed(self, bid_id: str, exc: Exception) -> None:
        """Count a failed sealing of a trace (an outage is not counted): the reconciler stops after
        ``max_attempts``, and the journal says the bid is left under the service key."""
        code = getattr(getattr(exc, "code", None), "value", type(exc).__name__)
        if isinstance(exc, BidprocError) and RETRY_POLICY.get(exc.code) is Retry.WAIT:
            return
        with self.rt.db.session() as s:
            bid = s.get(BidRow, bid_id)
            if bid is None:
                return
            tries = int((bid.outcome or {}).get("seal_attempts", 0)) + 1
            bid.outcome = {**(bid.outcome or {}), "seal_attempts": tries, "seal_error": code}
            bid.updated_at = self.rt.clock()
            action = "bid.seal.gave_up" if tries >= self.rt.settings.queue.max_attempts else "bid.seal.failed"
            append(s, actor=self.worker_id, action=action, subject=bid_id, now=self.rt.clock(),
                   detail={"code": code, "message": str(exc)[:500], "attempts": tries})

    def _process(self, bid_id: str) -> Outcome:
        rt = self.rt
        traced = self._seal_trace(bid_id)
        if traced is not None:
            trace_stages = (Stage.ENCRYPTION.value, Stage.ARCHIVE.value)
            return Outcome(bid_id, traced, trace_stages, f"{traced}: sealed and archived as a trace, not processed")
        with rt.db.session() as s:
            bid = s.get(BidRow, bid_id)
            if bid is None:
                return Outcome(bid_id, "missing", note="no such bid")
            if BidStatus(bid.status).final or bid.status == BidStatus.DRAFT.value:
                return Outcome(bid_id, bid.status, note="nothing to do")
            if bid.status == BidStatus.SEALED.value:  # strict: nothing readable until the opening enqueues it
                return Outcome(bid_id, bid.status, note="sealed: processed after the opening")
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
            receipt_row = s.get(ReceiptRow, bid_id)
            assert receipt_row is not None, "a submitted bid always has its receipt"
            receipt = receipt_row.value()
            content_hash = hashlib.sha256(receipt.body).hexdigest()
            done = {r.stage for r in s.execute(select(StageRunRow).where(StageRunRow.bid_id == bid_id)).scalars()}
        ran: list[str] = []

        if Stage.INTAKE.value not in done:
            self._intake(bid_id, _needed(key), limits, prefix)
            self._complete(bid_id, Stage.INTAKE, content_hash, {})
            ran.append(Stage.INTAKE.value)

        docs = self._documents(bid_id)
        quarantined = any(d.verdict is Verdict.QUARANTINED for d in docs)
        summaries: dict[str, Any] = {}
        if Stage.SIGNATURE.value not in done:
            # French rule: a bid in which malware was found is not read any further.
            signed = (
                SignatureOutcome.not_read()
                if quarantined
                else stages.signature_reports(rt, _needed(key), docs, receipt, prefix)
            )
            self._complete(bid_id, Stage.SIGNATURE, content_hash, signed.to_json())
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
            archived = stages.archive_manifest(rt, docs, receipt, prefix, summaries)
            self._complete(bid_id, Stage.ARCHIVE, content_hash, archived.to_json())
            ran.append(Stage.ARCHIVE.value)
        return self._finish(bid_id, docs, quarantined, tuple(ran))

    def _intake(self, bid_id: str, key: bytes, limits: IntakeLimits, prefix: str) -> None:
        """Each document not yet decided, in the document sandbox; its outcome recorded as it comes."""
        settings = self.rt.settings
        box = DocumentLimits(settings.intake.sandbox_memory_bytes, settings.intake.sandbox_seconds)
        infected = False
        with DocumentSandbox(INTAKE_TASK, (settings, key, limits), box) as sandbox:
            for doc in self._documents(bid_id):
                if doc.verdict is Verdict.QUARANTINED:
                    infected = True
                if doc.verdict is not Verdict.PENDING:
                    continue  # decided by an earlier delivery
                if infected:
                    # French rule: a bid in which malware was found is not read any further.
                    self._record_verdict(bid_id, doc.id, DocumentOutcome.not_read())
                    continue
                outcome = inspect_in(sandbox, doc, prefix)
                self._record_verdict(bid_id, doc.id, outcome)
                infected = infected or outcome.verdict is Verdict.QUARANTINED

    def _record_verdict(self, bid_id: str, doc_id: str, outcome: DocumentOutcome) -> None:
        with self.rt.db.session() as s:
            row = s.get(DocumentRow, doc_id)
            assert row is not None
            row.verdict, row.code = outcome.verdict.value, outcome.code.value if outcome.code else None
            row.detail = outcome.detail_json()
            if outcome.malware:
                append(s, actor=self.worker_id, action="malware.detected", subject=bid_id, now=self.rt.clock(),
                       detail={"document": doc_id, "malware": outcome.malware_json()})

    def _documents(self, bid_id: str) -> list[Document]:
        with self.rt.db.session() as s:
            rows = s.execute(select(DocumentRow).where(DocumentRow.bid_id == bid_id).order_by(DocumentRow.name))
            return [row.value() for row in rows.scalars()]

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

    def _finish(self, bid_id: str, docs: list[Document], quarantined: bool, ran: tuple[str, ...]) -> Outcome:
        now = self.rt.clock()
        status = BidStatus.QUARANTINED if quarantined else BidStatus.PROCESSED
        with self.rt.db.session() as s:
            bid = s.execute(select(BidRow).where(BidRow.id == bid_id).with_for_update()).scalar_one()
            if BidStatus(bid.status).final:
                return Outcome(bid_id, bid.status, ran, "already final")
            bid.status, bid.updated_at = status.value, now
            bid.outcome = {
                "verdicts": {d.name: {"verdict": d.verdict.value, "code": d.code.value if d.code else None}
                             for d in docs},
                "malware": [m for d in docs for m in d.detail.get("malware", [])],
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
