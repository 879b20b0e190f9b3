"""Version 2 of a bid's evidence package, after the opening: the opened documents' hashes and the opening record.

The opening (``desk.opening``) re-encrypts each opened document under a fresh data key (``opened/``)
and checks that it opens to the bytes received (the SHA-256 in the receipt). Once a bid is opened,
:func:`archive_opened_bid` adds a package version holding those objects and ``objects/opening-record.json``
(the documents' hashes, where each sealed and opened object lies, and the journal entries of the opening,
with their chain hashes). It runs as a queued job (:func:`declare_actor`, queue ``archive``), never in
the opening request: a slow archive must not hold up the ceremony, and an outage is waited out.

Idempotent: a bid whose latest complete version already holds an opening record gets nothing new; an
unfinished version (a crash mid-way) is finished, not duplicated.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import dramatiq
from sqlalchemy import select

from bidproc.archive.evidence import archive_bid, journal_entry
from bidproc.archive.package import Written, version_prefix, versions
from bidproc.archive.store import bid_prefix
from bidproc.archive.worm import ArchiveStore, open_archive
from bidproc.desk.unsealing import opened_key
from bidproc.encryption import tender_keys
from bidproc.encryption.stage import SEALED_SUFFIX
from bidproc.errors import RETRY_POLICY, BidprocError, Code, Retry, wait_delay_seconds
from bidproc.journal.chain import append
from bidproc.metadata.models import BidRow, DocumentRow, JournalRow, ReceiptRow, TenderRow
from bidproc.runtime import Runtime

log = logging.getLogger(__name__)
ACTOR = "archive_opened_bid"
QUEUE = "archive"
RECORD = "objects/opening-record.json"


def opening_record(rt: Runtime, bid_id: str) -> bytes:
    """The opening as the archive keeps it: the opened documents' hashes and the journal's word for it."""
    with rt.db.session() as s:
        bid = s.get(BidRow, bid_id)
        if bid is None:
            raise BidprocError(Code.BID_NOT_FOUND, f"no bid {bid_id}")
        if bid.opened_at is None or bid.wrapped_key is None:
            raise BidprocError(Code.OPENING_TOO_EARLY, f"bid {bid_id} is not opened")
        tender = s.get(TenderRow, bid.tender_id)
        assert tender is not None  # a foreign key
        docs = list(s.execute(select(DocumentRow).where(DocumentRow.bid_id == bid_id)
                              .order_by(DocumentRow.name)).scalars())
        entries = list(s.execute(select(JournalRow).where(
            JournalRow.action.in_(["bid.opened", "tender.opened"]),
            JournalRow.subject.in_([bid_id, bid.tender_id])).order_by(JournalRow.seq)).scalars())
        # The bid's own entry, and the first tender opening that lists it (a tender may be opened again,
        # for bids still pending then, and each later opening lists the bids already opened).
        bid_entry = next((e for e in entries if e.action == "bid.opened"), None)
        tender_entry = next((e for e in entries if e.action == "tender.opened"
                             and bid_id in (e.detail or {}).get("opened", [])), None)
        journal = [journal_entry(e) for e in (bid_entry, tender_entry) if e is not None]
        prefix = bid_prefix(bid.tender_id, bid.id)
        strict = tender_keys.is_strict(tender.opening)
        # strict (desk.strict_opening): the row points at the opened object, the envelope keeps its name
        places = {d.id: (f"{prefix}/sealed/files/{d.id}{SEALED_SUFFIX}", d.object_key) if strict
                  else (d.object_key, opened_key(prefix, d.object_key, bid.wrapped_key))
                  for d in docs if strict or d.object_key.endswith(SEALED_SUFFIX)}
        documents = [{
            "name": d.name, "size": d.size,
            "sha256": d.sha256,  # the opening checked that the envelope opens to exactly these bytes
            "sealed": "objects/" + places[d.id][0][len(prefix) + 1:],
            "opened": "objects/" + places[d.id][1][len(prefix) + 1:],
        } for d in docs if d.id in places]
        body = {"type": "bidproc.opening-record", "bid": bid_id, "tender": bid.tender_id,
                "bid_opened_at": bid.opened_at.isoformat(),
                "tender_opened_at": tender.opened_at.isoformat() if tender.opened_at else None,
                "documents": documents, "journal": journal}
    return json.dumps(body, indent=1, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def _has_record(archive: ArchiveStore, prefix: str) -> bool:
    complete = [v for v, done in versions(archive, prefix).items() if done]
    return bool(complete) and archive.exists(version_prefix(prefix, max(complete)) + RECORD)


def archive_opened_bid(rt: Runtime, bid_id: str, *, archive: ArchiveStore | None = None) -> Written | None:
    """Add the post-opening version of the bid's package; None when it is already there.

    Raises ``evidence.pending`` (a wait) while the pipeline has not written the first version yet.
    """
    archive = archive or open_archive(rt.settings)
    with rt.db.session() as s:
        bid = s.get(BidRow, bid_id)
        receipt = s.get(ReceiptRow, bid_id)
        if bid is None or receipt is None:
            raise BidprocError(Code.BID_NOT_FOUND, f"no submitted bid {bid_id}")
        tender_id, body = bid.tender_id, receipt.body
    prefix = bid_prefix(tender_id, bid_id)
    existing = versions(archive, prefix)
    if not any(existing.values()):
        raise BidprocError(Code.EVIDENCE_PENDING, f"bid {bid_id} has no evidence package yet: the pipeline "
                                                  "archives it first")
    unfinished = any(not done for done in existing.values())
    if not unfinished and _has_record(archive, prefix):
        return None
    record = opening_record(rt, bid_id)  # made first: a bid not opened raises before anything is written
    opened: dict[str, Any] = {"record": RECORD, "opened_at": json.loads(record)["bid_opened_at"]}
    written = archive_bid(rt, tender_id, bid_id, body, new_version=True, archive=archive,
                          generated={RECORD: ("opening-record", lambda: record)}, header_extra={"opening": opened})
    with rt.db.session() as s:  # the audit trail says when the post-opening version was written, and where
        append(s, actor="archive", action="bid.archived.opened", subject=bid_id, now=rt.clock(),
               detail={"evidence": written.prefix})
    return written


def declare_actor(rt: Runtime, broker: dramatiq.Broker) -> dramatiq.Actor[[str, int], None]:
    """The queued job on ``broker`` (the pipeline's: workers of ``bidproc worker`` run it)."""

    q = rt.settings.queue

    def run(bid_id: str, waits: int = 0) -> None:
        try:
            done = archive_opened_bid(rt, bid_id)
        except BidprocError as exc:
            if RETRY_POLICY.get(exc.code) is not Retry.WAIT:
                raise  # dramatiq's retries, counted: the bid's own data may be at fault
            # An outage, or the pipeline not done with the bid: a new message, not a counted retry
            # (infrastructure failure is never held against a bid), later and later.
            delay = wait_delay_seconds(waits, q.wait_first_delay_seconds, q.wait_max_delay_seconds)
            log.warning("opened bid %s waits %.0f s before archiving: %s", bid_id, delay, exc)
            actor.send_with_options(args=(bid_id, waits + 1), delay=int(delay * 1000))
            return
        log.info("bid %s: %s", bid_id, f"opened package {done.prefix}" if done else "opened package already there")

    actor: dramatiq.Actor[[str, int], None] = dramatiq.actor(
        broker=broker, actor_name=ACTOR, queue_name=QUEUE, max_retries=q.max_attempts, min_backoff=1_000,
        max_backoff=300_000)(run)
    return actor


def enqueue(broker: dramatiq.Broker, bid_id: str) -> None:
    """Queue the job for an opened bid from any process holding the broker: the message names the actor,
    which the workers (``bidproc worker``) declare."""
    broker.enqueue(dramatiq.Message(queue_name=QUEUE, actor_name=ACTOR, args=(bid_id,), kwargs={}, options={}))


def sweep_opened(rt: Runtime, archive: ArchiveStore | None = None) -> list[str]:
    """Every opened bid whose package has no post-opening version yet gets it now (a lost message, a
    job given up on): run by ``bidproc evidence renew``. Returns the bids archived."""
    archive = archive or open_archive(rt.settings)
    with rt.db.session() as s:
        opened = list(s.execute(select(BidRow.id, BidRow.tender_id).where(BidRow.opened_at.is_not(None))
                                .order_by(BidRow.opened_at)).all())
    done = []
    for bid_id, tender_id in opened:
        prefix = bid_prefix(tender_id, bid_id)
        existing = versions(archive, prefix)
        if all(existing.values()) and _has_record(archive, prefix):
            continue
        try:
            if archive_opened_bid(rt, bid_id, archive=archive) is not None:
                done.append(bid_id)
        except BidprocError as exc:
            if exc.code is not Code.EVIDENCE_PENDING:  # pending: the pipeline's first version comes first
                raise
    return done
