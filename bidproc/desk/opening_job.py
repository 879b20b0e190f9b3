"""The opening as a queued job: the request checks the quorum, a worker decrypts.

``POST /v1/tenders/{id}/open`` checks the deadline and the shares at once (``409 opening.too_early``,
``403 opening.quorum``), rebuilds the tender's private key and hands it to a job (one row of
``opening_runs``, one message on the ``openings`` queue) through a key drop
(:mod:`bidproc.encryption.keydrop`): never in clear in the queue, the database or Redis. The job
takes the key once, erases both halves, opens every on-time sealed bid and records its progress;
``GET /v1/tenders/{id}/opening`` reads it.

Idempotent: asking again while a run is queued or running answers that run (the key is not handed
over twice); a redelivered message finds its run no longer queued and does nothing; a bid opened by
an earlier run is not opened again. A run whose worker died stops heartbeating: the next request
starts a new run. A run that lost its key (expired in the drop, or a crash after taking it) ends
``failed`` with ``opening.interrupted``: the shares are given again.

After each bid is opened the hooks in :attr:`OpeningJobs.on_bid_opened` run; the pipeline sets one:
queue :func:`bidproc.archive.opened.archive_opened_bid` (the post-opening evidence package version).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import dramatiq
from sqlalchemy import select

from bidproc.desk import backup_opening
from bidproc.desk.strict_opening import open_strict_bid
from bidproc.desk.tenants import Caller
from bidproc.desk.unsealing import open_bid
from bidproc.domain import BidStatus, Stage
from bidproc.encryption import keydrop, tender_keys
from bidproc.encryption.recipients import PrivateKey
from bidproc.errors import BidprocError, Code
from bidproc.journal.anchor import anchor
from bidproc.journal.chain import append
from bidproc.metadata.models import BackupFileRow, BidRow, OpeningRunRow, StageRunRow, TenderRow
from bidproc.runtime import Runtime

log = logging.getLogger(__name__)
ACTOR, QUEUE = "open_tender", "openings"
LISTS = ("opened", "late", "quarantined", "pending", "failed", "backups")


@dataclass(frozen=True)
class OpeningPolicy:
    key_ttl_seconds: int = 3600  # an unclaimed key is forgotten by the drop after this
    stale_after_seconds: int = 900  # a running job silent this long is dead: a new request starts a new run


def run_view(run: OpeningRunRow) -> dict[str, Any]:
    result = run.result or {}
    return {"id": run.id, "tender": run.tender_id, "state": run.state, "requested_at": run.requested_at.isoformat(),
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "progress": {"done": run.done, "total": run.total},
            **{name: result.get(name, []) for name in LISTS},
            "errors": result.get("errors", []), "journal_anchored_seq": result.get("journal_anchored_seq")}


class OpeningJobs:
    """The opening actor (and the archive hook's) on the pipeline's broker, and the key drop."""

    def __init__(self, rt: Runtime, broker: dramatiq.Broker, enqueue_bid: Callable[[str], None],
                 policy: OpeningPolicy | None = None) -> None:
        self.rt, self.policy, self.enqueue_bid = rt, policy or OpeningPolicy(), enqueue_bid
        backend = rt.settings.queue.backend
        # The key drop must be reachable by the worker: Redis for a Redis queue; this process's memory
        # otherwise, and then the job runs here too (RabbitMQ: in a thread of the API process).
        self.drop: keydrop.KeyDrop = (keydrop.RedisDrop(cast(Any, broker).client, rt.settings.queue.namespace)
                                      if backend == "redis" else keydrop.MemoryDrop())
        self._local = backend == "rabbitmq"
        decorate = dramatiq.actor(broker=broker, actor_name=ACTOR, queue_name=QUEUE, max_retries=0,
                                  time_limit=24 * 3600 * 1000)
        self.actor = decorate(self.run)
        # Set by the pipeline: after each opened bid, the archive's job (bidproc.archive.opened).
        self.on_bid_opened: list[Callable[[str], object]] = []

    # -- the request's side ----------------------------------------------------------------------
    def start(self, caller: Caller, tender_id: str, private: PrivateKey, now: datetime) -> dict[str, Any]:
        """Hand the key to a new run (or answer the run already under way); returns its view."""
        ttl = self.policy.key_ttl_seconds
        with self.rt.db.session() as s:
            s.execute(select(TenderRow).where(TenderRow.id == tender_id).with_for_update())  # one start at a time
            latest = s.execute(select(OpeningRunRow).where(OpeningRunRow.tender_id == tender_id)
                               .order_by(OpeningRunRow.requested_at.desc()).limit(1)).scalar_one_or_none()
            if latest is not None and self._alive(latest, now):
                return run_view(latest)
            run_id = str(uuid.uuid4())
            once, sealed = keydrop.wrap(private, run_id, tender_id)
            try:
                self.drop.put(run_id, once, ttl)
            except Exception as exc:  # Redis is down: nothing is stored, the buyer asks again later
                raise BidprocError(Code.QUEUE_UNAVAILABLE, "the opening could not be queued: try again") from exc
            finally:
                del once
            run = OpeningRunRow(id=run_id, tender_id=tender_id, actor=caller.tenant, key_id=caller.key_id,
                                state="queued", requested_at=now, updated_at=now, sealed_key=sealed,
                                key_expires_at=now + timedelta(seconds=ttl), total=0, done=0, result={})
            s.add(run)
            append(s, actor=caller.tenant, action="opening.requested", subject=tender_id, now=now,
                   detail={"run": run_id, "key_id": caller.key_id})
            view = run_view(run)
        try:
            if self._local:
                threading.Thread(target=self.run, args=(run_id,), name=f"opening-{run_id}", daemon=True).start()
            else:
                self.actor.send(run_id)
        except Exception as exc:
            self.drop.discard(run_id)
            self._fail(run_id, Code.QUEUE_UNAVAILABLE, f"the opening could not be queued: {type(exc).__name__}")
            raise BidprocError(Code.QUEUE_UNAVAILABLE, "the opening could not be queued: try again") from exc
        return view

    def _alive(self, run: OpeningRunRow, now: datetime) -> bool:
        if run.state == "queued":
            return now < run.key_expires_at
        return run.state == "running" and now - run.updated_at < timedelta(seconds=self.policy.stale_after_seconds)

    # -- the worker's side -----------------------------------------------------------------------
    def run(self, run_id: str) -> None:
        private = self._take_key(run_id)
        if private is None:
            return
        try:
            self._open_all(run_id, private)
        except Exception as exc:  # the run says so; the buyer asks again (bids opened so far stay opened)
            log.exception("opening run %s failed", run_id)
            code = exc.code if isinstance(exc, BidprocError) else Code.INTERNAL_ERROR
            self._fail(run_id, code, str(exc)[:500])
        finally:
            del private  # Python cannot wipe it; no reference outlives this frame

    def _take_key(self, run_id: str) -> PrivateKey | None:
        with self.rt.db.session() as s:
            run = s.execute(select(OpeningRunRow).where(OpeningRunRow.id == run_id).with_for_update()
                            ).scalar_one_or_none()
            if run is None or run.state != "queued":
                return None  # a redelivery: the run is under way or over
            once, sealed, tender_id = self.drop.take(run_id), run.sealed_key, run.tender_id
            run.sealed_key, run.state = None, "running"  # both halves are erased with this commit
            run.started_at = run.updated_at = self.rt.clock()
        if once is None or sealed is None:
            self._fail(run_id, Code.OPENING_INTERRUPTED,
                       "the opening key was not there any more (expired before a worker took it): open again")
            return None
        try:
            return keydrop.unwrap(once, sealed, run_id, tender_id)
        except BidprocError as exc:
            self._fail(run_id, exc.code, exc.message)
            return None

    def _fail(self, run_id: str, code: Code, message: str) -> None:
        now = self.rt.clock()
        with self.rt.db.session() as s:
            run = s.get(OpeningRunRow, run_id)
            if run is None:
                return
            run.state, run.sealed_key, run.finished_at, run.updated_at = "failed", None, now, now
            run.result = {**(run.result or {}), "errors": [{"code": code.value, "message": message}]}
            append(s, actor=run.actor, action="opening.failed", subject=run.tender_id, now=now,
                   detail={"run": run_id, "code": code.value, "reason": message})

    def _classify(self, tender_id: str) -> tuple[dict[str, list[Any]], list[BidRow]]:
        with self.rt.db.session() as s:
            bids = list(s.execute(select(BidRow).where(BidRow.tender_id == tender_id)
                                  .order_by(BidRow.created_at)).scalars())
            sealed = {r.bid_id for r in s.execute(select(StageRunRow).where(
                StageRunRow.bid_id.in_([b.id for b in bids]), StageRunRow.stage == Stage.ENCRYPTION.value)).scalars()}
        answer: dict[str, list[Any]] = {name: [] for name in LISTS}
        todo = []
        for bid in bids:
            if bid.status == BidStatus.DRAFT.value:
                continue
            if bid.late or bid.status == BidStatus.LATE.value:
                answer["late"].append(bid.id)
            elif bid.status == BidStatus.QUARANTINED.value:
                answer["quarantined"].append(bid.id)  # French rule: a bid with malware is not read
            elif bid.opened_at is not None:
                answer["opened"].append(bid.id)
            elif bid.status == BidStatus.SEALED.value:
                todo.append(bid)  # strict: sealed since its first byte, opened before it is processed
            elif bid.status == BidStatus.FAILED.value:
                answer["failed"].append({"bid": bid.id, "code": (bid.outcome or {}).get("error", "internal.error"),
                                         "message": "the pipeline failed: sealed as a trace, not opened"})
            elif bid.id not in sealed or bid.wrapped_key is not None:
                answer["pending"].append(bid.id)  # still in the pipeline: open again once it is sealed
            else:
                todo.append(bid)
        return answer, todo

    def _progress(self, run_id: str, **values: Any) -> None:
        with self.rt.db.session() as s:
            run = s.get(OpeningRunRow, run_id)
            assert run is not None
            for name, value in values.items():
                setattr(run, name, value)
            run.updated_at = self.rt.clock()

    def _open_all(self, run_id: str, private: PrivateKey) -> None:
        with self.rt.db.session() as s:
            run = s.get(OpeningRunRow, run_id)
            tender = s.get(TenderRow, run.tender_id) if run is not None else None
            assert run is not None and tender is not None and tender.opening is not None
            actor, key_id, requested_at, opening = run.actor, run.key_id, run.requested_at, tender.opening
        answer, todo = self._classify(tender.id)
        cert = tender_keys.certificates(opening)[0]
        self._progress(run_id, total=len(todo), result=answer)
        for done, bid in enumerate(todo, start=1):
            try:
                if bid.status == BidStatus.SEALED.value:  # strict: opened, then processed by the pipeline
                    if open_strict_bid(self.rt, actor, key_id, bid, private, cert,
                                       heartbeat=lambda: self._progress(run_id)):
                        self._enqueue(bid.id)
                else:
                    open_bid(self.rt, actor, key_id, bid, private, cert, heartbeat=lambda: self._progress(run_id))
                answer["opened"].append(bid.id)  # the archive's job (hooks, below) waits for a strict bid's package
            except BidprocError as exc:
                answer["failed"].append({"bid": bid.id, "code": exc.code.value, "message": exc.message})
                with self.rt.db.session() as s:
                    append(s, actor=actor, action="bid.open_failed", subject=bid.id, now=self.rt.clock(),
                           detail={"code": exc.code.value, "reason": exc.message, "run": run_id})
            self._progress(run_id, done=done, result=answer)
        unopenable = {f["bid"] for f in answer["failed"]}
        answer["backups"] = self._backups(run_id, actor, tender.id, private, cert, set(answer["opened"]), unopenable)
        now = self.rt.clock()
        with self.rt.db.session() as s:
            row = s.execute(select(TenderRow).where(TenderRow.id == tender.id).with_for_update()).scalar_one()
            row.opened_at = row.opened_at or requested_at
            append(s, actor=actor, action="tender.opened", subject=tender.id, now=now,
                   detail={**answer, "key_id": key_id, "run": run_id})
        try:  # the chain head at every opening, timestamped
            anchored: int | None = anchor(self.rt.db.session, self.rt.tsa, self.rt.clock(), actor=actor)
        except BidprocError:
            anchored = None
        self._progress(run_id, state="done", finished_at=self.rt.clock(),
                       result={**answer, "errors": [], "journal_anchored_seq": anchored})
        # After the tender's own entry, so that what the hooks keep (the archive's opening record) holds it.
        for bid_id in answer["opened"]:
            self._hooks(bid_id)

    def _backups(self, run_id: str, actor: str, tender_id: str, private: PrivateKey, cert: Any,
                 opened: set[str], unopenable: set[str]) -> list[dict[str, Any]]:
        """Each sealed backup copy opened in place of its bid, or destroyed (:mod:`.backup_opening`)."""
        with self.rt.db.session() as s:
            tender = s.get(TenderRow, tender_id)
            bids = list(s.execute(select(BidRow).where(BidRow.tender_id == tender_id,
                                                       BidRow.backup_key.is_not(None))).scalars())
            files = {b.id: list(s.execute(select(BackupFileRow).where(BackupFileRow.bid_id == b.id)).scalars())
                     for b in bids}
        assert tender is not None
        done: list[dict[str, Any]] = []
        for bid in bids:
            decided = backup_opening.fate(bid, tender, files[bid.id], opened, unopenable)
            if decided is None:
                continue
            what, why = decided
            try:
                if what == "destroy":
                    if backup_opening.destroy(self.rt, actor, run_id, bid.id, why):
                        done.append({"bid": bid.id, "backup": "destroyed", "reason": why})
                    continue
                replacement = backup_opening.open_in_place(self.rt, actor, run_id, bid, private, cert, why)
            except BidprocError as exc:  # kept sealed, said: a human looks at it (the next run tries again)
                done.append({"bid": bid.id, "backup": "failed", "reason": why, "code": exc.code.value,
                             "message": exc.message})
                continue
            if replacement is not None:
                done.append({"bid": bid.id, "backup": "opened", "reason": why, "replacement": replacement})
                try:  # intake and verification, then sealed; the next opening run opens it
                    self.enqueue_bid(replacement)
                except Exception:  # the reconciler enqueues a submitted bid left behind
                    log.warning("could not enqueue the backup copy %s now", replacement, exc_info=True)
        return done

    def _enqueue(self, bid_id: str) -> None:
        try:
            self.enqueue_bid(bid_id)
        except Exception:  # the reconciler enqueues a submitted bid left behind
            log.warning("could not enqueue the opened strict bid %s now", bid_id, exc_info=True)

    def _hooks(self, bid_id: str) -> None:
        for hook in self.on_bid_opened:
            try:
                hook(bid_id)
            except Exception:  # the bid is opened; a hook that fails (e.g. the queue is down) is logged
                log.exception("a hook after opening bid %s failed", bid_id)
