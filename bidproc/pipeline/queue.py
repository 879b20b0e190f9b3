"""The queue: dramatiq on Redis (default for services), RabbitMQ, or in-process (embedded).

The queue only carries "work on bid X"; the database says what is left to do. Retries with backoff
are dramatiq's ``Retries`` middleware; a bid whose retries run out is marked failed by
:class:`BidFailureJournal`; the :class:`Reconciler` re-enqueues bids left behind by a crash.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import timedelta
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware, Retries
from sqlalchemy import select

from bidproc.desk.opening_job import OpeningJobs
from bidproc.domain import BidStatus, Stage
from bidproc.errors import RETRY_POLICY, BidprocError, Code, Retry, wait_delay_seconds
from bidproc.journal.anchor import anchor_if_due
from bidproc.journal.chain import append
from bidproc.logs import bound
from bidproc.metadata.models import BidRow, StageRunRow
from bidproc.pipeline import lease
from bidproc.pipeline.process import TRACES, BidProcessor, BidWaits
from bidproc.runtime import Runtime

log = logging.getLogger(__name__)
ACTOR = "process_bid"
QUEUE = "bids"


def make_broker(rt: Runtime) -> dramatiq.Broker:
    q = rt.settings.queue
    broker: dramatiq.Broker
    if q.backend == "redis":
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(  # type: ignore[no-untyped-call]
            url=q.redis_url, namespace=q.namespace, heartbeat_timeout=q.heartbeat_timeout_seconds * 1000
        )
    elif q.backend == "rabbitmq":
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=q.rabbitmq_url)
    elif q.backend == "embedded":
        from dramatiq.brokers.stub import StubBroker

        broker = StubBroker()
    else:
        raise BidprocError(Code.CONFIG_INVALID, f"queue.backend must be embedded, redis or rabbitmq, not {q.backend!r}")
    # dramatiq calls after_* hooks in reverse order: placed before Retries, ours runs after it, once
    # Retries has decided whether the message failed for good.
    broker.add_middleware(BidFailureJournal(rt), before=Retries)
    return broker


class BidFailureJournal(Middleware):
    """When dramatiq gives up on a message, the bid is marked failed and the journal says why."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        if exception is None or not message.failed or message.actor_name != ACTOR:
            return
        bid_id = str(message.args[0])
        with self.rt.db.session() as s:
            bid = s.get(BidRow, bid_id)
            if bid is None or BidStatus(bid.status).final:
                return
            bid.status, bid.updated_at = BidStatus.FAILED.value, self.rt.clock()
            bid.outcome = {
                "error": getattr(getattr(exception, "code", None), "value", type(exception).__name__),
                "message": str(exception),
            }
            append(s, actor="pipeline", action="bid.failed", subject=bid_id, now=self.rt.clock(), detail=bid.outcome)


class Pipeline:
    """The broker, the actor, and (when asked) workers and the reconciler of this process."""

    def __init__(self, rt: Runtime, *, max_retries: int | None = None) -> None:
        self.rt = rt
        self.broker = make_broker(rt)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.processor = BidProcessor(rt, self.worker_id)
        self._worker: dramatiq.Worker | None = None
        self._reconciler: Reconciler | None = None

        def process_bid(bid_id: str) -> None:
            with bound(bid=bid_id):  # every line logged while this bid is processed carries its id
                run_bid(bid_id)

        def run_bid(bid_id: str) -> None:
            try:
                outcome = self.processor.process(bid_id)
            except BidWaits as exc:
                q = rt.settings.queue
                delay_ms = int(1000 * wait_delay_seconds(exc.waits - 1, q.wait_first_delay_seconds,
                                                          q.wait_max_delay_seconds))
                log.warning("bid %s waits %d ms: %s", bid_id, delay_ms, exc)
                if RETRY_POLICY[exc.code] is Retry.WAIT:
                    # A new message, not a dramatiq retry: an outage must not use up the bid's retries.
                    try:
                        self.actor.send_with_options(args=(bid_id,), delay=delay_ms)
                        return
                    except Exception:  # the broker itself is down: let dramatiq (or the reconciler) retry
                        log.warning("could not re-enqueue waiting bid %s", bid_id, exc_info=True)
                raise dramatiq.Retry(str(exc), delay=delay_ms) from exc
            log.info("bid %s: %s %s", bid_id, outcome.status, ",".join(outcome.ran))

        decorate = dramatiq.actor(
            broker=self.broker,
            actor_name=ACTOR,
            queue_name=QUEUE,
            max_retries=rt.settings.queue.max_attempts if max_retries is None else max_retries,
            min_backoff=1_000,
            max_backoff=300_000,
            time_limit=6 * 3600 * 1000,
        )
        self.actor = decorate(process_bid)
        from bidproc.archive import opened  # the post-opening archive job runs on the same workers

        self.archive_opened_actor = opened.declare_actor(rt, self.broker)
        # the opening job on the same broker and workers; after each opened bid, the archive's job
        self.openings = OpeningJobs(rt, self.broker, self.enqueue)
        self.openings.on_bid_opened = [lambda bid_id: self.archive_opened_actor.send(bid_id, 0)]

    def enqueue(self, bid_id: str) -> None:
        self.actor.send(bid_id)

    def start(self, *, reconcile: bool = True) -> None:
        self._worker = dramatiq.Worker(
            self.broker, worker_threads=self.rt.settings.queue.worker_threads, worker_timeout=200
        )
        self._worker.start()
        if reconcile:
            self._reconciler = Reconciler(self)
            self._reconciler.start()

    def stop(self) -> None:
        if self._reconciler:
            self._reconciler.stop()
        if self._worker:
            self._worker.stop(timeout=30_000)
        self.broker.close()


class Reconciler(threading.Thread):
    """Re-enqueues unfinished bids whose lease ran out (their worker died: taken over as soon as the lease
    expires, the reconciler wakes up for it), and those nobody holds that have not moved for a while
    (a lost message); and late or failed bids not sealed yet (they are sealed as a trace).

    On start it also picks up every unheld bid at once: after a crash of an embedded (in-memory) queue,
    the database still knows which bids were in flight; and an embedded service first releases the
    leases of its own dead predecessor (nothing else can be working on its bids), so they resume now.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__(name="reconciler", daemon=True)
        self.pipeline = pipeline
        self._halt = threading.Event()

    def stuck(self, older_than_seconds: float) -> list[str]:
        rt = self.pipeline.rt
        now = rt.clock()
        with rt.db.session() as s:
            return list(
                s.execute(
                    select(BidRow.id)
                    .where(BidRow.status.in_([BidStatus.SUBMITTED.value, BidStatus.PROCESSING.value]))
                    .where(BidRow.lease_until.is_(None))
                    .where(BidRow.updated_at < now - timedelta(seconds=older_than_seconds))
                ).scalars()
            )

    def unsealed_traces(self, older_than_seconds: float) -> list[str]:
        """Late and failed bids still under the service key (their enqueue failed, or the pipeline gave up
        before the encryption stage): each is sealed as it is stored (``BidProcessor._seal_trace``)."""
        rt = self.pipeline.rt
        now, most = rt.clock(), rt.settings.queue.max_attempts
        sealed = select(StageRunRow.bid_id).where(StageRunRow.stage == Stage.ENCRYPTION.value)
        with rt.db.session() as s:
            rows = s.execute(
                select(BidRow.id, BidRow.outcome)
                .where(BidRow.status.in_(sorted(TRACES)), BidRow.wrapped_key.is_not(None))
                .where(BidRow.opened_at.is_(None), BidRow.lease_until.is_(None))
                .where(BidRow.updated_at < now - timedelta(seconds=older_than_seconds))
                .where(BidRow.id.not_in(sealed))
            ).all()
        # a trace whose sealing failed max_attempts times is left alone (journalled bid.seal.gave_up)
        return [bid_id for bid_id, outcome in rows if int((outcome or {}).get("seal_attempts", 0)) < most]

    def run_once(self, older_than_seconds: float) -> list[str]:
        expired = lease.take_expired(self.pipeline.rt)
        found = expired + [b for b in self.stuck(older_than_seconds) if b not in expired]
        found += [b for b in self.unsealed_traces(older_than_seconds) if b not in found]
        for bid_id in found:
            log.info("reconciler: re-enqueuing bid %s%s", bid_id, " (its lease ran out)" if bid_id in expired else "")
            self.pipeline.enqueue(bid_id)
        return found

    def wait_seconds(self) -> float:
        """Until the next pass: the configured period, or less when a lease runs out before then."""
        every = float(self.pipeline.rt.settings.queue.reconcile_every_seconds)
        expiry = lease.next_expiry(self.pipeline.rt)
        if expiry is None:
            return every
        return min(every, max(1.0, (expiry - self.pipeline.rt.clock()).total_seconds() + 0.5))

    def run(self) -> None:
        rt = self.pipeline.rt
        q = rt.settings.queue
        first = True
        while not self._halt.is_set():
            wait = float(q.reconcile_every_seconds)
            try:
                if first and q.backend == "embedded":
                    for bid_id in lease.release_dead_owners(rt, self.pipeline.worker_id):
                        log.info("reconciler: bid %s was held by a dead process of this service", bid_id)
                self.run_once(0 if first else q.stuck_after_seconds)
                first = False
                anchor_if_due(rt.db.session, rt.tsa, rt.clock(), rt.settings.service.journal_anchor_seconds)
                wait = self.wait_seconds()
            except Exception:  # the reconciler must outlive a database or TSA hiccup
                log.exception("reconciler pass failed")
            self._halt.wait(wait)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)
