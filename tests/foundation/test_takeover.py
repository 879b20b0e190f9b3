"""Separate workers (Redis, PostgreSQL, S3), every queue setting at its default (lease 120 s, stuck
after 300 s, reconciler every 60 s): a SIGKILLed worker's bid is taken over by another worker as soon
as its lease runs out, not after ``stuck_after_seconds``. Takes a little over two minutes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import UTC
from pathlib import Path

from bidproc.config import ClamdSettings
from bidproc.metadata.models import BidRow
from tests.foundation.stack import Stack
from tests.services import ROOT, free_port

DEFAULTS = {"BIDPROC_QUEUE_STUCK_AFTER_SECONDS": "300", "BIDPROC_QUEUE_RECONCILE_EVERY_SECONDS": "60"}


def test_dead_workers_bid_is_taken_over_when_its_lease_runs_out(tmp_path: Path, s3_endpoint: str, redis_url: str,
                                                                 postgres_url: str,
                                                                 clamd_settings: ClamdSettings) -> None:
    port, rundir = free_port(), tmp_path / "clamd"
    script = str(ROOT / "scripts/clamd.sh")
    subprocess.run([script, "start", str(port), str(rundir)], check=True, capture_output=True)
    clamd_pid = int((rundir / "clamd.pid").read_text())
    stack = Stack(tmp_path / "stack", s3_endpoint, ClamdSettings(port=port), lease_seconds=120, env=DEFAULTS)
    try:
        assert (stack.settings.queue.lease_seconds, stack.settings.queue.stuck_after_seconds) == (120, 300)
        http = stack.client()
        tender = stack.new_tender(http)
        bid = http.post(f"/v1/tenders/{tender['id']}/bids", json={"bidder": "ACME"}).json()
        assert http.put(f"/v1/bids/{bid['id']}/files/offre.txt", content=b"offre").status_code == 201
        first, second = stack.start_worker(), stack.start_worker()
        stack.wait_worker_ready(first)
        stack.wait_worker_ready(second)
        os.kill(clamd_pid, signal.SIGSTOP)  # whoever takes the bid is stuck inside it
        assert http.post(f"/v1/bids/{bid['id']}/submit").status_code == 201
        end = time.monotonic() + 30
        while True:
            with stack.rt.db.session() as s:
                row = s.get(BidRow, bid["id"])
                assert row is not None
                owner, lease_until = row.lease_owner, row.lease_until
            if owner is not None or time.monotonic() > end:
                break
            time.sleep(0.1)
        assert owner is not None and lease_until is not None, stack.worker_logs()
        holder = next(p for p in (first, second) if f":{p.pid}:" in owner)  # bidproc worker is the group leader
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(10)
        os.kill(clamd_pid, signal.SIGCONT)
        runs_out = (lease_until.astimezone(UTC) - stack.clock()).total_seconds()
        assert runs_out > 100  # the dead worker's lease still had its (default) two minutes to run
        # within the lease plus a few seconds, where stuck_after_seconds alone would take 300 s more
        status = stack.wait_status(http, bid["id"], timeout=runs_out + 15)
        assert status["status"] == "processed" and status["files"][0]["verdict"] == "accepted"
        assert "its lease ran out" in stack.worker_logs()
    finally:
        try:
            os.kill(clamd_pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        stack.close()
        subprocess.run([script, "stop", str(rundir)], check=False)
