"""Leases: one worker holds a bid at a time, and a crashed worker's hold runs out by itself.

The holder renews its lease from a background thread while it works; SIGKILL stops the renewals, the
lease expires, and the reconciler, which wakes up when the earliest lease runs out, hands the bid to
another worker at once (:func:`take_expired`). An embedded service restarted after a crash does not
even wait for that: the dead process's leases are released at start (:func:`release_dead_owners`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update

from bidproc.domain import BidStatus
from bidproc.errors import BidprocError
from bidproc.metadata.models import BidRow
from bidproc.runtime import Runtime

log = logging.getLogger(__name__)


def claim(rt: Runtime, bid_id: str, owner: str, seconds: int) -> bool:
    now = rt.clock()
    with rt.db.session() as s:
        result = s.execute(
            update(BidRow)
            .where(BidRow.id == bid_id)
            .where(or_(BidRow.lease_until.is_(None), BidRow.lease_until < now, BidRow.lease_owner == owner))
            .values(lease_owner=owner, lease_until=now + timedelta(seconds=seconds))
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def release(rt: Runtime, bid_id: str, owner: str) -> None:
    with rt.db.session() as s:
        s.execute(
            update(BidRow)
            .where(BidRow.id == bid_id, BidRow.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )


@contextmanager
def held(rt: Runtime, bid_id: str, owner: str, seconds: int) -> Iterator[bool]:
    """Claim the bid; renew every third of the lease while the block runs; release at the end."""
    if not claim(rt, bid_id, owner, seconds):
        yield False
        return
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(max(1.0, seconds / 3)):
            try:
                claim(rt, bid_id, owner, seconds)
            except BidprocError as exc:  # the database is down for now: keep renewing once it is back
                log.warning("could not renew the lease on bid %s: %s", bid_id, exc)

    thread = threading.Thread(target=renew, name=f"lease-{bid_id}", daemon=True)
    thread.start()
    try:
        yield True
    finally:
        stop.set()
        thread.join()
        try:
            release(rt, bid_id, owner)
        except BidprocError as exc:  # the lease runs out on its own; what the block raised must not be lost
            log.warning("could not release the lease on bid %s: %s", bid_id, exc)


# ---- taking over bids whose holder died ------------------------------------------------------------
# An owner is "<host>:<pid>:<tag>:<delivery>" (see Pipeline.worker_id and BidProcessor.process).


def owner_of_this_process(worker_id: str) -> str:
    return f"{worker_id}:"


def _process_gone(pid: int) -> bool:
    """True only when no live process has this pid (a zombie is dead too: it runs nothing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's live process
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def owner_is_dead(owner: str, worker_id: str) -> bool:
    """Whether ``owner`` is provably a dead process of this host. False when it cannot be told (another
    host, an unparsable owner), so the lease then simply runs out."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    if owner.startswith(owner_of_this_process(worker_id)):
        return False
    pid = int(pid_text)
    return pid == os.getpid() or _process_gone(pid)  # our pid, not our worker id: a previous life of ours


def release_dead_owners(rt: Runtime, worker_id: str) -> list[str]:
    """Release the leases of unfinished bids held by dead processes of this host; return their ids.

    Used by an embedded service at start: its queue lived in the memory of the process that died, and
    no one else works on its bids, so waiting for the lease to run out would only delay them.
    """
    with rt.db.session() as s:
        held_now = s.execute(
            select(BidRow.id, BidRow.lease_owner)
            .where(BidRow.lease_owner.is_not(None))
            .where(BidRow.status.in_([BidStatus.SUBMITTED.value, BidStatus.PROCESSING.value]))
        ).all()
    released = []
    for bid_id, owner in held_now:
        if owner and owner_is_dead(owner, worker_id):
            release(rt, bid_id, owner)
            released.append(bid_id)
    return released


def take_expired(rt: Runtime) -> list[str]:
    """Release every lease that ran out on an unfinished bid (its holder stopped renewing it: dead or cut
    off) and return those bids, to be enqueued again. Released, so the next pass does not enqueue them
    again while they wait in the queue."""
    now = rt.clock()
    with rt.db.session() as s:
        expired = s.execute(
            select(BidRow.id, BidRow.lease_owner)
            .where(BidRow.lease_until.is_not(None), BidRow.lease_until < now)
            .where(BidRow.status.in_([BidStatus.SUBMITTED.value, BidStatus.PROCESSING.value]))
        ).all()
        taken = []
        for bid_id, owner in expired:
            result = s.execute(
                update(BidRow)
                .where(BidRow.id == bid_id, BidRow.lease_owner == owner, BidRow.lease_until < now)
                .values(lease_owner=None, lease_until=None, updated_at=now)
            )
            if result.rowcount:  # type: ignore[attr-defined]
                taken.append(bid_id)
    return taken


def next_expiry(rt: Runtime) -> datetime | None:
    """When the earliest lease on an unfinished bid runs out (the reconciler wakes up then)."""
    with rt.db.session() as s:
        earliest: datetime | None = s.execute(
            select(func.min(BidRow.lease_until))
            .where(BidRow.status.in_([BidStatus.SUBMITTED.value, BidStatus.PROCESSING.value]))
        ).scalar()
    return earliest
