"""A dead worker's bid is taken over when its lease runs out, not after ``stuck_after_seconds``; an
embedded service's own dead predecessor is recognised at once. Default queue settings throughout
(lease 120 s, stuck after 300 s, reconciler every 60 s); only the clock is moved."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

from bidproc.config import load_settings, replace
from bidproc.metadata.models import BidRow, TenantRow, TenderRow
from bidproc.pipeline import lease
from bidproc.pipeline.queue import Pipeline, Reconciler
from bidproc.runtime import Runtime
from tests.foundation.stack import MovableClock

HOST = socket.gethostname()


def _runtime(tmp_path: Path) -> tuple[Runtime, MovableClock]:
    settings = replace(load_settings(env={}), service={"data_dir": str(tmp_path)})
    assert (settings.queue.lease_seconds, settings.queue.stuck_after_seconds) == (120, 300)
    clock = MovableClock()
    rt = Runtime(settings, clock=clock)
    rt.migrate()
    return rt, clock


def _bid(rt: Runtime, status: str = "processing") -> str:
    now = rt.clock()
    ids = [str(uuid.uuid4()) for _ in range(3)]
    with rt.db.session() as s:
        s.add(TenantRow(id=ids[0], name=f"p-{ids[0]}", created_at=now))
        s.flush()
        s.add(TenderRow(id=ids[1], tenant_id=ids[0], reference="R", title="t", buyer="b", deadline=now,
                        created_at=now))
        s.flush()
        s.add(BidRow(id=ids[2], tender_id=ids[1], bidder="ACME", status=status, wrapped_key=b"k", created_at=now,
                     updated_at=now))
    return ids[2]


def _lease(rt: Runtime, bid_id: str) -> tuple[str | None, object]:
    with rt.db.session() as s:
        row = s.get(BidRow, bid_id)
        assert row is not None
        return row.lease_owner, row.lease_until


def test_expired_lease_is_taken_over_when_it_runs_out(tmp_path: Path) -> None:
    rt, clock = _runtime(tmp_path)
    pipeline = Pipeline(rt)
    reconciler = Reconciler(pipeline)
    dead, alive = _bid(rt), _bid(rt)
    assert lease.claim(rt, dead, "other-host:4242:abcdef:00000001", 120)
    assert lease.claim(rt, alive, "other-host:4343:abcdef:00000002", 120)
    assert reconciler.run_once(300) == []
    assert reconciler.wait_seconds() == 60  # nothing runs out before the next periodic pass

    clock.offset += timedelta(seconds=100)
    assert lease.claim(rt, alive, "other-host:4343:abcdef:00000002", 120)  # a live holder renews
    assert 20 <= reconciler.wait_seconds() <= 21  # the reconciler wakes up when the dead one's lease ends

    clock.offset += timedelta(seconds=21)  # 121 s after the last renewal; nothing "stuck" for 300 s
    assert reconciler.run_once(300) == [dead]
    assert _lease(rt, dead) == (None, None) and _lease(rt, alive)[0] is not None
    assert reconciler.run_once(300) == []  # enqueued once, not again at every pass while it waits
    assert lease.claim(rt, dead, "next-host:99:fedcba:00000003", 120)  # the next worker gets it
    for status in ("processed", "quarantined", "failed"):  # finished bids are never taken
        done = _bid(rt, status)
        assert lease.claim(rt, done, "other-host:1:abcdef:00000004", 1)
    clock.offset += timedelta(seconds=5)
    assert dead not in reconciler.run_once(300) and reconciler.run_once(300) == []
    pipeline.broker.close()
    rt.close()


def test_dead_owners_of_this_host_are_recognised(tmp_path: Path) -> None:
    me = f"{HOST}:{os.getpid()}:abcdef"
    finished = subprocess.Popen(["true"])
    finished.wait()
    sleeping = subprocess.Popen(["sleep", "60"])
    zombie = subprocess.Popen(["sleep", "0"])
    try:
        os.waitid(os.P_PID, zombie.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
        assert lease.owner_is_dead(f"{HOST}:{finished.pid}:aaaaaa:1", me)
        assert lease.owner_is_dead(f"{HOST}:{zombie.pid}:aaaaaa:1", me)
        assert lease.owner_is_dead(f"{HOST}:{os.getpid()}:bbbbbb:1", me)  # our pid in a former life
        assert not lease.owner_is_dead(f"{HOST}:{sleeping.pid}:aaaaaa:1", me)
        assert not lease.owner_is_dead(f"{me}:1", me)  # ourselves
        assert not lease.owner_is_dead(f"elsewhere-{HOST}:{finished.pid}:aaaaaa:1", me)  # cannot tell: wait
        assert not lease.owner_is_dead("garbage", me)

        rt, _ = _runtime(tmp_path)
        bids = {owner: _bid(rt) for owner in (f"{HOST}:{finished.pid}:aaaaaa:1", f"{HOST}:{sleeping.pid}:aaaaaa:2",
                                              f"elsewhere:{finished.pid}:aaaaaa:3", f"{me}:4")}
        for owner, bid_id in bids.items():
            assert lease.claim(rt, bid_id, owner, 120)
        assert lease.release_dead_owners(rt, me) == [bids[f"{HOST}:{finished.pid}:aaaaaa:1"]]
        assert [_lease(rt, b)[0] is None for b in bids.values()] == [True, False, False, False]
        rt.close()
    finally:
        sleeping.kill()
        sleeping.wait()
        zombie.wait()
