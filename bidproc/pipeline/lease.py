"""Leases: one worker holds a bid at a time, and a crashed worker's hold runs out by itself.

The holder renews its lease from a background thread while it works; SIGKILL stops the renewals, the
lease expires, and the reconciler hands the bid to another worker.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import or_, update

from bidproc.metadata.models import BidRow
from bidproc.runtime import Runtime


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
            claim(rt, bid_id, owner, seconds)

    thread = threading.Thread(target=renew, name=f"lease-{bid_id}", daemon=True)
    thread.start()
    try:
        yield True
    finally:
        stop.set()
        thread.join()
        release(rt, bid_id, owner)
